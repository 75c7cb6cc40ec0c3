"""Implicit-feedback matrix factorisation (Hu, Koren and Volinsky 2008) fitted by `implicit`'s
alternating least squares. A history is folded in by solving its user's least-squares step against the
fitted item factors, exactly as a training iteration would: a user's latest interactions count at once,
without a retrain."""

from __future__ import annotations

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy import sparse

__all__ = ["Als"]


class Als:
    name = "als"
    half_life: float | None = None

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 0,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.item_factors = np.zeros((0, factors), dtype=np.float32)
        self.remembered = np.zeros((0, factors), dtype=np.float32)
        """Each training row's folded-in factors (`remember`): empty until asked for."""
        self._gram = np.zeros((factors, factors), dtype=np.float64)

    def fit(self, interactions: sparse.csr_matrix) -> None:
        model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.seed,
        )
        model.fit(interactions.astype(np.float32).tocsr(), show_progress=False)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        items = self.item_factors.astype(np.float64)
        self._gram = items.T @ items + self.regularization * np.eye(items.shape[1])

    def user_factors(self, histories: sparse.csr_matrix) -> np.ndarray:
        """Each history's user factors: argmin Σ c(p - xᵀy)² + λ|x|², with confidence c = α·weight on the
        history's items (p = 1) and 1 elsewhere (p = 0), as implicit's own least-squares step."""
        histories = histories.tocsr()
        factors = self.item_factors.shape[1]
        rows = np.flatnonzero(np.diff(histories.indptr))
        matrices = np.empty((len(rows), factors, factors))
        targets = np.empty((len(rows), factors))
        for slot, row in enumerate(rows):
            start, end = histories.indptr[row], histories.indptr[row + 1]
            items = self.item_factors[histories.indices[start:end]].astype(np.float64)
            confidence = self.alpha * histories.data[start:end].astype(np.float64)
            matrices[slot] = self._gram + (items.T * (confidence - 1.0)) @ items
            targets[slot] = items.T @ confidence
        result = np.zeros((histories.shape[0], factors), dtype=np.float32)
        if len(rows):  # solved together: one call for the batch costs less than one per history
            result[rows] = np.linalg.solve(matrices, targets[:, :, None])[:, :, 0]
        return result

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        return self.user_factors(histories) @ self.item_factors.T

    def remember(self, interactions: sparse.csr_matrix) -> None:
        self.remembered = np.concatenate(
            [self.user_factors(interactions[start : start + 10_000])
             for start in range(0, interactions.shape[0], 10_000)] or [np.zeros((0, self.factors))]
        ).astype(np.float32)  # fmt: skip

    def score_known(self, histories: sparse.csr_matrix, known: np.ndarray) -> np.ndarray:
        histories = histories.tocsr()
        users = np.zeros((histories.shape[0], self.item_factors.shape[1]), dtype=np.float32)
        hit = known >= 0
        users[hit] = self.remembered[known[hit]]
        missed = np.flatnonzero(~hit)
        if len(missed):
            users[missed] = self.user_factors(histories[missed])
        return users @ self.item_factors.T
