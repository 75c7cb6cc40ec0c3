"""Journeys: due steps of --instances waiting journey instances, run by engage's tick, against the baseline
the design rules out: one APScheduler `DateTrigger` job per waiting user in its SQLAlchemy job store on the
same database (DESIGN.md, Scheduling).

Each database gets its own temporary workspace: the example's journeys replaced by one, `bench_cart`
(ProductAdded with a cart_id starts it; `wait: 1h`, then `send` email/welcome, a transactional template, so
quiet hours and frequency caps do not apply); email goes to a fake SendGrid in its own process (as in
bench/send.py), through the official `sendgrid` library: the hand-off is SendGrid's 202. SQLite runs one
worker, PostgreSQL two.

1. setup: --instances customers (identify with an email) and one ProductAdded each go through
   `ingestor.batch` and the stream's consumers, so the journeys consumer starts that many real instances;
   one tick starts their waits. The clock is injected: every wait ends at the same moment, an hour later.
2. throughput: the clock moves past the hour, so every instance is due at once; the worker(s) run
   `Runner.run_once()` until nothing is due (SQLite: in this process; PostgreSQL: two processes sharing
   the rows with `FOR UPDATE SKIP LOCKED`). Each instance ends its wait, records its email through
   messaging in the same transaction and ends: three rows of `journey_steps` (wait, send, exit). Figures:
   instances/s and journey steps/s (rows of `journey_steps` written per second). Nothing is dispatched.
3. lateness: fresh instances, copies of the finished ones written with SQL as if waiting, --rate x
   --seconds of them due at t0 + i / --rate in real time and the rest waiting a day, so --instances are
   active; worker process(es) on the real clock run the journeys tick and the dispatcher threads, as
   `Engage.work` does. Lateness of each message: its `sent_at` (recorded when SendGrid took it) minus
   its instance's due time; also shown, the share of it before the message was recorded.
4. baseline, on the same database: APScheduler 3 with a `SQLAlchemyJobStore` (table apscheduler_jobs),
   its default thread pool (10 threads), `misfire_grace_time=None` so no job is dropped; one job per waiting
   user whose function does what the send step does: `messaging.send("email/welcome", user, key=...)`.
   Throughput: --baseline-jobs jobs (adding them costs one transaction each: the time is shown) all due
   when the paused scheduler resumes, until each has recorded its email. Lateness: --rate x --seconds jobs
   due at t0 + i / --rate (the job store holds only these: its due query uses the next_run_time index),
   `sent_at` minus the job's run_date, through the same dispatcher in one scheduler process (APScheduler 3
   cannot share a job store between schedulers).

    .venv/bin/python bench/journeys.py [--instances 100000] [--rate 500] [--seconds 30]
        [--skip-postgres | --skip-sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import multiprocessing
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from send import configure
from sqlalchemy import create_engine, text

from engage.bootstrap import Engage, bootstrap
from engage.cli._serving import tune_process
from engage.connectors import Email
from engage.journeys import store
from engage.journeys.store import Instance
from engage.journeys.transitions import Transitions
from engage.store import utcnow
from engage.store.codec import json_value, time_value
from engage.testing.providers import start_process
from engage.workspace import Workspace, init_workspace

POSTGRES_ADMIN = os.environ.get("ENGAGE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_STEPS = 2_000  # journey steps/s with every instance due at once
TARGET_P99 = 1.0  # seconds from due to the provider's hand-off, at --rate
WAIT = timedelta(hours=1)
TEMPLATE = "email/welcome"
LOAD_CHUNK = 5_000  # calls per ingestor.batch
COPY_CHUNK = 10_000  # instances per write transaction when copying
CONNECTOR_SAMPLE = 5_000  # emails sent again to measure the SendGrid connector alone
JOURNEY = """\
name: bench_cart
description: The benchmark's journey - wait, then one email.
trigger:
  event: ProductAdded
  where:
    cart_id:
      exists: true
