"""Per-profile state for event conditions: just enough of a profile's history to answer them.

Each event leaf of a segment (`performed`, an aggregate, `not_performed`, `last_performed`) is answered by
a tracker. A tracker takes the profile's matching events one at a time (`add`), forgets what can never
count again (`prune`), says when time alone may change its answer (`due`), and folds a merged profile's
state into another's (`merge`). Leaves with the same tracker key share one state, across segments.

States are plain JSON values (lists and numbers), stored per profile by `engage.segments.store`. Times are
integer microseconds since the epoch, so window arithmetic is exact.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any

from engage.segments.compare import as_number, compile_filter, distinct_key, lookup
from engage.segments.definition import (
    Aggregate,
    AggregateFunction,
    CountOp,
    LastPerformed,
    NotPerformed,
    Op,
    Performed,
    PropertyFilter,
)

__all__ = [
    "Tracker",
    "CountTracker",
    "AggregateTracker",
    "LastTracker",
    "tracker_for",
    "micros",
    "from_micros",
]

State = Any
EventLeaf = Performed | Aggregate | NotPerformed | LastPerformed


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _span(within: timedelta | None) -> int | None:
    return None if within is None else micros(_EPOCH + within)


class Tracker(ABC):
    """The state one kind of event leaf needs, for one event name and set of filters."""

    span: int | None = None
    """The window in µs, if the leaf has one."""

    def __init__(self, event: str, where: tuple[PropertyFilter, ...], spec: tuple[Any, ...]):
        self.event = event
        self.where = where
        digest = hashlib.sha256(repr((type(self).__name__, event, where, spec)).encode()).hexdigest()
        self.key = digest[:12]
        """Stable across processes and restarts: the state is stored under it."""
        self._filters = [compile_filter(f) for f in where]
        self.route = next(
            (
                (f.property, f.test.value)
                for f in where
                if f.test.op is Op.EQ and type(f.test.value) is str and "." not in f.property
            ),
            None,
        )
        """(property, value) of a filter requiring that text: events can be routed to the tracker by it."""

    def accepts(self, timestamp: datetime, properties: dict[str, Any]) -> bool:
        """Whether an event of this tracker's name passes every filter (a property's `within` counts from
        the event's own time)."""
        return all(passes(properties, timestamp) for passes in self._filters)

    def outlived(self, at: int, now: int) -> bool:
        """Whether an event at `at` has already left the window at `now`: it can never count again."""
        return self.span is not None and now - at >= self.span

    @abstractmethod
    def add(self, state: State, at: int, seq: int, properties: dict[str, Any]) -> State:
        """The state after one more matching event at `at` (µs); `state` is None for a first event."""

    def prune(self, state: State, now: int) -> State:
        """The state without what can no longer count at `now` or later."""
        return state

    def due(self, state: State, now: int) -> int | None:
        """The next moment after `now` when time alone changes what the state says, if any, for a state
        pruned at `now`."""
        return None

    @abstractmethod
    def merge(self, into: State, other: State) -> State:
        """One state for a profile folded from two (`into` may be None)."""


class CountTracker(Tracker):
    """How many matching events in a window: the latest `cap` timestamps, or (without a window) a count
    capped at `cap`. A count test never needs to tell more than `count + 1` events apart."""

    def __init__(self, event: str, where: tuple[PropertyFilter, ...], within: timedelta | None, cap: int):
        super().__init__(event, where, (within, cap))
        self.span = _span(within)
        self.cap = cap

    def add(self, state: State, at: int, seq: int, properties: dict[str, Any]) -> State:
        if self.span is None:
            return min((state or 0) + 1, self.cap)
        times: list[int] = state or []
        bisect.insort(times, at)
        return times[-self.cap :]

    def count(self, state: State, now: int) -> int:
        if state is None:
            return 0
        if self.span is None:
            return state
        return len(state) - bisect.bisect_right(state, now - self.span)

    def prune(self, state: State, now: int) -> State:
        if self.span is None or not state:
            return state
        kept = state[bisect.bisect_right(state, now - self.span) :]
        return kept or None

    def due(self, state: State, now: int) -> int | None:
        # Pruned, so every time left is inside the window, oldest first: it is the next to leave.
        return None if self.span is None or not state else state[0] + self.span

    def merge(self, into: State, other: State) -> State:
        if into is None or other is None:
            return into if other is None else other
        if self.span is None:
            return min(into + other, self.cap)
        return sorted(into + other)[-self.cap :]


