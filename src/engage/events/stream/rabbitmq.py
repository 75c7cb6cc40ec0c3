"""The production stream: the event log relayed through RabbitMQ partition queues to worker processes.

Every `engage worker` runs both halves, each in its own thread with its own connection:
- the relay (`_rabbitmq_relay`), active in the one process holding the `stream-relay` lease, publishes
  the log by `seq`, one message per partition per batch, to the direct exchange;
- the consumer stands in line on every queue `{exchange}.p{N}`, one channel each. The queues are
  single-active-consumer, so each partition is handled by one worker at a time, in order, and the next in
  line takes over at once when that worker dies. The live workers share the partitions round robin
  (`_rabbitmq_members`): a worker handling a partition assigned to another steps to the back of its line,
  so adding or removing a worker rebalances within a few seconds.
  What a partition has received is delivered to every registered consumer as one batch and acknowledged
  once they all took it (`deliver` skips what a consumer already handled, so redelivery is harmless).
  When delivering fails (the database is down), those messages and everything prefetched after them go
  back to the queue, in order, after a backoff.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties
from sqlalchemy.exc import DBAPIError

from engage.errors import EngageError
from engage.events.consumers import ConsumerRegistry, deliver
from engage.events.log import EventLog, LoggedEvent
from engage.events.stream._rabbitmq_members import Membership, assigned
from engage.events.stream._rabbitmq_relay import (
    MAX_BACKOFF,
    POLL_SECONDS,
    RENEW_SECONDS,
    Relay,
    brief,
    close_quietly,
    connect,
    declare_partition,
    queue_name,
)
from engage.events.stream.base import EventStream
from engage.store.database import Database

if TYPE_CHECKING:
    from engage.workspace import EventStreamConfig

__all__ = ["RabbitMQStream", "queue_name"]

log = logging.getLogger(__name__)
PREFETCH = 8  # messages received ahead, delivered together: up to 8 relay batches' share of a partition


@dataclass
class _Partition:
    """This worker's subscription to one partition queue, on a channel of its own: closing that channel
    gives back what was prefetched and not acknowledged, in order, and puts this worker at the back of the
    queue's line of consumers, so handing a partition over never reorders it."""

    number: int
    channel: BlockingChannel | None = None
    failures: int = 0
    retry_at: float | None = None  # set when delivering failed: stop handling until the messages go back
    received: deque[tuple[int, bytes]] = field(default_factory=deque)  # (delivery tag, body), not yet handled
    cancelled: bool = False  # by RabbitMQ (the queue was deleted): subscribe again after declaring it
    handled: int = 0  # messages handled since the last balancing

    def on_cancel(self, _frame: object) -> None:
        self.cancelled = True

    @property
    def open(self) -> bool:
        return self.channel is not None and self.channel.is_open and not self.cancelled