key: properties.cart_id
steps:
  - wait: 1h
  - send:
      channel: email
      template: welcome
"""


class Clock:
    """engage's clock while setting up and measuring throughput: moved by hand, so every wait is known."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Throughput:
    units: int
    """Instances stepped (engage) or jobs run (baseline)."""
    steps: int
    """Rows of journey_steps written (engage); jobs (baseline)."""
    seconds: float

    @property
    def per_second(self) -> float:
        return self.units / self.seconds

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds


@dataclass
class Lateness:
    due: int
    sent: int
    seconds: list[float]
    """sent_at - due, per message sent."""
    recorded: list[float]
    """created_at - due: the share before the message was recorded."""

    def p(self, share: float, values: list[float] | None = None) -> float:
        values = sorted(self.seconds if values is None else values)
        return values[min(len(values) - 1, int(share * len(values)))] if values else float("inf")


@dataclass
class Result:
    name: str
    workers: int
    setup_seconds: float
    waits_seconds: float
    throughput: Throughput
    lateness: Lateness
    baseline_add_seconds: float
    baseline: Throughput
    baseline_lateness: Lateness
    connector_rate: float
    """Emails/s the SendGrid connector takes alone, pre-rendered: the dispatcher's ceiling."""


# -- workspace and data ---------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"engage_bench_journeys_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_workspace(root: Path, database_url: str | None, fakes: Any) -> Workspace:
    init_workspace(root)
    configure(root, fakes.sendgrid_url, fakes.twilio_url)
    for path in (root / "journeys").glob("*.yml"):
        path.unlink()
    (root / "journeys" / "bench_cart.yml").write_text(JOURNEY)
    if database_url:
        endpoints = root / "endpoints.yml"
        endpoints.write_text(
            endpoints.read_text().replace("url: sqlite:///var/engage.db", f"url: {database_url}")
        )
    return Workspace.load(root)


def database_url(workspace: Workspace) -> str:
    url = workspace.endpoints.database.url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_absolute():
        return f"sqlite:///{workspace.root / url.removeprefix('sqlite:///')}"
    return url


def load_customers(engage: Engage, count: int) -> None:
    """`count` customers with an email, each adding a product to a cart of their own."""
    products = [product.id for product in engage.recommend.catalog]
    calls: list[dict[str, Any]] = []
    for n in range(count):
        calls.append(
            {
                "type": "identify",
                "userId": f"c{n}",
                "traits": {"email": f"c{n}@example.com", "first_name": f"Customer{n}"},
            }
        )
        properties = {"cart_id": f"cart-{n}", "product_id": products[n % len(products)]}
        calls.append({"type": "track", "userId": f"c{n}", "event": "ProductAdded", "properties": properties})
        if len(calls) >= LOAD_CHUNK:
            ingest(engage, calls)
            calls = []
    ingest(engage, calls)
    engage.stream.drain(engage.consumers)


def ingest(engage: Engage, calls: list[dict[str, Any]]) -> None:
    if not calls:
        return
    result = engage.ingestor.batch({"batch": calls}, size=0)
    if result.rejected:
        raise SystemExit(f"the bench's own events were rejected: {result.rejected[:3]}")


def analyze(engage: Engage) -> None:
    """PostgreSQL's statistics of the tables just filled, as autovacuum would gather them (it is off on
    some machines, and a planner without statistics reads segment memberships by a full index scan)."""
    if engage.database.engine.dialect.name == "postgresql":
        with engage.database.write() as connection:
            connection.execute(text("ANALYZE"))


def scalar(engage: Engage, sql: str, **params: Any) -> Any:
    with engage.database.read() as connection:
        return connection.execute(text(sql), params).scalar_one()