class AggregateTracker(Tracker):
    """Sum, max or distinct count of a property over matching events.

    In a window it keeps (time, value) pairs (max drops pairs a later, larger one outlives; distinct count
    keeps each value's latest time); without a window, the running sum, max or set of values.
    """

    def __init__(
        self,
        event: str,
        where: tuple[PropertyFilter, ...],
        within: timedelta | None,
        function: AggregateFunction,
        prop: str,
    ):
        super().__init__(event, where, (within, function, prop))
        self.span = _span(within)
        self.function = function
        self.property = prop

    def _value(self, properties: dict[str, Any]) -> Any:
        value = lookup(properties, self.property)
        if self.function is AggregateFunction.COUNT:
            return None if value is None else distinct_key(value)
        return as_number(value)

    def add(self, state: State, at: int, seq: int, properties: dict[str, Any]) -> State:
        value = self._value(properties)
        if value is None:
            return state
        if self.span is None:
            if self.function is AggregateFunction.SUM:
                return (state or 0) + value
            if self.function is AggregateFunction.MAX:
                return value if state is None else max(state, value)
            return sorted(set(state or ()) | {value})
        pairs: list[list[Any]] = state or []
        if pairs and at < pairs[-1][0]:  # a late event: merged in time order
            return self._windowed_merge(pairs, [[at, value]])
        # The usual case, the latest event so far: what _windowed_merge would do, without sorting.
        if self.function is AggregateFunction.MAX:
            while pairs and pairs[-1][1] <= value:
                pairs.pop()
        elif self.function is AggregateFunction.COUNT:
            pairs = [pair for pair in pairs if pair[1] != value]
        pairs.append([at, value])
        return pairs

    def _windowed_merge(self, pairs: list[list[Any]], more: list[list[Any]]) -> list[list[Any]]:
        merged = sorted(pairs + more, key=lambda pair: pair[0])
        if self.function is AggregateFunction.MAX:
            kept: list[list[Any]] = []
            for pair in reversed(merged):  # latest first: keep a pair only if it beats every later one
                if not kept or pair[1] > kept[-1][1]:
                    kept.append(pair)
            return kept[::-1]
        if self.function is AggregateFunction.COUNT:
            latest = {value: at for at, value in merged}
            return sorted(([at, value] for value, at in latest.items()), key=lambda pair: pair[0])
        return merged

    def value(self, state: State, now: int) -> Any:
        """The aggregate at `now`: a number (None for the max of nothing)."""
        if self.span is None:
            if self.function is AggregateFunction.COUNT:
                return len(state or ())
            if self.function is AggregateFunction.SUM:
                return state or 0
            return state
        inside = [value for at, value in state or () if now - at < self.span]
        if self.function is AggregateFunction.SUM:
            # Exact, so the order events arrived in cannot change the total (the batch evaluator's too).
            return sum(inside) if all(isinstance(v, int) for v in inside) else math.fsum(inside)
        if self.function is AggregateFunction.MAX:
            return max(inside) if inside else None
        return len(inside)

    def prune(self, state: State, now: int) -> State:
        if self.span is None or not state:
            return state
        kept = [pair for pair in state if now - pair[0] < self.span]
        return kept or None

    def due(self, state: State, now: int) -> int | None:
        # Pruned, so every pair left is inside the window, in time order: the first is the next to leave.
        return None if self.span is None or not state else state[0][0] + self.span

    def merge(self, into: State, other: State) -> State:
        if into is None or other is None:
            return into if other is None else other
        if self.span is not None:
            return self._windowed_merge(into, other)
        if self.function is AggregateFunction.SUM:
            return into + other
        if self.function is AggregateFunction.MAX:
            return max(into, other)
        return sorted(set(into) | set(other))


class LastTracker(Tracker):
    """The latest event of a name, by (time, seq), and whether it passed the filters."""

    def __init__(self, event: str, where: tuple[PropertyFilter, ...]):
        super().__init__(event, where, ())
        self.route = None  # every event of the name may be the latest, whatever its properties

    def accepts(self, timestamp: datetime, properties: dict[str, Any]) -> bool:
        return True  # every event of the name is a candidate for "latest"; `add` tests the filters

    def add(self, state: State, at: int, seq: int, properties: dict[str, Any]) -> State:
        if state is not None and (state[0], state[1]) > (at, seq):
            return state
        return [at, seq, super().accepts(from_micros(at), properties)]

    def passed(self, state: State) -> bool:
        return bool(state and state[2])

    def merge(self, into: State, other: State) -> State:
        if into is None or other is None:
            return into if other is None else other
        return max(into, other, key=lambda last: (last[0], last[1]))


def tracker_for(leaf: EventLeaf) -> Tracker:
    if isinstance(leaf, Performed):
        cap = leaf.count + 1 if leaf.count_op is not CountOp.AT_LEAST else leaf.count
        return CountTracker(leaf.event, leaf.where, leaf.within, max(cap, 1))
    if isinstance(leaf, NotPerformed):
        return CountTracker(leaf.event, leaf.where, leaf.within, 1)
    if isinstance(leaf, Aggregate):
        return AggregateTracker(leaf.event, leaf.where, leaf.within, leaf.function, leaf.property)
    return LastTracker(leaf.event, leaf.where)
