"""The RabbitMQ stream against a real broker, on SQLite and PostgreSQL.

Each test uses its own exchange (and so its own queues), deleted afterwards, and its own database.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from urllib.parse import urlsplit

import pika
import pytest
from pika.exceptions import AMQPError
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import OperationalError

from engage.events.consumers import ConsumerRegistry
from engage.events.log import EventLog, LoggedEvent
from engage.events.schema import parse_event
from engage.events.stream.rabbitmq import RabbitMQStream, queue_name
from engage.store import Database, upgrade, utcnow
from engage.store.models import Lease, StreamOffset

pytestmark = pytest.mark.rabbitmq

RABBITMQ_URL = os.environ.get("ENGAGE_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/%2F")
PARTITIONS = 2
DEADLINE = 15.0


def require_rabbitmq() -> None:
    try:
        pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL)).close()
        return
    except (AMQPError, OSError) as exc:
        reason = f"RabbitMQ is not reachable at {RABBITMQ_URL} ({exc!r})"
    if os.environ.get("ENGAGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; ENGAGE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


@pytest.fixture
def exchange() -> Iterator[str]:
    require_rabbitmq()
    name = f"engage.test.{uuid.uuid4().hex[:12]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    for partition in range(PARTITIONS):
        channel.queue_delete(queue_name(name, partition))
    channel.exchange_delete(name)
    connection.close()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """`database_url` (tests/conftest.py) is a SQLite file, then a fresh PostgreSQL database."""
    db = Database(database_url)
    upgrade(db)
    yield db
    db.dispose()


class Recorder:
    """A consumer that only remembers what it was handed: (seq, profile_id), in order."""

    def __init__(self, seen: list[tuple[int, str]], lock: threading.Lock, name: str = "recorder"):
        self.name = name
        self.seen = seen
        self.lock = lock

    def handle(self, connection: Connection, events: Sequence[LoggedEvent]) -> None:
        with self.lock:
            self.seen.extend((event.seq, event.profile_id) for event in events)


class Flaky(Recorder):
    """Fails like a database that is down, the first `failures` times."""

    def __init__(self, seen: list[tuple[int, str]], lock: threading.Lock, failures: int):
        super().__init__(seen, lock)
        self.failures = failures

    def handle(self, connection: Connection, events: Sequence[LoggedEvent]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OperationalError("SELECT 1", {}, Exception("database is down"))
        super().handle(connection, events)


class Worker:
    """One `RabbitMQStream.run` in a thread, as an `engage worker` process would run it."""

    def __init__(
        self,
        database: Database,
        exchange: str,
        consumer: Recorder | None,
        batch_size: int = 7,
        url: str = RABBITMQ_URL,
    ):
        self.stream = RabbitMQStream(
            database,
            EventLog(database),
            url=url,
            partitions=PARTITIONS,
            exchange=exchange,
            batch_size=batch_size,
        )
        self.stream.relay.renew_seconds = 0.3  # retry a held lease quickly; the lease still lasts 10 s
        self.stream.balance_seconds = 0.3
        self.registry = ConsumerRegistry()
        if consumer is not None:  # without consumers, a worker only relays
            self.registry.register(consumer)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.stream.run, args=(self.registry, self.stop), daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.stream.close()
        assert not self.thread.is_alive(), "the stream did not stop"

    @property
    def relayed(self) -> int:
        return self.stream.relay.published_events


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


def append(log: EventLog, count: int, users: int = 12) -> None:
    now = utcnow()
    events = [
        parse_event(
            {
                "type": "track",
                "event": "ProductViewed",
                "userId": f"user-{index % users}",
                "messageId": f"m-{uuid.uuid4().hex}",
                "properties": {"sku": f"sku-{index}"},
            },
            received_at=now,
        )
        for index in range(count)
    ]
    assert log.append(events, received_at=now).accepted == count


def all_seqs(log: EventLog) -> list[int]:
    return [event.seq for event in log.read(after_seq=0, limit=100_000)]


def assert_once_in_order(seen: list[tuple[int, str]], log: EventLog) -> None:
    seqs = [seq for seq, _ in seen]
    assert len(seqs) == len(set(seqs)), "an event was handled twice"
    assert sorted(seqs) == all_seqs(log), "an event was never handled"
    by_profile: dict[str, list[int]] = {}
    for seq, profile in seen:
        by_profile.setdefault(profile, []).append(seq)
    for profile, profile_seqs in by_profile.items():
        assert profile_seqs == sorted(profile_seqs), f"events of {profile} handled out of order"


def relay_checkpoint(database: Database) -> int | None:
    offsets = StreamOffset.__table__
    with database.read() as connection:
        return connection.execute(
            select(offsets.c.seq).where(offsets.c.consumer == "relay:rabbitmq", offsets.c.partition == 0)
        ).scalar_one_or_none()


def lease_holder(database: Database) -> str | None:
    leases = Lease.__table__
    with database.read() as connection:
        return connection.execute(
            select(leases.c.holder).where(leases.c.name == "stream-relay")
        ).scalar_one_or_none()


def test_two_workers_share_the_partitions_and_deliver_everything_once_in_order(
    exchange: str, database: Database
) -> None:
    log, seen, lock = EventLog(database), [], threading.Lock()
    with (
        Worker(database, exchange, Recorder(seen, lock)) as first,
        Worker(database, exchange, Recorder(seen, lock)) as second,
    ):
        for _ in range(8):
            append(log, 25)
            first.stream.notify()
            second.stream.notify()
        total = len(all_seqs(log))
        wait_for(lambda: len(seen) >= total, "every event to be handled")
        time.sleep(0.3)  # anything extra (a duplicate) would show up now
    print("messages handled by each worker:", first.stream.handled_messages, second.stream.handled_messages)
    assert_once_in_order(seen, log)
    assert first.relayed + second.relayed == total, "exactly one worker relays"
    assert {first.relayed, second.relayed} == {0, total}
    assert relay_checkpoint(database) == log.last_seq()
    assert lease_holder(database) is None, "a stopped relay hands its lease over"


def _handled(*workers: Worker) -> list[dict[int, int]]:
    return [dict(worker.stream.handled_by_partition) for worker in workers]


def _since(before: dict[int, int], after: dict[int, int]) -> set[int]:
    """The partitions a worker handled messages of between two snapshots."""
    return {partition for partition, count in after.items() if count > before.get(partition, 0)}


def test_a_worker_joining_takes_its_share_and_a_worker_leaving_hands_it_back(
    exchange: str, database: Database
) -> None:
    log, seen, lock = EventLog(database), [], threading.Lock()
    with Worker(database, exchange, Recorder(seen, lock)) as first:
        append(log, 40)
        wait_for(lambda: len(seen) >= 40, "the first worker to handle everything")
        assert set(first.stream.handled_by_partition) == set(range(PARTITIONS))

        with Worker(database, exchange, Recorder(seen, lock)) as second:
            # keep events flowing until the partition the first worker handled for it has moved over
            def balanced() -> bool:
                append(log, 10)
                first.stream.notify()
                return bool(second.stream.handled_by_partition)

            wait_for(balanced, "the joining worker to take a partition")
            assert first.stream.assigned | second.stream.assigned == set(range(PARTITIONS))
            assert not first.stream.assigned & second.stream.assigned
            before = _handled(first, second)
            for _ in range(6):
                append(log, 20)
                first.stream.notify()
                time.sleep(0.05)
            wait_for(lambda: len(seen) == len(all_seqs(log)), "the events appended with two workers")
            after = _handled(first, second)
            assert _since(before[0], after[0]) == first.stream.assigned, "the first worker kept to its share"
            assert _since(before[1], after[1]) == second.stream.assigned, (
                "the second worker kept to its share"
            )

        before = _handled(first)[0]  # the second worker left: the first takes everything back
        for _ in range(6):
            append(log, 20)
            first.stream.notify()
        wait_for(lambda: len(seen) == len(all_seqs(log)), "the events appended after the second left")
        wait_for(lambda: first.stream.assigned == set(range(PARTITIONS)), "the first worker to see it alone")
        assert _since(before, _handled(first)[0]) == set(range(PARTITIONS))
    assert_once_in_order(seen, log)


def test_redelivery_is_harmless(exchange: str, database: Database) -> None:
    log, seen, lock = EventLog(database), [], threading.Lock()
    with Worker(database, exchange, Recorder(seen, lock)):
        append(log, 40)
        wait_for(lambda: len(seen) >= 40, "every event to be handled")

    with Worker(database, exchange, Recorder(seen, lock)) as again:  # restarted, nothing reset
        wait_for(lambda: again.stream.relay.relaying, "the restarted worker to relay")
        time.sleep(0.5)
    assert again.relayed == 0

    # A relay that crashed after publishing, before saving its checkpoint, publishes everything again.
    offsets = StreamOffset.__table__
    with database.write() as connection:
        connection.execute(update(offsets).where(offsets.c.consumer == "relay:rabbitmq").values(seq=0))
    with Worker(database, exchange, Recorder(seen, lock)) as replay:
        wait_for(lambda: replay.relayed == 40, "the batch to be published again")
        relay = replay.stream.relay
        wait_for(
            lambda: replay.stream.handled_messages >= relay.published_messages, "the copies to be handled"
        )
    assert_once_in_order(seen, log)


def test_relay_resumes_from_its_checkpoint(exchange: str, database: Database) -> None:
    log, seen, lock = EventLog(database), [], threading.Lock()
    with Worker(database, exchange, Recorder(seen, lock)) as first:
        append(log, 20)
        wait_for(lambda: len(seen) >= 20, "the first events to be handled")
    assert first.relayed == 20

    append(log, 15)  # while no stream runs
    with Worker(database, exchange, Recorder(seen, lock)) as second:
        wait_for(lambda: len(seen) >= 35, "the events appended meanwhile to be handled")
        time.sleep(0.3)
    assert second.relayed == 15, "the relay resumed from its checkpoint, not from the start"
    assert relay_checkpoint(database) == log.last_seq()
    assert_once_in_order(seen, log)


def test_only_the_lease_holder_relays(exchange: str, database: Database) -> None:
    log, seen, lock = EventLog(database), [], threading.Lock()
    leases = Lease.__table__
    with database.write() as connection:  # another process holds the lease for 2 more seconds
        connection.execute(
            insert(leases).values(
                name="stream-relay", holder="elsewhere:1:x", expires_at=utcnow() + timedelta(seconds=2)
            )
        )
    with Worker(database, exchange, Recorder(seen, lock)) as first:
        append(log, 10)
        time.sleep(1.0)
        assert first.relayed == 0 and not seen, "relayed while another process held the lease"
        wait_for(lambda: len(seen) >= 10, "the worker to take the expired lease and relay")
        assert lease_holder(database) == first.stream.relay.lease.holder

        with Worker(database, exchange, Recorder(seen, lock)) as second:
            append(log, 10)
            wait_for(lambda: len(seen) >= 20, "events relayed by the holder")
            assert second.relayed == 0 and not second.stream.relay.relaying
            assert lease_holder(database) == first.stream.relay.lease.holder

            first.stop.set()  # the holder stops and releases the lease: the other one takes over
            first.thread.join(timeout=10)
            append(log, 10)
            wait_for(lambda: len(seen) >= 30, "the second worker to take over")
            # the consumer can see a message before the relay, still awaiting its confirm, counts it
            wait_for(lambda: second.relayed == 10, "the second worker to count what it relayed")
            assert lease_holder(database) == second.stream.relay.lease.holder
    assert first.relayed == 20
    assert_once_in_order(seen, log)


def test_failed_delivery_is_retried_in_order(exchange: str, database: Database) -> None:
    log, seen, lock = EventLog(database), [], threading.Lock()
    append(log, 60)
    with Worker(database, exchange, None) as relay_only:  # queue several messages per partition first
        wait_for(lambda: relay_checkpoint(database) == log.last_seq(), "the events to be published")
    with Worker(database, exchange, Flaky(seen, lock, failures=2)) as worker:
        # The first messages fail while the next ones are already prefetched: those must wait their turn.
        wait_for(lambda: len(seen) >= 60, "every event to be handled despite the failures")
        time.sleep(0.3)
    assert worker.stream.handled_messages == relay_only.stream.relay.published_messages
    assert_once_in_order(seen, log)


def delete_queues(exchange: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    for partition in range(PARTITIONS):
        channel.queue_delete(queue_name(exchange, partition))
    connection.close()


def test_queues_deleted_under_running_workers_come_back(exchange: str, database: Database) -> None:
    log, seen, lock = EventLog(database), [], threading.Lock()
    with Worker(database, exchange, None) as relay_only:
        wait_for(lambda: relay_only.stream.relay.relaying, "the relay to start")
        delete_queues(exchange)
        append(log, 10)  # unroutable now: the relay must declare the queues again and republish
        wait_for(lambda: relay_checkpoint(database) == log.last_seq(), "the events to be published")
        with Worker(database, exchange, Recorder(seen, lock)):
            wait_for(lambda: len(seen) >= 10, "the events published after the queues came back")
            delete_queues(exchange)  # the consumers are cancelled: they must subscribe again
            append(log, 10)
            wait_for(lambda: len(seen) >= 20, "events appended after the queues were deleted again")
    assert_once_in_order(seen, log)


class FlakyBroker:
    """A TCP proxy to RabbitMQ on 127.0.0.1 that can drop every connection and refuse new ones."""

    def __init__(self) -> None:
        target = urlsplit(RABBITMQ_URL)
        self.target = (target.hostname or "127.0.0.1", target.port or 5672)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = RABBITMQ_URL.replace(target.netloc.rsplit("@", 1)[-1], f"127.0.0.1:{self.port}")
        self.up = True
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            end.close()

    def go_down(self) -> None:
        self.up = False
        for connection in self.sockets:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)  # close() alone would not wake the pumps' recv
            connection.close()
        self.sockets.clear()

    def close(self) -> None:
        self.go_down()
        self.listener.close()


def test_workers_survive_a_broker_outage(exchange: str, database: Database) -> None:
    log, seen, lock = EventLog(database), [], threading.Lock()
    broker = FlakyBroker()
    try:
        with Worker(database, exchange, Recorder(seen, lock), url=broker.url):
            append(log, 10)
            wait_for(lambda: len(seen) >= 10, "the first events to be handled")
            broker.go_down()  # like a RabbitMQ restart: connections drop, new ones are refused a while
            append(log, 10)
            time.sleep(1.0)
            broker.up = True
            wait_for(lambda: len(seen) >= 20, "the events appended during the outage")
    finally:
        broker.close()
    assert_once_in_order(seen, log)
