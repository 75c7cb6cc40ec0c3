"""Ranking metrics under binary relevance, named as Amazon Personalize names them, computed with numpy on
whole batches of users.

A user's ranking is the top 25 items of their scores (`top_items`: argpartition, then a sort of those 25
only), equal scores ranked by item index. An item is relevant when it is in the user's test set, of size R.
For each user:

- precision@k: relevant items in the top k / k (k, not min(R, k), as Personalize divides);
- NDCG@k: Σ 1/log2(rank + 1) over the relevant items in the top k / the same sum over ranks 1..min(R, k);
- MRR@25: 1 / the rank of the first relevant item in the top 25, 0 without one;
- HR@10: 1 when any of the top 10 is relevant;
- Recall@20: relevant items in the top 20 / R;

each averaged over the users. Coverage belongs to no single user: the share of the dataset's items found in
at least one user's top 25.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["METRICS", "LABELS", "DEPTH", "top_items", "RunningMetrics", "ranking_metrics"]

DEPTH = 25
"""How deep rankings go: the deepest cut any metric reads."""

METRICS: tuple[str, ...] = (
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
    "hit_rate_at_10",
    "recall_at_20",
)
"""Every metric in report order; the first eight are Personalize's own names."""

LABELS: dict[str, str] = {
    "coverage": "coverage",
    "mean_reciprocal_rank_at_25": "MRR@25",
    "normalized_discounted_cumulative_gain_at_5": "NDCG@5",
    "normalized_discounted_cumulative_gain_at_10": "NDCG@10",
    "normalized_discounted_cumulative_gain_at_25": "NDCG@25",
    "precision_at_5": "P@5",
    "precision_at_10": "P@10",
    "precision_at_25": "P@25",
    "hit_rate_at_10": "HR@10",
    "recall_at_20": "Recall@20",
}
"""Each metric's short name, for table headers and charts."""

_DISCOUNTS = 1.0 / np.log2(np.arange(2, DEPTH + 2))
_IDEAL = np.concatenate([[0.0], np.cumsum(_DISCOUNTS)])  # _IDEAL[n]: the DCG of n relevant items on top


def top_items(scores: np.ndarray, depth: int = DEPTH) -> np.ndarray:
    """Each row's `depth` best items by score, best first (n × depth, int64); ties are ranked by item index.

    An item scored -inf or NaN is never ranked: where a row has fewer rankable items than `depth`, the rest
    of the row is -1."""
    missing = np.isnan(scores)
    if missing.any():
        scores = np.where(missing, -np.inf, scores)
    rows, items = scores.shape
    kept = min(depth, items)
    if kept < items:
        top = np.argpartition(scores, items - kept, axis=1)[:, items - kept :]
        _prefer_lower_indices(scores, top)
    else:
        top = np.broadcast_to(np.arange(items), (rows, items))
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=1)
    top = np.take_along_axis(top, order, axis=1).astype(np.int64)
    top[np.take_along_axis(top_scores, order, axis=1) == -np.inf] = -1
    return np.pad(top, ((0, 0), (0, depth - kept)), constant_values=-1)


def _prefer_lower_indices(scores: np.ndarray, top: np.ndarray) -> None:
    """Where items tie at the cut, argpartition keeps any of them; replace, in place, each such row's
    selection by the tied items of lowest index, so a ranking depends on the scores alone."""
    kept_scores = np.take_along_axis(scores, top, axis=1)
    cut = kept_scores.min(axis=1, keepdims=True)
    rows = np.flatnonzero((scores == cut).sum(axis=1) > (kept_scores == cut).sum(axis=1))
    if rows.size == 0:
        return
    scores, cut = scores[rows], cut[rows]
    above = scores > cut
    wanted = top.shape[1] - above.sum(axis=1, keepdims=True)
    at_cut = scores == cut
    chosen = above | (at_cut & (np.cumsum(at_cut, axis=1) <= wanted))
    top[rows] = np.nonzero(chosen)[1].reshape(rows.size, top.shape[1])


class RunningMetrics:
    """Every metric of `METRICS`, summed over batches of users so only one batch is ever in memory."""

    def __init__(self, items: int):
        self.items = items
        self.users = 0
        self._sums = dict.fromkeys(METRICS, 0.0)
        self._recommended = np.zeros(items + 1, dtype=bool)  # the last entry stands for -1, no item

    def add(self, top: np.ndarray, relevant: sparse.csr_matrix) -> None:
        """Add a batch of users: `top` from `top_items` (n × 25), `relevant` their test sets (n × items,
        nonzero where relevant), at least one item each."""
        if top.shape[1] != DEPTH:
            raise ValueError(f"rankings must be {DEPTH} items deep, not {top.shape[1]}")
        relevant = sparse.csr_matrix(relevant != 0)
        sizes = np.diff(relevant.indptr)
        if (sizes == 0).any():
            raise ValueError("every user needs at least one relevant item")
        dense = np.zeros((len(top), self.items + 1), dtype=bool)
        dense[np.repeat(np.arange(len(top)), sizes), relevant.indices] = True
        hits = np.take_along_axis(dense, top, axis=1)
        gains = np.cumsum(hits * _DISCOUNTS, axis=1)
        found = np.cumsum(hits, axis=1)

        sums = self._sums
        for k in (5, 10, 25):
            ideal = _IDEAL[np.minimum(sizes, k)]
            sums[f"normalized_discounted_cumulative_gain_at_{k}"] += float((gains[:, k - 1] / ideal).sum())
            sums[f"precision_at_{k}"] += float(found[:, k - 1].sum() / k)
        first = np.argmax(hits, axis=1)
        sums["mean_reciprocal_rank_at_25"] += float((hits.any(axis=1) / (first + 1)).sum())
        sums["hit_rate_at_10"] += float((found[:, 9] > 0).sum())
        sums["recall_at_20"] += float((found[:, 19] / sizes).sum())
        self._recommended[top] = True
        self.users += len(top)

    def result(self) -> dict[str, float]:
        """Every metric of `METRICS` over the users added so far (all 0.0 before any)."""
        result = {name: total / self.users if self.users else 0.0 for name, total in self._sums.items()}
        result["coverage"] = float(self._recommended[: self.items].mean()) if self.items else 0.0
        return result


def ranking_metrics(scores: np.ndarray, relevant: sparse.csr_matrix) -> dict[str, float]:
    """Every metric of `METRICS` for the users of one batch: their `scores` (n × items, -inf for an item
    never to rank) against their test sets `relevant` (n × items, nonzero where relevant)."""
    metrics = RunningMetrics(scores.shape[1])
    metrics.add(top_items(scores), relevant)
    return metrics.result()
