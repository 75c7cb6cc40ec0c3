"""The event log: every accepted event, in order, once.

Appends are serialised (SQLite has one writer; on PostgreSQL a transaction-level advisory lock) so that
`seq` grows in commit order. Readers can then tail the log by `seq` without ever missing an event that
commits late, which is what makes the log itself the embedded stream and the RabbitMQ relay's source.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text

from engage.events._recent import RecentEvents
from engage.events.identity import IdentityResolver, Merge
from engage.events.schema import Event
from engage.store.codec import json_param, json_value, time_param, time_value
from engage.store.database import Database
from engage.store.models import EventRecord

__all__ = ["EventLog", "LoggedEvent", "AppendResult", "MERGE_EVENT", "append_system_events", "system_event"]

event_log = EventRecord.__table__
MERGE_EVENT = "ProfilesMerged"
_APPEND_LOCK = 0x656E6C67  # "enlg"
_INSERTED = select(event_log.c.message_id, event_log.c.seq).where(event_log.c.seq > bindparam("before"))


@dataclass(slots=True)
class LoggedEvent:
    """An event as consumers receive it: its place in the log and the profile it belongs to."""

    seq: int
    message_id: str
    type: str
    event: str | None
    channel: str
    profile_id: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoggedEvent:
        data = dict(data)
        for key in ("timestamp", "received_at"):
            if isinstance(data[key], str):
                data[key] = datetime.fromisoformat(data[key])
        return cls(**data)

    @classmethod
    def from_row(cls, row: Any) -> LoggedEvent:
        return cls(
            seq=row.seq,
            message_id=row.message_id,
            type=row.type,
            event=row.event,
            channel=row.channel,
            profile_id=row.profile_id,
            user_id=row.user_id,
            anonymous_id=row.anonymous_id,
            timestamp=time_value(row.timestamp),
            received_at=time_value(row.received_at),
            properties=json_value(row.properties),
            traits=json_value(row.traits),
            context=json_value(row.context),
        )


@dataclass(frozen=True, slots=True)
class AppendResult:
    accepted: int
    duplicates: int
    merges: int = 0


_COLUMNS = (
    "message_id", "type", "event", "channel", "profile_id", "user_id", "anonymous_id",
    "timestamp", "received_at", "properties", "traits", "context",
)  # fmt: skip
# Untyped, so rows come back as the driver gives them and `from_row` decodes only what it must.
# On PostgreSQL JSONB comes back as text, for orjson: psycopg would decode it with the stdlib's json.
_READ = {
    sqlite: text(
        "SELECT seq, "
        + ", ".join(
            f"{c}::text AS {c}" if c in ("properties", "traits", "context") and not sqlite else c
            for c in _COLUMNS
        )
        + " FROM event_log WHERE seq > :after ORDER BY seq LIMIT :limit"
    )
    for sqlite in (True, False)
}


def _encode(row: dict[str, Any], sqlite: bool, received: Any = None) -> tuple[Any, ...]:
    """A row as the driver takes it, in `_COLUMNS` order (spelt out: this runs for every event)."""
    return (
        row["message_id"], row["type"], row["event"], row["channel"], row["profile_id"],
        row["user_id"], row["anonymous_id"], time_param(row["timestamp"], sqlite),
        received if received is not None else time_param(row["received_at"], sqlite),
        json_param(row["properties"]), json_param(row["traits"]), json_param(row["context"]),
    )  # fmt: skip


_PROFILE = _COLUMNS.index("profile_id")


_INCOMING = "engage_incoming_events"


def _copy_into_log(connection: Connection, encoded: list[tuple[Any, ...]]) -> dict[str, int]:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT … SELECT into the log; returns
    the `seq` of each new messageId.

    One statement instead of one execution per row; ORDER BY keeps `seq` in the order of the rows.
    RETURNING, not a second query for the rows past the previous maximum: under load that query took half
    of the time the append lock was held (sampled from `pg_locks`).
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    columns = ", ".join(_COLUMNS)
    with driver.cursor() as cursor:
        if not connection.connection.info.get(_INCOMING):
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_INCOMING} (position integer, message_id text, "
                "type text, event text, channel text, profile_id text, user_id text, anonymous_id text, "
                "timestamp timestamptz, received_at timestamptz, properties text, traits text, context text) "
                "ON COMMIT DELETE ROWS"
            )
            connection.connection.info[_INCOMING] = True
        with cursor.copy(f"COPY {_INCOMING} (position, {columns}) FROM STDIN") as copy:
            for position, row in enumerate(encoded):
                copy.write_row((position, *row))
        cursor.execute(
            f"INSERT INTO event_log ({columns}) SELECT message_id, type, event, channel, profile_id, "
            "user_id, anonymous_id, timestamp, received_at, properties::jsonb, traits::jsonb, context::jsonb "
            f"FROM {_INCOMING} ORDER BY position "
            "ON CONFLICT (message_id) DO NOTHING RETURNING message_id, seq"
        )
        return dict(cursor.fetchall())


def system_event(
    message_id: str, name: str, profile_id: str, user_id: str | None, at: datetime,
    properties: dict[str, Any], context: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """A row for an event engage itself announces (channel `system`), for `append_system_events`."""
    return {
        "message_id": message_id,
        "type": "track",
        "event": name,
        "channel": "system",
        "profile_id": profile_id,
        "user_id": user_id,
        "anonymous_id": None,
        "timestamp": at,
        "received_at": at,
        "properties": properties,
        "traits": {},
        "context": context,
    }


def append_system_events(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Append engage's own events inside the caller's write transaction (a consumer announcing what it
    did), so they commit, or not, with its effects. A messageId already logged is skipped.

    They bypass identity resolution (the profile is known) and this process's recent-events cache; the
    stream reads them from the database.
    """
    if not rows:
        return
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:  # keep `seq` in commit order, as `EventLog.append` does
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    marker = "?" if sqlite else "%s"
    connection.exec_driver_sql(
        f"INSERT INTO event_log ({', '.join(_COLUMNS)}) VALUES ({', '.join([marker] * len(_COLUMNS))}) "
        "ON CONFLICT (message_id) DO NOTHING",
        [_encode(row, sqlite) for row in rows],
    )


