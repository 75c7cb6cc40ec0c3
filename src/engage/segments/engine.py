"""The real-time evaluator: segments compiled once, then re-evaluated per profile from its own state.

`SegmentEngine` knows, for every event name, trait and consent channel, which segments depend on it (the
dependency index), so an event re-evaluates only those segments (and the ones that refer to them with
`in_segment`), from the profile's tracker states (`engage.segments.trackers`), never from its history.
It is pure: no database, no clock of its own. `SegmentsConsumer` and `SegmentClock` feed it events and
times; the property test feeds it random histories and compares it with the batch evaluator.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from engage.segments.compare import as_timestamp, lookup, matches
from engage.segments.definition import (
    Aggregate,
    All,
    AnyOf,
    Condition,
    Consent,
    CountOp,
    InSegment,
    LastPerformed,
    Manual,
    Not,
    NotPerformed,
    Op,
    Performed,
    RandomBucket,
    Segment,
    Trait,
)
from engage.segments.trackers import (
    AggregateTracker,
    CountTracker,
    LastTracker,
    Tracker,
    from_micros,
    micros,
    tracker_for,
)

__all__ = ["SegmentEngine", "ProfileState", "ProfileFacts", "Change"]


@dataclass(slots=True)
class ProfileFacts:
    """What a profile is, beyond its events: read from the profiles consumer's tables."""

    user_id: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)
    """Explicit choices per channel; a channel without one takes the default."""


@dataclass(slots=True)
class ProfileState:
    """A profile's tracker states and the segments it is in, as the engine last saw them."""

    trackers: dict[str, Any] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    user_id: str | None = None
    trait_due: int | None = None
    """When a `within` trait test next changes by time alone (µs), as of the last time traits were read."""

    def dumps(self) -> str:
        data = {"t": self.trackers, "m": sorted(self.members), "u": self.user_id, "d": self.trait_due}
        return orjson.dumps(data).decode()

    @classmethod
    def loads(cls, text: str | bytes) -> ProfileState:
        data = orjson.loads(text)
        return cls(data["t"], set(data["m"]), data.get("u"), data.get("d"))


@dataclass(frozen=True, slots=True)
class Change:
    segment: str
    entered: bool


@dataclass(slots=True)
class _Context:
    trackers: dict[str, Any]
    facts: ProfileFacts | None
    profile_id: str
    now: datetime
    now_us: int
    members: dict[str, bool]


Test = Callable[[_Context], bool]