def suppress_queued(engage: Engage, why: str) -> int:
    """Messages of a finished phase that were not to be dispatched: out of the next phase's way."""
    with engage.database.write() as connection:
        return connection.execute(
            text("UPDATE messages SET status = 'suppressed', error = :why WHERE status = 'queued'"),
            {"why": why},
        ).rowcount


def copy_waiting(engage: Engage, sources: list[Instance], dues: list[datetime]) -> dict[str, datetime]:
    """Fresh instances of the same customers, as if waiting since an hour before `dues` (one each); the
    due time of each by its id."""
    written: dict[str, datetime] = {}
    for start in range(0, len(sources), COPY_CHUNK):
        changes = Transitions()
        for source, due in zip(
            sources[start : start + COPY_CHUNK], dues[start : start + COPY_CHUNK], strict=True
        ):
            changes.entered.append(
                Instance(
                    id=uuid.uuid4().hex,
                    journey=source.journey,
                    version=source.version,
                    profile_id=source.profile_id,
                    key=source.key,
                    status="active",
                    step=0,
                    due_at=due,
                    waiting_since=due - WAIT,
                    waiting_for=None,
                    trigger=source.trigger,
                    arm=None,
                    entered_at=due - WAIT,
                )  # fmt: skip
            )
        with engage.database.write() as connection:
            store.write(connection, changes)
        written.update(
            (instance.id, due) for instance, due in zip(changes.entered, dues[start:], strict=False)
        )
    return written


def finished_instances(engage: Engage) -> list[Instance]:
    with engage.database.read() as connection:
        rows = connection.execute(
            text(
                "SELECT id, journey, version, profile_id, key, trigger FROM journey_instances "
                "WHERE journey = 'bench_cart' AND status = 'completed' ORDER BY profile_id"
            )
        )
        return [
            Instance(id, journey, version, profile, key, "completed", 0, None, None, None,
                     json_value(trigger), None, datetime.min.replace(tzinfo=UTC))
            for id, journey, version, profile, key, trigger in rows
        ]  # fmt: skip


def sent_messages(engage: Engage, key_prefix: str) -> list[tuple[dict[str, Any], datetime, datetime]]:
    """(data, created_at, sent_at) of the messages sent whose send key starts with `key_prefix`."""
    with engage.database.read() as connection:
        rows = connection.execute(
            text(
                "SELECT data, created_at, sent_at FROM messages "
                "WHERE status = 'sent' AND send_key LIKE :prefix"
            ),
            {"prefix": f"{key_prefix}%"},
        )
        return [(json_value(data), time_value(created), time_value(sent)) for data, created, sent in rows]


def wait_sent(engage: Engage, before: int, expected: int, deadline: float) -> int:
    """Poll until `expected` more messages are sent than `before`, or the deadline; how many were."""
    while True:
        sent = scalar(engage, "SELECT count(*) FROM messages WHERE status = 'sent'") - before
        if sent >= expected or time.monotonic() > deadline:
            return sent
        time.sleep(0.5)


# -- engage's workers -----------------------------------------------------------------------------------


def warm(engage: Engage) -> None:
    """What a running worker has loaded already: the journeys, the templates, the recommender."""
    engage.journeys.library.load()
    engage.messaging.preview(TEMPLATE, "c0")


def throughput_worker(root: str, now: datetime, ready: Any, go: Any, results: Any) -> None:
    """One worker process: `run_once` until nothing is due (the clock stays at `now`)."""
    tune_process()
    engage = bootstrap(Workspace.load(Path(root)), migrate=False, clock=lambda: now)
    warm(engage)
    ready.put(os.getpid())
    go.wait()
    handled = 0
    while done := engage.journeys.runner.run_once():
        handled += done
    results.put((handled, time.perf_counter()))
    engage.close()


