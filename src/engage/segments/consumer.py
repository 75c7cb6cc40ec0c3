"""Keeping memberships current: the segments consumer (on events) and the segment clock (on time).

`SegmentsConsumer` folds each batch of events into the touched profiles' states, re-evaluates the
segments those events can change and records and announces every change. `SegmentClock` re-evaluates a
profile at the moment one of its windows runs out (`segment_states.due_at`), so a user leaves "active in
the last 30 days" on day 31 without any event. Both run in the stream's write transaction style: state,
memberships, announcements (and, for the consumer, the stream offset) commit together.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from engage.events.log import MERGE_EVENT, LoggedEvent
from engage.profiles.consent import consent_changes
from engage.profiles.consumer import merged_into
from engage.segments import store
from engage.segments.engine import Change, ProfileFacts, ProfileState, SegmentEngine
from engage.segments.trackers import micros
from engage.store.database import Database

__all__ = ["SegmentsConsumer", "SegmentClock"]

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass
class _Touched:
    """One profile's part of a batch: its state and which segments to re-evaluate."""

    state: ProfileState
    segments: set[str] | None = field(default_factory=set)
    """None: every segment (a new profile, or one another profile merged into)."""
    cause: str = ""
    changed: bool = False
    """Whether the state changed (a tracker took an event, the user id became known)."""
    facts_changed: bool = False
    """Whether traits or consent may have changed: the facts kept in the state are read again."""
    took: set[str] = field(default_factory=set)
    """The trackers that took an event of this batch."""
    text: str | None = None
    """The state as stored (None: a new profile); until settled, `state.due` is the stored due time."""

    def affect(self, names: set[str] | None) -> None:
        if self.segments is None:
            return
        if names is None:
            self.segments = None
        else:
            self.segments |= names


def _needs_reading(engine: SegmentEngine, part: _Touched) -> bool:
    """Whether this profile's traits and consents must be read before evaluating: it is new or merged,
    they may have changed, or segments to evaluate test them and the state keeps none yet."""
    if part.segments is None:
        return True
    if not part.segments or not engine.needs_facts(part.segments):
        return False
    return part.facts_changed or part.state.facts is None


def _apply(
    connection: Connection,
    engine: SegmentEngine,
    touched: dict[str, _Touched],
    now: datetime,
    gone: dict[str, ProfileState] | None = None,
) -> int:
    """Evaluate, record and announce; save states. Returns how many memberships changed."""
    stale = {pid for pid, part in touched.items() if _needs_reading(engine, part)}
    read = store.load_facts(connection, stale) if stale else {}
    announcements: list[store.Announcement] = []
    saved: dict[str, tuple[str, int | None]] = {}
    due_unchanged: set[str] = set()
    for profile_id, part in touched.items():
        if not part.changed and part.segments == set():
            continue  # e.g. an event no segment uses: nothing to evaluate, nothing to save
        fresh = None
        if profile_id in stale:
            fresh = part.state.facts = engine.kept_facts(read.get(profile_id) or ProfileFacts())
        if part.segments is None or part.segments:
            profile = part.state.facts or ProfileFacts()
            for change in engine.evaluate(profile_id, part.state, profile, now, part.segments):
                announcements.append(store.Announcement(profile_id, part.state.user_id, change, part.cause))
        # Time-dependent traits are looked at again only when they were read again.
        changed = part.took if part.segments is not None else None
        stored_due = part.state.due
        due = engine.settle(part.state, fresh, now, changed)
        text = part.state.dumps()
        if text == part.text:
            continue  # e.g. facts read again that say what they said
        saved[profile_id] = (text, due)
        if part.text is not None and due == stored_due:
            due_unchanged.add(profile_id)
    for profile_id, state in (gone or {}).items():  # merged away: its memberships end with it
        for name in sorted(state.members):
            change = Change(name, False)
            announcements.append(store.Announcement(profile_id, state.user_id, change, f"merge:{profile_id}"))
    store.save_states(connection, saved, due_unchanged)
    store.record_changes(connection, announcements, now)
    return len(announcements)


