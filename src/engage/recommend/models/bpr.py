"""Bayesian Personalized Ranking (Rendle et al. 2009) fitted by `implicit`. BPR learns no step to fold a
new history in, so a history's user vector is the mean of its items' factors (weighted by the history),
the usual approximation; the item bias column `implicit` adds is kept."""

from __future__ import annotations

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking
from scipy import sparse

__all__ = ["Bpr"]


class Bpr:
    name = "bpr"
    half_life: float | None = None

    def __init__(
        self,
        factors: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 0,
    ):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed
        self.item_factors = np.zeros((0, factors + 1), dtype=np.float32)

    def fit(self, interactions: sparse.csr_matrix) -> None:
        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.seed,
        )
        model.fit(interactions.astype(np.float32).tocsr(), show_progress=False)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        histories = histories.tocsr().astype(np.float32)
        totals = np.asarray(histories.sum(axis=1), dtype=np.float32)
        users = np.asarray(histories @ self.item_factors) / np.maximum(totals, 1e-9)
        users[:, -1] = 1.0  # the item bias column: every user takes the bias as it is
        return users @ self.item_factors.T
