"""Sustained load in production mode: 2 `engage serve` and 2 `engage worker` processes on PostgreSQL and
RabbitMQ, storefront traffic over HTTP at a fixed rate for a fixed time, journeys sending to the fake
SendGrid in its own process. Loopback only, bounded in time.

What it reports:
- events/s offered and accepted, and whether the rate held (the generator never fell behind its schedule
  by more than a second);
- ingest latency per `/v1/batch` request (p50, p99), against the same server's `/healthz` round trip
  measured in the same run (the floor of an HTTP request here);
- end-to-end lag from a probe's ProductAdded accepted to its `SegmentEntered users_with_cart` in the log;
- nothing lost: events accepted = events in the log = events every consumer handled (each consumer's
  offset reached the last event of every partition, no dead letters, profiles counted each event once);
- messages: signups = welcome emails engage recorded as sent = deliveries at the fake SendGrid, none twice
  (counted once the dispatcher has nothing queued).

    .venv/bin/python bench/load.py [--minutes 10] [--rate 3000] [--batch 100]
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import signal
import tempfile
import threading
import time
import uuid
from base64 import b64encode
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pika
from ingest import _engage, cpu_seconds, free_port, postgres_database, process_log, wait_healthy
from send import configure
from sqlalchemy import text

from engage.events.stream.base import partition_of
from engage.events.stream.rabbitmq import queue_name
from engage.store import Database
from engage.testing.control import FakeControl
from engage.testing.process import start_process
from engage.workspace import Workspace, init_workspace

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PARTITIONS = 8
CONSUMERS = ("profiles", "segments", "recommend", "journeys", "chat")
SIGNUP_EVERY = 400  # one new customer (identify + UserSignedUp: a welcome email) per this many events


def workspace(root: Path, database_url: str, exchange: str, sendgrid_url: str, twilio_url: str) -> Workspace:
    init_workspace(root)
    endpoints = root / "endpoints.yml"
    content = endpoints.read_text()
    content = content.replace("url: sqlite:///var/engage.db", f"url: {database_url}\n  pool_size: 10")
    content = content.replace("type: inprocess", f"type: rabbitmq\n  url: {RABBITMQ_URL}")
    content = content.replace("exchange: engage.events", f"exchange: {exchange}")
    endpoints.write_text(content.replace("  pool_size: 5\n", "", 1))
    configure(root, sendgrid_url, twilio_url)
    for journey in (root / "journeys").glob("*.yml"):
        if journey.stem != "signup_welcome":  # the others wait hours or days: nothing to see in minutes
            journey.unlink()
    return Workspace.load(root)


class Traffic:
    """Batches of Segment calls: product views and adds of known shoppers, now and then a signup."""

    def __init__(self, batch: int, users: int = 20_000):
        self.batch = batch
        self.users = users
        self.sequence = 0
        self.signups = 0

    def next_batch(self) -> bytes:
        now = datetime.now(UTC).isoformat()
        calls = []
        for _ in range(self.batch):
            n = self.sequence
            self.sequence += 1
            if n % SIGNUP_EVERY == 0:
                self.signups += 1
                user = f"new-{self.signups}"
                calls.append(
                    {
                        "type": "identify",
                        "userId": user,
                        "messageId": f"i{n}",
                        "timestamp": now,
                        "traits": {"email": f"{user}@shop.example"},
                    }
                )
                calls.append(
                    {
                        "type": "track",
                        "event": "UserSignedUp",
                        "userId": user,
                        "messageId": f"s{n}",
                        "timestamp": now,
                    }
                )
                continue
            event = "ProductAdded" if n % 12 == 0 else "ProductViewed"
            calls.append(
                {
                    "type": "track",
                    "event": event,
                    "userId": f"shopper-{n % self.users}",
                    "messageId": f"e{n}",
                    "timestamp": now,
                    "properties": {"product_id": f"p{n % 2500}", "price": 19.99},
                }
            )
        return orjson.dumps({"batch": calls})


class Load:
    """Open loop: one batch every `batch / rate` seconds, whatever the answers, from `clients` keep-alive
    connections spread over the API processes."""

    def __init__(self, ports: list[int], write_key: str, rate: float, batch: int, clients: int = 16):
        self.ports = ports
        self.auth = "Basic " + b64encode(f"{write_key}:".encode()).decode()
        self.interval = batch / rate
        self.traffic = Traffic(batch)
        self.clients = clients
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.by_minute: dict[int, list[float]] = {}  # the same latencies by the minute they were due in
        self.accepted = 0
        self.failed: Counter[str] = Counter()
        self.lag_behind = 0.0
        self.next_due = 0.0
        self.stop_at = 0.0

    def run(self, seconds: float) -> None:
        self.next_due = time.perf_counter()
        self.stop_at = self.next_due + seconds
        threads = [
            threading.Thread(target=self._client, args=(self.ports[n % len(self.ports)],))
            for n in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _client(self, port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with self.lock:
                due = self.next_due
                if due >= self.stop_at:
                    return
                self.next_due += self.interval
                body = self.traffic.next_batch()
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:
                with self.lock:
                    self.lag_behind = max(self.lag_behind, -wait)
            began = time.perf_counter()
            try:
                connection.request(
                    "POST",
                    "/v1/batch",
                    body=body,
                    headers={"Authorization": self.auth, "Content-Type": "application/json"},
                )
                response = connection.getresponse()
                payload = orjson.loads(response.read())
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.failed[type(exc).__name__] += 1
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            elapsed = time.perf_counter() - began
            with self.lock:
                if response.status == 200:
                    self.accepted += payload["accepted"]
                    self.latencies.append(elapsed)
                    minute = int((due - self.stop_at) // 60)  # negative: minutes before the end
                    self.by_minute.setdefault(minute, []).append(elapsed)
                else:
                    self.failed[str(response.status)] += 1


def probe_lags(
    port: int,
    write_key: str,
    database: Database,
    stop: threading.Event,
    drained: threading.Event,
    lags: list[float],
    unseen: list[str],
) -> None:
    """Every 2 s until `stop`, a new shopper with an email adds to the cart (`users_with_cart`); a probe's
    lag is from its batch's 200 to its SegmentEntered in the log. Probes are watched until `drained`; those
    never seen are left in `unseen`."""
    auth = "Basic " + b64encode(f"{write_key}:".encode()).decode()
    pending: dict[str, float] = {}
    number, next_probe = 0, time.perf_counter() + 2.0
    while not drained.is_set():
        if not stop.is_set() and time.perf_counter() >= next_probe:
            number += 1
            user = f"probe-{uuid.uuid4().hex[:8]}-{number}"
            pending[user] = _send_probe(port, auth, user)
            next_probe += 2.0
        if pending:
            with database.read() as db:
                found = db.execute(  # by the indexed profile: a scan of the log would load the database
                    text(
                        "SELECT i.value FROM identities i JOIN event_log e ON e.profile_id = i.profile_id "
                        "WHERE i.kind = 'user' AND i.value = ANY(:users) AND e.event = 'SegmentEntered' "
                        "AND CAST(e.properties AS TEXT) LIKE '%users_with_cart%'"
                    ),
                    {"users": list(pending)},
                ).scalars()
                seen_at = time.perf_counter()
                for user in set(found):
                    lags.append(seen_at - pending.pop(user))
        time.sleep(0.02)
    unseen.extend(pending)


def _send_probe(port: int, auth: str, user: str) -> float:
    """POST the probe's batch; returns when it was accepted (perf_counter)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # the API closes idle ones
    body = orjson.dumps(
        {
            "batch": [
                {
                    "type": "identify",
                    "userId": user,
                    "messageId": f"probe-i-{user}",
                    "traits": {"email": f"{user}@shop.example"},
                },
                {
                    "type": "track",
                    "event": "ProductAdded",
                    "userId": user,
                    "messageId": f"probe-{user}",
                    "properties": {"product_id": "p1", "price": 5},
                },
            ]
        }
    )
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    connection.request("POST", "/v1/batch", body=body, headers=headers)
    connection.getresponse().read()
    connection.close()
    return time.perf_counter()


