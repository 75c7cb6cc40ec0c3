"""The segment engine's tables: per-profile states, memberships with history, what profiles are.

Every function takes the caller's connection: the consumer, the clock and the backfill each write their
changes, their announcements and their stream offset in one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from engage.events.log import append_system_events, system_event
from engage.segments.engine import Change, ProfileFacts, ProfileState
from engage.store.codec import any_of, json_value, list_param, listed, time_param

__all__ = [
    "SEGMENT_ENTERED",
    "SEGMENT_EXITED",
    "load_states",
    "load_state_texts",
    "save_states",
    "delete_states",
    "load_facts",
    "due_profiles",
    "next_due",
    "record_changes",
    "current_members",
    "Announcement",
]

SEGMENT_ENTERED = "SegmentEntered"
SEGMENT_EXITED = "SegmentExited"
_CHUNK = 5_000  # ids per statement


def _sqlite(connection: Connection) -> bool:
    return connection.dialect.name == "sqlite"


def _chunks(ids: Collection[str]) -> Iterable[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def load_states(connection: Connection, profile_ids: Collection[str]) -> dict[str, ProfileState]:
    """The stored states of these profiles; on PostgreSQL their rows stay locked until commit, so the
    consumer and the clock never both rewrite one profile."""
    return {
        pid: ProfileState.loads(state) for pid, state in load_state_texts(connection, profile_ids).items()
    }


def load_state_texts(connection: Connection, profile_ids: Collection[str]) -> dict[str, str]:
    """`load_states` without decoding: a caller may need only some of them."""
    sqlite = _sqlite(connection)
    query = text(
        f"SELECT s.profile_id, s.state FROM {listed('ids', sqlite)} "
        "JOIN segment_states AS s ON s.profile_id = listed.value" + ("" if sqlite else " FOR UPDATE OF s")
    )
    found: dict[str, str] = {}
    for chunk in _chunks(profile_ids):
        found.update(connection.execute(query, {"ids": list_param(chunk, sqlite)}).fetchall())
    return found


def save_states(
    connection: Connection, states: dict[str, tuple[str, int | None]], due_unchanged: Collection[str] = ()
) -> None:
    """Write each profile's encoded state (`ProfileState.dumps()`) and when it is next due (µs since
    the epoch, or None).

    `due_unchanged` names stored profiles whose due time stays: only their state is rewritten, which
    spares the due_at index an update. Most saves are such: a new event rarely moves the earliest moment
    a window runs out."""
    if not states:
        return
    marker = "?" if _sqlite(connection) else "%s"
    kept = [(text, pid) for pid, (text, _) in states.items() if pid in due_unchanged]
    if kept:
        connection.exec_driver_sql(
            f"UPDATE segment_states SET state = {marker} WHERE profile_id = {marker}", kept
        )
    if len(kept) < len(states):
        connection.exec_driver_sql(
            f"INSERT INTO segment_states (profile_id, state, due_at) VALUES ({marker}, {marker}, {marker}) "
            "ON CONFLICT (profile_id) DO UPDATE SET state = excluded.state, due_at = excluded.due_at",
            [(pid, text, due) for pid, (text, due) in states.items() if pid not in due_unchanged],
        )


def delete_states(connection: Connection, profile_ids: Collection[str]) -> None:
    sqlite = _sqlite(connection)
    for chunk in _chunks(profile_ids):
        connection.execute(
            text(f"DELETE FROM segment_states WHERE {any_of('profile_id', 'ids', sqlite)}"),
            {"ids": list_param(chunk, sqlite)},
        )


def load_facts(connection: Connection, profile_ids: Collection[str]) -> dict[str, ProfileFacts]:
    """User id, traits and explicit consents of these profiles, as the profiles consumer keeps them."""
    sqlite = _sqlite(connection)
    facts: dict[str, ProfileFacts] = {}
    for chunk in _chunks(profile_ids):
        params = {"ids": list_param(chunk, sqlite)}
        traits = "p.traits" if sqlite else "p.traits::text"
        for profile_id, user_id, found in connection.execute(
            text(
                f"SELECT p.id, p.user_id, {traits} FROM {listed('ids', sqlite)} "
                "JOIN profiles AS p ON p.id = listed.value"
            ),
            params,
        ).fetchall():
            facts[profile_id] = ProfileFacts(user_id, dict(json_value(found)))
        for profile_id, channel, subscribed in connection.execute(
            text(
                f"SELECT c.profile_id, c.channel, c.subscribed FROM {listed('ids', sqlite)} "
                "JOIN consents AS c ON c.profile_id = listed.value"
            ),
            params,
        ).fetchall():
            facts.setdefault(profile_id, ProfileFacts()).consents[channel] = bool(subscribed)
    return facts


def due_profiles(connection: Connection, now_us: int, limit: int) -> list[str]:
    """Profiles whose next re-evaluation is due by `now_us`, earliest first. On PostgreSQL rows another
    worker's clock holds are skipped, not waited for."""
    lock = "" if _sqlite(connection) else " FOR UPDATE SKIP LOCKED"
    rows = connection.execute(
        text(
            f"SELECT profile_id FROM segment_states WHERE due_at <= :now ORDER BY due_at LIMIT :limit{lock}"
        ),
        {"now": now_us, "limit": limit},
    )
    return [profile_id for (profile_id,) in rows]