def lateness_worker(root: str, ready: Any, stop: Any) -> None:
    """One worker process on the real clock: the journeys tick and the dispatcher, as `Engage.work` runs
    them, until `stop`."""
    tune_process()
    engage = bootstrap(Workspace.load(Path(root)), migrate=False)
    warm(engage)
    halt = threading.Event()
    threads = [
        threading.Thread(target=engage.journeys.run, args=(halt,), name="journeys"),
        threading.Thread(target=engage.messaging.run, args=(halt,), name="dispatcher"),
    ]
    for thread in threads:
        thread.start()
    ready.put(os.getpid())
    stop.wait()
    halt.set()
    engage.journeys.runner.wake()
    engage.messaging.dispatcher.wake()
    for thread in threads:
        thread.join()
    engage.close()


def steps_written(engage: Engage) -> int:
    return scalar(engage, "SELECT count(*) FROM journey_steps")


def measure_throughput(
    engage: Engage, clock: Clock, workers: int, profiler: cProfile.Profile | None = None
) -> Throughput:
    """Every instance due at once: the worker(s) run batches until none is due."""
    clock.now += WAIT + timedelta(seconds=1)
    before = steps_written(engage)
    if workers == 1:
        began = time.perf_counter()
        handled = 0
        if profiler is not None:
            profiler.enable()
        while done := engage.journeys.runner.run_once():
            handled += done
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - began
    else:
        context = multiprocessing.get_context("spawn")
        ready, results, go = context.Queue(), context.Queue(), context.Event()
        processes = [
            context.Process(
                target=throughput_worker, args=(str(engage.workspace.root), clock.now, ready, go, results)
            )
            for _ in range(workers)
        ]
        for process in processes:
            process.start()
        for _ in processes:
            ready.get(timeout=120)
        began = time.perf_counter()
        go.set()
        outcomes = [results.get(timeout=3_600) for _ in processes]
        for process in processes:
            process.join()
        handled = sum(count for count, _ in outcomes)
        seconds = max(ended for _, ended in outcomes) - began
        print(f"    per worker: {', '.join(f'{count:,}' for count, _ in outcomes)} instances")
    steps = steps_written(engage) - before
    active = scalar(engage, "SELECT count(*) FROM journey_instances WHERE status = 'active'")
    assert active == 0, f"{active} instances still active after the throughput run"
    return Throughput(handled, steps, seconds)


def measure_lateness(engage: Engage, workers: int, instances: int, rate: float, seconds: float) -> Lateness:
    """Fresh waiting instances, rate x seconds of them due one after the other from t0 in real time."""
    suppress_queued(engage, "bench: recorded while measuring throughput, not dispatched")
    sources = finished_instances(engage)[:instances]
    due_count = min(len(sources), int(rate * seconds))
    later, timed = sources[due_count:], sources[:due_count]
    began = time.perf_counter()
    far = utcnow() + timedelta(days=1)
    copy_waiting(engage, later, [far] * len(later))
    per_instance = (time.perf_counter() - began) / max(1, len(later))
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    processes = [
        context.Process(target=lateness_worker, args=(str(engage.workspace.root), ready, stop))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=120)
        sent_before = scalar(engage, "SELECT count(*) FROM messages WHERE status = 'sent'")
        t0 = utcnow() + timedelta(seconds=2 + 3 * per_instance * due_count)
        dues = [t0 + timedelta(seconds=n / rate) for n in range(due_count)]
        due_at = copy_waiting(engage, timed, dues)
        late_start = (utcnow() - t0).total_seconds()
        if late_start > 0:
            print(f"    (the due instances were written {late_start:.2f} s after t0)")
        deadline = time.monotonic() + (t0 - utcnow()).total_seconds() + seconds + 120
        wait_sent(engage, sent_before, due_count, deadline)
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=60)
    active = scalar(engage, "SELECT count(*) FROM journey_instances WHERE status = 'active'")
    print(f"    {active:,} instances still active (waiting a day) after the run")
    messages = sent_messages(engage, "journey:bench_cart:")
    lateness = [(sent - due_at[data["instance"]]).total_seconds() for data, _, sent in messages]
    recorded = [(created - due_at[data["instance"]]).total_seconds() for data, created, _ in messages]
    return Lateness(due_count, len(messages), lateness, recorded)