class SegmentEngine:
    def __init__(
        self,
        segments: Sequence[Segment],
        *,
        manual: Mapping[str, frozenset[str]] | None = None,
        email_consent_default: bool = True,
    ):
        """`segments` in dependency order (as `load_segments` gives them); `manual` maps each `manual`
        CSV path to its user ids."""
        self.segments = {segment.name: segment for segment in segments}
        self.manual = dict(manual or {})
        self.email_consent_default = email_consent_default
        self.trackers: dict[str, Tracker] = {}
        self._tests = {segment.name: self._compile(segment.condition) for segment in segments}
        self.by_event: dict[str, list[Tracker]] = {}
        for tracker in self.trackers.values():
            self.by_event.setdefault(tracker.event, []).append(tracker)
        self._by_event, self._by_trait, self._by_consent = self._index(segments)
        self._needs_facts = {
            segment.name
            for segment in segments
            if any(isinstance(n, Trait | Consent | RandomBucket | Manual) for n in segment.walk())
        }
        self._time_traits = [
            node
            for segment in segments
            for node in segment.walk()
            if isinstance(node, Trait) and node.test.op is Op.WITHIN
        ]

    # -- the dependency index ------------------------------------------------------------------

    def _index(
        self, segments: Sequence[Segment]
    ) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
        self._dependents: dict[str, set[str]] = {segment.name: set() for segment in segments}
        for segment in segments:
            for used in segment.segments_used():
                self._dependents[used].add(segment.name)
        closure = self.dependents_of

        by_event: dict[str, set[str]] = {}
        by_trait: dict[str, set[str]] = {}
        by_consent: dict[str, set[str]] = {}
        for segment in segments:
            for event in segment.events_used():
                by_event.setdefault(event, set()).add(segment.name)
            for trait in segment.traits_used():
                by_trait.setdefault(trait.split(".")[0], set()).add(segment.name)
            for channel in segment.channels_used():
                by_consent.setdefault(channel.value, set()).add(segment.name)
        # Email consent defaults to subscribed when the profile has an address.
        by_trait.setdefault("email", set()).update(by_consent.get("email", ()))
        return (
            {key: closure(names) for key, names in by_event.items()},
            {key: closure(names) for key, names in by_trait.items()},
            {key: closure(names) for key, names in by_consent.items()},
        )

    def dependents_of(self, names: Iterable[str]) -> set[str]:
        """`names` and every segment that refers to one of them with `in_segment`, however indirectly."""
        found: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(self._dependents.get(name, ()))
        return found

    def trackers_of(self, name: str) -> set[str]:
        """The keys of the trackers segment `name`'s event conditions use."""
        return {
            tracker_for(node).key
            for node in self.segments[name].walk()
            if isinstance(node, Performed | NotPerformed | Aggregate | LastPerformed)
        }

    def affected_by_event(self, name: str | None) -> set[str]:
        return self._by_event.get(name or "", set())

    def affected_by_traits(self, traits: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for trait in traits:
            found |= self._by_trait.get(trait, set())
        return found

    def affected_by_consent(self, channel: str) -> set[str]:
        return self._by_consent.get(channel, set())

    def needs_facts(self, names: Iterable[str]) -> bool:
        """Whether evaluating these segments reads traits, consent or the user id."""
        return not self._needs_facts.isdisjoint(names)

    # -- state ---------------------------------------------------------------------------------

    def observe(
        self,
        state: ProfileState,
        event: str | None,
        at: datetime,
        seq: int,
        properties: dict[str, Any],
        only: Collection[str] | None = None,
    ) -> bool:
        """Fold one event into the profile's tracker states (only the trackers keyed in `only`, if given);
        True when a tracker took it."""
        trackers = self.by_event.get(event or "")
        if not trackers:
            return False
        at_us = micros(at)
        took = False
        for tracker in trackers:
            if (only is None or tracker.key in only) and tracker.accepts(at, properties):
                state.trackers[tracker.key] = tracker.add(
                    state.trackers.get(tracker.key), at_us, seq, properties
                )
                took = True
        return took

    def merge(self, into: ProfileState, other: ProfileState) -> None:
        """Fold a merged-away profile's tracker states into the profile it joined."""
        for key, value in other.trackers.items():
            tracker = self.trackers.get(key)
            if tracker is not None:
                into.trackers[key] = tracker.merge(into.trackers.get(key), value)
        into.user_id = into.user_id or other.user_id

    def settle(self, state: ProfileState, facts: ProfileFacts | None, now: datetime) -> int | None:
        """Drop tracker states no segment uses and what time has made irrelevant; return when (µs) the
        profile must be re-evaluated even without an event, or None. Without `facts` (not read for
        this batch), the time traits last gave is kept."""
        now_us = micros(now)
        due: list[int] = []
        for key in list(state.trackers):
            tracker = self.trackers.get(key)
            kept = tracker.prune(state.trackers[key], now_us) if tracker is not None else None
            if kept is None:
                del state.trackers[key]
                continue
            state.trackers[key] = kept
            if (when := tracker.due(kept, now_us)) is not None:  # type: ignore[union-attr]
                due.append(when)
        if facts is not None:
            trait_dues = [_trait_due(trait, facts, now_us) for trait in self._time_traits]
            state.trait_due = min((when for when in trait_dues if when is not None), default=None)
        if state.trait_due is not None and state.trait_due > now_us:
            due.append(state.trait_due)
        return min(due) if due else None

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(
        self,
        profile_id: str,
        state: ProfileState,
        facts: ProfileFacts | None,
        now: datetime,
        names: Iterable[str] | None = None,
    ) -> list[Change]:
        """Re-evaluate `names` (every segment when None) for one profile at `now`; update
        `state.members` and return what changed, in dependency order."""
        wanted = self.segments.keys() if names is None else set(names)
        context = _Context(
            state.trackers,
            facts,
            profile_id,
            now,
            micros(now),
            {n: n in state.members for n in self.segments},
        )
        changes = []
        for name, test in self._tests.items():
            if name not in wanted:
                continue
            member = test(context)
            if member != context.members[name]:
                context.members[name] = member
                changes.append(Change(name, member))
                if member:
                    state.members.add(name)
                else:
                    state.members.discard(name)
        return changes

    def _compile(self, node: Condition) -> Test:  # noqa: PLR0911 - one branch per kind of condition
        if isinstance(node, All):
            parts = [self._compile(child) for child in node.conditions]
            return lambda c: all(part(c) for part in parts)
        if isinstance(node, AnyOf):
            parts = [self._compile(child) for child in node.conditions]
            return lambda c: any(part(c) for part in parts)
        if isinstance(node, Not):
            inner = self._compile(node.condition)
            return lambda c: not inner(c)
        if isinstance(node, Performed | NotPerformed | Aggregate | LastPerformed):
            return self._compile_event(node)
        if isinstance(node, Trait):
            name, test = node.name, node.test
            return lambda c: matches(lookup(c.facts.traits, name), test, c.now)  # type: ignore[union-attr]
        if isinstance(node, InSegment):
            segment = node.segment
            return lambda c: c.members[segment]
        if isinstance(node, Consent):
            channel, subscribed = node.channel.value, node.subscribed
            return lambda c: self._subscribed(c.facts, channel) == subscribed  # type: ignore[arg-type]
        if isinstance(node, RandomBucket):
            return lambda c: node.contains(c.facts.user_id or c.profile_id)  # type: ignore[union-attr]
        assert isinstance(node, Manual)
        listed = self.manual.get(node.path, frozenset())
        return lambda c: c.facts.user_id in listed  # type: ignore[union-attr]

    def _compile_event(self, node: Performed | NotPerformed | Aggregate | LastPerformed) -> Test:
        tracker = self.trackers.setdefault(tracker_for(node).key, tracker_for(node))
        key = tracker.key
        if isinstance(node, NotPerformed):
            assert isinstance(tracker, CountTracker)
            return lambda c: tracker.count(c.trackers.get(key), c.now_us) == 0
        if isinstance(node, Performed):
            assert isinstance(tracker, CountTracker)
            wanted = node.count
            check = {
                CountOp.AT_LEAST: lambda n: n >= wanted,
                CountOp.AT_MOST: lambda n: n <= wanted,
                CountOp.EXACTLY: lambda n: n == wanted,
            }[node.count_op]
            return lambda c: check(tracker.count(c.trackers.get(key), c.now_us))
        if isinstance(node, Aggregate):
            assert isinstance(tracker, AggregateTracker)
            test = node.test
            return lambda c: matches(tracker.value(c.trackers.get(key), c.now_us), test, c.now)
        assert isinstance(tracker, LastTracker)
        return lambda c: tracker.passed(c.trackers.get(key))

    def _subscribed(self, facts: ProfileFacts, channel: str) -> bool:
        choice = facts.consents.get(channel)
        if choice is not None:
            return choice
        return channel == "email" and self.email_consent_default and bool(facts.traits.get("email"))


def _trait_due(trait: Trait, facts: ProfileFacts, now_us: int) -> int | None:
    """When a `within` trait test changes by time alone: when the timestamp comes of age (a future one)
    or leaves the window."""
    value = lookup(facts.traits, trait.name)
    moment = as_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        return None
    at = micros(moment)
    window_end = micros(from_micros(at) + trait.test.value)  # type: ignore[operator]
    for when in (at, window_end):
        if when > now_us:
            return when
    return None
