"""A shopper's latest interactions as a request reads them: item positions of one model version, newest
first, with their weights and events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from engage.recommend.models.recency import Histories

__all__ = ["History", "PURCHASE_EVENTS"]

PURCHASE_EVENTS = frozenset({"OrderCompleted"})


@dataclass(frozen=True)
class History:
    items: np.ndarray
    """Model positions, latest first (an item once per interaction)."""
    weights: np.ndarray
    events: list[str]

    @classmethod
    def empty(cls) -> History:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0), [])

    @classmethod
    def weighted(cls, items: np.ndarray, weights: np.ndarray) -> History:
        """A history known only by its summed weights (the training data's): the heaviest first."""
        order = np.argsort(-weights, kind="stable")
        return cls(items[order].astype(np.int64), weights[order].astype(np.float64), ["history"] * len(items))

    def latest_events(self) -> dict[int, str]:
        """Each item's latest event (the history is newest first)."""
        events: dict[int, str] = {}
        for item, event in zip(self.items.tolist(), self.events, strict=True):
            events.setdefault(item, event)
        return events

    def row(self, size: int, half_life: float | None) -> sparse.csr_matrix:
        """The history as one row of item weights, an item's interactions summed (as in training) and
        decayed by their recency over `half_life` (`engage.recommend.models.recency`)."""
        return Histories.latest_first(self.items, self.weights, size).weighted(half_life)
