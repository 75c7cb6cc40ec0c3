"""Journey instances in the database: read, claimed, and changed in the caller's transaction.

An instance is one row of `journey_instances`; its history is rows of `journey_steps`. What a batch
changes (the consumer's, a tick's) is gathered in `Transitions` and written at once by `write`, in the
same transaction as what caused it, with the events it announces.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from engage.events.log import append_system_events
from engage.store.codec import any_of, json_param, json_value, list_param, time_param, time_value

if TYPE_CHECKING:
    from engage.journeys.transitions import Transitions

__all__ = ["Instance", "claim_due", "instances_of", "write", "next_due", "messages_of", "logged_events"]

_COLUMNS = (
    "id, journey, version, profile_id, key, status, step, due_at, waiting_since, waiting_for, trigger, arm, "
    "entered_at, ended_at, exit_reason, goal_at"
)
_STATE = (
    "status",
    "step",
    "due_at",
    "waiting_since",
    "waiting_for",
    "arm",
    "ended_at",
    "exit_reason",
    "goal_at",
)
_TIMES = ("due_at", "waiting_since", "entered_at", "ended_at", "goal_at")


@dataclass
class Instance:
    id: str
    journey: str
    version: str
    profile_id: str
    key: str
    status: str
    """active, completed or exited."""
    step: int
    due_at: datetime | None
    waiting_since: datetime | None
    waiting_for: str | None
    trigger: dict[str, Any]
    """The event that started it: name, message_id, seq, properties, timestamp (the templates' `event`)."""
    arm: str | None
    entered_at: datetime
    ended_at: datetime | None = None
    exit_reason: str | None = None
    goal_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> Instance:
        values = list(row)
        for index in (7, 8, 12, 13, 15):
            if values[index] is not None:
                values[index] = time_value(values[index])
        values[10] = json_value(values[10])
        return cls(*values)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def params(self, sqlite: bool) -> dict[str, Any]:
        params = dict(vars(self))
        params["trigger"] = json_param(self.trigger)
        for column in _TIMES:
            if params[column] is not None:
                params[column] = time_param(params[column], sqlite)
        return params


def instances_of(
    connection: Connection, profile_ids: Collection[str], journeys: Collection[str], *, lock: bool
) -> list[Instance]:
    """Every instance of these profiles in these journeys, oldest first. With `lock` on PostgreSQL the rows
    are locked, waiting for a tick that holds some of them to commit."""
    if not profile_ids or not journeys:
        return []
    sqlite = connection.dialect.name == "sqlite"
    rows = connection.execute(
        text(
            f"SELECT {_COLUMNS} FROM journey_instances WHERE {any_of('profile_id', 'profiles', sqlite)} "
            f"AND {any_of('journey', 'journeys', sqlite)} ORDER BY entered_at, id"
            + (" FOR UPDATE" if lock and not sqlite else "")
        ),
        {
            "profiles": list_param(sorted(profile_ids), sqlite),
            "journeys": list_param(sorted(journeys), sqlite),
        },
    )
    return [Instance.from_row(row) for row in rows]


def claim_due(connection: Connection, now: datetime, limit: int) -> list[Instance]:
    """Up to `limit` active instances whose step is due, earliest first. On PostgreSQL the rows are locked
    until the transaction ends and rows another worker holds are skipped, so workers share the work; a
    worker that dies releases its rows with its connection."""
    sqlite = connection.dialect.name == "sqlite"
    rows = connection.execute(
        text(
            f"SELECT {_COLUMNS} FROM journey_instances WHERE status = 'active' AND due_at <= :now "
            "ORDER BY due_at LIMIT :limit" + ("" if sqlite else " FOR UPDATE SKIP LOCKED")
        ),
        {"now": time_param(now, sqlite), "limit": limit},
    )
    return [Instance.from_row(row) for row in rows]


def next_due(connection: Connection) -> datetime | None:
    found = connection.execute(
        text("SELECT min(due_at) FROM journey_instances WHERE status = 'active'")
    ).scalar_one_or_none()
    return time_value(found) if found is not None else None


def write(connection: Connection, transitions: Transitions) -> None:
    """Insert the instances that entered (one running per journey, customer and key: an entry racing
    another of the same is dropped), update the changed ones, add their history, append their events."""
    sqlite = connection.dialect.name == "sqlite"
    if transitions.entered:
        connection.execute(
            text(
                f"INSERT INTO journey_instances ({_COLUMNS}) VALUES (:id, :journey, :version, :profile_id, "
                ":key, :status, :step, :due_at, :waiting_since, :waiting_for, :trigger, :arm, :entered_at, "
                ":ended_at, :exit_reason, :goal_at) ON CONFLICT (journey, profile_id, key) "
                "WHERE status = 'active' DO NOTHING"
            ),
            [instance.params(sqlite) for instance in transitions.entered],
        )
    if transitions.changed:
        assignments = ", ".join(f"{column} = :{column}" for column in (*_STATE, "profile_id"))
        connection.execute(
            text(f"UPDATE journey_instances SET {assignments} WHERE id = :id"),
            [instance.params(sqlite) for instance in transitions.changed.values()],
        )
    if transitions.history:
        connection.execute(
            text(
                "INSERT INTO journey_steps (instance_id, journey, step, kind, at, detail, message_id) "
                "VALUES (:instance_id, :journey, :step, :kind, :at, :detail, :message_id)"
            ),
            [entry.params(sqlite) for entry in transitions.history],
        )
    append_system_events(connection, transitions.events)


def messages_of(connection: Connection, instance_ids: Collection[str]) -> dict[str, str]:
    """The messages these instances recorded: instance id by message id."""
    if not instance_ids:
        return {}
    sqlite = connection.dialect.name == "sqlite"
    rows = connection.execute(
        text(
            "SELECT message_id, instance_id FROM journey_steps "
            f"WHERE {any_of('instance_id', 'ids', sqlite)} AND message_id IS NOT NULL"
        ),
        {"ids": list_param(list(instance_ids), sqlite)},
    )
    return dict(rows.all())


def logged_events(
    connection: Connection, profile_ids: Collection[str], names: Collection[str], after: int
) -> list[tuple[int, str, str, dict[str, Any], datetime]]:
    """Events of these names these profiles did after `after` in the log: (seq, profile, name,
    properties, timestamp), in order."""
    if not profile_ids or not names:
        return []
    sqlite = connection.dialect.name == "sqlite"
    rows = connection.execute(
        text(
            "SELECT seq, profile_id, event, properties, timestamp FROM event_log "
            f"WHERE {any_of('profile_id', 'profiles', sqlite)} AND {any_of('event', 'names', sqlite)} "
            "AND seq > :after ORDER BY seq"
        ),
        {
            "profiles": list_param(sorted(profile_ids), sqlite),
            "names": list_param(sorted(names), sqlite),
            "after": after,
        },
    )
    return [(seq, profile, name, json_value(props), time_value(at)) for seq, profile, name, props, at in rows]
