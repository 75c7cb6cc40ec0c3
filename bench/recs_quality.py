"""Recommendation quality: engage's default `for_you` model (`auto`) against the usual baselines on
MovieLens-100K under Amazon Personalize's protocol, over several seeds (one split is noisy: about 94 test
users each).

For each seed, `evaluate` splits the ratings (10% of the users held out, their newest 10% to find) and fits
popularity, item-kNN, EASE, implicit ALS and BPR with their defaults, and `auto`, on the same training
data. The table gives each model's NDCG@10 for every seed and the means of NDCG@10, precision@10, MRR@25,
coverage and fit time; the last line compares auto's mean NDCG@10 with the best baseline's (PASS when at
least as high). What auto chose on each split follows, from its own validation on the training data alone.

The recbole 1.2.1 wheel holding the ratings is downloaded into --cache (default var/cache/) when missing.

    .venv/bin/python bench/recs_quality.py [--seeds 0 1 2 3 4] [--cache var/cache]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engage.recommend.evaluation import evaluate, movielens_100k
from engage.recommend.models import Model
from engage.recommend.models.als import Als
from engage.recommend.models.auto import Auto
from engage.recommend.models.bpr import Bpr
from engage.recommend.models.ease import Ease
from engage.recommend.models.itemknn import ItemKnn
from engage.recommend.models.popularity import Popularity

DEFAULT = "auto"
BASELINES: tuple[Callable[[], Model], ...] = (Popularity, ItemKnn, Ease, Als, Bpr)
NDCG = "normalized_discounted_cumulative_gain_at_10"
MEANS = {
    "precision_at_10": "P@10",
    "mean_reciprocal_rank_at_25": "MRR@25",
    "coverage": "coverage",
}


@dataclass(frozen=True)
class Row:
    """One model over every seed."""

    model: str
    ndcg: tuple[float, ...]
    """NDCG@10 on each seed's split, in the order of the seeds."""
    means: dict[str, float]
    """Every metric's mean over the seeds, by its Personalize name."""
    fit_seconds: float
    """Mean fit time."""

    @property
    def mean_ndcg(self) -> float:
        return self.means[NDCG]


def movielens_rows(
    cache: Path, seeds: Sequence[int], choices: list[dict[str, Any]] | None = None
) -> list[Row]:
    """One row per model (the baselines, then `auto`), from one evaluation per seed; each fitted `auto`'s
    `choice` is appended to `choices` when given."""
    frame = movielens_100k(cache)
    results: dict[str, list[tuple[dict[str, float], float]]] = {}
    made: list[Auto] = []

    def auto() -> Auto:
        made.append(Auto())
        return made[-1]

    for seed in seeds:
        with warnings.catch_warnings():
            # implicit asks for single-threaded BLAS around ALS; this benchmark leaves BLAS on both cores.
            warnings.filterwarnings("ignore", message="OpenBLAS is configured", category=RuntimeWarning)
            evaluation = evaluate(frame, [*BASELINES, auto], "personalize", seed=seed, name="ml-100k")
        for result in evaluation.results:
            results.setdefault(result.model, []).append((result.metrics, result.fit_seconds))
        if choices is not None:
            choices.extend(model.choice for model in made)
        made.clear()  # fitted models are large
    return [
        Row(
            model=name,
            ndcg=tuple(metrics[NDCG] for metrics, _ in runs),
            means={key: float(np.mean([metrics[key] for metrics, _ in runs])) for key in runs[0][0]},
            fit_seconds=float(np.mean([seconds for _, seconds in runs])),
        )
        for name, runs in results.items()
    ]


def table(rows: Sequence[Row], seeds: Sequence[int]) -> list[str]:
    header = f"{'model':<12}" + "".join(f"{f's{seed}':>8}" for seed in seeds)
    header += f"{'mean':>9}" + "".join(f"{label:>10}" for label in MEANS.values()) + f"{'fit s':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        line = f"{row.model:<12}" + "".join(f"{value:>8.4f}" for value in row.ndcg)
        line += f"{row.mean_ndcg:>9.4f}" + "".join(f"{row.means[key]:>10.4f}" for key in MEANS)
        lines.append(line + f"{row.fit_seconds:>8.2f}")
    return lines


def verdict(rows: Sequence[Row]) -> str:
    default = next(row for row in rows if row.model == DEFAULT)
    best = max((row for row in rows if row.model != DEFAULT), key=lambda row: row.mean_ndcg)
    ratio = default.mean_ndcg / best.mean_ndcg if best.mean_ndcg else float("inf")
    outcome = "PASS" if default.mean_ndcg >= best.mean_ndcg else "FAIL"
    return (
        f"engage's default ({DEFAULT}) mean NDCG@10 {default.mean_ndcg:.4f} vs best baseline "
        f"({best.model}) {best.mean_ndcg:.4f}: ratio {ratio:.3f} {outcome}"
    )


def describe(choice: dict[str, Any]) -> str:
    """`auto`'s choice in a few words: the model, its parameters and its validation NDCG@10."""

    def named(model: str, params: dict[str, Any]) -> str:
        if model == "blend":
            return " + ".join(
                f"{part['weight']:.2f}·{named(part['model'], part['params'])}" for part in params["parts"]
            )
        return f"{model}({', '.join(f'{key}={value:g}' for key, value in params.items())})"

    candidates = choice["candidates"]
    text = named(choice["model"], choice["params"])
    if choice.get("half_life") is not None:
        text += f" on histories with a half-life of {choice['half_life']:g} items"
    if candidates:
        best = max(candidate["ndcg_at_10"] for candidate in candidates)
        text += f", validation NDCG@10 {best:.4f}, best of {len(candidates)} candidates"
    return f"{text}; chose in {choice['validation_seconds']:.1f} s, refit in {choice['refit_seconds']:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / "var" / "cache")
    args = parser.parse_args()
    began = time.perf_counter()
    choices: list[dict[str, Any]] = []
    rows = movielens_rows(args.cache, args.seeds, choices)
    print(f"MovieLens-100K, Personalize protocol, NDCG@10 per seed and means over {len(args.seeds)} seeds")
    print("\n".join(table(rows, args.seeds)))
    print(verdict(rows))
    for seed, choice in zip(args.seeds, choices, strict=True):
        print(f"auto on seed {seed}: {describe(choice)}")
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
