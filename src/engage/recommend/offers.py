"""`offers.yml`: the shop's offers, for the `offer` use case (personalized offers as Azure's solution and the
Retail Demo Store make them: a model's score for the offer's products × the business's preference, above a
threshold; rule-based fallbacks for a user the model knows nothing about).

    offers:
      - id: trail-15
        description: 15% off tents, packs and trail gear
        coupon: TRAIL15
        discount: {percent: 15}        # or {amount: 10}, in the shop's currency
        scope: {category: outdoors}    # or `all`, or {products: [outdoors-0001, outdoors-0007]}
        preference: 0.8                # the business's weight, in (0, 1]; 1 when left out
        starts: 2026-03-01             # optional; a date alone starts at 00:00 UTC
        ends: 2026-03-31               # optional; a date alone lasts through that day
      - id: welcome-10
        description: 10% off anything
        coupon: WELCOME10
        discount: {percent: 10}
        scope: all
        fallback: true                 # offered by rule when the model has nothing to go on
        priority: 1                    # among the fallbacks that apply, the lowest number is offered

At least one fallback must apply to everyone at any time (scope `all`, no `starts` or `ends`), so that
every user can be shown an offer. Ids, coupons (ignoring case, as checkouts do) and fallback priorities are
unique. When the workspace has a catalog, a scope must name its categories and products.

`load_offers` raises one `ConfigError` listing every problem as `offers.yml:LINE: key.path: …`;
`engage check` runs the same checks through `check_offers_file`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engage.errors import ConfigError, Problem
from engage.recommend.catalog import Catalog, Product, checked_catalog, load_catalog, parse_timestamp
from engage.workspace.check import CheckContext, yaml_validator
from engage.workspace.yaml import YamlFile, load_yaml, validation_problems

__all__ = [
    "OFFERS_FILE",
    "Discount",
    "Scope",
    "Offer",
    "load_offers",
    "parse_offers",
    "check_offers_file",
]

OFFERS_FILE = "offers.yml"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_COUPON = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_SCOPE_FORMS = "write `all`, `{category: NAME}` or `{products: [ID, ...]}`"


@dataclass(frozen=True)
class Scope:
    """The products an offer's discount applies to."""

    kind: Literal["all", "category", "products"]
    category: str | None = None
    products: tuple[str, ...] = ()

    def covers(self, product: Product) -> bool:
        if self.kind == "category":
            return product.category == self.category
        if self.kind == "products":
            return product.id in self.products
        return True

    def mask(self, catalog: Catalog) -> npt.NDArray[np.bool_]:
        """Over `catalog`'s products: True where the offer applies (ids the catalog lacks are left out)."""
        if self.kind == "all":
            return np.ones(len(catalog), dtype=np.bool_)
        if self.kind == "category":
            return catalog.in_categories([self.category or ""])
        mask = np.zeros(len(catalog), dtype=np.bool_)
        positions = catalog.positions(self.products)
        mask[positions[positions >= 0]] = True
        return mask

    def __str__(self) -> str:
        if self.kind == "category":
            return f"category {self.category}"
        if self.kind == "products":
            return f"{len(self.products)} product{'' if len(self.products) == 1 else 's'}"
        return "all products"


def _scope(value: Any) -> Scope:
    """`all`, `{category: NAME}` or `{products: [ID, ...]}` as a Scope; ValueError naming what is wrong."""
    if isinstance(value, Scope):
        return value
    if value == "all":
        return Scope("all")
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"expected one of three forms: {_SCOPE_FORMS}")
    key, target = next(iter(value.items()))
    if key == "category":
        if not isinstance(target, str) or not target.strip():
            raise ValueError("category: expected a category name")
        return Scope("category", category=target.strip())
    if key == "products":
        if not isinstance(target, list) or not target:
            raise ValueError("products: expected a list of product ids, e.g. [outdoors-0001, outdoors-0002]")
        if not all(isinstance(item, str) and item.strip() for item in target):
            raise ValueError("products: every item must be a product id")
        ids = tuple(item.strip() for item in target)
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if repeated:
            raise ValueError(f"products: listed twice: {', '.join(repeated)}")
        return Scope("products", products=ids)
    raise ValueError(f"unknown key '{key}': {_SCOPE_FORMS}")


