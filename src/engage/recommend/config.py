"""`recommender.yml`: what the recommender learns from and how it trains and serves.

Every channel's events are interactions: a view, an add to cart, a purchase, a click in an email or an SMS,
a click on a recommendation in the chat. Each event name has a weight; the item comes from
`properties.product_id` or from each `properties.products[].product_id` (an order, a cart).

    interactions:
      ProductViewed: 1
      ProductAdded: 3
      OrderCompleted: 5
      EmailClicked: 2
    training:
      every: 6h          # retrain in the worker (also on demand: engage recs train)
      model: auto        # auto: the evaluation picks; or popularity, itemknn, ease, als, bpr
      half_life: auto    # recency: an item counts half once the shopper touched this many others since
      history: 365d      # interactions older than this are not learned from
    serving:
      history: 50        # the user's latest interactions folded in at each request
      exploration: {new_for: 30d, slots: 1}   # a slot for a product too new to have been learned
      offers: {threshold: 0.1}                 # below it, an offer is chosen by the fallback rules
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator

from engage.errors import Problem
from engage.segments.durations import parse_duration
from engage.workspace.check import CheckContext, yaml_validator
from engage.workspace.yaml import YamlFile, load_file, validate_model

__all__ = [
    "RECOMMENDER_FILE",
    "RecommenderConfig",
    "load_recommender_config",
    "DEFAULT_WEIGHTS",
    "check_recommender_file",
]

RECOMMENDER_FILE = "recommender.yml"

DEFAULT_WEIGHTS: dict[str, float] = {
    "ProductViewed": 1.0,
    "ProductAdded": 3.0,
    "OrderCompleted": 5.0,
    "EmailClicked": 2.0,
    "SmsClicked": 2.0,
    "RecommendationClicked": 2.0,
}

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Weight = Annotated[float, Field(gt=0)]
ModelChoice = Literal["auto", "popularity", "itemknn", "ease", "als", "bpr"]


def _half_life(value: object) -> float | str:
    if value in ("auto", "none"):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError(f"write auto, none or a number of items above 0, not {value!r}")


HalfLife = Annotated[float | Literal["auto", "none"], PlainValidator(_half_life)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingConfig(_Section):
    every: Duration = timedelta(hours=6)
    model: ModelChoice = "auto"
    half_life: HalfLife = "auto"
    """How much recency counts in a shopper's history (`engage.recommend.models.recency`): a number of
    items; `none` for plain sums; `auto` for what `auto`'s validation finds best (none for another model)."""
    history: Duration = timedelta(days=365)

    @property
    def fixed_half_life(self) -> float | None | Literal["auto"]:
        """The half-life to serve with, or "auto" to keep the model's own."""
        return None if self.half_life == "none" else self.half_life


class ExplorationConfig(_Section):
    new_for: Duration = timedelta(days=30)
    """A product is new this long after its catalog `created_at`."""
    slots: int = Field(default=1, ge=0, le=5)
    """Of each `for_you` answer of five items or more, this many (the last) go to a new product nobody
    has learned about yet, chosen at random, weighted toward the shopper's categories."""


class OffersConfig(_Section):
    threshold: float = Field(default=0.1, ge=0, le=1)
    """An offer is made on the model's say when its score × preference reaches this (scores run 0..1,
    the user's best-scored item being 1); below it, the rule-based fallbacks answer."""


class ServingConfig(_Section):
    history: int = Field(default=50, ge=1, le=10_000)
    exploration: ExplorationConfig = ExplorationConfig()
    offers: OffersConfig = OffersConfig()


class RecommenderConfig(_Section):
    interactions: dict[str, Weight] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    training: TrainingConfig = TrainingConfig()
    serving: ServingConfig = ServingConfig()


def parse_recommender_config(doc: YamlFile) -> tuple[RecommenderConfig | None, list[Problem]]:
    return validate_model(RecommenderConfig, doc, doc.data or {})


@yaml_validator
def check_recommender_file(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    """`recommender.yml` for `engage check`."""
    return parse_recommender_config(doc)[1]


def load_recommender_config(root: Path) -> RecommenderConfig:
    """The workspace's `recommender.yml`, or the defaults when it has none; ConfigError names file:line."""
    return load_file(root, RECOMMENDER_FILE, parse_recommender_config, RecommenderConfig())
