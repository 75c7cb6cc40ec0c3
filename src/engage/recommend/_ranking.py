"""Scores to answers: the best allowed items of one row, whole batches ranked, promoted slots, and the
small arithmetic of blending scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from engage.recommend.evaluation.metrics import top_items
from engage.recommend.models import Model
from engage.recommend.models.base import Remembers

__all__ = ["rank_rows", "select_rows", "share", "unit", "top_allowed", "with_promotions"]


def rank_rows(
    model: Model,
    histories: sparse.csr_matrix,
    known: np.ndarray,
    allowed: np.ndarray,
    n: int,
    excluded: sparse.csr_matrix | None,
    purchases: list[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of `histories` (-inf where not allowed) and each row's n best positions, best first (-1 where
    fewer are allowed)."""
    if isinstance(model, Remembers):
        scores = np.asarray(model.score_known(histories, known), dtype=np.float32)
    else:
        scores = np.array(model.score(histories), dtype=np.float32)
    if not allowed.all():  # a column mask costs a pass over the scores even when it selects nothing
        scores[:, ~allowed] = -np.inf
    if excluded is not None:  # by the entries: a long-ago item's weight may have decayed to almost 0
        scores[np.repeat(np.arange(excluded.shape[0]), np.diff(excluded.indptr)), excluded.indices] = -np.inf
    for row, item in purchases:
        scores[row, item] = -np.inf
    return scores, top_items(scores, n)


def select_rows(matrix: sparse.csr_matrix, rows: Sequence[int]) -> sparse.csr_matrix:
    """`matrix`'s `rows` in that order, an empty row for -1."""
    picked = np.asarray(rows, dtype=np.int64)
    present = np.flatnonzero(picked >= 0)
    selector = sparse.csr_matrix(
        (np.ones(len(present), dtype=np.float32), (present, picked[present])),
        shape=(len(picked), matrix.shape[0]),
    )
    return selector @ matrix


def share(counts: np.ndarray) -> np.ndarray:
    total = float(counts.sum())
    return counts / total if total > 0 else counts


def unit(scores: np.ndarray) -> np.ndarray:
    spread = float(scores.max() - scores.min()) if scores.size else 0.0
    return (scores - scores.min()) / spread if spread > 0 else np.zeros_like(scores)


def top_allowed(scores: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n best allowed scores, best first (ties by position, so answers are stable)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = top_items(np.where(allowed, scores, -np.inf)[None, :], n)[0]
    return top[top >= 0]


def with_promotions(top: np.ndarray, promoted: np.ndarray, n: int) -> np.ndarray:
    """`promoted` placed at evenly spaced slots among the first n of `top` (without repeating an item)."""
    promoted = promoted[:n]
    if not len(promoted):
        return top
    rest = [position for position in top if position not in set(promoted.tolist())]
    slots = {round(i * n / len(promoted)) for i in range(len(promoted))}
    result: list[int] = []
    promoted_iter, rest_iter = iter(promoted.tolist()), iter(rest)
    for slot in range(n):
        source = promoted_iter if slot in slots else rest_iter
        chosen = next(source, None)
        if chosen is None:
            chosen = next(rest_iter if source is promoted_iter else promoted_iter, None)
        if chosen is None:
            break
        result.append(chosen)
    return np.array(result, dtype=np.int64)
