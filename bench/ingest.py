"""Ingestion throughput: HTTP `/v1/batch` to durable storage with profiles updated, against the raw limit.

For each database (SQLite, the embedded default, and PostgreSQL) this starts a real `engage run`
process (API and worker), sends storefront traffic from client threads in this process, and stops the
clock when every event is stored and the profiles consumer has applied it. The baseline, measured in the
same run on the same database: the very same rows inserted with the driver's `executemany` into a copy
of the event table (same columns, same indexes), one transaction per batch.

    .venv/bin/python bench/ingest.py [--events 200000] [--batch 500] [--clients 4] [--mode split|run]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from base64 import b64encode
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import create_engine, text

from engage.events.consumers import offset_of
from engage.store import Database
from engage.workspace import Workspace, init_workspace

POSTGRES_ADMIN = os.environ.get("ENGAGE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_SQLITE = 15_000
TARGET_RATIO = 0.30


def storefront_batches(events: int, batch: int, users: int, seed: int = 1) -> list[bytes]:
    """Retail-Demo-Store-like traffic: mostly product views, a funnel, signups that carry history over."""
    rng = random.Random(seed)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    names = ["ProductViewed"] * 80 + ["ProductAdded"] * 8 + ["CartViewed"] * 5 + ["CheckoutStarted"] * 2
    calls = []
    for n in range(events):
        user = rng.randrange(users)
        ids = {"anonymousId": f"anon-{user}"}
        if user % 3 == 0:
            ids["userId"] = f"user-{user}"
        when = (start + timedelta(seconds=n)).isoformat()
        if n % 50 == 0:
            calls.append(
                {
                    "type": "identify",
                    "messageId": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "timestamp": when,
                    "userId": f"user-{user}",
                    "anonymousId": f"anon-{user}",
                    "traits": {"email": f"user-{user}@shop.example", "firstName": "Sam", "plan": "gold"},
                }
            )
            continue
        calls.append(
            {
                "type": "track",
                "messageId": uuid.UUID(int=rng.getrandbits(128)).hex,
                "timestamp": when,
                "event": rng.choice(names),
                **ids,
                "properties": {
                    "product_id": f"p{rng.randrange(2500)}",
                    "category": f"c{rng.randrange(20)}",
                    "price": round(rng.uniform(2, 300), 2),
                    "quantity": 1,
                },
                "context": {
                    "ip": "203.0.113.9",
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                    "locale": "en-US",
                },
            }
        )
    return [orjson.dumps({"batch": calls[i : i + batch]}) for i in range(0, len(calls), batch)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"engage exited early:\n{process_log(process)}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("engage run did not become healthy")


def send_all(ports: list[int], bodies: list[bytes], write_key: str, clients: int) -> tuple[int, list[float]]:
    """Post every body from `clients` keep-alive connections, spread over the API processes' ports;
    returns the accepted count and the request latencies."""
    auth = "Basic " + b64encode(f"{write_key}:".encode()).decode()
    queue = list(reversed(bodies))
    lock = threading.Lock()
    accepted = [0]
    latencies: list[float] = []

    def client(port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            began = time.perf_counter()
            connection.request(
                "POST",
                "/v1/batch",
                body=body,
                headers={"Authorization": auth, "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            payload = orjson.loads(response.read())
            if response.status != 200:
                raise SystemExit(f"batch failed: {response.status} {payload}")
            with lock:
                accepted[0] += payload["accepted"]
                latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client, args=(ports[n % len(ports)],)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted[0], latencies


PROCESS_LOGS: dict[int, Path] = {}
"""Where each process `_engage` started writes its output, by pid."""


def _engage(command: str, root: Path, *extra: str) -> subprocess.Popen[bytes]:
    """An engage process logging to a file beside the workspace: a pipe nobody reads would block it once
    its warnings filled the pipe's buffer."""
    path = root.parent / f"{command}-{len(PROCESS_LOGS) + 1}.log"
    with path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "engage.cli.main", command, "-w", str(root), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"ENGAGE_LOG_LEVEL": "WARNING", **os.environ},
        )
    PROCESS_LOGS[process.pid] = path
    return process


def process_log(process: subprocess.Popen[bytes]) -> str:
    path = PROCESS_LOGS.get(process.pid)
    return path.read_text(errors="replace") if path is not None and path.exists() else ""


