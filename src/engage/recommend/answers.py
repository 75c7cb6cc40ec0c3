"""What the recommender answers with: the filters a caller sets, the items, and the answer as a whole
(its use case, model version and the recommendation id its exposure and later clicks carry)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["NoModelError", "Filters", "RecommendedItem", "Recommendations"]


class NoModelError(LookupError):
    """No model version has been trained yet (`engage recs train`)."""


@dataclass(frozen=True)
class Filters:
    exclude_purchased: bool = False
    exclude_viewed: bool = False
    """Exclude every item in the shopper's history (viewed, added, bought, clicked)."""
    in_stock: bool = False
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    promoted: int = 0
    """Slots (of the n) filled from the catalog's promoted products, best-scored first, as Personalize's
    promotions: placed at evenly spaced positions."""


class RecommendedItem(NamedTuple):  # a campaign builds millions: a tuple costs a fraction of a dataclass
    item_id: str
    score: float | None
    """None for an item the model does not know (`rank` returns them last, unscored)."""
    reason: str


_ids = random.Random(os.urandom(32))


def _new_id() -> str:
    """32 random hex digits (a campaign needs thousands a second: not a system call each)."""
    return f"{_ids.getrandbits(128):032x}"


@dataclass(frozen=True)
class Recommendations:
    use_case: str
    items: list[RecommendedItem]
    model_version: str | None
    profile_id: str | None = None
    recommendation_id: str = field(default_factory=_new_id)

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]
