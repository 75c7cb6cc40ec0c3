"""Training: the interactions table to a users × items matrix, a model fitted on it, a new version saved.

Weights of repeated interactions add up (three views and a purchase say more than one view). Interactions
older than `training.history` are left out. The order of each shopper's interactions goes with the matrix,
for `auto` to learn how much recency counts; the version keeps every shopper's serving row (their latest
`serving.history` interactions, weighted as the model asks) for campaigns to score without reading them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy import sparse
from sqlalchemy import text

from engage.recommend.catalog import Catalog
from engage.recommend.config import RecommenderConfig
from engage.recommend.models import Model
from engage.recommend.models.als import Als
from engage.recommend.models.auto import Auto
from engage.recommend.models.base import Remembers, fit
from engage.recommend.models.bpr import Bpr
from engage.recommend.models.ease import Ease
from engage.recommend.models.itemknn import ItemKnn
from engage.recommend.models.popularity import Popularity
from engage.recommend.models.recency import Histories
from engage.recommend.registry import ModelStore, ModelVersion, Trained
from engage.store import Database
from engage.store.codec import time_param

__all__ = [
    "Interactions",
    "evaluation_frame",
    "load_interactions",
    "MODELS",
    "fit_model",
    "Fitted",
    "shopper_decay",
    "segment_popularity",
    "train_version",
]

MODELS: dict[str, Callable[[], Model]] = {
    "popularity": Popularity,
    "itemknn": ItemKnn,
    "ease": Ease,
    "als": Als,
    "bpr": Bpr,
    "auto": Auto,  # engage's default: chooses among the others by validation
}


@dataclass(frozen=True)
class Interactions:
    """Users × items weights with the ids behind the dense indices, and the order they came in."""

    users: np.ndarray
    items: np.ndarray
    histories: Histories
    """Every interaction's weight summed per user and item, with their recency."""
    user_codes: np.ndarray
    """Each interaction's row, in the order they happened (and `item_codes`, `weights` alike)."""
    item_codes: np.ndarray
    weights: np.ndarray

    @property
    def matrix(self) -> sparse.csr_matrix:
        return self.histories.matrix

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, items: Sequence[str] = ()) -> Interactions:
        """`frame` has columns profile_id, item_id, weight, and at and id for their order; `items` come
        first in the item index (the catalog, so every product is known to the model even before anyone
        touched it)."""
        frame = frame.sort_values(["at", "id"], kind="stable") if len(frame) else frame
        item_ids = pd.Index(list(dict.fromkeys([*items, *frame["item_id"].unique()])))
        user_codes, users = pd.factorize(frame["profile_id"], sort=True)
        item_codes = item_ids.get_indexer(frame["item_id"])
        weights = frame["weight"].to_numpy(np.float64)
        shape = (len(users), len(item_ids))
        return cls(
            np.asarray(users, dtype=object),
            np.asarray(item_ids, dtype=object),
            Histories.in_order(user_codes, item_codes, weights, shape),
            user_codes,
            item_codes,
            weights,
        )

    def latest(self, limit: int) -> Histories:
        """Each user's latest `limit` interactions: the rows serving scores them from."""
        newest_first = np.lexsort((-np.arange(len(self.user_codes)), self.user_codes))
        counts = np.bincount(self.user_codes, minlength=len(self.users))
        rank = np.arange(len(newest_first)) - np.repeat(np.cumsum(counts) - counts, counts)
        kept = np.sort(newest_first[rank < limit])  # back in the order they happened
        return Histories.in_order(
            self.user_codes[kept], self.item_codes[kept], self.weights[kept], self.histories.matrix.shape
        )


INTERACTION_COLUMNS = ("id", "profile_id", "item_id", "weight", "channel", "event", "at")


def evaluation_frame(database: Database) -> pd.DataFrame:
    """Every interaction of the workspace as an offline evaluation takes it: user, item, weight and the
    time in seconds."""
    frame = load_interactions(database)
    return pd.DataFrame(
        {
            "user": frame["profile_id"],
            "item": frame["item_id"],
            "weight": frame["weight"].astype(float),
            "timestamp": pd.to_datetime(frame["at"], utc=True).astype("int64") // 1_000_000_000,
        }
    )


def load_interactions(
    database: Database,
    since: datetime | None = None,
    columns: Sequence[str] = INTERACTION_COLUMNS,
    through: int | None = None,
) -> pd.DataFrame:
    """`columns` of every interaction since `since`, up to the one numbered `through`. Read through the
    driver's cursor: millions of rows as SQLAlchemy Row objects cost more than the training they feed."""
    unknown = set(columns) - set(INTERACTION_COLUMNS)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    mark = "?" if database.is_sqlite else "%s"
    conditions, params = [], []
    if since is not None:
        conditions.append(f"at >= {mark}")
        params.append(time_param(since, database.is_sqlite))
    if through is not None:
        conditions.append(f"id <= {mark}")
        params.append(through)
    query = f"SELECT {', '.join(columns)} FROM rec_interactions"
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    with database.read() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(query, tuple(params))
            rows = cursor.fetchall()
        finally:
            cursor.close()
    return pd.DataFrame(rows, columns=list(columns))


