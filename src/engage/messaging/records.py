"""The `messages` table and its status history: every message is recorded before any provider is called.

Statuses, in the order a message moves: `queued` (waiting for its `due_at`: quiet hours, a retry's wait),
`sending` (claimed by a dispatcher; the provider is being called), `sent` (the provider took it), then
from providers' webhooks and engage's links `delivered`, `opened`, `clicked`. It may instead end
`suppressed` (a policy: no consent, a frequency cap), `failed` (refused for good, or retried too often),
`bounced` or `dropped` (by the provider). `unknown`: a dispatcher called the provider and no answer came (a
timeout, a crash): engage asks the provider, or waits for its webhook, before sending it again.

A webhook moves the status forward only (a late `delivered` never hides an `opened`); the history keeps
every step with its time and detail.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, TextClause, text

from engage.store.codec import any_of, json_param, json_value, list_param, time_param, time_value

__all__ = ["MessageRecord", "RANK", "ACTIVE", "Records", "Changes"]

RANK = {
    "queued": 0,
    "sending": 1,
    "unknown": 1,
    "sent": 2,
    "delivered": 3,
    "opened": 4,
    "clicked": 5,
    "suppressed": 9,
    "failed": 9,
    "bounced": 9,
    "dropped": 9,
}
ACTIVE = ("sending", "sent", "delivered", "opened", "clicked", "unknown")
"""Statuses of a message that reached, or may have reached, the customer (frequency caps count them)."""
_ACTIVE_SQL = ", ".join(f"'{status}'" for status in ACTIVE)
_COLUMNS = (
    "id, send_key, profile_id, channel, template, transactional, status, due_at, attempts, address, "
    "provider, provider_id, subject, body, text, links, data, error, created_at, updated_at, sent_at"
)


@dataclass
class MessageRecord:
    id: str
    send_key: str
    profile_id: str
    channel: str
    template: str
    transactional: bool
    status: str
    due_at: datetime
    attempts: int
    address: str | None
    provider: str | None
    provider_id: str | None
    subject: str | None
    body: str | None
    text: str | None
    links: list[dict[str, Any]]
    data: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> MessageRecord:
        values = list(row)
        (ident, key, profile, channel, template, transactional, status, due, attempts, address, provider,
         provider_id, subject, body, plain, links, data, error, created, updated, sent) = values  # fmt: skip
        return cls(
            ident, key, profile, channel, template, bool(transactional), status, time_value(due), attempts,
            address, provider, provider_id, subject, body, plain, json_value(links) or [],
            json_value(data) or {}, error, time_value(created), time_value(updated),
            time_value(sent) if sent is not None else None,
        )  # fmt: skip


_HISTORY = text("INSERT INTO message_statuses (message_id, status, at, detail) VALUES (:m, :s, :at, :d)")


@functools.lru_cache(maxsize=32)
def _update_statement(columns: tuple[str, ...]) -> TextClause:
    assignments = ", ".join(f"{column} = :{column}" for column in (*columns, "updated_at"))
    return text(f"UPDATE messages SET {assignments} WHERE id = :id")


class Changes:
    """Many messages' changes and status history in memory, written at once (`Records.write`)."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, dict[str, Any]]] = []
        self.entries: list[tuple[str, str, datetime, str | None]] = []

    def move(
        self, message_id: str, status: str, now: datetime, detail: str | None = None, **values: Any
    ) -> None:
        """Set the message's status (and `values`), with its entry in the history."""
        self.updates.append((message_id, {"status": status, **values}))
        self.entries.append((message_id, status, now, detail))

    def set(self, message_id: str, **values: Any) -> None:
        self.updates.append((message_id, values))


