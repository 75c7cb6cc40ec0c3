"""The interactions every evaluation dataset is: a pandas DataFrame with one row per interaction, and the
sparse matrices models are fitted on and score from."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from engage.errors import EngageError

__all__ = ["COLUMNS", "check_interactions", "interaction_matrix"]

COLUMNS = ("user", "item", "weight", "timestamp")
"""user and item: ids of any sortable kind; weight: float; timestamp: int (seconds, or any increasing
count). A user's repeated interactions with an item are separate rows."""


def check_interactions(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with exactly `COLUMNS`, weight as float64 and timestamp as int64, after checking it has
    them, is not empty and holds no missing value; an EngageError names what is wrong."""
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise EngageError(
            f"interactions lack the column(s) {', '.join(missing)}: expected {', '.join(COLUMNS)}"
        )
    if frame.empty:
        raise EngageError("interactions are empty: there is nothing to evaluate")
    frame = frame[list(COLUMNS)]
    empty = [column for column in COLUMNS if frame[column].isna().any()]
    if empty:
        raise EngageError(f"interactions have missing values in {', '.join(empty)}")
    try:
        return frame.astype({"weight": np.float64, "timestamp": np.int64})
    except (TypeError, ValueError) as exc:
        raise EngageError(f"interactions need a numeric weight and an integer timestamp: {exc}") from exc


def interaction_matrix(frame: pd.DataFrame, users: pd.Index, items: pd.Index) -> sparse.csr_matrix:
    """users × items float32 weights of `frame`'s interactions (repeats summed), one row per entry of
    `users` and one column per entry of `items`, both of which hold every id `frame` uses."""
    rows = users.get_indexer(frame["user"])
    columns = items.get_indexer(frame["item"])
    if (rows < 0).any() or (columns < 0).any():
        raise ValueError("interactions name a user or an item outside the matrix")
    weights = frame["weight"].to_numpy(dtype=np.float32)
    # Built from coordinates, repeated (user, item) pairs are summed.
    return sparse.csr_matrix((weights, (rows, columns)), shape=(len(users), len(items)), dtype=np.float32)