def connector_rate(engage: Engage, sample: int) -> float:
    """Emails/s the SendGrid connector takes alone: `sample` of the journey's emails just sent, pre-rendered,
    sent again in batches of 1,000 (the dispatcher's ceiling, whatever the journeys do)."""
    with engage.database.read() as connection:
        rows = connection.execute(
            text(
                "SELECT id, address, subject, body, text FROM messages "
                "WHERE status = 'sent' AND send_key LIKE 'journey:%' LIMIT :sample"
            ),
            {"sample": sample},
        ).all()
    emails = [
        Email(id, address, subject, body, text, to_name="Customer",
              headers={"List-Unsubscribe": f"<https://example.com/u/{id}>",
                       "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
        for id, address, subject, body, text in rows
    ]  # fmt: skip
    began = time.perf_counter()
    engage.messaging.connectors.email.send_emails(emails)
    return len(emails) / (time.perf_counter() - began)


# -- the baseline: one APScheduler job per waiting user -------------------------------------------------

_BASELINE: dict[str, Any] = {}
"""The engage the jobs send through, and when each job finished (this process)."""


def baseline_job(user_id: str, key: str, scheduled: str) -> None:
    """One waiting user's job: what the journey's send step does."""
    _BASELINE["engage"].messaging.send(TEMPLATE, user_id, key=key, data={"scheduled": scheduled})
    _BASELINE["done"].append(time.perf_counter())


def baseline_scheduler(url: str) -> tuple[BackgroundScheduler, Any]:
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"timeout": 30} if sqlite else {})
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        executors={"default": ThreadPoolExecutor(10)},
        job_defaults={"misfire_grace_time": None},
        timezone=UTC,
    )
    scheduler.start(paused=True)
    return scheduler, engine


def add_jobs(
    scheduler: BackgroundScheduler, phase: str, users: list[str], run_dates: list[datetime]
) -> float:
    began = time.perf_counter()
    for n, (user, when) in enumerate(zip(users, run_dates, strict=True)):
        scheduler.add_job(
            baseline_job,
            DateTrigger(run_date=when),
            args=(user, f"apscheduler:{phase}:{user}", when.isoformat()),
            id=f"{phase}-{n}",
        )
    return time.perf_counter() - began


def jobs_left(engine: Any) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar_one()