class SegmentsConsumer:
    name = "segments"

    def __init__(self, engine: SegmentEngine, clock: Clock):
        self.engine = engine
        self.clock = clock

    def handle(self, connection: Connection, events: Sequence[LoggedEvent]) -> None:
        engine = self.engine
        now = self.clock()
        now_us = micros(now)
        named = {event.profile_id for event in events}
        merged_away = {e.properties["from_profile"] for e in events if e.type == "merge"}
        moved = merged_into(connection, named)
        # Decoded only for profiles an event can change: most events of a batch touch no segment.
        stored = store.load_state_texts(connection, named | merged_away | set(moved.values()))
        touched: dict[str, _Touched] = {}
        gone: dict[str, ProfileState] = {}

        def part(profile_id: str) -> _Touched:
            found = touched.get(profile_id)
            if found is None:
                text = stored.get(profile_id)
                state = ProfileState.loads(text) if text is not None else None
                # New, or past its due time with the segment clock not there yet: every segment is
                # evaluated, as the clock would, before settling moves the due time on.
                everything = state is None or (state.due is not None and state.due <= now_us)
                found = touched[profile_id] = _Touched(
                    state or ProfileState(),
                    None if everything else set(),
                    changed=state is None,
                    text=text,
                )
            return found

        for event in events:
            consents = consent_changes(event)
            if not self._may_change(event, bool(consents)):
                profile_id = moved.get(event.profile_id, event.profile_id)
                if profile_id not in stored and profile_id not in touched:
                    part(profile_id)  # a profile's first event: every segment is evaluated for it
                continue
            if event.type == "merge" and event.event == MERGE_EVENT:
                source, target = event.properties["from_profile"], event.properties["into_profile"]
                moved[source] = target
                into = part(target)
                into.affect(None)
                into.cause = event.message_id
                into.changed = True
                old = touched.pop(source, None)
                text = stored.get(source)
                merged = old.state if old is not None else ProfileState.loads(text) if text else None
                if merged is not None:
                    engine.merge(into.state, merged)
                    gone[source] = merged
                continue
            profile_id = moved.get(event.profile_id, event.profile_id)
            current = part(profile_id)
            current.cause = event.message_id
            if event.user_id and event.user_id != current.state.user_id:
                current.state.user_id = event.user_id
                current.changed = current.facts_changed = True
                current.affect(engine.affected_by_user_id())
            took = engine.observe(
                current.state, event.event, event.timestamp, event.seq, event.properties, now_us=now_us
            )
            if took:
                current.changed = True
                current.took.update(took)
                current.affect(engine.affected_by_trackers(took))
            changed_traits = [*event.traits, *(event.context.get("traits") or {})]
            if changed_traits:
                current.facts_changed = True
                current.affect(engine.affected_by_traits(changed_traits))
            for consent in consents:
                current.facts_changed = True
                current.affect(engine.affected_by_consent(consent.channel))
        if gone:
            store.delete_states(connection, gone.keys() - touched.keys())
        _apply(connection, engine, touched, now, gone)

    def _may_change(self, event: LoggedEvent, changes_consent: bool) -> bool:
        """Whether the event can change a profile's state or facts: a name some segment counts, traits,
        consent, a user id newly linked to the profile (only calls carrying both ids, or identify and
        alias, can link one), a merge."""
        return (
            self.engine.watches(event.event)
            or event.type in ("merge", "identify", "alias")
            or bool(event.traits or event.context.get("traits"))
            or bool(event.user_id and event.anonymous_id)
            or changes_consent
        )


class SegmentClock:
    """Re-evaluates profiles whose windows run out, at that moment. `tick()` does what is due now; `run()`
    sleeps until the next due time (or `poll` seconds, to notice new ones) and ticks."""

    def __init__(self, database: Database, engine: SegmentEngine, clock: Clock, batch_size: int = 500):
        self.database = database
        self.engine = engine
        self.clock = clock
        self.batch_size = batch_size

    def tick(self) -> int:
        """Re-evaluate every profile due by now; returns how many memberships changed."""
        changed = 0
        while True:
            now = self.clock()
            with self.database.write() as connection:
                due = store.due_profiles(connection, micros(now), self.batch_size)
                if not due:
                    return changed
                cause = f"clock:{micros(now)}"
                touched = {
                    pid: _Touched(ProfileState.loads(text), None, cause, text=text)
                    for pid, text in store.load_state_texts(connection, due).items()
                }
                changed += _apply(connection, self.engine, touched, now)
            if len(due) < self.batch_size:
                return changed

    def run(self, stop: threading.Event, poll: float = 1.0) -> None:
        while not stop.is_set():
            try:
                self.tick()
                with self.database.read() as connection:
                    due = store.next_due(connection)
            except DBAPIError:
                log.warning("segment clock: database unavailable; retrying", exc_info=True)
                due = None
            wait = poll
            if due is not None:
                wait = min(poll, max(0.0, (due - micros(self.clock())) / 1e6))
            stop.wait(wait)
