"""Popularity: how many distinct users interacted with each item. The cold-start answer and the baseline
every personalized model must beat (Personalize's Popularity-Count)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["Popularity"]


class Popularity:
    name = "popularity"
    half_life: float | None = None

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.float32)

    def fit(self, interactions: sparse.csr_matrix) -> None:
        self.counts = np.asarray((interactions > 0).sum(axis=0), dtype=np.float32).ravel()

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.counts, (histories.shape[0], self.counts.size)).copy()