def measure_engage(root: Path, bodies: list[bytes], clients: int, mode: str, apis: int) -> dict[str, float]:
    """`run`: API and worker in one process (the embedded default); `split`: `apis` × `engage serve`
    and one `engage worker`, as a load balancer in front of several API processes would run them."""
    workspace = Workspace.load(root)
    ports = [free_port() for _ in range(1 if mode == "run" else apis)]
    # `run` without the chatbot: these figures are ingestion's, and Rasa would share the cores.
    command, extra = ("run", ["--no-bot"]) if mode == "run" else ("serve", [])
    processes = [_engage(command, root, *extra, "--port", str(port)) for port in ports]
    if mode == "split":
        processes.append(_engage("worker", root))
    database = Database(workspace.endpoints.database.url)
    try:
        for port, process in zip(ports, processes, strict=False):
            wait_healthy(port, process)
        began = time.perf_counter()
        accepted, latencies = send_all(ports, bodies, workspace.endpoints.ingest.write_keys[0], clients)
        stored = time.perf_counter()
        with database.read() as connection:
            last = connection.execute(text("SELECT max(seq) FROM event_log")).scalar_one()
        while offset_of(database, "profiles") < last:
            time.sleep(0.02)
        done = time.perf_counter()
        cpu = [cpu_seconds(process.pid) for process in processes]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        database.dispose()
    latencies.sort()
    return {
        "accepted": accepted,
        "seconds": done - began,
        "events_per_s": accepted / (done - began),
        "stored_per_s": accepted / (stored - began),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "cpu": [seconds / (done - began) for seconds in cpu],
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_raw(url: str, batch: int) -> float:
    """The same rows, inserted with executemany into an identical empty table of the same database."""
    database = Database(url)  # the same connection settings (pragmas, pool) engage itself uses
    engine = database.engine
    columns = (
        "message_id, type, event, channel, profile_id, user_id, anonymous_id, timestamp, received_at, "
        "properties, traits, context"
    )
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS event_log_raw")
        if engine.dialect.name == "sqlite":
            for (ddl,) in connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'event_log' AND sql IS NOT NULL "
                "ORDER BY type DESC"
            ).all():
                ddl = re.sub(r"\bevent_log\b", "event_log_raw", ddl)
                connection.exec_driver_sql(re.sub(r"\bix_event_log", "ix_event_log_raw", ddl))
        else:
            connection.exec_driver_sql("CREATE TABLE event_log_raw (LIKE event_log INCLUDING ALL)")
        rows = connection.exec_driver_sql(f"SELECT {columns} FROM event_log ORDER BY seq").all()
    if engine.dialect.name == "postgresql":
        rows = [tuple(orjson.dumps(v).decode() if isinstance(v, dict) else v for v in row) for row in rows]
    marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO event_log_raw ({columns}) VALUES ({', '.join([marker] * 12)})"
    sqlite = engine.dialect.name == "sqlite"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if sqlite:  # start from an empty WAL, as engage did, so the run pays for no one else's checkpoint
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        began = time.perf_counter()
        for start in range(0, len(rows), batch):
            if sqlite:  # engage's connections manage transactions themselves (BEGIN IMMEDIATE)
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, rows[start : start + batch])
            if sqlite:
                cursor.execute("COMMIT")
            else:
                raw.commit()
        seconds = time.perf_counter() - began
    finally:
        raw.close()
        database.dispose()
    return len(rows) / seconds


def postgres_database() -> tuple[str, callable] | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            pass
    except OSError:
        return None
    name = f"engage_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="events per /v1/batch request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client connections")
    parser.add_argument("--users", type=int, default=6_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--apis", type=int, default=1, help="`engage serve` processes in split mode")
    parser.add_argument(
        "--mode",
        choices=["run", "split"],
        default="split",
        help="run: `engage run` (one process); split: `engage serve` + `engage worker`",
    )
    args = parser.parse_args()

    bodies = storefront_batches(args.events, args.batch, args.users)
    print(
        f"{args.events:,} storefront events in {len(bodies)} batches of {args.batch}, "
        f"{args.clients} client connections, {os.cpu_count()} cores, mode {args.mode}\n"
    )
    results = []
    for kind in args.databases.split(","):
        folder = Path(tempfile.mkdtemp(prefix=f"engage-bench-{kind}-"))
        cleanup = None
        try:
            root = folder / "workspace"
            init_workspace(root)
            if kind == "postgres":
                created = postgres_database()
                if created is None:
                    print("postgres: not reachable on 127.0.0.1:5432, skipped")
                    continue
                url, cleanup = created
                endpoints = root / "endpoints.yml"
                endpoints.write_text(
                    endpoints.read_text().replace("url: sqlite:///var/engage.db", f"url: {url}")
                )
            url = Workspace.load(root).endpoints.database.url
            engage = measure_engage(root, bodies, args.clients, args.mode, args.apis)
            raw = measure_raw(url, args.batch)
            results.append((kind, engage, raw))
        finally:
            if cleanup:
                cleanup()
            shutil.rmtree(folder, ignore_errors=True)

    print(
        f"{'database':<10} {'engage ev/s':>12} {'stored ev/s':>12} {'raw rows/s':>11} {'ratio':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7}  per request of {args.batch}"
    )
    for kind, engage, raw in results:
        ratio = engage["events_per_s"] / raw
        print(
            f"{kind:<10} {engage['events_per_s']:>12,.0f} {engage['stored_per_s']:>12,.0f} {raw:>11,.0f} "
            f"{ratio:>6.0%} {engage['p50_ms']:>7.1f} {engage['p99_ms']:>7.1f}"
        )
    print("\nengage ev/s: from the first request until every event is stored and applied to its profile.")
    for kind, engage, _raw in results:
        busy = ", ".join(f"{share:.0%}" for share in engage["cpu"])
        roles = "run" if args.mode == "run" else "serve, worker"
        print(f"  {kind}: CPU busy per engage process ({roles}): {busy}")
    print(f"targets: sqlite >= {TARGET_SQLITE:,} ev/s; every database >= {TARGET_RATIO:.0%} of its raw limit")
    for kind, engage, raw in results:
        ok = engage["events_per_s"] / raw >= TARGET_RATIO and (
            kind != "sqlite" or engage["events_per_s"] >= TARGET_SQLITE
        )
        print(f"  {kind}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
