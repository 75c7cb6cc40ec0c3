"""Applying the workspace's segment files to the database: new and edited segments are backfilled.

`sync_definitions` compares each segment's fingerprint (its condition and its manual lists) with the one
last applied. For a new or edited segment it
1. rebuilds, from the event log, the state of any tracker no applied segment used before, so the
   real-time engine can carry on from there;
2. computes the members with the vectorised batch evaluator (`engage.segments.batch`), also for the
   segments that refer to it with `in_segment`;
3. records and announces the difference from the current members, marked `backfill` in the context.
A segment whose file is gone is retired: its members exit.

It runs in one write transaction holding the segments consumer's offsets, so the log it reads ends
exactly where the consumer stands (per partition) and the consumer carries on from there.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import Connection, text

from engage.events.stream.base import partition_of
from engage.segments import batch, store
from engage.segments.definition import Segment
from engage.segments.engine import Change, ProfileState, SegmentEngine
from engage.segments.trackers import Tracker, from_micros, micros
from engage.store.codec import any_of, json_value, list_param, time_param, time_value
from engage.store.database import Database
from engage.store.upsert import upsert

__all__ = ["Applied", "fingerprint", "sync_definitions"]

_PAGE = 50_000
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Applied:
    """What syncing did to one segment."""

    segment: str
    action: str
    """`added`, `changed`, `retired`, or `reevaluated` (it refers to a segment that changed)."""
    members: int
    entered: int
    exited: int


def fingerprint(segment: Segment, manual: dict[str, frozenset[str]]) -> str:
    """Changes whenever the members could: the condition, and the contents of its manual lists."""
    lists = [sorted(manual.get(path, ())) for path in segment.manual_files()]
    return hashlib.sha256(repr((segment.condition, lists)).encode()).hexdigest()[:32]


def sync_definitions(
    database: Database,
    engine: SegmentEngine,
    now: datetime,
    *,
    consumer: str = "segments",
    partitions: int = 1,
) -> list[Applied]:
    """Backfill new and edited segments and retire removed ones; returns what changed (nothing when the
    database already has the workspace's definitions)."""
    with database.write() as connection:
        offsets = _lock_offsets(connection, consumer, partitions)
        applied = _applied(connection)
        prints = {name: fingerprint(s, engine.manual) for name, s in engine.segments.items()}
        changed = [
            name for name in engine.segments if name not in applied or applied[name][0] != prints[name]
        ]
        retired = [name for name in applied if name not in engine.segments and applied[name][0]]
        if not changed and not retired:
            _refresh_descriptions(connection, engine)
            return []
        known = {key for name, (_, keys) in applied.items() if name in engine.segments for key in keys}
        new_trackers = set(engine.trackers) - known
        states = _rebuild_trackers(connection, engine, new_trackers, offsets, partitions, now)
        report = _backfill(connection, engine, changed, retired, states, offsets, partitions, now)
        _record_definitions(connection, engine, prints, retired, now)
    return report


def _refresh_descriptions(connection: Connection, engine: SegmentEngine) -> None:
    """A new description or file name changes no members: it is just written down."""
    for name, segment in engine.segments.items():
        connection.execute(
            text(
                "UPDATE segment_definitions SET description = :description, file = :file "
                "WHERE name = :name AND (description != :description OR file != :file)"
            ),
            {"name": name, "description": segment.description, "file": segment.file},
        )


def _lock_offsets(connection: Connection, consumer: str, partitions: int) -> list[int]:
    """The consumer's offset in each partition, locked (PostgreSQL) so that it cannot move meanwhile."""
    lock = "" if connection.dialect.name == "sqlite" else " FOR UPDATE"
    rows = connection.execute(
        text(f"SELECT partition, seq FROM stream_offsets WHERE consumer = :consumer{lock}"),
        {"consumer": consumer},
    )
    found = dict(rows.all())
    return [found.get(partition, 0) for partition in range(partitions)]


def _applied(connection: Connection) -> dict[str, tuple[str | None, list[str]]]:
    """Each stored segment's fingerprint (None once retired) and tracker keys."""
    rows = connection.execute(
        text("SELECT name, fingerprint, trackers, retired_at FROM segment_definitions")
    ).all()
    return {
        name: (None if retired_at is not None else print_, orjson.loads(keys))
        for name, print_, keys, retired_at in rows
    }


def _is_handled(profile_id: str, seq: int, offsets: list[int], partitions: int) -> bool:
    """Whether the consumer has handled this event: its seq is at most its partition's offset."""
    return seq <= offsets[partition_of(profile_id, partitions) if partitions > 1 else 0]


def _handled(
    profile_ids: Iterable[str], seqs: Iterable[int], offsets: list[int], partitions: int
) -> list[bool]:
    """`_is_handled` for each event of a column pair."""
    return [
        _is_handled(profile_id, seq, offsets, partitions)
        for profile_id, seq in zip(profile_ids, seqs, strict=True)
    ]


def _rebuild_trackers(
    connection: Connection,
    engine: SegmentEngine,
    keys: set[str],
    offsets: list[int],
    partitions: int,
    now: datetime,
) -> dict[str, ProfileState]:
    """The states of the profiles whose trackers keyed in `keys` hold something, rebuilt from the events
    the consumer has handled. Empty when there is nothing to rebuild."""
    if not keys:
        return {}
    rebuilt: dict[str, ProfileState] = {}  # just the rebuilt trackers, merged into the stored states below
    by_event: dict[str, list[Tracker]] = {}
    for key in keys:
        by_event.setdefault(engine.trackers[key].event, []).append(engine.trackers[key])
    for event, trackers in sorted(by_event.items()):
        for seq, profile_id, timestamp, properties in _events_for(connection, event, trackers, offsets, now):
            if _is_handled(profile_id, seq, offsets, partitions):
                state = rebuilt.setdefault(profile_id, ProfileState())
                engine.observe(state, event, timestamp, seq, properties, only=keys)
    states = _states_holding(connection, keys)  # stale values of these trackers (a segment back again)
    states.update(store.load_states(connection, rebuilt.keys() - states.keys()))
    for state in states.values():
        for key in keys:
            state.trackers.pop(key, None)
    for profile_id, found in rebuilt.items():
        states.setdefault(profile_id, ProfileState()).trackers.update(found.trackers)
    return states


def _events_for(
    connection: Connection, event: str, trackers: list[Tracker], offsets: list[int], now: datetime
) -> Iterator[tuple[int, str, datetime, dict[str, Any]]]:
    """(seq, profile, time, properties) of the handled `event`s that can still count for `trackers`, in
    order: when every tracker has a window, older events are left in the database, and so are events
    without the text property value every tracker requires."""
    sqlite = connection.dialect.name == "sqlite"
    properties = "properties" if sqlite else "properties::text"
    conditions = ["seq > :after", "seq <= :until", "event = :event"]
    params: dict[str, Any] = {"after": 0, "until": max(offsets), "event": event, "limit": _PAGE}
    spans = [getattr(tracker, "span", None) for tracker in trackers]
    if all(span is not None for span in spans):
        conditions.append("timestamp > :cutoff")
        params["cutoff"] = time_param(from_micros(micros(now) - max(spans)), sqlite)  # type: ignore[type-var]
    routes = {tracker.route for tracker in trackers}
    if None not in routes and len({prop for prop, _ in routes}) == 1:  # type: ignore[misc]
        prop = next(iter(routes))[0]  # type: ignore[index]
        if _PLAIN_KEY.fullmatch(prop):
            value = f"json_extract(properties, '$.{prop}')" if sqlite else f"properties->>'{prop}'"
            conditions.append(any_of(value, "values", sqlite))
            params["values"] = list_param(sorted(v for _, v in routes), sqlite)  # type: ignore[misc]
    query = text(
        f"SELECT seq, profile_id, timestamp, {properties} FROM event_log WHERE {' AND '.join(conditions)} "
        "ORDER BY seq LIMIT :limit"
    )
    while rows := connection.execute(query, params).fetchall():
        params["after"] = rows[-1][0]
        for seq, profile_id, timestamp, found in rows:
            yield seq, profile_id, time_value(timestamp), json_value(found)


def _states_holding(connection: Connection, keys: set[str]) -> dict[str, ProfileState]:
    """Stored states that mention any of these tracker keys (12 hex digits: a text search is exact)."""
    states: dict[str, ProfileState] = {}
    for key in sorted(keys):
        rows = connection.execute(
            text("SELECT profile_id, state FROM segment_states WHERE state LIKE :pattern"),
            {"pattern": f'%"{key}"%'},
        ).fetchall()
        states.update({profile_id: ProfileState.loads(state) for profile_id, state in rows})
    return states


def _backfill(
    connection: Connection,
    engine: SegmentEngine,
    changed: list[str],
    retired: list[str],
    states: dict[str, ProfileState],
    offsets: list[int],
    partitions: int,
    now: datetime,
) -> list[Applied]:
    """Members of the changed segments (and those referring to them) by the batch evaluator; the
    difference from the current members recorded, announced and written into the profiles' states."""
    names = [name for name in engine.segments if name in engine.dependents_of(changed)]
    segments = [engine.segments[name] for name in names]
    population = batch.load_population(connection, segments)
    handled = _handled(population.events["profile_id"], population.events["seq"], offsets, partitions)
    population.events = population.events.loc[pd.Series(handled, index=population.events.index, dtype=bool)]
    others = {
        used: store.current_members(connection, used)
        for segment in segments
        for used in segment.segments_used()
        if used not in names
    }
    members = batch.evaluate(
        segments,
        population,
        now,
        manual=engine.manual,
        email_consent_default=engine.email_consent_default,
        members=others,
    )
    for name in retired:
        members[name] = set()
    user_ids = {pid: uid for pid, uid in population.profiles["user_id"].items() if isinstance(uid, str)}
    announcements: list[store.Announcement] = []
    report = []
    for name in [*names, *retired]:
        current = store.current_members(connection, name)
        segment = engine.segments.get(name)
        cause = f"backfill:{fingerprint(segment, engine.manual) if segment else 'retired'}"
        entered, exited = members[name] - current, current - members[name]
        for profile_id in sorted(entered):
            announcements.append(
                store.Announcement(profile_id, user_ids.get(profile_id), Change(name, True), cause)
            )
        for profile_id in sorted(exited):
            announcements.append(
                store.Announcement(profile_id, user_ids.get(profile_id), Change(name, False), cause)
            )
        action = "retired" if name in retired else "changed" if name in changed else "reevaluated"
        report.append(Applied(name, action, len(members[name]), len(entered), len(exited)))
    _update_states(connection, engine, states, announcements, now)
    store.record_changes(connection, announcements, now)
    return report


def _update_states(
    connection: Connection,
    engine: SegmentEngine,
    states: dict[str, ProfileState],
    announcements: list[store.Announcement],
    now: datetime,
) -> None:
    """Write the new memberships into the profiles' states, and save every state touched, with its due
    time: rebuilt trackers and new members may both bring windows."""
    touched = {a.profile_id for a in announcements}
    states.update(store.load_states(connection, touched - states.keys()))
    first_seen = touched - states.keys()  # members with no state yet: their time traits are read
    for announcement in announcements:
        state = states.setdefault(announcement.profile_id, ProfileState())
        if announcement.change.entered:
            state.members.add(announcement.change.segment)
        else:
            state.members.discard(announcement.change.segment)
    facts = store.load_facts(connection, first_seen)
    saved: dict[str, tuple[str, int | None]] = {}
    for pid, state in states.items():
        due = engine.settle(state, facts.get(pid), now)
        saved[pid] = (state.dumps(), due)
    store.save_states(connection, saved)


def _record_definitions(
    connection: Connection,
    engine: SegmentEngine,
    prints: dict[str, str],
    retired: list[str],
    now: datetime,
) -> None:
    sqlite = connection.dialect.name == "sqlite"
    rows = [
        {
            "name": name,
            "fingerprint": prints[name],
            "description": segment.description,
            "file": segment.file,
            "trackers": orjson.dumps(sorted(engine.trackers_of(name))).decode(),
            "applied_at": time_param(now, sqlite),
            "retired_at": None,
        }
        for name, segment in engine.segments.items()
    ]
    upsert(
        connection,
        "segment_definitions",
        rows,
        key=["name"],
        update=["fingerprint", "description", "file", "trackers", "applied_at", "retired_at"],
    )
    for name in retired:
        connection.execute(
            text("UPDATE segment_definitions SET retired_at = :now WHERE name = :name"),
            {"now": time_param(now, sqlite), "name": name},
        )