def measure_baseline(
    engage: Engage, jobs: int, rate: float, seconds: float
) -> tuple[float, Throughput, Lateness]:
    """APScheduler on the same database: throughput with every job due at once, then lateness at `rate`."""
    url = database_url(engage.workspace)
    _BASELINE.update(engage=engage, done=[])
    warm(engage)
    scheduler, engine = baseline_scheduler(url)
    try:
        users = [f"c{n}" for n in range(jobs)]
        now = utcnow()
        add_seconds = add_jobs(scheduler, "all", users, [now] * jobs)
        print(f"    {jobs:,} jobs added in {add_seconds:,.1f} s ({jobs / add_seconds:,.0f}/s)")
        began = time.perf_counter()
        scheduler.resume()
        while len(_BASELINE["done"]) < jobs or jobs_left(engine):
            time.sleep(0.05)
        seconds_all = time.perf_counter() - began
        throughput = Throughput(jobs, jobs, seconds_all)

        scheduler.pause()
        suppress_queued(engage, "bench: recorded while measuring the baseline's throughput, not dispatched")
        _BASELINE["done"] = []
        due_count = int(rate * seconds)
        late_users = [f"c{n}" for n in range(due_count)]
        dispatcher_stop = threading.Event()
        dispatcher = threading.Thread(target=engage.messaging.run, args=(dispatcher_stop,), name="dispatcher")
        dispatcher.start()
        sent_before = scalar(engage, "SELECT count(*) FROM messages WHERE status = 'sent'")
        t0 = utcnow() + timedelta(seconds=2 + 1.5 * add_seconds / jobs * due_count)
        late_add = add_jobs(
            scheduler, "late", late_users, [t0 + timedelta(seconds=n / rate) for n in range(due_count)]
        )
        scheduler.resume()
        late_start = (utcnow() - t0).total_seconds()
        if late_start > 0:
            print(f"    (the due jobs were added {late_start:.2f} s after t0)")
        print(f"    {due_count:,} jobs due at {rate:,.0f}/s added in {late_add:,.1f} s")
        deadline = time.monotonic() + (t0 - utcnow()).total_seconds() + seconds + 120
        wait_sent(engage, sent_before, due_count, deadline)
        dispatcher_stop.set()
        engage.messaging.dispatcher.wake()
        dispatcher.join()
    finally:
        scheduler.shutdown(wait=True)
        engine.dispose()
    messages = sent_messages(engage, "apscheduler:late:")
    lateness = [
        (sent - datetime.fromisoformat(data["scheduled"])).total_seconds() for data, _, sent in messages
    ]
    recorded = [
        (created - datetime.fromisoformat(data["scheduled"])).total_seconds() for data, created, _ in messages
    ]
    return add_seconds, throughput, Lateness(due_count, len(messages), lateness, recorded)


# -- one database ---------------------------------------------------------------------------------------


def run_database(
    name: str,
    url: str | None,
    workers: int,
    args: argparse.Namespace,
    folder: Path,
    fakes: Any,
    profiler: cProfile.Profile | None = None,
) -> Result:
    print(f"\n{name}, {workers} worker{'s' if workers > 1 else ''}")
    workspace = make_workspace(folder / name.lower(), url, fakes)
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    engage = bootstrap(workspace, clock=clock)
    try:
        engage.journeys.sync()
        began = time.perf_counter()
        load_customers(engage, args.instances)
        setup_seconds = time.perf_counter() - began
        analyze(engage)
        active = scalar(engage, "SELECT count(*) FROM journey_instances WHERE status = 'active'")
        print(
            f"  1. setup: {args.instances:,} customers and ProductAdded through the ingestor and the "
            f"consumers in {setup_seconds:,.1f} s: {active:,} instances started"
        )
        began = time.perf_counter()
        engage.journeys.tick()
        waits_seconds = time.perf_counter() - began
        print(f"     one tick started their waits in {waits_seconds:,.1f} s")

        throughput = measure_throughput(engage, clock, workers, profiler)
        print(
            f"  2. throughput: {throughput.units:,} instances in {throughput.seconds:,.1f} s: "
            f"{throughput.per_second:,.0f} instances/s, {throughput.steps_per_second:,.0f} steps/s "
            f"({throughput.steps:,} journey_steps rows){' [under cProfile]' if profiler else ''}"
        )
        lateness = measure_lateness(engage, workers, args.instances, args.rate, args.seconds)
        print_lateness("  3. lateness", lateness, args.rate)
        limit = connector_rate(engage, CONNECTOR_SAMPLE)
        print(
            f"     the SendGrid connector alone, {CONNECTOR_SAMPLE:,} of those emails again: "
            f"{limit:,.0f} emails/s"
        )
        engage.close()

        engage = bootstrap(Workspace.load(workspace.root), migrate=False)
        jobs = min(args.baseline_jobs, args.instances)
        add_seconds, baseline, baseline_lateness = measure_baseline(engage, jobs, args.rate, args.seconds)
        print(
            f"  4. baseline throughput: {baseline.units:,} jobs in {baseline.seconds:,.1f} s: "
            f"{baseline.per_second:,.0f} jobs/s"
        )
        print_lateness("     baseline lateness", baseline_lateness, args.rate)
    finally:
        engage.close()
    return Result(
        name,
        workers,
        setup_seconds,
        waits_seconds,
        throughput,
        lateness,
        add_seconds,
        baseline,
        baseline_lateness,
        limit,
    )