def next_due(connection: Connection) -> int | None:
    return connection.execute(text("SELECT MIN(due_at) FROM segment_states")).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class Announcement:
    """A membership change of one profile, with what caused it (for the event's context and id)."""

    profile_id: str
    user_id: str | None
    change: Change
    cause: str
    """The messageId of the triggering event, `clock:<µs>`, `backfill:<fingerprint>` or `merge:<id>`."""


def record_changes(connection: Connection, announcements: list[Announcement], at: datetime) -> None:
    """Open or close membership rows and announce each change as SegmentEntered / SegmentExited."""
    if not announcements:
        return
    sqlite = _sqlite(connection)
    marker = "?" if sqlite else "%s"
    when = time_param(at, sqlite)
    entered = [(a.change.segment, a.profile_id, when) for a in announcements if a.change.entered]
    exited = [(when, a.change.segment, a.profile_id) for a in announcements if not a.change.entered]
    if exited:
        connection.exec_driver_sql(
            f"UPDATE segment_memberships SET exited_at = {marker} "
            f"WHERE segment = {marker} AND profile_id = {marker} AND exited_at IS NULL",
            exited,
        )
    if entered:
        connection.exec_driver_sql(
            "INSERT INTO segment_memberships (segment, profile_id, entered_at) "
            f"VALUES ({marker}, {marker}, {marker})",
            entered,
        )
    append_system_events(connection, [_announcement_event(a, at) for a in announcements])


def _announcement_event(announcement: Announcement, at: datetime) -> dict[str, Any]:
    change = announcement.change
    name = SEGMENT_ENTERED if change.entered else SEGMENT_EXITED
    direction = "entered" if change.entered else "exited"
    # Deterministic, so announcing the same change twice (a replay) logs it once; hashed to fit the column.
    digest = hashlib.sha256(f"{change.segment}\0{announcement.cause}".encode()).hexdigest()[:24]
    return system_event(
        f"segment-{direction}:{announcement.profile_id}:{digest}",
        name,
        announcement.profile_id,
        announcement.user_id,
        at,
        {"segment": change.segment},
        {"cause": announcement.cause},
    )


def current_members(connection: Connection, segment: str) -> set[str]:
    rows = connection.execute(
        text("SELECT profile_id FROM segment_memberships WHERE segment = :segment AND exited_at IS NULL"),
        {"segment": segment},
    )
    return {profile_id for (profile_id,) in rows}