class Discount(BaseModel):
    """A percentage off, or an amount off in the shop's currency: exactly one of the two."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    percent: float | None = Field(default=None, gt=0, le=100)
    amount: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Discount:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("write either `percent: 15` or `amount: 10`")
        return self

    def apply(self, price: float) -> float:
        """`price` after the discount, rounded to cents, never below zero."""
        if self.percent is not None:
            return round(price * (1 - self.percent / 100), 2)
        return round(max(0.0, price - (self.amount or 0.0)), 2)

    def __str__(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}% off"
        return f"{self.amount:.2f} off"


def _moment(value: Any, info: ValidationInfo) -> Any:
    """A date or an ISO 8601 text as an aware UTC datetime; a date alone is the start of that day for
    `starts` and the end of that day for `ends`."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value.strip()) == 10 else parse_timestamp(value)
        except ValueError:
            raise ValueError(
                f"'{value}' is not a date or time, e.g. 2026-03-01 or 2026-03-01T09:00:00Z"
            ) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        day = value + timedelta(days=1) if info.field_name == "ends" else value
        return datetime.combine(day, time(), tzinfo=UTC)
    return value


class Offer(BaseModel):
    """One offer of `offers.yml`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True)

    id: str
    description: str = Field(min_length=1)
    coupon: str
    """The code a shopper enters at checkout; an `OrderCompleted` carrying it redeems the offer."""
    discount: Discount
    scope: Annotated[Scope, BeforeValidator(_scope)]
    preference: float = Field(default=1.0, gt=0, le=1)
    """The business's weight: an offer's model score is multiplied by it."""
    starts: Annotated[datetime | None, BeforeValidator(_moment)] = None
    ends: Annotated[datetime | None, BeforeValidator(_moment)] = None
    """Exclusive: the offer is over at this moment."""
    fallback: bool = False
    """Offered by rule (lowest `priority` first) to users the model cannot score."""
    priority: int | None = Field(default=None, ge=1, validate_default=True)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(f"'{value}' is not an id: use letters, digits, '-', '_' and '.'")
        return value

    @field_validator("coupon")
    @classmethod
    def _coupon(cls, value: str) -> str:
        if not _COUPON.fullmatch(value):
            raise ValueError(f"'{value}' is not a coupon code: use letters, digits, '-' and '_'")
        return value

    @field_validator("ends")
    @classmethod
    def _after_starts(cls, ends: datetime | None, info: ValidationInfo) -> datetime | None:
        starts = info.data.get("starts")
        if ends is not None and starts is not None and ends <= starts:
            raise ValueError("must be after starts")
        return ends

    @field_validator("priority")
    @classmethod
    def _priority_of_fallbacks(cls, priority: int | None, info: ValidationInfo) -> int | None:
        if "fallback" not in info.data:
            return priority  # fallback itself is invalid, and reported
        if info.data["fallback"] and priority is None:
            raise ValueError("required with `fallback: true` (the lowest number is offered first)")
        if not info.data["fallback"] and priority is not None:
            raise ValueError("only a fallback has a priority: add `fallback: true` or remove it")
        return priority

    @property
    def applies_to_everyone(self) -> bool:
        """Scope `all` and no validity window."""
        return self.scope.kind == "all" and self.starts is None and self.ends is None

    def is_active(self, now: datetime) -> bool:
        """Whether `now` (aware) is inside the offer's window."""
        return (self.starts is None or self.starts <= now) and (self.ends is None or now < self.ends)


def load_offers(workspace_root: Path, catalog: Catalog | None = None) -> list[Offer]:
    """The offers of the workspace at `workspace_root`, in the file's order; none without `offers.yml`.

    Scopes are checked against `catalog` (default: the workspace's, loaded). Raises ConfigError with every
    problem of the file (and of the catalog, when it has to be loaded and is invalid)."""
    path = workspace_root / OFFERS_FILE
    if not path.exists():
        return []
    doc, problems = load_yaml(path, OFFERS_FILE)
    if doc is None:
        raise ConfigError(problems)
    offers, found = parse_offers(doc, load_catalog(workspace_root) if catalog is None else catalog)
    if problems or found:
        raise ConfigError(problems + found)
    return offers


