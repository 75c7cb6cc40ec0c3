"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a closed-form item-item
linear model, B = I - P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹ and a zero diagonal. Often the most accurate
model on small and mid-sized catalogs; it costs an items × items inverse, so it is offered only up to
`MAX_ITEMS` (about 10,000 items fit in a minute and 400 MB on two cores)."""

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse

__all__ = ["Ease", "MAX_ITEMS"]

MAX_ITEMS = 15_000


class Ease:
    name = "ease"
    half_life: float | None = None

    def __init__(self, regularization: float = 500.0):
        self.regularization = regularization
        self.weights = np.zeros((0, 0), dtype=np.float32)

    def fit(self, interactions: sparse.csr_matrix) -> None:
        items = interactions.shape[1]
        if items > MAX_ITEMS:
            raise ValueError(f"EASE needs an items x items inverse: {items:,} items is over {MAX_ITEMS:,}")
        seen = (interactions > 0).astype(np.float64)
        gram = (seen.T @ seen).toarray()
        gram[np.diag_indices(items)] += self.regularization
        inverse = linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = -inverse / np.diag(inverse)
        weights[np.diag_indices(items)] = 0.0
        # C order: scipy copies a Fortran-ordered matrix at every sparse @ dense product.
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        """Each history's items' rows of weights, summed by the history's weights (a purchase says more
        than a view, a recent view more than an old one); fitted on presence alone."""
        return np.asarray(histories.tocsr().astype(np.float32, copy=False) @ self.weights)
