"""engage's default model (`auto`): the candidate that ranks best on a validation split of the very matrix
it is fitted on, refitted on the whole matrix. Nothing else is read: a caller's test users stay unseen.

About a tenth of the users with at least `MIN_VALIDATION_INTERACTIONS` interactions are held out; a fifth
of each one's items (at least one) are hidden as their targets and the rest is the history they are scored
from, as a test user is (`Model.score`, the history's items never ranked). Fitted in order
(`fit_in_order`, as training and the evaluation do), the targets are each user's newest items, what
Personalize's protocol and a shop's next day ask for, and the history is weighted by recency
(`engage.recommend.models.recency`) with the half-life that finds them best. Fitted on a matrix alone, the
targets are drawn with chances falling as 1/popularity: what users do next is less often the popular
items they already had than a uniform draw from their past suggests. Candidates are fitted on the other
users and compared by NDCG@10 (`engage.recommend.evaluation.metrics`); on small data the split is
repeated over disjoint groups of users (folds) so that hundreds of users decide, not dozens.

The half-life comes first, chosen on `HALF_LIVES` with a reference ALS (the families agree on it: it is
what the data's order says); then the candidates, each family searched on a grid around its usual optimum,
score histories with it:

- popularity, and item-kNN with its default neighbours;
- EASE (while the catalog allows its items × items inverse, `ease.MAX_ITEMS`), its regularization climbed
  on a ×2 grid from 400 (×4 beyond 3,000 items);
- implicit ALS with 64 factors, its regularization climbed for a confidence (alpha) of 1, then 4 and 16
  while more confidence helps;
- a blend of the two best personalized families, each one's scores standardized per user, at three
  weights.

Below 1,000 interactions or 25 users popularity serves, unvalidated.

Cost: a search costs a few single fits. On a large matrix candidates are fitted on a sample of the other
users (`TRAIN_SAMPLE` interactions; EASE's regularization scaled by the sample's share, which leaves its
weights as they would be on the whole, the Gram matrix shrinking alike) and measured on one fold of at most
`MAX_VALIDATION_USERS` users, from float32 Cholesky factors of EASE's Gram matrix without its weights.

What was chosen is `chosen` (the fitted model `score` delegates to) and `choice` (its family and
parameters, every candidate's validation NDCG@10, the split's size and the time taken), for a training
manifest to record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, sparse
from threadpoolctl import threadpool_limits

from engage.recommend.evaluation.metrics import RunningMetrics, top_items
from engage.recommend.models.als import Als
from engage.recommend.models.base import Model, Remembers
from engage.recommend.models.ease import MAX_ITEMS, Ease
from engage.recommend.models.itemknn import ItemKnn
from engage.recommend.models.popularity import Popularity
from engage.recommend.models.recency import HALF_LIVES, Histories

__all__ = ["Auto", "Blend", "MIN_INTERACTIONS", "MIN_USERS"]

MIN_INTERACTIONS = 1_000
MIN_USERS = 25
"""Below either, popularity serves without validation (Personalize asks for 1,000 interactions of 25
users)."""

VALIDATION_USERS = 0.1
"""The share of the users who can be validated on that a fold holds out."""
VALIDATION_TARGETS = 0.2
"""The share of a held-out user's items hidden as their targets (rounded, at least one)."""
MIN_VALIDATION_INTERACTIONS = 3
"""A user is held out only with at least this many interactions: one target and a history."""
MIN_VALIDATION_USERS = 10
"""Fewer users to validate on than this, and the choice falls back on `_fallback` unvalidated."""
MAX_VALIDATION_USERS = 2_000
"""Held-out users of a fold at most: scoring them costs users × items × items for EASE."""
DECIDING_USERS = 1_000
"""Folds are added, up to `MAX_FOLDS`, until about this many users decide."""
MAX_FOLDS = 10
FOLD_WORK = 1_500_000
"""Folds × interactions at most: on larger data fewer folds (one from 750,000 interactions)."""
FOLD_ITEMS_WORK = 10**11
"""Folds × items³ at most, as each fold costs EASE an items × items factorization per regularization
tried: ten folds up to 2,150 items, one from 4,650."""
TRAIN_SAMPLE = 500_000
"""Candidates are fitted on at most about this many interactions during validation."""
TARGET_POPULARITY_EXPONENT = 1.0
"""A held-out item's chance to be a target falls as its popularity (distinct users) to this power (0 would
be uniform)."""
METRIC = "normalized_discounted_cumulative_gain_at_10"

