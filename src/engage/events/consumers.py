"""Consumers: the later stages of the loop, registered by name, fed by the stream.

A consumer handles a batch of events inside the same transaction that records how far it got, so an
event redelivered after a crash (processed, not yet acknowledged) is recognised by its `seq` and skipped:
delivery is at least once, the effect exactly once. An event a consumer keeps failing on is set aside in
`dead_letters` with the error, and the stream moves on.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import DBAPIError

from engage.errors import EngageError
from engage.events.log import LoggedEvent
from engage.store.database import Database, utcnow
from engage.store.models import DeadLetter, StreamOffset

__all__ = ["Consumer", "ConsumerRegistry", "deliver", "offset_of"]

log = logging.getLogger(__name__)
offsets = StreamOffset.__table__
dead_letters = DeadLetter.__table__
ATTEMPTS = 3


@runtime_checkable
class Consumer(Protocol):
    """A stage of the loop. `handle` runs in a write transaction and must only use `connection`."""

    name: str

    def handle(self, connection: Connection, events: Sequence[LoggedEvent]) -> None: ...


class ConsumerRegistry:
    def __init__(self) -> None:
        self._consumers: dict[str, Consumer] = {}

    def register(self, consumer: Consumer) -> Consumer:
        if consumer.name in self._consumers:
            raise EngageError(f"a consumer named {consumer.name!r} is already registered")
        self._consumers[consumer.name] = consumer
        return consumer

    def __iter__(self) -> Iterator[Consumer]:
        return iter(self._consumers.values())

    def __len__(self) -> int:
        return len(self._consumers)

    def names(self) -> list[str]:
        return list(self._consumers)


def _locked_offset(connection: Connection, consumer: str, partition: int, is_sqlite: bool) -> int:
    query = select(offsets.c.seq).where(offsets.c.consumer == consumer, offsets.c.partition == partition)
    if not is_sqlite:
        query = query.with_for_update()
    seq = connection.execute(query).scalar_one_or_none()
    if seq is None:
        connection.execute(
            insert(offsets).values(consumer=consumer, partition=partition, seq=0, updated_at=utcnow())
        )
        if not is_sqlite:  # another process may have inserted it first; lock the row that won
            seq = connection.execute(query).scalar_one()
        return seq or 0
    return seq


def _advance(connection: Connection, consumer: str, partition: int, seq: int) -> None:
    connection.execute(
        update(offsets)
        .where(offsets.c.consumer == consumer, offsets.c.partition == partition)
        .values(seq=seq, updated_at=utcnow())
    )


def offset_of(database: Database, consumer: str, partition: int = 0) -> int:
    with database.read() as connection:
        seq = connection.execute(
            select(offsets.c.seq).where(offsets.c.consumer == consumer, offsets.c.partition == partition)
        ).scalar_one_or_none()
    return seq or 0


def deliver(database: Database, consumer: Consumer, partition: int, events: Sequence[LoggedEvent]) -> int:
    """Hand `events` (in order) to `consumer`, skipping what it already handled; returns how many it took.

    Database errors (connection lost, database down) propagate: the caller redelivers later. Any other
    error is retried event by event, and an event that still fails is dead-lettered.
    """
    if not events:
        return 0
    try:
        return _deliver_batch(database, consumer, partition, events)
    except DBAPIError:
        raise
    except Exception:
        log.warning(
            "consumer %s failed on a batch; retrying its events one by one", consumer.name, exc_info=True
        )
    taken = 0
    for event in events:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                taken += _deliver_batch(database, consumer, partition, [event])
                break
            except DBAPIError:
                raise
            except Exception as exc:
                if attempt == ATTEMPTS:
                    _dead_letter(database, consumer, partition, event, exc)
    return taken


def _deliver_batch(
    database: Database, consumer: Consumer, partition: int, events: Sequence[LoggedEvent]
) -> int:
    with database.write() as connection:
        done = _locked_offset(connection, consumer.name, partition, database.is_sqlite)
        fresh = [event for event in events if event.seq > done]
        if not fresh:
            return 0
        consumer.handle(connection, fresh)
        _advance(connection, consumer.name, partition, fresh[-1].seq)
    return len(fresh)


def _dead_letter(
    database: Database, consumer: Consumer, partition: int, event: LoggedEvent, exc: BaseException
) -> None:
    log.error("consumer %s gave up on event seq=%s: %s", consumer.name, event.seq, exc)
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    with database.write() as connection:
        done = _locked_offset(connection, consumer.name, partition, database.is_sqlite)
        if event.seq <= done:
            return
        connection.execute(
            insert(dead_letters).values(
                consumer=consumer.name, seq=event.seq, error=error, failed_at=utcnow()
            )
        )
        _advance(connection, consumer.name, partition, event.seq)
