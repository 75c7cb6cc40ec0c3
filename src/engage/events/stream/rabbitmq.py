"""The production stream: the event log relayed through RabbitMQ partition queues to worker processes.

Every `engage worker` runs both halves, each in its own thread with its own connection:
- the relay (`_rabbitmq_relay`), active in the one process holding the `stream-relay` lease, publishes
  the log by `seq`, one message per partition per batch, to the direct exchange;
- the consumer takes messages from every queue `{exchange}.p{N}`. The queues are single-active-consumer,
  so each partition is handled by one worker at a time, in order, and another takes over when it dies.
  A message is acknowledged once every registered consumer has taken its events (`deliver` skips what a
  consumer already handled, so redelivery is harmless). When delivering fails (the database is down),
  the message and everything prefetched after it go back to the queue, in order, after a backoff.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties

from engage.errors import EngageError
from engage.events.consumers import ConsumerRegistry, deliver
from engage.events.log import EventLog, LoggedEvent
from engage.events.stream._rabbitmq_relay import (
    MAX_BACKOFF,
    POLL_SECONDS,
    Relay,
    brief,
    close_quietly,
    connect,
    declare_topology,
    queue_name,
)
from engage.events.stream.base import EventStream
from engage.store.database import Database

if TYPE_CHECKING:
    from engage.workspace import EventStreamConfig

__all__ = ["RabbitMQStream", "queue_name"]

log = logging.getLogger(__name__)
PREFETCH = 4


@dataclass
class _Subscription:
    """One channel's consumers; `failed` stops handling what was prefetched after a failed message."""

    failed: bool = False
    cancelled: bool = False  # by RabbitMQ (a queue was deleted): subscribe again after declaring it

    def on_cancel(self, _frame: object) -> None:
        self.cancelled = True


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
        self.handled_messages = 0
        self._failures = 0
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
        relay = threading.Thread(target=self.relay.run, args=(stop,), name="engage-stream-relay", daemon=True)
        relay.start()
        try:
            if len(consumers):
                self._consume(consumers, stop)
            else:  # acknowledging messages nobody handled would lose them for the workers that do
                stop.wait()
        finally:
            relay.join()

    def close(self) -> None:
        close_quietly(self._connection)
        self._connection = None

    def _consume(self, consumers: ConsumerRegistry, stop: threading.Event) -> None:
        backoff = POLL_SECONDS
        while not stop.is_set():
            try:
                self._connection = connect(self.url)
                backoff = POLL_SECONDS
                while not stop.is_set():
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
        """Declare the queues and consume them all on a new channel until `stop`, a failure or a cancel.

        Closing the channel returns whatever was prefetched and not acknowledged to its queue, in order.
        """
        channel = connection.channel()
        subscription = _Subscription()
        try:
            declare_topology(channel, self.exchange, self.partitions)
            channel.basic_qos(prefetch_count=PREFETCH)
            channel.add_on_cancel_callback(subscription.on_cancel)
            for partition in range(self.partitions):
                on_message = functools.partial(self._on_message, consumers, subscription, partition)
                channel.basic_consume(queue_name(self.exchange, partition), on_message, auto_ack=False)
            while not (stop.is_set() or subscription.failed or subscription.cancelled):
                connection.process_data_events(time_limit=POLL_SECONDS)
            if subscription.failed:
                # Wait before the messages come back (here or to another worker), so a failure never spins.
                self._pause(connection, stop, min(POLL_SECONDS * 2**self._failures, MAX_BACKOFF))
                channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
        finally:
            if channel.is_open:
                channel.close()

    def _on_message(
        self,
        consumers: ConsumerRegistry,
        subscription: _Subscription,
        partition: int,
        channel: BlockingChannel,
        method: Basic.Deliver,
        _properties: BasicProperties,
        body: bytes,
    ) -> None:
        if subscription.failed:
            return  # prefetched after a failed message: it must come back after that one
        try:
            events = [LoggedEvent.from_dict(item) for item in orjson.loads(body)]
        except (ValueError, TypeError, KeyError) as exc:
            log.error(
                "event stream: dropping a malformed message from partition %d (%s)", partition, brief(exc)
            )
            channel.basic_reject(method.delivery_tag, requeue=False)
            return
        try:
            for consumer in consumers:
                deliver(self.database, consumer, partition, events)
        except Exception as exc:
            log.warning(
                "event stream: delivering partition %d failed (%s); will retry", partition, brief(exc)
            )
            subscription.failed = True
            self._failures += 1
            return
        channel.basic_ack(method.delivery_tag)
        self._failures = 0
        self.handled_messages += 1

    @staticmethod
    def _pause(connection: BlockingConnection, stop: threading.Event, seconds: float) -> None:
        """Wait `seconds` (or until `stop`) while answering heartbeats."""
        remaining = seconds
        while remaining > 0 and not stop.is_set():
            connection.sleep(min(remaining, POLL_SECONDS))
            remaining -= POLL_SECONDS
