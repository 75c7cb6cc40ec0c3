"""Histories in order: each shopper's items with their summed weights and their recency, weighted by a
half-life as models ask."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

from engage.recommend.models.recency import Histories


def test_recency_counts_the_other_items_touched_since_the_latest_interaction() -> None:
    # user 0: a b a c (oldest first); user 1: b, interleaved with user 0's
    rows = np.array([0, 1, 0, 0, 0])
    items = np.array([0, 1, 1, 0, 2])
    histories = Histories.in_order(rows, items, np.array([1.0, 2.0, 1.0, 3.0, 1.0]), (3, 4))
    assert histories.matrix.toarray().tolist() == [[4, 1, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0]]
    recency = sparse.csr_matrix(
        (histories.recency + 1, histories.matrix.indices, histories.matrix.indptr), shape=(3, 4)
    )
    assert (recency.toarray() - 1).tolist() == [[1, 2, 0, -1], [-1, 0, -1, -1], [-1, -1, -1, -1]]


def test_a_shoppers_history_newest_first_is_the_same() -> None:
    newest_first = Histories.latest_first([2, 0, 1, 0], np.array([1.0, 3.0, 1.0, 1.0]), 4)
    in_order = Histories.in_order(
        np.zeros(4, int), np.array([0, 1, 0, 2]), np.array([1.0, 1.0, 3.0, 1.0]), (1, 4)
    )
    assert (newest_first.matrix != in_order.matrix).nnz == 0
    assert newest_first.recency.tolist() == in_order.recency.tolist() == [1, 2, 0]


def test_weights_halve_with_each_half_life_and_never_vanish() -> None:
    items = np.arange(300)
    histories = Histories.in_order(np.zeros(300, int), items, np.full(300, 2.0), (1, 300))
    assert histories.weighted(None) is histories.matrix
    weights = histories.weighted(10.0).toarray()[0]
    assert weights[299] == 2.0 and weights[289] == 1.0 and weights[279] == 0.5
    assert (histories.weighted(1.0).data > 0).all(), "an item 299 items ago is still in the history"


def test_rows_are_taken_with_their_recency() -> None:
    histories = Histories.in_order(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), np.ones(4), (3, 3))
    taken = histories.take(np.array([2, 1]))
    assert taken.matrix.toarray().tolist() == [[0, 0, 1], [1, 1, 0]]
    assert taken.recency.tolist() == [0, 1, 0]


@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from([1.0, 2.0, 5.0])), min_size=0, max_size=40))
def test_one_shoppers_history_read_newest_first_is_their_history_in_order(
    events: list[tuple[int, float]],
) -> None:
    items = np.array([item for item, _ in events], dtype=np.int64)
    weights = np.array([weight for _, weight in events])
    newest_first = Histories.latest_first(items[::-1], weights[::-1], 10)
    in_order = Histories.in_order(np.zeros(len(items), dtype=np.int64), items, weights, (1, 10))
    assert (newest_first.matrix != in_order.matrix).nnz == 0
    assert newest_first.recency.tolist() == in_order.recency.tolist()
