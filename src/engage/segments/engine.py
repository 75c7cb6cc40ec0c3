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

from engage.segments.compare import as_timestamp, compile_test, lookup
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
    facts: ProfileFacts | None = None
    """The traits and consents segments test, as last read (kept so that most events need no read)."""
    due: int | None = None
    """When (µs) the profile is next re-evaluated by the clock, as `settle` last said."""

    def dumps(self) -> str:
        data: dict[str, Any] = {
            "t": self.trackers, "m": sorted(self.members), "u": self.user_id, "d": self.trait_due,
            "n": self.due,
        }  # fmt: skip
        if self.facts is not None:
            data["f"] = [self.facts.user_id, self.facts.traits, self.facts.consents]
        return orjson.dumps(data).decode()

    @classmethod
    def loads(cls, text: str | bytes) -> ProfileState:
        data = orjson.loads(text)
        facts = ProfileFacts(*data["f"]) if "f" in data else None
        return cls(data["t"], set(data["m"]), data.get("u"), data.get("d"), facts, data.get("n"))


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
    members: set[str]
    """The profile's segments so far in this evaluation (segments come after those they refer to)."""


Test = Callable[[_Context], bool]


class _Routes:
    """The trackers of one event name. Those requiring a text property to equal a value are found by
    that value (the four category affinities of ProductViewed cost one lookup, not four tests)."""

    def __init__(self) -> None:
        self.unrouted: list[Tracker] = []
        self.by_value: dict[str, dict[str, list[Tracker]]] = {}

    def add(self, tracker: Tracker) -> None:
        if tracker.route is None:
            self.unrouted.append(tracker)
        else:
            prop, value = tracker.route
            self.by_value.setdefault(prop, {}).setdefault(value, []).append(tracker)

    def candidates(self, properties: dict[str, Any]) -> list[Tracker]:
        found = self.unrouted
        for prop, trackers in self.by_value.items():
            value = properties.get(prop)
            if type(value) is str and (routed := trackers.get(value)):
                found = found + routed
        return found


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
        self._windowed = {key for key, tracker in self.trackers.items() if getattr(tracker, "span", None)}
        self._position = {name: index for index, name in enumerate(self.segments)}
        self._routes: dict[str, _Routes] = {}
        for tracker in self.trackers.values():
            self._routes.setdefault(tracker.event, _Routes()).add(tracker)
        self._by_trait, self._by_consent = self._index(segments)
        self._trait_roots = frozenset(self._by_trait)
        self._by_user_id = self.dependents_of(
            segment.name
            for segment in segments
            if any(isinstance(node, RandomBucket | Manual) for node in segment.walk())
        )
        self._by_tracker = {
            key: self.dependents_of(name for name in self.segments if key in self.trackers_of(name))
            for key in self.trackers
        }
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

    def _index(self, segments: Sequence[Segment]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """Which segments each trait and consent channel can change (events go by tracker)."""
        self._dependents: dict[str, set[str]] = {segment.name: set() for segment in segments}
        for segment in segments:
            for used in segment.segments_used():
                self._dependents[used].add(segment.name)
        by_trait: dict[str, set[str]] = {}
        by_consent: dict[str, set[str]] = {}
        for segment in segments:
            for trait in segment.traits_used():
                by_trait.setdefault(trait.split(".")[0], set()).add(segment.name)
            for channel in segment.channels_used():
                by_consent.setdefault(channel.value, set()).add(segment.name)
        # Email consent defaults to subscribed when the profile has an address.
        by_trait.setdefault("email", set()).update(by_consent.get("email", ()))
        return (
            {key: self.dependents_of(names) for key, names in by_trait.items()},
            {key: self.dependents_of(names) for key, names in by_consent.items()},
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

    def affected_by_trackers(self, keys: Iterable[str]) -> set[str]:
        """The segments whose answer can change when these trackers' states do."""
        found: set[str] = set()
        for key in keys:
            found |= self._by_tracker[key]
        return found

    def affected_by_traits(self, traits: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for trait in traits:
            found |= self._by_trait.get(trait, set())
        return found

    def watches(self, event: str | None) -> bool:
        """Whether some tracker counts events of this name."""
        return (event or "") in self._routes

    def affected_by_user_id(self) -> set[str]:
        """The segments that pick users by id (`random_bucket`, `manual`): a profile's id can change
        when an anonymous visitor signs up."""
        return self._by_user_id

    def affected_by_consent(self, channel: str) -> set[str]:
        return self._by_consent.get(channel, set())

    def kept_facts(self, facts: ProfileFacts) -> ProfileFacts:
        """The part of `facts` segments test (traits by their first name part), to keep in the state."""
        traits = {name: value for name, value in facts.traits.items() if name in self._trait_roots}
        return ProfileFacts(facts.user_id, traits, dict(facts.consents))

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
        now_us: int | None = None,
    ) -> list[str]:
        """Fold one event into the profile's tracker states (only the trackers keyed in `only`, if given);
        returns the keys of the trackers that took it. With `now_us`, a tracker does not take an event
        already outside its window then: time only moves on, so it could never count (a replay of old
        history, a late import)."""
        routes = self._routes.get(event or "")
        if routes is None:
            return []
        at_us = 0
        took = []
        for tracker in routes.candidates(properties):
            if (only is None or tracker.key in only) and tracker.accepts(at, properties):
                at_us = at_us or micros(at)
                if now_us is not None and tracker.outlived(at_us, now_us):
                    continue
                state.trackers[tracker.key] = tracker.add(
                    state.trackers.get(tracker.key), at_us, seq, properties
                )
                took.append(tracker.key)
        return took

    def merge(self, into: ProfileState, other: ProfileState) -> None:
        """Fold a merged-away profile's tracker states into the profile it joined."""
        for key, value in other.trackers.items():
            tracker = self.trackers.get(key)
            if tracker is not None:
                into.trackers[key] = tracker.merge(into.trackers.get(key), value)
        into.user_id = into.user_id or other.user_id

    def settle(
        self,
        state: ProfileState,
        facts: ProfileFacts | None,
        now: datetime,
        changed: Collection[str] | None = None,
    ) -> int | None:
        """Drop tracker states no segment uses and what time has made irrelevant; return when (µs) the
        profile must be re-evaluated even without an event, or None (also kept in `state.due`).

        Without `facts` (not read for this batch), the time traits last gave is kept. With `changed`
        (the trackers that took events since the last settle) and nothing due yet, only those are
        looked at: the others' due times are unchanged, and an earlier wake-up than needed is harmless.
        """
        now_us = micros(now)
        due: list[int] = []
        if changed is not None and state.due is not None and state.due > now_us:
            keys: Iterable[str] = [key for key in changed if key in self._windowed]
            due.append(state.due)
        else:
            keys = list(state.trackers)
        for key in keys:
            tracker = self.trackers.get(key)
            if tracker is None:  # no segment uses it any more
                del state.trackers[key]
            elif key in self._windowed and key in state.trackers:
                kept = tracker.prune(state.trackers[key], now_us)
                if kept is None:
                    del state.trackers[key]
                    continue
                state.trackers[key] = kept
                if (when := tracker.due(kept, now_us)) is not None:
                    due.append(when)
        if facts is not None:
            trait_dues = [_trait_due(trait, facts, now_us) for trait in self._time_traits]
            state.trait_due = min((when for when in trait_dues if when is not None), default=None)
        if state.trait_due is not None and state.trait_due > now_us:
            due.append(state.trait_due)
        state.due = min(due) if due else None
        return state.due

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
        order = self._tests if names is None else sorted(names, key=self._position.__getitem__)
        context = _Context(state.trackers, facts, profile_id, now, micros(now), state.members)
        changes = []
        for name in order:
            member = self._tests[name](context)
            if member != (name in state.members):
                changes.append(Change(name, member))
                if member:
                    state.members.add(name)
                else:
                    state.members.discard(name)
        return changes

    def _compile(self, node: Condition) -> Test:  # noqa: PLR0911 - one branch per kind of condition
        if isinstance(node, All):
            return _every([self._compile(child) for child in node.conditions])
        if isinstance(node, AnyOf):
            return _any([self._compile(child) for child in node.conditions])
        if isinstance(node, Not):
            inner = self._compile(node.condition)
            return lambda c: not inner(c)
        if isinstance(node, Performed | NotPerformed | Aggregate | LastPerformed):
            return self._compile_event(node)
        if isinstance(node, Trait):
            name, passes = node.name, compile_test(node.test)
            return lambda c: passes(lookup(c.facts.traits, name), c.now)  # type: ignore[union-attr]
        if isinstance(node, InSegment):
            segment = node.segment
            return lambda c: segment in c.members
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
            passes = compile_test(node.test)
            return lambda c: passes(tracker.value(c.trackers.get(key), c.now_us), c.now)
        assert isinstance(tracker, LastTracker)
        return lambda c: tracker.passed(c.trackers.get(key))

    def _subscribed(self, facts: ProfileFacts, channel: str) -> bool:
        choice = facts.consents.get(channel)
        if choice is not None:
            return choice
        return channel == "email" and self.email_consent_default and bool(facts.traits.get("email"))


def _every(parts: list[Test]) -> Test:
    # Spelt out for the common sizes: this runs for every profile an event touches.
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda c: first(c) and second(c)
    if len(parts) == 3:
        first, second, third = parts
        return lambda c: first(c) and second(c) and third(c)
    return lambda c: all(part(c) for part in parts)


def _any(parts: list[Test]) -> Test:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda c: first(c) or second(c)
    return lambda c: any(part(c) for part in parts)


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
