"""Item-kNN: items scored by their cosine similarity to the items of a history, keeping each item's K
nearest neighbours (`implicit`'s CosineRecommender). The classic "customers who viewed this also viewed"."""

from __future__ import annotations

import warnings

import numpy as np
from implicit.nearest_neighbours import CosineRecommender
from implicit.utils import ParameterWarning
from scipy import sparse

__all__ = ["ItemKnn"]


class ItemKnn:
    name = "itemknn"
    half_life: float | None = None

    def __init__(self, neighbours: int = 100):
        self.neighbours = neighbours
        self.similarity = sparse.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, interactions: sparse.csr_matrix) -> None:
        model = CosineRecommender(K=self.neighbours)
        with warnings.catch_warnings():
            # implicit hands itself a COO matrix inside all_pairs_knn and warns about it; nothing to act on.
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(interactions.astype(np.float32).tocsr(), show_progress=False)
        self.similarity = model.similarity.astype(np.float32).tocsr()

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        return np.asarray((histories.astype(np.float32) @ self.similarity).toarray())