def print_lateness(title: str, lateness: Lateness, rate: float) -> None:
    print(
        f"{title} at {rate:,.0f} due/s: {lateness.sent:,}/{lateness.due:,} sent; sent_at - due: "
        f"p50 {lateness.p(0.5):.3f} s, p99 {lateness.p(0.99):.3f} s, max {lateness.p(1.0):.3f} s "
        f"(when recorded: p50 {lateness.p(0.5, lateness.recorded):.3f} s, "
        f"p99 {lateness.p(0.99, lateness.recorded):.3f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--baseline-jobs", type=int, default=20_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile SQLite's throughput run (distorts it)"
    )
    args = parser.parse_args()
    run_began = time.perf_counter()
    tune_process()
    folder = Path(tempfile.mkdtemp(prefix="engage-bench-journeys-"))
    results = []
    profiler = cProfile.Profile() if args.profile else None
    try:
        with start_process() as fakes:
            if not args.skip_sqlite:
                results.append(run_database("SQLite", None, 1, args, folder, fakes, profiler))
            if not args.skip_postgres:
                with postgres_database(args.postgres_url) as url:
                    results.append(run_database("PostgreSQL", url, 2, args, folder, fakes))
    finally:
        if args.keep:
            print(f"workspaces kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    report(results, args)
    print(f"\nwhole run: {(time.perf_counter() - run_began) / 60:,.1f} min")
    if profiler is not None:
        print("\ncProfile of Runner.run_once on SQLite, every instance due at once (top 20, cumulative)\n")
        print(profile_report(profiler))


def report(results: list[Result], args: argparse.Namespace) -> None:
    """The figures side by side; ratio = engage / baseline (above 1 is better for rates, below 1 for
    lateness). A baseline job is one waiting user's send: it compares with an instance, not with each of
    the instance's three journey_steps rows, so steps/s has no baseline."""
    print(f"\n{'figure':<38} {'engage':>10} {'baseline':>10} {'ratio':>7}  {'target':<16} result")
    for result in results:
        engage, baseline = result.throughput, result.baseline
        late, base_late = result.lateness, result.baseline_lateness
        where = result.name
        rows = [
            (f"{where}: instances (jobs)/s, all due", f"{engage.per_second:,.0f}",
             f"{baseline.per_second:,.0f}", engage.per_second / baseline.per_second, "report only", None),
            (f"{where}: journey steps/s, all due", f"{engage.steps_per_second:,.0f}", "-", None,
             f">= {TARGET_STEPS:,}/s", engage.steps_per_second >= TARGET_STEPS),
            (f"{where}: lateness p99 at {args.rate:,.0f}/s", f"{late.p(0.99):.3f} s",
             f"{base_late.p(0.99):.3f} s", late.p(0.99) / base_late.p(0.99), f"< {TARGET_P99:g} s",
             late.p(0.99) < TARGET_P99 and late.sent == late.due),
            (f"{where}: SendGrid alone, emails/s", f"{result.connector_rate:,.0f}", "-", None, "report only",
             None),
        ]  # fmt: skip
        for name, value, base, ratio, target, ok in rows:
            verdict = "-" if ok is None else "PASS" if ok else "FAIL"
            shown = "-" if ratio is None else f"{ratio:.2f}"
            print(f"{name:<38} {value:>10} {base:>10} {shown:>7}  {target:<16} {verdict}")
    print(
        "(engage: SQLite 1 worker, PostgreSQL 2 worker processes; baseline: one scheduler process, "
        f"10 threads; its throughput over {min(args.baseline_jobs, args.instances):,} jobs)"
    )


def profile_report(profiler: cProfile.Profile, top: int = 20) -> str:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