def parse_offers(doc: YamlFile, catalog: Catalog | None) -> tuple[list[Offer], list[Problem]]:
    """The valid offers of a parsed `offers.yml`, and every problem of the file. Scopes are checked against
    `catalog` unless it is None or empty (a workspace without a catalog)."""
    if not isinstance(doc.data, dict) or "offers" not in doc.data:
        return [], [doc.problem((), "expected a mapping with a list of `offers:`")]
    problems = [
        Problem(doc.file, doc.line_of((key,)), f"unknown key '{key}'; known keys: offers")
        for key in doc.data
        if key != "offers"
    ]
    items = doc.data["offers"]
    if not isinstance(items, list) or not items:
        return [], [*problems, doc.problem(("offers",), "expected a list of offers")]
    offers: list[tuple[int, Offer]] = []
    scopes: list[tuple[int, Scope]] = []
    for i, item in enumerate(items):
        try:
            offers.append((i, Offer.model_validate(item)))
            scopes.append((i, offers[-1][1].scope))
        except ValidationError as exc:
            problems += validation_problems(exc, doc, model=Offer, prefix=("offers", i))
            scope = _valid_scope(item)
            if scope is not None:  # an offer's other mistakes do not hide the catalog's verdict on its scope
                scopes.append((i, scope))
    problems += _set_problems(doc, offers)
    if catalog is not None and len(catalog):
        for i, scope in scopes:
            problems += _scope_problems(doc, i, scope, catalog)
    if len(offers) == len(items) and not any(o.fallback and o.applies_to_everyone for _, o in offers):
        message = "no fallback applies to everyone: add one with `fallback: true`, `scope: all` and no window"
        problems.append(doc.problem(("offers",), message))
    return [offer for _, offer in offers], problems


# ------------------------------------------------------------------------------------------ engage check


@yaml_validator
def check_offers_file(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    """`offers.yml`, its scopes checked against the workspace's catalog when that is valid."""
    return parse_offers(doc, checked_catalog(ctx))[1]


# -------------------------------------------------------------------------------------------- internals


def _set_problems(doc: YamlFile, offers: list[tuple[int, Offer]]) -> list[Problem]:
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    coupons: dict[str, tuple[int, Offer]] = {}
    priorities: dict[int, tuple[int, Offer]] = {}
    for i, offer in offers:
        line = doc.line_of(("offers", i))
        if offer.id in ids:
            message = f"'{offer.id}' is already the id of the offer on line {ids[offer.id]}"
            problems.append(doc.problem(("offers", i, "id"), message))
        ids.setdefault(offer.id, line)
        first = coupons.setdefault(offer.coupon.upper(), (line, offer))
        if first[1] is not offer:
            message = f"'{offer.coupon}' is already the coupon of offer '{first[1].id}' (line {first[0]})"
            problems.append(doc.problem(("offers", i, "coupon"), message))
        if offer.priority is not None:
            first = priorities.setdefault(offer.priority, (line, offer))
            if first[1] is not offer:
                message = (
                    f"{offer.priority} is already the priority of fallback '{first[1].id}' (line {first[0]})"
                )
                problems.append(doc.problem(("offers", i, "priority"), message))
    return problems


def _valid_scope(item: Any) -> Scope | None:
    try:
        return _scope(item["scope"]) if isinstance(item, dict) and "scope" in item else None
    except ValueError:
        return None


def _scope_problems(doc: YamlFile, i: int, scope: Scope, catalog: Catalog) -> list[Problem]:
    if scope.kind == "category" and scope.category not in catalog.category_index:
        known = ", ".join(catalog.categories)
        message = f"unknown category '{scope.category}'; the catalog's categories: {known}"
        return [doc.problem(("offers", i, "scope", "category"), message)]
    return [
        doc.problem(("offers", i, "scope", "products", n), f"no product '{product}' in the catalog")
        for n, product in enumerate(scope.products)
        if product not in catalog
    ]
