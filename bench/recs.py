"""The recommender's figures: offline quality on MovieLens-100K, serving latency in-process and over HTTP,
campaign batch scoring and retrain time, each against a baseline measured in the same run.

0. quality: MovieLens-100K under Amazon Personalize's protocol for each of --seeds, every baseline
   (popularity, item-kNN, EASE, ALS, BPR with their usual defaults) and engage's default `auto`, which
   picks and tunes its model on a validation split of the training data only (`bench/recs_quality.py`);
   NDCG@10 per seed and the mean.

Then a temporary SQLite workspace gets a catalog of --items products in 20 categories and --users
shoppers with --interactions interactions in all (each shopper browsing two or three favourite
categories, items Zipf-popular within a category), written straight into `rec_interactions` as the
recommend consumer would:

1. retrain: `Recommend.train()` (the configured model: `auto`);
2. in-process latency (after the database file is read once into the page cache, which training's memory
   use evicts): `for_you(user, 10)` for --requests random shoppers, each reading the shopper's
   history, scoring, filtering, explaining (not logged: channel None); baseline: the same shopper's
   already-read history scored by the model and the top 10 taken with argpartition;
3. HTTP latency: the same requests to `engage serve` (a separate process) on one keep-alive connection,
   each answer logged as shown; against the in-process p99 and GET /healthz;
4. campaign batch scoring: `for_many` over every shopper (top 10 with reasons); baseline: the model's
   plain scoring of the training matrix with argpartition on one thread.

    .venv/bin/python bench/recs.py [--users 100000] [--items 10000] [--interactions 5000000] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from ingest import free_port, wait_healthy
from recs_quality import DEFAULT, describe, movielens_rows, table

from engage.bootstrap import bootstrap
from engage.cli._serving import tune_process
from engage.recommend.catalog import Product, write_catalog
from engage.store.codec import time_param
from engage.workspace import Workspace, init_workspace

TARGET_P99_MS = 2.0
TARGET_HTTP_P99_MS = 10.0
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


def quality_phase(cache: Path, seeds: list[int]) -> tuple[str, str, str, str, bool | None]:
    """MovieLens-100K under the Personalize protocol: every baseline and engage's default (`auto`), NDCG@10
    per seed and the mean (`bench/recs_quality.py` alone runs just this)."""
    began = time.perf_counter()
    choices: list[dict[str, Any]] = []
    rows = movielens_rows(cache, seeds, choices)
    print(f"0. quality: MovieLens-100K, Personalize protocol, {len(seeds)} seeds "
          f"({time.perf_counter() - began:.0f} s)")  # fmt: skip
    print("\n".join("   " + line for line in table(rows, seeds)))
    for seed, choice in zip(seeds, choices, strict=True):
        print(f"   auto on seed {seed}: {describe(choice)}")
    default = next(row for row in rows if row.model == DEFAULT)
    best = max((row for row in rows if row.model != DEFAULT), key=lambda row: row.mean_ndcg)
    return (
        "NDCG@10 on ML-100K (mean)",
        f"{default.mean_ndcg:.4f}",
        f">= {best.model} {best.mean_ndcg:.4f}",
        f"{default.mean_ndcg / best.mean_ndcg:.3f}x best baseline",
        default.mean_ndcg >= best.mean_ndcg,
    )


def warm_page_cache(path: Path) -> None:
    """Read the database file once, as `cat` would: training's memory use has just pushed it out of the
    operating system's page cache, which a server that has been answering holds warm. A read from disk
    measures the disk, not engage (measured: 1 ms more per request while half the file was evicted)."""
    with path.open("rb") as file:
        while file.read(16 * 2**20):
            pass


def serve(root: Path, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "engage.cli.main", "serve", "-w", str(root), "--port", str(port)],
        stdout=(folder / "engage-serve.log").open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "ENGAGE_LOG_LEVEL": "WARNING"},
    )
    wait_healthy(port, process)
    return process, port


def timed_gets(port: int, auth: str, paths: list[str]) -> list[float]:
    """Each GET's round trip in ms, one after another on one keep-alive connection (each must be 200)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    result = []
    for path in paths:
        started = time.perf_counter()
        connection.request("GET", path, headers={"Authorization": auth})
        response = connection.getresponse()
        body = response.read()
        result.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:300]!r}")
    connection.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4],
                        help="MovieLens-100K splits for the quality phase (none: skip it)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="engage-bench-recs-"))
    root = folder / "workspace"
    init_workspace(root)
    (root / "offers.yml").unlink()  # the shipped offers name the demo catalog's products
    tune_process()
    rows: list[tuple[str, str, str, str, bool | None]] = []
    try:
        if args.seeds:
            quality = quality_phase(Path(__file__).resolve().parents[1] / "var" / "cache", args.seeds)
            rows.append(quality)
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
        if "choice" in version.manifest:
            print(f"   auto chose {describe(version.manifest['choice'])}")

        warm_page_cache(root / "var" / "engage.db")
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
            row = history.row(size, version.model.half_life)
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
        rows.append(("for_you p99 in-process", f"{p99:.2f} ms", f"< {TARGET_P99_MS} ms",
                     f"{p99 / l99:.1f}x numpy", p99 < TARGET_P99_MS))  # fmt: skip

        process, port = serve(root, folder)
        try:
            auth = "Bearer " + engage.tokens.create("bench-recs", ["recommendations:read"]).value
            paths = [f"/v1/recommendations/{user}?n=10" for user in shoppers]
            timed_gets(port, auth, paths[:50])  # warm: the server's first load of the version
            http_ms = timed_gets(port, auth, paths)
            floor_ms = timed_gets(port, auth, ["/healthz"] * len(paths))
        finally:
            process.terminate()
            process.wait(30)
        h50, h99 = percentile(http_ms, 0.5), percentile(http_ms, 0.99)
        f99 = percentile(floor_ms, 0.99)
        print(
            f"3. for_you over HTTP (engage serve, keep-alive, answers logged as shown): p50 {h50:.2f} ms, "
            f"p99 {h99:.2f} ms; GET /healthz p99 {f99:.2f} ms; in-process p99 {p99:.2f} ms"
        )
        rows.append(("for_you p99 over HTTP", f"{h99:.2f} ms", f"< {TARGET_HTTP_P99_MS} ms",
                     f"{h99 / p99:.1f}x in-process", h99 < TARGET_HTTP_P99_MS))  # fmt: skip

        audience = [f"u{n}" for n in range(args.users)]
        began = time.perf_counter()
        answers = recommender.for_many(audience, 10)
        batch_seconds = time.perf_counter() - began
        assert len(answers) == len(audience)
        began = time.perf_counter()
        for start in range(0, version.histories.shape[0], 1000):
            block = version.model.score(version.histories[start : start + 1000])
            np.argpartition(-block, 10, axis=1)[:, :10]
        limit_seconds = time.perf_counter() - began
        batch_rate, limit_rate = len(audience) / batch_seconds, version.histories.shape[0] / limit_seconds
        print(
            f"4. campaign batch (for_many: each shopper's top 10 with reasons): {batch_rate:,.0f} shoppers/s "
            f"({len(audience):,} in {batch_seconds:.1f} s); the model's plain scoring + argpartition on one "
            f"thread: {limit_rate:,.0f} shoppers/s"
        )
        rows.append(("campaign batch scoring", f"{batch_rate:,.0f} users/s",
                     f">= {TARGET_BATCH_USERS:,}/s", f"{batch_rate / limit_rate:.2f}x numpy",
                     batch_rate >= TARGET_BATCH_USERS))  # fmt: skip
        rows.append(("retrain", f"{train_seconds:.1f} s", "report only",
                     f"fit {version.manifest['fit_seconds']:.1f} s", None))  # fmt: skip
        engage.close()
        print(f"\n{'figure':<30} {'value':>16}  {'target':<16} {'against baseline':<22} result")
        for figure, value, target, ratio, ok in rows:
            verdict = "-" if ok is None else "PASS" if ok else "FAIL"
            print(f"{figure:<30} {value:>16}  {target:<16} {ratio:<22} {verdict}")
    finally:
        if args.keep:
            print(f"workspace kept: {root}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