EASE_REGULARIZATION = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0)
EASE_START = 400.0
"""Every other value of the grid from 400 is in its ×4 subgrid too."""
ALS_ALPHA = (1.0, 4.0, 16.0)
ALS_REGULARIZATION = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
ALS_FACTORS = 64
"""Not searched: a request folds a history in by solving a factors × factors system, so more factors cost
every request, and validation on a random split cannot tell how more would generalize to what comes next."""
BLEND_WEIGHTS = (0.25, 0.5, 0.75)
"""The first family's weight in a blend of the two best."""
_FLOAT32_EASE_ITEMS = 3_000
"""Above this many items, EASE's validation factorizations are float32 (twice as fast, precise enough to
rank) and its regularization is searched in steps of ×4."""


class Blend:
    """A weighted sum of models' scores, each standardized per history row (mean 0, deviation 1), so the
    models' scales do not matter."""

    name = "blend"
    half_life: float | None = None

    def __init__(self, parts: Sequence[tuple[Model, float]]):
        self.parts = tuple(parts)

    def fit(self, interactions: sparse.csr_matrix) -> None:
        for model, _ in self.parts:
            _fit(model, interactions)

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        return self._combined([model.score(histories) for model, _ in self.parts], histories.shape)

    def _combined(self, scores: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
        total: np.ndarray | None = None
        for part, (_, weight) in zip(scores, self.parts, strict=True):
            weighted = _standardized(part, weight)
            if total is None:
                total = weighted
            else:
                total += weighted
        return total if total is not None else np.zeros(shape, dtype=np.float32)

    def remember(self, interactions: sparse.csr_matrix) -> None:
        for model, _ in self.parts:
            if isinstance(model, Remembers):
                model.remember(interactions)

    def score_known(self, histories: sparse.csr_matrix, known: np.ndarray) -> np.ndarray:
        return self._combined(
            [model.score_known(histories, known) if isinstance(model, Remembers) else model.score(histories)
             for model, _ in self.parts],
            histories.shape,
        )  # fmt: skip


@dataclass(frozen=True)
class _Fold:
    """One validation split: what candidates are fitted on, and the held-out users they are measured on."""

    users: np.ndarray
    """The held-out users: rows of the matrix, ascending, and rows of `histories` and `targets`."""
    train: sparse.csr_matrix
    """The other users (or a sample of them)."""
    histories: Histories
    """What the held-out users are scored from (its recency counted without the targets)."""
    targets: sparse.csr_matrix
    scale: float
    """`train`'s interactions as a share of the whole matrix's: the Gram matrix shrinks by as much."""


@dataclass(frozen=True)
class _Candidate:
    family: str
    params: dict[str, Any]
    half_life: float | None = None


@dataclass
class _Measured:
    candidate: _Candidate
    ndcg: float
    scores: list[np.ndarray]
    """Each fold's validation scores (history items -inf), kept for the family's best only."""
    seconds: float
    """Fitting and scoring on every fold."""


class Auto:
    """Chooses on `fit`, by validation on the fitted matrix alone, the model it then serves (see above).
    `seed` draws the validation users and targets and seeds the candidates: a fit is deterministic."""

    name = "auto"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.chosen: Model = Popularity()
        self.choice: dict[str, Any] = {}
        self.half_life: float | None = None

    def fit(self, interactions: sparse.csr_matrix) -> None:
        """Choose without knowing the interactions' order: no recency, targets drawn at random."""
        self._choose(Histories.unordered(interactions), ordered=False)

    def fit_in_order(self, histories: Histories) -> None:
        """Choose with the interactions' order: the newest are the targets, and recency is weighed."""
        self._choose(histories, ordered=True)

    def _choose(self, histories: Histories, *, ordered: bool) -> None:
        began = time.perf_counter()
        interactions = histories.matrix
        users, items = interactions.shape
        if interactions.nnz < MIN_INTERACTIONS or users < MIN_USERS:
            self._serve(_Candidate("popularity", {}), interactions, reason="too little data", began=began)
            return
        folds = self._folds(histories, ordered)
        if sum(fold.targets.shape[0] for fold in folds) < MIN_VALIDATION_USERS:
            self._serve(_fallback(items), interactions, reason="too few users to validate", began=began)
            return
        search = _Search(folds, items, self.seed)
        search.run(ease=items <= MAX_ITEMS, recency=ordered)
        best = search.best()
        self._serve(best.candidate, interactions, reason="validation", began=began, search=search)

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        return self.chosen.score(histories)

    def remember(self, interactions: sparse.csr_matrix) -> None:
        if isinstance(self.chosen, Remembers):
            self.chosen.remember(interactions)

    def score_known(self, histories: sparse.csr_matrix, known: np.ndarray) -> np.ndarray:
        if isinstance(self.chosen, Remembers):
            return self.chosen.score_known(histories, known)
        return self.chosen.score(histories)

    def _serve(
        self,
        candidate: _Candidate,
        interactions: sparse.csr_matrix,
        *,
        reason: str,
        began: float,
        search: _Search | None = None,
    ) -> None:
        validated = time.perf_counter()
        model = _build(candidate, self.seed)
        _fit(model, interactions)
        self.chosen = model
        self.half_life = candidate.half_life
        self.choice = {
            "model": candidate.family,
            "params": candidate.params,
            "half_life": candidate.half_life,
            "reason": reason,
            "seed": self.seed,
            "metric": METRIC,
            "validation": search.summary() if search else None,
            "candidates": [
                {
                    "model": m.candidate.family,
                    "params": m.candidate.params,
                    "half_life": m.candidate.half_life,
                    "ndcg_at_10": round(m.ndcg, 5),
                    "seconds": round(m.seconds, 3),
                }
                for m in (search.measured if search else [])
            ],
            "validation_seconds": round(validated - began, 3),
            "refit_seconds": round(time.perf_counter() - validated, 3),
        }

    def _folds(self, histories: Histories, ordered: bool) -> list[_Fold]:
        """Disjoint groups of held-out users, each with a tenth of the users who can be validated on; their
        newest items are the targets when `ordered`, else some drawn at random."""
        interactions = histories.matrix
        rng = np.random.default_rng(self.seed)
        counts = np.diff(interactions.indptr)
        eligible = np.flatnonzero(counts >= MIN_VALIDATION_INTERACTIONS)
        per_fold = min(MAX_VALIDATION_USERS, max(1, round(VALIDATION_USERS * eligible.size)))
        if eligible.size < 2:
            return []
        per_fold = min(per_fold, eligible.size - 1)  # someone is left to train on
        wanted = math.ceil(DECIDING_USERS / per_fold)
        affordable = max(1, min(FOLD_WORK // interactions.nnz, FOLD_ITEMS_WORK // interactions.shape[1] ** 3))
        count = max(1, min(MAX_FOLDS, wanted, affordable, eligible.size // per_fold))
        order = rng.permutation(eligible)
        popularity = None
        if not ordered:
            popularity = np.bincount(interactions.indices, minlength=interactions.shape[1]).astype(np.float64)
        return [
            self._fold(histories, np.sort(order[k * per_fold : (k + 1) * per_fold]), popularity, rng)
            for k in range(count)
        ]

    @staticmethod
    def _fold(
        histories: Histories,
        held_out: np.ndarray,
        popularity: np.ndarray | None,
        rng: np.random.Generator,
    ) -> _Fold:
        """Hold out the rows `held_out`, hiding some of each one's items (the newest, or drawn with chances
        ∝ `popularity`^-γ); train on the others or a sample."""
        interactions = histories.matrix
        kept = np.ones(interactions.shape[0], dtype=bool)
        kept[held_out] = False
        rows = np.flatnonzero(kept)
        kept_nnz = int(np.diff(interactions.indptr)[rows].sum())
        if kept_nnz > TRAIN_SAMPLE:
            rows = rows[rng.random(rows.size) < TRAIN_SAMPLE / kept_nnz]
        train = interactions[rows]

        held = histories.take(held_out)
        sizes = np.diff(held.matrix.indptr)
        row = np.repeat(np.arange(held_out.size), sizes)
        hiding = np.maximum(1, np.round(VALIDATION_TARGETS * sizes)).astype(np.int64)
        if popularity is None:  # the newest
            position = held.recency.astype(np.int64)
        else:
            # Drawn without replacement with chances ∝ popularity^-γ (Efraimidis and Spirakis: the
            # smallest keys E/chance, E exponential): rank each row by key, count positions from its start.
            chances = popularity[held.matrix.indices] ** TARGET_POPULARITY_EXPONENT
            keys = rng.exponential(size=held.matrix.nnz) * chances
            order = np.lexsort((keys, row))
            position = np.empty(held.matrix.nnz, dtype=np.int64)
            position[order] = np.arange(held.matrix.nnz) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        hidden = position < hiding[row]
        since = held.recency - hiding[row] if popularity is None else held.recency  # without the targets
        shown = Histories(_entries(held.matrix, ~hidden), since[~hidden])
        return _Fold(held_out, train, shown, _entries(held.matrix, hidden), train.nnz / interactions.nnz)


class _Search:
    """Every candidate measured on the same folds, the best of each family's scores kept for a blend."""

    def __init__(self, folds: list[_Fold], items: int, seed: int):
        self.folds = folds
        self.items = items
        self.seed = seed
        self.measured: list[_Measured] = []
        self._best: dict[str, _Measured] = {}
        self._grams: list[np.ndarray] | None = None
        self.half_lives: list[tuple[float | None, float]] = []
        """Each half-life tried and the reference model's NDCG@10 with it."""

    def run(self, *, ease: bool, recency: bool) -> None:
        half_life = self.choose_half_life() if recency else None
        self.measure(_Candidate("popularity", {}, half_life))
        self.measure(_Candidate("itemknn", {"neighbours": 100}, half_life))
        if ease:
            # Each value costs an items × items factorization: on a large catalog, steps of ×4.
            grid = EASE_REGULARIZATION if self.items <= _FLOAT32_EASE_ITEMS else EASE_REGULARIZATION[::2]
            self.climb(grid, EASE_START, lambda value: _ease(value, half_life))
            self._grams = None
        self.search_als(half_life)
        self.blend()

    def choose_half_life(self) -> float | None:
        """The half-life with which the reference model finds the held-out users' newest items best (its
        measures are kept apart from the candidates': the families compete at the one chosen)."""
        metrics = [RunningMetrics(self.items) for _ in HALF_LIVES]
        for fold in self.folds:
            reference = _build(_als(1.0, 1.0), self.seed)
            _fit(reference, fold.train)
            for half_life, measuring in zip(HALF_LIVES, metrics, strict=True):
                scores = np.array(reference.score(fold.histories.weighted(half_life)), dtype=np.float32)
                scores[fold.histories.matrix.nonzero()] = -np.inf
                measuring.add(top_items(scores), fold.targets)
        self.half_lives = [(h, m.result()[METRIC]) for h, m in zip(HALF_LIVES, metrics, strict=True)]
        return max(self.half_lives, key=lambda pair: pair[1])[0]

    def search_als(self, half_life: float | None) -> None:
        """For each confidence in turn while it helps, the regularization climbed from as much."""
        best: _Measured | None = None
        for alpha in ALS_ALPHA:
            start = min(ALS_REGULARIZATION, key=lambda value: abs(math.log(value / alpha)))
            found = self.climb(ALS_REGULARIZATION, start, lambda value, a=alpha: _als(value, a, half_life))
            if best is not None and found.ndcg <= best.ndcg:
                break  # more confidence no longer helps
            best = found

    def climb(
        self, grid: Sequence[float], start: float, candidate: Callable[[float], _Candidate]
    ) -> _Measured:
        """The best of `grid` found by measuring `start` and its neighbours, then stepping while better."""
        index = list(grid).index(start)
        seen = {index: self.measure(candidate(grid[index]))}

        def at(i: int) -> _Measured:
            if i not in seen:
                seen[i] = self.measure(candidate(grid[i]))
            return seen[i]

        for step in (-1, 1):
            while 0 <= index + step < len(grid) and at(index + step).ndcg > at(index).ndcg:
                index += step
        return seen[index]

    def measure(self, candidate: _Candidate) -> _Measured:
        for done in self.measured:
            if done.candidate == candidate:
                return done
        began = time.perf_counter()
        metrics = RunningMetrics(self.items)
        scores = []
        for position, fold in enumerate(self.folds):
            fold_scores = self._scores(candidate, fold, position)
            fold_scores[fold.histories.matrix.nonzero()] = -np.inf
            metrics.add(top_items(fold_scores), fold.targets)
            scores.append(fold_scores)
        measured = _Measured(candidate, metrics.result()[METRIC], scores, time.perf_counter() - began)
        self.measured.append(measured)
        best = self._best.get(candidate.family)
        if best is None or measured.ndcg > best.ndcg:
            self._best[candidate.family] = measured
            if best is not None:
                best.scores = []
        else:
            measured.scores = []
        return measured

    def blend(self) -> None:
        """The best candidates of the two best personalized families blended, at each of `BLEND_WEIGHTS`,
        from the scores they were measured with."""
        ranked = sorted(
            (m for family, m in self._best.items() if family != "popularity"), key=lambda m: -m.ndcg
        )
        if len(ranked) < 2:
            return
        began = time.perf_counter()
        first, second = ranked[:2]
        standardized = [
            (_standardized(a), _standardized(b)) for a, b in zip(first.scores, second.scores, strict=True)
        ]
        for weight in BLEND_WEIGHTS:
            metrics = RunningMetrics(self.items)
            for fold, (a, b) in zip(self.folds, standardized, strict=True):
                mixed = weight * a + (1.0 - weight) * b  # -inf on the history's items, as in both
                metrics.add(top_items(mixed), fold.targets)
            parts = [(first, weight), (second, 1.0 - weight)]
            candidate = _Candidate(
                "blend",
                {
                    "parts": [
                        {"model": m.candidate.family, "params": m.candidate.params, "weight": w}
                        for m, w in parts
                    ]
                },
                first.candidate.half_life,
            )
            seconds = (time.perf_counter() - began) / len(BLEND_WEIGHTS)
            self.measured.append(_Measured(candidate, metrics.result()[METRIC], [], seconds))

    def best(self) -> _Measured:
        """The best candidate; on a tie the one measured first (the simpler: popularity, then kNN, ...)."""
        return max(self.measured, key=lambda m: m.ndcg)

    def summary(self) -> dict[str, Any]:
        return {
            "folds": len(self.folds),
            "users": int(sum(fold.targets.shape[0] for fold in self.folds)),
            "targets": int(sum(fold.targets.nnz for fold in self.folds)),
            "train_share": round(float(np.mean([fold.scale for fold in self.folds])), 4),
            "half_lives": [{"half_life": h, "ndcg_at_10": round(ndcg, 5)} for h, ndcg in self.half_lives],
        }

    def _scores(self, candidate: _Candidate, fold: _Fold, position: int) -> np.ndarray:
        histories = fold.histories.weighted(candidate.half_life)
        if candidate.family == "ease":
            return self._ease_scores(candidate.params["regularization"] * fold.scale, histories, position)
        model = _build(candidate, self.seed)
        _fit(model, fold.train)
        return np.array(model.score(histories), dtype=np.float32)

    def _ease_scores(self, regularization: float, histories: sparse.csr_matrix, position: int) -> np.ndarray:
        if self._grams is None:  # kept while EASE's regularization is searched
            dtype = np.float32 if self.items > _FLOAT32_EASE_ITEMS else np.float64
            self._grams = []
            for each in self.folds:
                seen = (each.train > 0).astype(dtype)
                self._grams.append((seen.T @ seen).toarray())
        return _ease_scores(self._grams[position], regularization, histories)


def _ease_scores(gram: np.ndarray, regularization: float, histories: sparse.csr_matrix) -> np.ndarray:
    """EASE's scores of `histories` (as `Ease.score`) without its weights B = I - P·diag(1/diag(P)): with
    P = (G + λI)⁻¹ = L⁻ᵀL⁻¹ (Cholesky, L lower), an item j outside a history x scores -(x L⁻ᵀL⁻¹)ⱼ /
    Σᵢ(L⁻¹)ᵢⱼ². A history's own items are never ranked, so their (other) scores are left as they come
    out."""
    matrix = np.array(gram, order="F")
    matrix[np.diag_indices_from(matrix)] += regularization
    factor, info = linalg.lapack.get_lapack_funcs("potrf", (matrix,))(matrix, lower=1, overwrite_a=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Cholesky factorization failed ({info})")
    inverse, info = linalg.lapack.get_lapack_funcs("trtri", (factor,))(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: triangular inverse failed ({info})")
    product = np.asarray(histories.astype(inverse.dtype) @ inverse.T) @ inverse
    diagonal = np.einsum("ij,ij->j", inverse, inverse)
    return np.asarray(-product / diagonal, dtype=np.float32)


def _standardized(scores: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """Each row minus its mean over its finite entries, over their deviation (1 where that is 0), times
    `weight`; -inf stays -inf. In float32 and in place on a copy: serving standardizes a campaign's
    1,000 × 10,000 scores per model, and float64 temporaries made that cost more than the scoring."""
    result = np.array(scores, dtype=np.float32)
    finite = np.isfinite(result)
    whole = bool(finite.all())
    if not whole:
        result[~finite] = 0.0
    counts = finite.sum(axis=1, keepdims=True, dtype=np.float32) if not whole else np.float32(result.shape[1])
    counts = np.maximum(counts, np.float32(1))
    result -= result.sum(axis=1, keepdims=True, dtype=np.float32) / counts
    if not whole:
        result[~finite] = 0.0
    deviation = np.sqrt(np.einsum("ij,ij->i", result, result)[:, None] / counts)
    deviation[deviation == 0] = 1.0
    result *= np.float32(weight) / deviation
    if not whole:
        result[~finite] = -np.inf
    return result


def _als(regularization: float, alpha: float, half_life: float | None = None) -> _Candidate:
    params = {"factors": ALS_FACTORS, "regularization": regularization, "alpha": alpha}
    return _Candidate("als", params, half_life)


def _ease(regularization: float, half_life: float | None = None) -> _Candidate:
    return _Candidate("ease", {"regularization": regularization}, half_life)


def _entries(matrix: sparse.csr_matrix, mask: np.ndarray) -> sparse.csr_matrix:
    """`matrix` with only the entries where `mask` (aligned with its data) holds, in the same order."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.r_[0, np.cumsum(np.bincount(rows[mask], minlength=matrix.shape[0]))]
    return sparse.csr_matrix((matrix.data[mask], matrix.indices[mask], indptr), shape=matrix.shape)


def _fallback(items: int) -> _Candidate:
    """What serves when there are users and interactions enough to learn but too few to validate on."""
    return _Candidate("ease", {"regularization": 500.0}) if items <= MAX_ITEMS else _als(0.01, 1.0)


def _build(candidate: _Candidate, seed: int) -> Model:
    params = candidate.params
    if candidate.family == "popularity":
        return Popularity()
    if candidate.family == "itemknn":
        return ItemKnn(**params)
    if candidate.family == "ease":
        return Ease(**params)
    if candidate.family == "als":
        return Als(**params, seed=seed)
    if candidate.family == "blend":
        return Blend(
            [(_build(_Candidate(p["model"], p["params"]), seed), p["weight"]) for p in params["parts"]]
        )
    raise ValueError(f"unknown candidate {candidate.family!r}")


def _fit(model: Model, interactions: sparse.csr_matrix) -> None:
    """Fit `model`; ALS with BLAS on one thread, as `implicit` asks (its solver threads its own loop)."""
    if isinstance(model, Als):
        with threadpool_limits(1, "blas"):
            model.fit(interactions)
    else:
        model.fit(interactions)
