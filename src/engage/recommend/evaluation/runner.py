"""Evaluating models side by side: one split of a dataset, every model fitted on its training data and
ranking every item for every test user from that user's input history through `Model.score` (weighted
by recency as the model asks, `Model.half_life`, and as serving does), all measured alike
(`engage.recommend.evaluation.metrics`).

Test users are scored in batches small enough that a batch's scores stay near 16 MB, so memory does not
grow with the number of users. By default (`exclude_seen`) the items of a user's input history are never
ranked for them; a test interaction with such an item could then be found by no model, so it is not
relevant, and a user whose every test item is in their history is left out (`repeat_only_users`). Retail
has repurchases: with `exclude_seen=False` history items are ranked and count when found.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from engage.errors import EngageError
from engage.recommend.evaluation.metrics import RunningMetrics, top_items
from engage.recommend.evaluation.protocols import split_interactions
from engage.recommend.models.base import Model, fit
from engage.recommend.models.recency import Histories

__all__ = ["ModelSource", "ModelResult", "Evaluation", "evaluate", "relevant_items"]

ModelSource = Callable[[], Model] | Model
"""A model to evaluate: preferably a factory (a model class, or any callable returning a new model), so
each evaluation fits a fresh instance; an instance is fitted again as it is."""

FORMAT_VERSION = 1
"""The version of `Evaluation.to_dict()`'s layout."""

_BATCH_CELLS = 4 * 2**20  # users × items per scoring batch: 16 MB of float32 scores


@dataclass(frozen=True)
class ModelResult:
    """One model's figures on one split."""

    model: str
    metrics: dict[str, float]
    """Every metric of `METRICS`, by its Personalize name."""
    fit_seconds: float
    score_seconds: float
    """Time in `Model.score` for all the test users; ranking and measuring are not counted."""


@dataclass(frozen=True)
class Evaluation:
    """Models measured side by side on one dataset under one protocol."""

    dataset: str
    protocol: str
    seed: int
    exclude_seen: bool
    users: int
    items: int
    interactions: int
    train_users: int
    train_interactions: int
    test_users: int
    """Users measured."""
    skipped_users: int
    """Users with too few interactions to split."""
    repeat_only_users: int
    """Test users left out because every test item of theirs is in their input history (`exclude_seen`)."""
    results: tuple[ModelResult, ...]

    def result(self, model: str) -> ModelResult:
        """The result of the model named `model`; KeyError if none."""
        for result in self.results:
            if result.model == model:
                return result
        raise KeyError(model)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values, with the layout's version under `format`."""
        return {"format": FORMAT_VERSION, **asdict(self)}


def evaluate(
    dataset: pd.DataFrame,
    models: Sequence[ModelSource],
    protocol: str,
    *,
    seed: int,
    exclude_seen: bool = True,
    name: str = "dataset",
) -> Evaluation:
    """Split the interactions `dataset` under `protocol` (`engage.recommend.evaluation.protocols`) with
    `seed`, then fit and measure each of `models` on that one split; `name` names the dataset in reports.

    An EngageError when the dataset cannot be evaluated (a missing column, nobody to test) or two models
    share a name."""
    data = split_interactions(dataset, protocol, seed=seed)
    instances = [_instantiate(source) for source in models]
    names = [model.name for model in instances]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise EngageError(f"models must have distinct names to be told apart: {', '.join(repeated)} repeats")

    train = data.train_histories()
    histories = data.history_histories()
    relevant = relevant_items(data.test_matrix(), histories.matrix, exclude_seen)
    measured = np.flatnonzero(np.diff(relevant.indptr))
    if measured.size == 0:
        raise EngageError(f"{name}: every test item is in its user's input history; nothing can be measured")
    histories = histories.take(measured)
    relevant = relevant[measured]

    results = []
    while instances:
        model = instances.pop(0)  # not kept once measured: fitted models can be large
        results.append(_measure(model, train, histories, relevant, exclude_seen))
    return Evaluation(
        dataset=name,
        protocol=protocol,
        seed=seed,
        exclude_seen=exclude_seen,
        users=int(dataset["user"].nunique()),
        items=len(data.items),
        interactions=len(dataset),
        train_users=train.matrix.shape[0],
        train_interactions=len(data.train),
        test_users=int(measured.size),
        skipped_users=data.skipped_users,
        repeat_only_users=len(data.users) - int(measured.size),
        results=tuple(results),
    )


def relevant_items(
    test: sparse.csr_matrix, histories: sparse.csr_matrix, exclude_seen: bool = True
) -> sparse.csr_matrix:
    """Test users × items, True where an item is relevant to the user: among their test interactions and,
    when `exclude_seen`, not in their input history."""
    relevant = sparse.csr_matrix(test != 0)
    if exclude_seen:
        relevant = sparse.csr_matrix(relevant > (histories != 0))
    relevant.eliminate_zeros()
    return relevant


def _measure(
    model: Model,
    train: Histories,
    ordered: Histories,
    relevant: sparse.csr_matrix,
    exclude_seen: bool,
) -> ModelResult:
    started = time.perf_counter()
    fit(model, train)
    fit_seconds = time.perf_counter() - started
    histories = ordered.weighted(model.half_life)  # as serving weighs a shopper's latest interactions

    users, items = relevant.shape
    batch = max(1, _BATCH_CELLS // max(items, 1))
    metrics = RunningMetrics(items)
    score_seconds = 0.0
    for start in range(0, users, batch):
        rows = histories[start : start + batch]
        started = time.perf_counter()
        raw = np.asarray(model.score(rows))
        score_seconds += time.perf_counter() - started
        if raw.shape != rows.shape:
            raise ValueError(f"model {model.name} scored {raw.shape} for histories of {rows.shape}")
        scores = np.array(raw, dtype=np.promote_types(raw.dtype, np.float32))  # a copy the model does not own
        if exclude_seen:  # by the entries, not their values: a long-ago item's decayed weight may be 0
            seen = ordered.matrix[start : start + batch].nonzero()
            scores[seen] = -np.inf
        metrics.add(top_items(scores), relevant[start : start + batch])
    return ModelResult(model.name, metrics.result(), fit_seconds, score_seconds)


def _instantiate(source: ModelSource) -> Model:
    # A model class passes isinstance(..., Model) too (it has the attributes), so classes are called first.
    model = source() if isinstance(source, type) or not isinstance(source, Model) else source
    if not isinstance(model, Model):
        raise TypeError(f"{source!r} is neither a model nor a factory of one")
    return model