class Records:
    """Reads and writes of `messages` and `message_statuses`, inside the caller's transaction."""

    def __init__(self, sqlite: bool):
        self.sqlite = sqlite

    def insert(self, connection: Connection, records: Sequence[MessageRecord]) -> dict[str, MessageRecord]:
        """Record `records` whose send key is new; returns the record of every key, new or already there."""
        if records:
            connection.execute(
                text(
                    f"INSERT INTO messages ({_COLUMNS}) VALUES (:id, :send_key, :profile_id, :channel, "
                    ":template, :transactional, :status, :due_at, :attempts, :address, :provider, "
                    ":provider_id, :subject, :body, :text, :links, :data, :error, :created_at, :updated_at, "
                    ":sent_at) ON CONFLICT (send_key) DO NOTHING"
                ),
                [self._params(record) for record in records],
            )
        found = connection.execute(
            text(f"SELECT {_COLUMNS} FROM messages WHERE {any_of('send_key', 'keys', self.sqlite)}"),
            {"keys": list_param([record.send_key for record in records], self.sqlite)},
        )
        return {record.send_key: record for record in map(MessageRecord.from_row, found)}

    def get(self, connection: Connection, ids: Iterable[str]) -> dict[str, MessageRecord]:
        rows = connection.execute(
            text(f"SELECT {_COLUMNS} FROM messages WHERE {any_of('id', 'ids', self.sqlite)}"),
            {"ids": list_param(list(ids), self.sqlite)},
        )
        return {record.id: record for record in map(MessageRecord.from_row, rows)}

    def by_provider_id(self, connection: Connection, provider_id: str) -> MessageRecord | None:
        row = connection.execute(
            text(f"SELECT {_COLUMNS} FROM messages WHERE provider_id = :pid"), {"pid": provider_id}
        ).first()
        return MessageRecord.from_row(row) if row is not None else None

    def claim(self, connection: Connection, now: datetime, limit: int) -> list[MessageRecord]:
        """Take up to `limit` queued messages that are due, oldest due first, as `sending` (one attempt
        more). On PostgreSQL other dispatchers skip the rows this one holds (`SKIP LOCKED`)."""
        lock = "" if self.sqlite else " FOR UPDATE SKIP LOCKED"
        rows = connection.execute(
            text(
                "UPDATE messages SET status = 'sending', attempts = attempts + 1, updated_at = :now "
                "WHERE id IN (SELECT id FROM messages WHERE status = 'queued' AND due_at <= :now "
                f"ORDER BY due_at LIMIT :limit{lock}) RETURNING {_COLUMNS}"
            ),
            {"now": time_param(now, self.sqlite), "limit": limit},
        ).all()
        claimed = sorted(map(MessageRecord.from_row, rows), key=lambda record: (record.due_at, record.id))
        self.history(
            connection, [(record.id, "sending", now, f"attempt {record.attempts}") for record in claimed]
        )
        return claimed

    def stuck(self, connection: Connection, before: datetime, limit: int = 1000) -> list[MessageRecord]:
        """Messages left `sending` since before `before` (their dispatcher died) and `unknown` ones."""
        rows = connection.execute(
            text(
                f"SELECT {_COLUMNS} FROM messages WHERE status IN ('sending', 'unknown') "
                "AND updated_at < :before ORDER BY updated_at LIMIT :limit"
            ),
            {"before": time_param(before, self.sqlite), "limit": limit},
        )
        return [MessageRecord.from_row(row) for row in rows]

    def write(self, connection: Connection, now: datetime, changes: Changes) -> None:
        self.update_many(connection, now, changes.updates)
        self.history(connection, changes.entries)

    def update(self, connection: Connection, message_id: str, now: datetime, **values: Any) -> None:
        """Set columns of one message (links and data as JSON, times as the driver wants)."""
        self.update_many(connection, now, [(message_id, values)])

    def update_many(
        self, connection: Connection, now: datetime, changes: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        """Set columns of many messages: one statement for each set of columns, run for all its rows."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for message_id, values in changes:
            params: dict[str, Any] = {"id": message_id, "updated_at": time_param(now, self.sqlite)}
            for column, value in values.items():
                if column in ("links", "data"):
                    params[column] = json_param(value)
                elif isinstance(value, datetime):
                    params[column] = time_param(value, self.sqlite)
                else:
                    params[column] = value
            by_columns.setdefault(tuple(sorted(values)), []).append(params)
        for columns, rows in by_columns.items():
            connection.execute(_update_statement(columns), rows)

    def advance(
        self, connection: Connection, message_id: str, status: str, at: datetime, detail: str | None
    ) -> bool:
        """Record `status` in the history and move the message to it if it ranks above where it stands;
        whether it moved."""
        self.history(connection, [(message_id, status, at, detail)])
        moved = connection.execute(
            text(
                "UPDATE messages SET status = :status, updated_at = :at WHERE id = :id AND status IN "
                f"({', '.join(repr(s) for s, rank in RANK.items() if rank < RANK[status])})"
            ),
            {"status": status, "at": time_param(at, self.sqlite), "id": message_id},
        ).rowcount
        return bool(moved)

    def withdraw(self, connection: Connection, reasons: dict[str, str], now: datetime) -> int:
        """Suppress the messages of `reasons` (reason by id) that still wait to be sent; how many did."""
        if not reasons:
            return 0
        rows = connection.execute(
            text(
                f"SELECT id FROM messages WHERE {any_of('id', 'ids', self.sqlite)} AND status = 'queued'"
                + ("" if self.sqlite else " FOR UPDATE")
            ),
            {"ids": list_param(list(reasons), self.sqlite)},
        ).all()
        changes = Changes()
        for (message_id,) in rows:
            reason = f"withdrawn: {reasons[message_id]}"
            changes.move(message_id, "suppressed", now, reason, error=reason)
        self.write(connection, now, changes)
        return len(rows)

    def history(
        self, connection: Connection, entries: Sequence[tuple[str, str, datetime, str | None]]
    ) -> None:
        if entries:
            rows = [{"m": m, "s": s, "at": time_param(at, self.sqlite), "d": d} for m, s, at, d in entries]
            connection.execute(_HISTORY, rows)

    def statuses(self, connection: Connection, message_id: str) -> list[tuple[str, datetime, str | None]]:
        rows = connection.execute(
            text("SELECT status, at, detail FROM message_statuses WHERE message_id = :id ORDER BY id"),
            {"id": message_id},
        )
        return [(status, time_value(at), detail) for status, at, detail in rows]

    def sent_counts(
        self,
        connection: Connection,
        profile_ids: Sequence[str],
        channel: str,
        since: datetime,
        excluding: Sequence[str] = (),
    ) -> dict[str, int]:
        """Marketing messages each profile got on `channel` since `since` (what a frequency cap counts),
        leaving out the messages `excluding` (the ones being decided)."""
        rows = connection.execute(
            text(
                "SELECT profile_id, count(*) FROM messages WHERE "
                f"{any_of('profile_id', 'ids', self.sqlite)} AND channel = :channel AND created_at >= :since "
                f"AND NOT transactional AND status IN ({_ACTIVE_SQL}) "
                f"AND NOT {any_of('id', 'excluding', self.sqlite)} GROUP BY profile_id"
            ),
            {
                "ids": list_param(list(profile_ids), self.sqlite),
                "channel": channel,
                "since": time_param(since, self.sqlite),
                "excluding": list_param(list(excluding), self.sqlite),
            },
        )
        return dict(rows.all())

    def received(
        self, connection: Connection, profile_id: str, templates: Sequence[str], since: datetime
    ) -> int:
        """Messages of `templates` that reached (or may have reached) the profile since `since`."""
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM messages WHERE profile_id = :profile AND created_at >= :since "
                    f"AND {any_of('template', 'templates', self.sqlite)} AND status IN ({_ACTIVE_SQL})"
                ),
                {
                    "profile": profile_id,
                    "since": time_param(since, self.sqlite),
                    "templates": list_param(list(templates), self.sqlite),
                },
            ).scalar_one()
        )

    def _params(self, record: MessageRecord) -> dict[str, Any]:
        params = dict(vars(record))
        params["links"] = json_param(record.links)
        params["data"] = json_param(record.data)
        for column in ("due_at", "created_at", "updated_at", "sent_at"):
            if params[column] is not None:
                params[column] = time_param(params[column], self.sqlite)
        return params