class RabbitMQStream(EventStream):
    name = "rabbitmq"

    def __init__(
        self,
        database: Database,
        log: EventLog,
        url: str,
        partitions: int = 8,
        exchange: str = "engage.events",
        batch_size: int = 500,
    ):
        super().__init__(database, log, batch_size=batch_size)
        self.url = url
        self.partitions = partitions
        self.exchange = exchange
        self.relay = Relay(database, log, url, exchange, partitions, batch_size, self._wake)
        self.membership = Membership(database)
        self.balance_seconds = RENEW_SECONDS
        self.assigned: set[int] = set(range(partitions))  # as this worker last saw the membership
        self.handled_messages = 0
        self.handled_by_partition: Counter[int] = Counter()
        self._connection: BlockingConnection | None = None

    @classmethod
    def from_config(cls, config: EventStreamConfig, database: Database, log: EventLog) -> RabbitMQStream:
        if not config.url:
            raise EngageError("event_stream.url: required with type rabbitmq")
        return cls(
            database,
            log,
            url=config.url,
            partitions=config.partitions,
            exchange=config.exchange,
            batch_size=config.batch_size,
        )

    def run(self, consumers: ConsumerRegistry, stop: threading.Event) -> None:
        self.log.keep_recent = True  # the relay reads what this process appends from memory
        threads = [
            threading.Thread(target=self.relay.run, args=(stop,), name="engage-stream-relay", daemon=True)
        ]
        if len(consumers):  # a worker without consumers only relays: it takes no partition
            members = threading.Thread(
                target=self._keep_membership, args=(stop,), name="engage-stream-members"
            )
            threads.append(members)
        for thread in threads:
            thread.start()
        try:
            if len(consumers):
                self._consume(consumers, stop)
            else:  # acknowledging messages nobody handled would lose them for the workers that do
                stop.wait()
        finally:
            for thread in threads:
                thread.join()

    def close(self) -> None:
        close_quietly(self._connection)
        self._connection = None

    def _keep_membership(self, stop: threading.Event) -> None:
        """Renew this worker's membership in a thread of its own: handling a long run of messages must not
        let it expire, which would hand this worker's partitions to the others and back again."""
        while not stop.is_set():
            try:
                members = self.membership.renew()
            except DBAPIError as exc:
                log.warning("event stream: could not renew this worker's membership (%s)", brief(exc))
            else:
                mine = assigned(self.partitions, members, self.membership.holder)
                if mine != self.assigned:
                    log.info(
                        "event stream: %d workers; this one takes partitions %s", len(members), sorted(mine)
                    )
                    self.assigned = mine
            stop.wait(self.balance_seconds)
        try:
            self.membership.leave()
        except DBAPIError as exc:
            log.warning("event stream: could not leave the workers' membership (%s)", brief(exc))

    def _consume(self, consumers: ConsumerRegistry, stop: threading.Event) -> None:
        backoff = POLL_SECONDS
        while not stop.is_set():
            try:
                self._connection = connect(self.url)
                backoff = POLL_SECONDS
                self._subscribe(self._connection, consumers, stop)
            except (AMQPError, OSError) as exc:
                log.warning("event stream: RabbitMQ failed (%s); reconnecting in %.1fs", brief(exc), backoff)
            except Exception:  # never let the worker die
                log.exception("event stream consumer failed; retrying in %.1fs", backoff)
            finally:
                self.close()
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _subscribe(
        self, connection: BlockingConnection, consumers: ConsumerRegistry, stop: threading.Event
    ) -> None:
        """Stand in line on every partition queue, then consume until `stop` or a connection failure.

        Standing in line everywhere means a worker that dies is replaced at once by the next in line;
        balancing then moves each partition to the worker the assignment names.
        """
        partitions = [_Partition(number) for number in range(self.partitions)]
        for partition in partitions:
            self._open(connection, partition)
        balance_at = 0.0
        while not stop.is_set():
            waiting = any(partition.received and partition.retry_at is None for partition in partitions)
            connection.process_data_events(time_limit=0 if waiting else POLL_SECONDS)
            for partition in partitions:  # a message of each partition in turn: none waits behind another
                if partition.received and partition.retry_at is None and partition.open:
                    self._handle(consumers, partition)
            now = time.monotonic()
            for partition in partitions:
                if not partition.open:
                    self._open(connection, partition)
                elif partition.retry_at is not None and now >= partition.retry_at:
                    self._open(connection, partition)  # the failed messages come back, in order
            if now >= balance_at:
                self._balance(connection, partitions)
                balance_at = now + self.balance_seconds

    def _open(self, connection: BlockingConnection, partition: _Partition) -> None:
        """(Re)subscribe to the partition's queue on a new channel, at the back of its line of consumers."""
        self._close(partition)
        partition.channel = channel = connection.channel()
        partition.cancelled, partition.retry_at, partition.handled = False, None, 0
        declare_partition(channel, self.exchange, partition.number)
        channel.basic_qos(prefetch_count=PREFETCH)
        channel.add_on_cancel_callback(partition.on_cancel)
        on_message = functools.partial(self._on_message, partition)
        channel.basic_consume(queue_name(self.exchange, partition.number), on_message, auto_ack=False)

    @staticmethod
    def _close(partition: _Partition) -> None:
        """Leave the partition's line, giving back everything the channel holds, in order.

        The channel is closed without cancelling its consumer first (which `BlockingChannel.close` would
        do): RabbitMQ then removes the consumer and returns every unacknowledged message to the queue in one
        step, as when a worker dies, so the next consumer in line starts exactly where this one stopped.
        After a cancel, deliveries still in flight would come back once the next consumer had started past
        them, and it would skip them as already handled (a loss).
        """
        channel, partition.channel = partition.channel, None
        partition.received.clear()  # unacknowledged: RabbitMQ returns them with the channel
        if channel is None or not channel.is_open:
            return
        # pika has no public way to close a channel without cancelling its consumers first
        channel._impl.close()  # noqa: SLF001
        channel._flush_output(lambda: channel.is_closed)  # noqa: SLF001
        channel._cleanup()  # noqa: SLF001

    def _others_waiting(self, partition: _Partition) -> bool:
        """Whether another consumer stands in line for the partition (its queue has more than this one)."""
        assert partition.channel is not None
        queue = queue_name(self.exchange, partition.number)
        return partition.channel.queue_declare(queue, passive=True).method.consumer_count > 1

    def _balance(self, connection: BlockingConnection, partitions: list[_Partition]) -> None:
        """Step back from the partitions this worker handles but another should (`self.assigned`).

        Only a partition that had messages since the last balancing can be one this worker is active on,
        and stepping back only helps when another consumer waits in line for it.
        """
        mine = self.assigned
        for partition in partitions:
            handled, partition.handled = partition.handled, 0
            if partition.number in mine or not handled or not partition.open or partition.retry_at:
                continue
            if self._others_waiting(partition):
                log.info(
                    "event stream: handing partition %d over to the worker it is assigned to",
                    partition.number,
                )
                self._open(connection, partition)

    @staticmethod
    def _on_message(
        partition: _Partition,
        _channel: BlockingChannel,
        method: Basic.Deliver,
        _properties: BasicProperties,
        body: bytes,
    ) -> None:
        """Only keep it: pika hands a channel's messages over until that channel has none left, which would
        let one busy partition starve the others; `_subscribe` takes one of each partition in turn."""
        partition.received.append((method.delivery_tag, body))

    def _handle(self, consumers: ConsumerRegistry, partition: _Partition) -> None:
        """Deliver the partition's received messages, oldest first, to every consumer as one batch, then
        acknowledge them all.

        One transaction per consumer for everything received: a worker behind the log commits a few large
        batches instead of many small ones, which is what lets it catch up.
        """
        assert partition.channel is not None
        events: list[LoggedEvent] = []
        taken, last_tag = 0, 0
        for tag, body in partition.received:
            try:
                decoded = [LoggedEvent.from_dict(item) for item in orjson.loads(body)]
            except (ValueError, TypeError, KeyError) as exc:
                if taken:
                    break  # the messages before it are delivered; it is dropped on its own next round
                log.error(
                    "event stream: dropping a malformed message from partition %d (%s)",
                    partition.number,
                    brief(exc),
                )
                partition.received.popleft()
                partition.channel.basic_reject(tag, requeue=False)
                return
            last = events[-1].seq if events else 0
            events.extend(event for event in decoded if event.seq > last)  # a relay handover can repeat some
            taken, last_tag = taken + 1, tag
        try:
            for consumer in consumers:
                deliver(self.database, consumer, partition.number, events)
        except Exception as exc:
            # Wait before the messages come back (here or to another worker), so a failure never spins.
            delay = min(POLL_SECONDS * 2**partition.failures, MAX_BACKOFF)
            log.warning(
                "event stream: delivering partition %d failed (%s); retrying in %.1fs",
                partition.number,
                brief(exc),
                delay,
            )
            partition.failures += 1
            partition.retry_at = time.monotonic() + delay
            return
        for _ in range(taken):
            partition.received.popleft()
        partition.channel.basic_ack(last_tag, multiple=True)
        partition.failures = 0
        partition.handled += taken
        self.handled_messages += taken
        self.handled_by_partition[partition.number] += taken
