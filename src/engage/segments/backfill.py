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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
import pandas as pd
from sqlalchemy import Connection, text

from engage.events.stream.base import partition_of
from engage.segments import batch, store
from engage.segments.definition import Segment
from engage.segments.engine import Change, ProfileState, SegmentEngine
from engage.store.codec import any_of, json_value, list_param, time_param, time_value
from engage.store.database import Database
from engage.store.upsert import upsert

__all__ = ["Applied", "fingerprint", "sync_definitions"]

_PAGE = 50_000


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
        states = _rebuild_trackers(connection, engine, set(engine.trackers) - known, offsets, partitions)
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


def _handled(
    profile_ids: Iterable[str], seqs: Iterable[int], offsets: list[int], partitions: int
) -> list[bool]:
    """For each event, whether the consumer has handled it (its seq is at most its partition's offset)."""
    if partitions == 1:
        return [seq <= offsets[0] for seq in seqs]
    return [
        seq <= offsets[partition_of(profile_id, partitions)]
        for profile_id, seq in zip(profile_ids, seqs, strict=True)
    ]


def _rebuild_trackers(
    connection: Connection, engine: SegmentEngine, keys: set[str], offsets: list[int], partitions: int
) -> dict[str, ProfileState]:
    """Every stored state, with the trackers keyed in `keys` rebuilt from the events the consumer has
    handled. Empty when there is nothing to rebuild: states are then loaded only where members change."""
    if not keys:
        return {}
    sqlite = connection.dialect.name == "sqlite"
    states = {
        profile_id: ProfileState.loads(state)
        for profile_id, state in connection.execute(text("SELECT profile_id, state FROM segment_states"))
    }
    for state in states.values():
        for key in keys:
            state.trackers.pop(key, None)
    names = sorted({engine.trackers[key].event for key in keys})
    properties = "properties" if sqlite else "properties::text"
    query = text(
        f"SELECT seq, profile_id, event, timestamp, {properties} FROM event_log "
        f"WHERE seq > :after AND seq <= :until AND {any_of('event', 'names', sqlite)} "
        "ORDER BY seq LIMIT :limit"
    )
    params = {"after": 0, "until": max(offsets), "names": list_param(names, sqlite), "limit": _PAGE}
    while rows := connection.execute(query, params).all():
        params["after"] = rows[-1][0]
        handled = _handled((row[1] for row in rows), (row[0] for row in rows), offsets, partitions)
        for (seq, profile_id, event, timestamp, found), done in zip(rows, handled, strict=True):
            if done:
                state = states.setdefault(profile_id, ProfileState())
                engine.observe(state, event, time_value(timestamp), seq, json_value(found), only=keys)
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
    missing = touched - states.keys()
    if missing:
        states.update(store.load_states(connection, missing))
    for announcement in announcements:
        state = states.setdefault(announcement.profile_id, ProfileState())
        if announcement.change.entered:
            state.members.add(announcement.change.segment)
        else:
            state.members.discard(announcement.change.segment)
    facts = store.load_facts(connection, states.keys())
    store.save_states(
        connection,
        {pid: (state, engine.settle(state, facts.get(pid), now)) for pid, state in states.items()},
    )


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