def health_round_trips(port: int, count: int = 200) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for _ in range(count):
        began = time.perf_counter()
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        times.append(time.perf_counter() - began)
        time.sleep(0.005)
    return times


class CatchUp:
    """Whether every consumer's offset reached the last event of every partition. Each check reads only
    the events logged since the previous one: scanning the whole log every second would load the database
    the workers are draining into."""

    def __init__(self, database: Database):
        self.database = database
        self.scanned = 0
        self.last: dict[int, int] = {}  # partition → its last event's seq

    def check(self) -> tuple[bool, int, int]:
        """(caught up, events in the log, dead letters)."""
        with self.database.read() as db:
            for profile, seq in db.execute(
                text("SELECT profile_id, seq FROM event_log WHERE seq > :after ORDER BY seq"),
                {"after": self.scanned},
            ):
                partition = partition_of(profile, PARTITIONS)
                self.last[partition] = max(self.last.get(partition, 0), seq)
                self.scanned = seq
            offsets = {
                (c, p): s
                for c, p, s in db.execute(text("SELECT consumer, partition, seq FROM stream_offsets"))
            }
            logged = db.execute(text("SELECT count(*) FROM event_log")).scalar_one()
            dead = db.execute(text("SELECT count(*) FROM dead_letters")).scalar_one()
        consumers = {c for c, _ in offsets}
        done = all(offsets.get((c, p), 0) >= seq for c in CONSUMERS for p, seq in self.last.items())
        return done and set(CONSUMERS) <= consumers, logged, dead