@dataclass(frozen=True)
class Fitted:
    model: Model
    popularity: Popularity
    seconds: float


def fit_model(name: str, interactions: Interactions) -> Fitted:
    """Fit `name` and the popularity model every version carries for cold starts and fallbacks."""
    began = time.perf_counter()
    model = MODELS[name]()
    fit(model, interactions.histories)
    popularity = model if isinstance(model, Popularity) else Popularity()
    if popularity is not model:
        popularity.fit(interactions.matrix)
    return Fitted(model, popularity, time.perf_counter() - began)


POPULARITY_HALF_LIFE = timedelta(days=30)


def shopper_decay(frame: pd.DataFrame, interactions: Interactions, now: datetime) -> sparse.csr_matrix:
    """Users × items: 1 for a shopper's interaction with an item now, halving every POPULARITY_HALF_LIFE
    since their latest one, so popularity counts what is popular now, not two seasons ago."""
    shape = interactions.matrix.shape
    if frame.empty:
        return sparse.csr_matrix(shape, dtype=np.float32)
    latest = (
        frame.assign(at=pd.to_datetime(frame["at"], utc=True)).groupby(["profile_id", "item_id"])["at"].max()
    )
    age = (pd.Timestamp(now) - latest).dt.total_seconds().clip(lower=0).to_numpy()
    decay = np.power(0.5, age / POPULARITY_HALF_LIFE.total_seconds()).astype(np.float32)
    rows = pd.Index(interactions.users).get_indexer(latest.index.get_level_values("profile_id"))
    columns = pd.Index(interactions.items).get_indexer(latest.index.get_level_values("item_id"))
    return sparse.csr_matrix((decay, (rows, columns)), shape=shape, dtype=np.float32)


def segment_popularity(
    database: Database, interactions: Interactions, decay: sparse.csr_matrix, minimum: int = 20
) -> dict[str, np.ndarray]:
    """Decayed popularity among each segment's current members, for segments with at least `minimum`
    members who interacted (fewer say more about those few than about the segment)."""
    with database.read() as connection:
        rows = connection.execute(
            text("SELECT segment, profile_id FROM segment_memberships WHERE exited_at IS NULL")
        ).all()
    if not rows:
        return {}
    members = pd.DataFrame(rows, columns=["segment", "profile_id"])
    members["row"] = pd.Index(interactions.users).get_indexer(members["profile_id"])
    members = members[members["row"] >= 0]
    result = {}
    for segment, group in members.groupby("segment"):
        if len(group) >= minimum:
            result[str(segment)] = np.asarray(decay[group["row"].to_numpy()].sum(axis=0)).ravel()
    return result


def train_version(
    database: Database, store: ModelStore, config: RecommenderConfig, catalog: Catalog, now: datetime
) -> ModelVersion:
    """Fit the configured model (`auto`: the one its validation chooses) on the interactions of the last
    `training.history`, with the catalog's products in the item index, and save it as the new current
    version."""
    with database.read() as connection:
        through = connection.execute(text("SELECT coalesce(max(id), 0) FROM rec_interactions")).scalar_one()
    frame = load_interactions(database, since=now - config.training.history, through=through)
    interactions = Interactions.from_frame(frame, items=list(catalog.ids))
    fitted = fit_model(config.training.model, interactions)
    if config.training.fixed_half_life != "auto":
        fitted.model.half_life = config.training.fixed_half_life
    decay = shopper_decay(frame, interactions, now)
    fitted.popularity.counts = np.asarray(decay.sum(axis=0), dtype=np.float32).ravel()
    remembered = time.perf_counter()
    histories = interactions.latest(config.serving.history).weighted(fitted.model.half_life)
    if isinstance(fitted.model, Remembers):  # what scoring the serving rows costs, kept for campaigns
        fitted.model.remember(histories)
    remember_seconds = time.perf_counter() - remembered
    neighbours = fitted.model if isinstance(fitted.model, ItemKnn) else ItemKnn()
    if neighbours is not fitted.model:
        neighbours.fit(interactions.matrix)
    manifest = {
        "trained_at": now.isoformat(),
        "through_id": int(through),
        "users": int(interactions.matrix.shape[0]),
        "items": int(interactions.matrix.shape[1]),
        "interactions": len(frame),
        "by_channel": {str(k): int(v) for k, v in frame["channel"].value_counts().items()},
        "fit_seconds": round(fitted.seconds, 3),
        "half_life": fitted.model.half_life,
        "remember_seconds": round(remember_seconds, 3),
    }
    if isinstance(fitted.model, Auto):
        manifest["choice"] = fitted.model.choice
    trained = Trained(
        model=fitted.model,
        popularity=fitted.popularity,
        items=interactions.items,
        neighbours=neighbours.similarity,
        users=interactions.users,
        histories=histories,
        segment_popularity=segment_popularity(database, interactions, decay),
    )
    return store.save(trained, manifest)
