"""How an evaluation splits interactions into what models learn from, what they score from and what they
are tested on.

Two protocols, both by time:

- `personalize`, Amazon Personalize's: 10% of the users who can be split (rounded, at least one), drawn
  with the seed, are held out. A held-out user's newest 10% of interactions (rounded down, at least one)
  are their test and the older ones their input history; models are fitted on the other users'
  interactions only, so they meet the held-out users only through their histories, as they would a
  visitor who arrived after training.
- `leave-last-out`: each user's last interaction is their test; everything else is both the training data
  and the input history.

Interactions are ordered by timestamp, and those with the same timestamp by their order in the frame, so a
split depends on nothing but the frame and the seed. A user with a single interaction cannot be split: they
are counted in `Split.skipped_users` and their interaction stays in the training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import sparse

from engage.errors import EngageError
from engage.recommend.evaluation.interactions import check_interactions, interaction_matrix
from engage.recommend.models.recency import Histories

__all__ = ["ProtocolName", "PROTOCOLS", "HOLDOUT_SHARE", "TEST_SHARE", "Split", "split_interactions"]

ProtocolName = Literal["personalize", "leave-last-out"]
PROTOCOLS: tuple[str, ...] = get_args(ProtocolName)
HOLDOUT_SHARE = 0.1
"""Of the users who can be split, the share the `personalize` protocol holds out."""
TEST_SHARE = 0.1
"""Of a held-out user's interactions, the newest share that is their test under `personalize`."""


@dataclass(frozen=True)
class Split:
    """One split of a dataset. The three frames are rows of the dataset (with its index), disjoint."""

    protocol: str
    items: pd.Index
    """Every item of the dataset, ascending: the columns of every matrix, so a model ranks them all."""
    users: pd.Index
    """The test users, ascending: the rows of `history_matrix()` and `test_matrix()`."""
    train: pd.DataFrame
    """What models are fitted on."""
    history: pd.DataFrame
    """The test users' input histories, from which models score them."""
    test: pd.DataFrame
    """The test users' held-out interactions, which their rankings should find."""
    skipped_users: int
    """Users with too few interactions to split, left out of the test."""

    def train_matrix(self) -> sparse.csr_matrix:
        """Training users (ascending) × `items`."""
        return self.train_histories().matrix

    def train_histories(self) -> Histories:
        """`train_matrix()` with the recency of each entry, for the models that learn from the order."""
        return self._in_order(self.train, pd.Index(self.train["user"].unique()).sort_values())

    def history_matrix(self) -> sparse.csr_matrix:
        return interaction_matrix(self.history, self.users, self.items)

    def history_histories(self) -> Histories:
        """`history_matrix()` with the recency of each entry, to weigh as each model asks."""
        return self._in_order(self.history, self.users)

    def test_matrix(self) -> sparse.csr_matrix:
        return interaction_matrix(self.test, self.users, self.items)

    def _in_order(self, frame: pd.DataFrame, users: pd.Index) -> Histories:
        """`frame`'s interactions (in each user's time order, as the split keeps them) as histories."""
        rows, columns = users.get_indexer(frame["user"]), self.items.get_indexer(frame["item"])
        if (rows < 0).any() or (columns < 0).any():
            raise ValueError("interactions name a user or an item outside the matrix")
        weights = frame["weight"].to_numpy(dtype=np.float64)
        return Histories.in_order(rows, columns, weights, (len(users), len(self.items)))


def split_interactions(frame: pd.DataFrame, protocol: str, *, seed: int) -> Split:
    """Split the interactions `frame` (see `engage.recommend.evaluation.interactions`) by `protocol`; the
    seed draws the held-out users of `personalize` and is unused by `leave-last-out`."""
    if protocol not in PROTOCOLS:
        raise EngageError(f"unknown evaluation protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    frame = check_interactions(frame)
    user_codes, user_ids = pd.factorize(frame["user"], sort=True)
    order = np.lexsort((frame["timestamp"].to_numpy(), user_codes))  # stable: ties keep the frame's order
    ordered = frame.iloc[order]
    codes = user_codes[order]
    counts = np.bincount(codes, minlength=len(user_ids))
    sizes = counts[codes]
    position = np.arange(len(codes)) - (np.cumsum(counts) - counts)[codes]  # 0 for each user's oldest
    splittable = counts >= 2
    if not splittable.any():
        raise EngageError("no user has the two interactions a split needs: there is nothing to evaluate")

    if protocol == "personalize":
        candidates = np.flatnonzero(splittable)
        held_out = np.zeros(len(user_ids), dtype=bool)
        drawn = max(1, round(HOLDOUT_SHARE * len(candidates)))
        held_out[np.random.default_rng(seed).choice(candidates, size=drawn, replace=False)] = True
        tested = np.maximum(1, np.floor(TEST_SHARE * sizes).astype(np.int64))
        of_test_user = held_out[codes]
        in_test = of_test_user & (position >= sizes - tested)
        in_train = ~of_test_user
        if not in_train.any():
            raise EngageError("every user was held out for the test: the dataset is too small to evaluate")
    else:
        held_out = splittable
        of_test_user = held_out[codes]
        in_test = of_test_user & (position == sizes - 1)
        in_train = ~in_test
    return Split(
        protocol=protocol,
        items=pd.Index(frame["item"].unique()).sort_values(),
        users=user_ids[held_out],
        train=ordered[in_train],
        history=ordered[of_test_user & ~in_test],
        test=ordered[in_test],
        skipped_users=int((~splittable).sum()),
    )