def settled_messages(
    database: Database, sendgrid: FakeControl, seconds: float = 30.0
) -> tuple[int, int, list]:
    """(emails sent, emails still queued, deliveries at the fake SendGrid) once the dispatcher has nothing
    queued and every send has arrived, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        with database.read() as db:
            counts = dict(
                db.execute(
                    text(
                        "SELECT status IN ('sent', 'delivered'), count(*) FROM messages "
                        "WHERE status IN ('sent', 'delivered', 'queued', 'sending') GROUP BY 1"
                    )
                ).all()
            )
        deliveries = sendgrid.state()["deliveries"]
        sent, queued = counts.get(True, 0), counts.get(False, 0)
        if (queued == 0 and len(deliveries) == sent) or time.monotonic() > deadline:
            return sent, queued, deliveries
        time.sleep(1.0)


class AutovacuumStandIn:
    """Vacuums and analyzes each table past autovacuum's default thresholds, every `every` seconds.

    Only when the server runs with `autovacuum = off` (as this machine's does): hot tables (profiles,
    segment states, offsets) would otherwise gather dead rows for the whole run, which no production
    PostgreSQL does.
    """

    def __init__(self, database: Database, every: float = 30.0):
        self.database = database
        self.every = every
        self.done: Counter[str] = Counter()

    def needed(self) -> bool:
        with self.database.read() as connection:
            return connection.execute(text("SHOW autovacuum")).scalar_one() == "off"

    def run(self, stop: threading.Event) -> None:
        with self.database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            while not stop.wait(self.every):
                due = connection.execute(  # autovacuum's default thresholds and scale factors
                    text(
                        "SELECT relname, to_vacuum, to_analyze FROM (SELECT relname, "
                        "n_dead_tup > 50 + 0.2 * n_live_tup OR n_ins_since_vacuum > 1000 + 0.2 * n_live_tup "
                        "AS to_vacuum, n_mod_since_analyze > 50 + 0.1 * n_live_tup AS to_analyze "
                        "FROM pg_stat_user_tables WHERE schemaname = 'public') AS tables "  # not temporary
                        "WHERE to_vacuum OR to_analyze"
                    )
                ).all()
                for table, vacuum, analyze in due:
                    command = "VACUUM (ANALYZE)" if vacuum and analyze else "VACUUM" if vacuum else "ANALYZE"
                    connection.execute(text(f'{command} "{table}"'))
                    self.done[command] += 1


def delete_queues(exchange: str) -> None:
    """The run's exchange and partition queues: each run declares its own."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    for partition in range(PARTITIONS):
        channel.queue_delete(queue_name(exchange, partition))
    channel.exchange_delete(exchange)
    connection.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=3000.0, help="events per second offered")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    created = postgres_database()
    if created is None:
        raise SystemExit("PostgreSQL is not reachable on 127.0.0.1:5432")
    database_url, drop = created
    folder = Path(tempfile.mkdtemp(prefix="engage-load-"))
    fakes = start_process()
    exchange = f"engage.load.{uuid.uuid4().hex[:8]}"
    processes = []
    vacuuming = None
    stop, drained = threading.Event(), threading.Event()
    try:
        shop = workspace(folder / "shop", database_url, exchange, fakes.sendgrid_url, fakes.twilio_url)
        write_key = shop.endpoints.ingest.write_keys[0]
        ports = [free_port() for _ in range(args.apis)]
        processes = [_engage("serve", folder / "shop", "--port", str(port)) for port in ports]
        processes += [_engage("worker", folder / "shop") for _ in range(args.workers)]
        for port, process in zip(ports, processes, strict=False):
            wait_healthy(port, process)
        database = Database(database_url)
        floor = health_round_trips(ports[0])
        print(
            f"{args.apis} API + {args.workers} worker processes on PostgreSQL + RabbitMQ ({PARTITIONS} "
            f"partitions); {args.rate:,.0f} events/s in batches of {args.batch} for {args.minutes} min"
        )

        lags: list[float] = []
        unseen: list[str] = []
        prober = threading.Thread(
            target=probe_lags, args=(ports[-1], write_key, database, stop, drained, lags, unseen)
        )
        prober.start()  # stopped by `drained`, set below or in `finally`
        vacuum = AutovacuumStandIn(database)
        if vacuum.needed():
            vacuuming = threading.Thread(target=vacuum.run, args=(drained,))
            vacuuming.start()  # stopped by `drained` too
        load = Load(ports, write_key, args.rate, args.batch)
        cpu_before = [cpu_seconds(process.pid) for process in processes]
        began = time.perf_counter()
        load.run(args.minutes * 60)
        seconds = time.perf_counter() - began
        cpu = [
            (cpu_seconds(p.pid) - before) / seconds for p, before in zip(processes, cpu_before, strict=True)
        ]
        stop.set()

        deadline, catch_up = time.monotonic() + 300, CatchUp(database)
        while True:
            done, logged, dead = catch_up.check()
            if done or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        drained.set()
        prober.join()
        drain_seconds = time.perf_counter() - began - seconds
        with database.read() as db:
            storefront = db.execute(  # the generator's message ids: e<n>, i<n>, s<n>
                text("SELECT count(*) FROM event_log WHERE message_id ~ '^[eis][0-9]+$'")
            ).scalar_one()
            counted, customer_events = db.execute(  # the profiles consumer counts each customer event once
                text(
                    "SELECT (SELECT coalesce(sum(event_count), 0) FROM profiles), "
                    "(SELECT count(*) FROM event_log WHERE channel <> 'system')"
                )
            ).one()
        sent, queued, deliveries = settled_messages(database, FakeControl(fakes.sendgrid_url))
        warnings = {process.pid: process_log(process).splitlines() for process in processes}
        keys = Counter(d["custom_args"].get("send_id") or (tuple(d["to"]), d["subject"]) for d in deliveries)
        twice = sum(1 for n in keys.values() if n > 1)
        database.dispose()
    finally:
        stop.set()
        drained.set()
        if vacuuming is not None:
            vacuuming.join()  # before the database is dropped
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except Exception:  # noqa: BLE001 - a bench cleans up whatever happened
                process.kill()
        fakes.stop()
        drop()
        delete_queues(exchange)
        shutil.rmtree(folder, ignore_errors=True)

    p50, p99 = percentile(load.latencies, 0.5) * 1000, percentile(load.latencies, 0.99) * 1000
    floor_p99 = percentile(floor, 0.99) * 1000
    print(
        f"events accepted: {load.accepted:,} in {seconds:.0f} s = {load.accepted / seconds:,.0f} events/s "
        f"(offered {args.rate:,.0f}; the generator fell behind by at most {load.lag_behind:.2f} s; "
        f"failed requests: {dict(load.failed) or 'none'})"
    )
    print(
        f"ingest latency per batch of {args.batch}: p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
        f"baseline /healthz round trip p99 {floor_p99:.1f} ms (ratio {p99 / floor_p99:.1f})"
    )
    minutes = [percentile(values, 0.99) * 1000 for _, values in sorted(load.by_minute.items())]
    print("ingest latency p99 minute by minute: " + ", ".join(f"{value:.0f}" for value in minutes) + " ms")
    print(
        f"lag to SegmentEntered ({len(lags)} probes, one every 2 s): "
        f"p50 {percentile(lags, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(lags, 0.99) * 1000:.0f} ms, max {max(lags, default=float('nan')) * 1000:.0f} ms; "
        f"never seen: {len(unseen)}"
    )
    print(
        f"nothing lost: storefront events in the log {storefront:,} (accepted {load.accepted:,}); "
        f"every consumer at the end of every partition: {done} ({drain_seconds:.0f} s after the load, "
        f"{logged:,} events in the log); dead letters {dead}; profiles counted {counted:,} of "
        f"{customer_events:,} customer events"
    )
    print(
        f"messages: {load.traffic.signups:,} signups expect a welcome email; {sent:,} sent (queued still "
        f"{queued}), {len(deliveries):,} delivered at the fake SendGrid, delivered twice: {twice}"
    )
    if vacuum.done:
        print(
            "PostgreSQL's autovacuum is off here; the bench did its work at its default thresholds: "
            + ", ".join(f"{command} ×{count}" for command, count in sorted(vacuum.done.items()))
        )
    print("CPU share of a core: " + ", ".join(f"{share:.0%}" for share in cpu))
    for pid, lines in warnings.items():
        if lines:
            print(f"process {pid} logged {len(lines)} lines; the last ones:", *lines[-5:], sep="\n  ")
    ok = load.accepted / seconds >= 3000 and p99 < 100 and storefront == load.accepted and done and dead == 0
    ok = ok and counted == customer_events
    ok = ok and load.traffic.signups == sent == len(deliveries) and not twice
    print(f"target ≥ 3,000 events/s with p99 < 100 ms, nothing lost: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
