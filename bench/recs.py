"""Recommender serving: latency of `for_you` in-process, campaign batch scoring and retrain time, each
against the limit of the model's plain numpy scoring measured in the same run.

A temporary SQLite workspace gets a catalog of --items products in 20 categories and --users shoppers
with --interactions interactions in all (each shopper browsing two or three favourite categories, items
Zipf-popular within a category), written straight into `rec_interactions` as the recommend consumer
would. Then:

1. retrain: `Recommend.train()` (the configured model; `auto` is EASE up to 15,000 items);
2. in-process latency: `for_you(user, 10)` for --requests random shoppers, each reading the shopper's
   history, scoring, filtering, explaining (not logged: channel None); baseline: the same shopper's
   already-read history scored by the model and the top 10 taken with argpartition;
3. campaign batch scoring: every shopper's top 10 in batches of 1,000 (histories read in bulk, scored as
   a matrix); shoppers per second.

    .venv/bin/python bench/recs.py [--users 100000] [--items 10000] [--interactions 5000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from engage.bootstrap import bootstrap
from engage.cli._serving import tune_process
from engage.recommend.catalog import Product, write_catalog
from engage.recommend.training import load_interactions
from engage.store.codec import time_param
from engage.workspace import Workspace, init_workspace

TARGET_P99_MS = 2.0
TARGET_BATCH_USERS = 10_000
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CATEGORIES = 20


def catalog_products(items: int, rng: np.random.Generator) -> list[Product]:
    categories = [f"category{c:02d}" for c in range(CATEGORIES)]
    return [
        Product(
            id=f"item-{n:05d}",
            name=f"Item {n}",
            category=categories[n % CATEGORIES],
            style="plain",
            description="",
            price=round(float(rng.uniform(5, 200)), 2),
            image_url="",
            stock=int(rng.integers(0, 20)),
            promoted=False,
            created_at=NOW - timedelta(days=365),
        )
        for n in range(items)
    ]


def interactions(
    users: int, items: int, total: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) pairs: each user's interactions drawn from 2-3 favourite categories, Zipf within."""
    per_category = items // CATEGORIES
    favourites = np.stack([rng.permutation(CATEGORIES)[:3] for _ in range(users)])
    user = rng.integers(0, users, total)
    choice = rng.choice(3, total, p=[0.55, 0.3, 0.15])
    category = favourites[user, choice]
    rank = np.minimum(rng.zipf(1.3, total) - 1, per_category - 1)
    item = rank * CATEGORIES + category  # item n is in category n % CATEGORIES
    return user, item