def _first_of_each_message(events: list[Event]) -> list[Event]:
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.message_id not in seen:
            seen.add(event.message_id)
            unique.append(event)
    return unique


def _row(event: Event, profile_id: str, received_at: datetime) -> dict[str, Any]:
    properties = event.properties
    if event.previous_id:
        properties = {**properties, "previousId": event.previous_id}
    return {
        "message_id": event.message_id,
        "type": event.type,
        "event": event.event,
        "channel": event.channel,
        "profile_id": profile_id,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "timestamp": event.timestamp,
        "received_at": received_at,
        "properties": properties,
        "traits": event.traits,
        "context": event.context,
    }


def _merge_row(merge: Merge, cause: Event, received_at: datetime) -> dict[str, Any]:
    return {
        "message_id": f"merge:{merge.from_profile}",
        "type": "merge",
        "event": MERGE_EVENT,
        "channel": "system",
        "profile_id": merge.into_profile,
        "user_id": cause.user_id,
        "anonymous_id": cause.anonymous_id,
        "timestamp": cause.timestamp,
        "received_at": received_at,
        "properties": {"from_profile": merge.from_profile, "into_profile": merge.into_profile},
        "traits": {},
        "context": {"cause": cause.message_id},
    }


@dataclass(slots=True)
class _Pending:
    """One caller's append, waiting to be written with whatever else is waiting.

    Its rows are built and encoded before the wait, so the write lock is held only for what depends on
    the log: which profile each event belongs to, and the insert.
    """

    events: list[Event]
    received_at: datetime
    rows: list[dict[str, Any]]
    encoded: list[tuple[Any, ...]]
    result: AppendResult | None = None
    error: BaseException | None = None

    @classmethod
    def prepare(cls, events: list[Event], received_at: datetime, sqlite: bool) -> _Pending:
        rows = [_row(event, "", received_at) for event in events]
        received = time_param(received_at, sqlite)
        return cls(events, received_at, rows, [_encode(row, sqlite, received) for row in rows])


