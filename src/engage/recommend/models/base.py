"""What every recommendation model is to the rest of engage: fitted on an interaction matrix, it scores
item histories.

Scoring a history rather than a user id is what makes recommendations real-time and evaluation honest:
the same call serves a user seen in training, a user whose latest clicks arrived after it (their history
now, folded in), a brand-new visitor with three views, and a held-out test user.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from scipy import sparse

from engage.recommend.models.recency import Histories

__all__ = ["Model", "LearnsRecency", "Remembers", "fit"]


@runtime_checkable
class Model(Protocol):
    name: str
    """Short and stable (`popularity`, `itemknn`, `ease`, `als`, `bpr`, ...): it names the model in
    evaluation tables, in `var/models/` and in the workspace's config."""
    half_life: float | None
    """How the histories it scores are weighted by recency (`engage.recommend.models.recency`): each
    item's weight halves with every `half_life` other items touched since; None: plain sums."""

    def fit(self, interactions: sparse.csr_matrix) -> None:
        """Learn from users × items weights (float32, a user's repeated interactions with an item summed,
        zero where none); rows and columns are the caller's dense indices."""

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        """One row of scores over every fitted item (float32, higher is better) for each row of
        `histories` (n × items, weighted as in `fit`, decayed by `half_life`). A row may be a user never
        seen in `fit`, or empty (then the scores may be all equal or the model's prior, e.g.
        popularity). Items a history holds are not removed here: filtering is the caller's."""
        ...


@runtime_checkable
class LearnsRecency(Protocol):
    """A model that learns from the order of the interactions how much recency counts (its
    `half_life`)."""

    def fit_in_order(self, histories: Histories) -> None:
        """`fit` on `histories.matrix`, with each entry's recency to learn from."""


def fit(model: Model, histories: Histories) -> None:
    """Fit `model` on `histories`, in order when it learns from the order."""
    if isinstance(model, LearnsRecency):
        model.fit_in_order(histories)
    else:
        model.fit(histories.matrix)


@runtime_checkable
class Remembers(Protocol):
    """A model that can keep what scoring its training rows costs (ALS: each row's folded-in factors), so
    a campaign scoring shoppers whose history has not changed since training skips that work."""

    def remember(self, interactions: sparse.csr_matrix) -> None:
        """Keep what scoring each row of `interactions` (the matrix just fitted on) needs."""

    def score_known(self, histories: sparse.csr_matrix, known: np.ndarray) -> np.ndarray:
        """`score(histories)`, where `known[i]` is the row of the remembered matrix that history i is
        exactly, or -1: the same scores, computed from what was remembered where it can."""
        ...