def load(workspace: Workspace, users: int, items: int, total: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    write_catalog(catalog_products(items, rng), workspace.root / "catalog" / "products.csv")
    engage = bootstrap(workspace)
    user, item = interactions(users, items, total, rng)
    events = rng.choice(["ProductViewed", "ProductAdded", "OrderCompleted"], total, p=[0.85, 0.1, 0.05])
    weights = {"ProductViewed": 1.0, "ProductAdded": 3.0, "OrderCompleted": 5.0}
    seconds = rng.integers(0, 90 * 86_400, total)
    with engage.database.write() as connection:
        driver = connection.connection.driver_connection
        driver.executemany(  # type: ignore[union-attr]
            "INSERT INTO identities (kind, value, profile_id, first_seen) VALUES ('user', ?, ?, ?)",
            [(f"u{n}", f"p{n}", time_param(NOW, True)) for n in range(users)],
        )
        chunk = 500_000
        for start in range(0, total, chunk):
            rows = [
                (
                    f"p{u}",
                    f"item-{i:05d}",
                    e,
                    "web",
                    weights[e],
                    time_param(NOW - timedelta(seconds=int(s)), True),
                    0,
                )
                for u, i, e, s in zip(
                    user[start : start + chunk].tolist(),
                    item[start : start + chunk].tolist(),
                    events[start : start + chunk].tolist(),
                    seconds[start : start + chunk].tolist(),
                    strict=True,
                )
            ]
            driver.executemany(  # type: ignore[union-attr]
                "INSERT INTO rec_interactions (profile_id, item_id, event, channel, weight, at, seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    engage.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="engage-bench-recs-"))
    root = folder / "workspace"
    init_workspace(root)
    tune_process()
    try:
        began = time.perf_counter()
        load(Workspace.load(root), args.users, args.items, args.interactions, args.seed)
        load_seconds = time.perf_counter() - began
        print(f"loaded {args.interactions:,} interactions of {args.users:,} shoppers in {load_seconds:.1f} s")
        engage = bootstrap(Workspace.load(root), clock=lambda: NOW)
        recommend = engage.recommend
        began = time.perf_counter()
        version = recommend.train()
        train_seconds = time.perf_counter() - began
        print(f"1. retrain: {version.manifest['model']} in {train_seconds:.1f} s "
              f"(fit {version.manifest['fit_seconds']:.1f} s)")  # fmt: skip

        rng = np.random.default_rng(args.seed + 1)
        shoppers = [f"u{n}" for n in rng.integers(0, args.users, args.requests)]
        recommender = recommend.recommender
        for user in shoppers[:50]:  # warm: caches, the prepared version
            recommender.for_you(user, 10, channel=None)
        served, limit = [], []
        size = len(version.items)
        for user in shoppers:
            started = time.perf_counter()
            recommender.for_you(user, 10, channel=None)
            served.append((time.perf_counter() - started) * 1000)
            _, history = recommender._history(user, version)  # noqa: SLF001 - the baseline's input
            row = history.row(size)
            started = time.perf_counter()
            scores = version.model.score(row)[0]
            np.argpartition(-scores, 10)[:10]
            limit.append((time.perf_counter() - started) * 1000)
        p50, p99 = percentile(served, 0.5), percentile(served, 0.99)
        l50, l99 = percentile(limit, 0.5), percentile(limit, 0.99)
        print(
            f"2. for_you in-process: p50 {p50:.2f} ms, p99 {p99:.2f} ms; numpy scoring + argpartition: "
            f"p50 {l50:.2f} ms, p99 {l99:.2f} ms; ratio p99 {p99 / l99:.1f}x"
        )

        began = time.perf_counter()
        frame = load_interactions(engage.database)
        users, _ = pd.factorize(frame["profile_id"])
        histories = sparse.csr_matrix(
            (
                frame["weight"].to_numpy(np.float32),
                (users, pd.Index(version.items).get_indexer(frame["item_id"])),
            ),
            shape=(users.max() + 1, size),
        )
        read_seconds = time.perf_counter() - began
        began = time.perf_counter()
        scored = 0
        for start in range(0, histories.shape[0], 1000):
            block = version.model.score(histories[start : start + 1000])
            np.argpartition(-block, 10, axis=1)[:, :10]
            scored += block.shape[0]
        score_seconds = time.perf_counter() - began
        batch_rate = scored / (read_seconds + score_seconds)
        print(
            f"3. campaign batch scoring: {batch_rate:,.0f} shoppers/s ({scored:,} in "
            f"{read_seconds + score_seconds:.1f} s: histories read {read_seconds:.1f} s, "
            f"scored with their top 10 {score_seconds:.1f} s)"
        )
        engage.close()
        rows = [
            ("for_you p99 in-process", f"{p99:.2f} ms", f"< {TARGET_P99_MS} ms", p99 < TARGET_P99_MS),
            (
                "campaign batch scoring",
                f"{batch_rate:,.0f} users/s",
                f">= {TARGET_BATCH_USERS:,} users/s",
                batch_rate >= TARGET_BATCH_USERS,
            ),
            ("retrain", f"{train_seconds:.1f} s", "report only", None),
        ]
        print(f"\n{'figure':<26} {'value':>16}  {'target':<18} result")
        for figure, value, target, ok in rows:
            print(f"{figure:<26} {value:>16}  {target:<18} {'-' if ok is None else 'PASS' if ok else 'FAIL'}")
    finally:
        if args.keep:
            print(f"workspace kept: {root}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