class EventLog:
    def __init__(self, database: Database, on_append: Callable[[], None] | None = None):
        self.database = database
        self.on_append = on_append
        self._recent = RecentEvents()
        # Set by a stream that consumes in this process: it then reads new events from memory.
        self.keep_recent = False
        self._writer = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []

    def append(self, events: list[Event], received_at: datetime) -> AppendResult:
        """Store `events` once each (by messageId), resolving identities; returns what was new.

        Group commit: appends that arrive while another is being written wait, and the next writer
        writes all of them in one transaction, so concurrent requests share one commit.
        """
        if not events:
            return AppendResult(0, 0)
        pending = _Pending.prepare(_first_of_each_message(events), received_at, self.database.is_sqlite)
        with self._queue_lock:
            self._queue.append(pending)
        with self._writer:
            if pending.result is None and pending.error is None:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._write_group(group)
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        duplicates_in_call = len(events) - len(pending.events)
        return AppendResult(
            pending.result.accepted, pending.result.duplicates + duplicates_in_call, pending.result.merges
        )

    def _write_group(self, group: list[_Pending]) -> None:
        try:
            with self.database.write() as connection:
                if not self.database.is_sqlite:
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
                rows, encoded, owners, merges = self._resolve(connection, group)
                seq_of = self._insert(connection, encoded)
        except BaseException as exc:
            for pending in group:
                pending.error = exc
            raise
        accepted = [0] * len(group)
        for row, owner in zip(rows, owners, strict=True):
            if row["type"] != "merge" and seq_of.get(row["message_id"]) is not None:
                accepted[owner] += 1
                row["seq"] = seq_of.pop(row["message_id"])  # sent twice in one group: the first counts
            elif row["type"] == "merge":
                row["seq"] = seq_of.pop(row["message_id"], None)
        for index, pending in enumerate(group):
            pending.result = AppendResult(
                accepted[index], len(pending.events) - accepted[index], merges[index]
            )
        new_rows = [row for row in rows if row.get("seq") is not None]
        if new_rows:
            if self.keep_recent:
                self._recent.add([LoggedEvent(**row) for row in new_rows])
            if self.on_append is not None:
                self.on_append()

    def _insert(self, connection: Connection, encoded: list[tuple[Any, ...]]) -> dict[str, int]:
        """Insert (the hot path); returns the `seq` of each new messageId.

        A messageId already in the log is skipped by the unique index (ON CONFLICT DO NOTHING), which is
        cheaper than looking every id up first. On SQLite, with the driver's executemany, which returns
        no rows: appends are serialised, so the rows above the previous maximum are this batch's new ones.
        """
        if not self.database.is_sqlite:
            return _copy_into_log(connection, encoded)
        before = connection.execute(select(func.coalesce(func.max(event_log.c.seq), 0))).scalar_one()
        connection.exec_driver_sql(
            f"INSERT INTO event_log ({', '.join(_COLUMNS)}) VALUES ({', '.join(['?'] * len(_COLUMNS))}) "
            "ON CONFLICT (message_id) DO NOTHING",
            encoded,
        )
        result = connection.execute(_INSERTED, {"before": before}).fetchall()
        return {message_id: seq for message_id, seq in result}

    def _resolve(
        self, connection: Connection, group: list[_Pending]
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]], list[int], list[int]]:
        """Rows to insert in order with their encodings, the append each came from, and merges per append."""
        sqlite = self.database.is_sqlite
        resolver = IdentityResolver(connection, group[-1].received_at)
        resolver.load([event for pending in group for event in pending.events])
        rows: list[dict[str, Any]] = []
        encoded: list[tuple[Any, ...]] = []
        owners: list[int] = []
        merges = [0] * len(group)
        for index, pending in enumerate(group):
            for event, row, encoding in zip(pending.events, pending.rows, pending.encoded, strict=True):
                profile_id, merge = resolver.resolve(event)
                if merge is not None:
                    merges[index] += 1
                    for earlier in rows:  # earlier events of the merged profile move too
                        if earlier["profile_id"] == merge.from_profile:
                            earlier["profile_id"] = merge.into_profile
                    merge_row = _merge_row(merge, event, pending.received_at)
                    rows.append(merge_row)
                    encoded.append(_encode(merge_row, sqlite))
                    owners.append(index)
                row["profile_id"] = profile_id
                rows.append(row)
                encoded.append(encoding)
                owners.append(index)
        resolver.flush()
        # The profile is the one column known only now (and merges may have moved earlier rows).
        encoded = [
            e[:_PROFILE] + (row["profile_id"],) + e[_PROFILE + 1 :]
            for e, row in zip(encoded, rows, strict=True)
        ]
        return rows, encoded, owners, merges

    def read(
        self, after_seq: int, limit: int = 500, connection: Connection | None = None
    ) -> list[LoggedEvent]:
        """Up to `limit` events with `seq` greater than `after_seq`, in order."""
        cached = self._recent.after(after_seq, limit)
        if cached:
            return cached
        params = {"after": after_seq, "limit": limit}
        if connection is not None:
            query = _READ[self.database.is_sqlite]
            return [LoggedEvent.from_row(row) for row in connection.execute(query, params).fetchall()]
        with self.database.read() as conn:
            rows = conn.execute(_READ[self.database.is_sqlite], params).fetchall()
            return [LoggedEvent.from_row(row) for row in rows]

    def last_seq(self) -> int:
        with self.database.read() as connection:
            return connection.execute(select(func.coalesce(func.max(event_log.c.seq), 0))).scalar_one()

    def since(self, start: datetime, batch: int = 10_000) -> Iterator[list[LoggedEvent]]:
        """Every event that happened at or after `start`, in log order and in pages, for exports."""
        after = 0
        while True:
            with self.database.read() as connection:
                rows = connection.execute(
                    select(event_log)
                    .where(event_log.c.seq > after, event_log.c.timestamp >= start)
                    .order_by(event_log.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                return
            yield [LoggedEvent.from_row(row) for row in rows]
            after = rows[-1].seq
