"""The RabbitMQ stream's relay: tails the event log and publishes it to the partition queues.

One process at a time relays, the holder of the `stream-relay` lease. It publishes one persistent message
per partition per batch, waits for every publisher confirm, and only then advances its checkpoint (the
`relay:rabbitmq` row of `stream_offsets`). A crash in between republishes the batch, which consumers skip
by their offsets. A relay that stalls past its lease can overlap with the next one for a moment: that
only duplicates messages, and the checkpoint never moves backwards.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from engage.events.log import EventLog, LoggedEvent
from engage.events.stream.base import partition_of
from engage.store.database import Database, utcnow
from engage.store.models import Lease, StreamOffset

__all__ = [
    "LeaseHolder",
    "Relay",
    "brief",
    "connect",
    "declare_partition",
    "declare_topology",
    "new_holder",
    "queue_name",
]

log = logging.getLogger("engage.events.stream.rabbitmq")
leases = Lease.__table__
offsets = StreamOffset.__table__

LEASE_NAME = "stream-relay"
CHECKPOINT = "relay:rabbitmq"
LEASE_SECONDS = 10.0
RENEW_SECONDS = 3.0
POLL_SECONDS = 0.2
MAX_BACKOFF = 5.0


def brief(exc: BaseException) -> str:
    """One line for a log warning (SQLAlchemy's messages span several)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def queue_name(exchange: str, partition: int) -> str:
    return f"{exchange}.p{partition}"


def connect(url: str) -> BlockingConnection:
    parameters = pika.URLParameters(url)
    if parameters.blocked_connection_timeout is None:  # a broker in flow control must not hang us forever
        parameters.blocked_connection_timeout = 30
    return BlockingConnection(parameters)


def declare_topology(channel: BlockingChannel, exchange: str, partitions: int) -> None:
    """The direct exchange and one durable single-active-consumer queue per partition (idempotent)."""
    channel.exchange_declare(exchange, exchange_type="direct", durable=True)
    for partition in range(partitions):
        _declare_queue(channel, exchange, partition)


def declare_partition(channel: BlockingChannel, exchange: str, partition: int) -> None:
    """The exchange and the partition's queue (idempotent)."""
    channel.exchange_declare(exchange, exchange_type="direct", durable=True)
    _declare_queue(channel, exchange, partition)


def _declare_queue(channel: BlockingChannel, exchange: str, partition: int) -> None:
    queue = queue_name(exchange, partition)
    channel.queue_declare(queue, durable=True, arguments={"x-single-active-consumer": True})
    channel.queue_bind(queue, exchange, routing_key=str(partition))


def close_quietly(connection: BlockingConnection | None) -> None:
    if connection is not None and connection.is_open:
        try:
            connection.close()
        except Exception:  # already broken: nothing left to release
            log.debug("closing an AMQP connection failed", exc_info=True)


def new_holder() -> str:
    """Names this process in `leases`, unique across hosts and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaseHolder:
    """A named row of `leases` (the `stream-relay` role by default): taken when absent or expired, renewed
    by its holder.

    On PostgreSQL the database's clock decides expiry, so hosts with skewed clocks agree.
    """

    def __init__(
        self,
        database: Database,
        seconds: float = LEASE_SECONDS,
        name: str = LEASE_NAME,
        holder: str | None = None,
    ):
        self.database = database
        self.seconds = seconds
        self.name = name
        self.holder = holder or new_holder()

    def now(self) -> Any:
        return utcnow() if self.database.is_sqlite else func.now()

    def acquire(self) -> bool:
        """Take or renew the lease; True when this process holds it now."""
        now = self.now()
        expires = now + timedelta(seconds=self.seconds)
        mine = leases.c.name == self.name
        try:
            with self.database.write() as connection:
                taken = connection.execute(
                    update(leases)
                    .where(mine, or_(leases.c.expires_at < now, leases.c.holder == self.holder))
                    .values(holder=self.holder, expires_at=expires)
                )
                if taken.rowcount:
                    return True
                if connection.execute(select(leases.c.holder).where(mine)).first() is not None:
                    return False
                connection.execute(
                    insert(leases).values(name=self.name, holder=self.holder, expires_at=expires)
                )
        except IntegrityError:  # another process inserted it first
            return False
        return True

    def release(self) -> None:
        with self.database.write() as connection:
            connection.execute(
                delete(leases).where(leases.c.name == self.name, leases.c.holder == self.holder)
            )


class Relay:
    """Publishes the log to the exchange while this process holds the lease. Runs in its own thread."""

    def __init__(
        self,
        database: Database,
        log: EventLog,
        url: str,
        exchange: str,
        partitions: int,
        batch_size: int,
        wake: threading.Event,
    ):
        self.database = database
        self.log = log
        self.url = url
        self.exchange = exchange
        self.partitions = partitions
        self.batch_size = batch_size
        self.wake = wake
        self.lease = LeaseHolder(database)
        self.renew_seconds = RENEW_SECONDS
        self.relaying = False
        self.published_events = 0
        self.published_messages = 0
        self._checkpoint = 0

    def run(self, stop: threading.Event) -> None:
        backoff = POLL_SECONDS
        while not stop.is_set():
            connection = None
            try:
                connection = connect(self.url)
                channel = connection.channel()
                declare_topology(channel, self.exchange, self.partitions)
                channel.confirm_delivery()
                backoff = POLL_SECONDS
                self._relay(connection, channel, stop)
            except (AMQPError, OSError) as exc:
                log.warning(
                    "event stream relay: RabbitMQ failed (%s); reconnecting in %.1fs", brief(exc), backoff
                )
            except Exception:  # never let the relay thread die
                log.exception("event stream relay failed; retrying in %.1fs", backoff)
            finally:
                close_quietly(connection)
                self.relaying = False
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        try:
            self.lease.release()  # hand over at once instead of after the lease expires
        except DBAPIError as exc:
            log.warning("event stream relay: could not release its lease (%s)", brief(exc))

    def _relay(self, connection: BlockingConnection, channel: BlockingChannel, stop: threading.Event) -> None:
        renew_at = 0.0
        backoff = POLL_SECONDS
        while not stop.is_set():
            connection.process_data_events(time_limit=0)  # heartbeats
            try:
                if time.monotonic() >= renew_at:
                    self.relaying = self.lease.acquire()
                    if self.relaying:
                        self._checkpoint = max(self._checkpoint, self._stored_checkpoint())
                    renew_at = time.monotonic() + self.renew_seconds
                if not self.relaying:
                    connection.sleep(min(POLL_SECONDS, max(renew_at - time.monotonic(), 0)))
                    continue
                self.wake.clear()
                events = self.log.read(after_seq=self._checkpoint, limit=self.batch_size)
                backoff = POLL_SECONDS
            except DBAPIError as exc:
                log.warning(
                    "event stream relay: database failed (%s); retrying in %.1fs", brief(exc), backoff
                )
                self.relaying, renew_at = False, 0.0
                connection.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if events:
                self._publish(channel, events)
                self._advance(events[-1].seq)
            else:
                self.wake.wait(POLL_SECONDS)

    def _publish(self, channel: BlockingChannel, events: Sequence[LoggedEvent]) -> None:
        """One message per partition; returns once RabbitMQ confirmed them all (raises otherwise)."""
        groups: dict[int, list[LoggedEvent]] = {}
        for event in events:
            groups.setdefault(partition_of(event.profile_id, self.partitions), []).append(event)
        for partition, items in sorted(groups.items()):
            properties = pika.BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent,
                content_type="application/json",
                headers={"partition": partition, "first_seq": items[0].seq, "last_seq": items[-1].seq},
            )
            # orjson writes the dataclasses as `LoggedEvent.to_dict()` would, without copying them first
            body = orjson.dumps(items, option=orjson.OPT_NON_STR_KEYS)
            channel.basic_publish(self.exchange, str(partition), body, properties, mandatory=True)
            self.published_messages += 1
        self.published_events += len(events)

    def _stored_checkpoint(self) -> int:
        query = select(offsets.c.seq).where(offsets.c.consumer == CHECKPOINT, offsets.c.partition == 0)
        with self.database.read() as connection:
            seq = connection.execute(query).scalar_one_or_none()
        if seq is not None:
            return seq
        try:
            with self.database.write() as connection:
                connection.execute(
                    insert(offsets).values(consumer=CHECKPOINT, partition=0, seq=0, updated_at=utcnow())
                )
        except IntegrityError:  # created meanwhile by another relay
            return self._stored_checkpoint()
        return 0

    def _advance(self, seq: int) -> None:
        """Record that everything up to `seq` is in RabbitMQ; never moves the checkpoint backwards."""
        self._checkpoint = seq
        try:
            with self.database.write() as connection:
                connection.execute(
                    update(offsets)
                    .where(offsets.c.consumer == CHECKPOINT, offsets.c.partition == 0, offsets.c.seq < seq)
                    .values(seq=seq, updated_at=utcnow())
                )
        except DBAPIError as exc:  # published anyway: a later checkpoint covers it, a restart republishes
            log.warning("event stream relay: could not save its checkpoint (%s)", brief(exc))
