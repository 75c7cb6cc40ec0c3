"""The typed model of a segment: a name, a description and a condition tree, all immutable.

A condition is a combinator (`All`, `AnyOf`, `Not`) or a leaf (`Trait`, `Performed`, `Aggregate`,
`NotPerformed`, `LastPerformed`, `InSegment`, `Consent`, `RandomBucket`, `Manual`). Every node can be
walked (`walk()`) and says what it depends on: `events_used()`, `traits_used()`, `segments_used()`,
`channels_used()` and `windows()`; the segment engine indexes segments by these to know which to
re-evaluate when an event, a trait or a consent changes, and how long to keep events.

The YAML format that produces these objects is described in `engage.segments`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TypeAlias

__all__ = [
    "Op",
    "CountOp",
    "AggregateFunction",
    "Channel",
    "Scalar",
    "Comparison",
    "PropertyFilter",
    "Node",
    "All",
    "AnyOf",
    "Not",
    "Trait",
    "Performed",
    "Aggregate",
    "NotPerformed",
    "LastPerformed",
    "InSegment",
    "Consent",
    "RandomBucket",
    "Manual",
    "Condition",
    "Segment",
]

Scalar: TypeAlias = str | int | float | bool | date | datetime | None
"""A value a trait or a property is compared with (a YAML timestamp becomes a date or a datetime)."""


class Op(StrEnum):
    """How a trait or a property is tested."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    """The value is one of a list."""
    CONTAINS = "contains"
    """A string holds a substring, or a list holds an item."""
    EXISTS = "exists"
    """`exists: true`: set and not null; `exists: false`: missing or null."""
    WITHIN = "within"
    """A timestamp no older than a duration before now (and not in the future)."""


ORDERED_OPS = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})
AGGREGATE_OPS = (Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE)


class CountOp(StrEnum):
    """How many matching events a `Performed` leaf asks for."""

    AT_LEAST = "at_least"
    AT_MOST = "at_most"
    EXACTLY = "exactly"


class AggregateFunction(StrEnum):
    SUM = "sum"
    """The sum of a numeric property over the matching events."""
    COUNT = "count"
    """How many different values a property takes over the matching events (e.g. distinct products)."""
    MAX = "max"
    """The largest value of a numeric property over the matching events."""


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True)
class Comparison:
    """`op` applied with `value`: a Scalar, a tuple of them for `in`, a bool for `exists`, a timedelta for
    `within`."""

    op: Op
    value: Scalar | tuple[Scalar, ...] | timedelta


@dataclass(frozen=True)
class PropertyFilter:
    """An event property tested with one comparison; the name may be dotted (`product.category`)."""

    property: str
    test: Comparison


class Node:
    """What every condition can do: be walked and say what it depends on."""

    def children(self) -> tuple[Condition, ...]:
        return ()

    def walk(self) -> Iterator[Condition]:
        """This node and every node below it, depth first, in the order written."""
        yield self  # type: ignore[misc]
        for child in self.children():
            yield from child.walk()

    def events_used(self) -> frozenset[str]:
        """Event names whose arrival can change the result."""
        return frozenset(node.event for node in self.walk() if isinstance(node, _EVENT_LEAVES))

    def traits_used(self) -> frozenset[str]:
        return frozenset(node.name for node in self.walk() if isinstance(node, Trait))

    def segments_used(self) -> frozenset[str]:
        """Other segments this one refers to with `in_segment`."""
        return frozenset(node.segment for node in self.walk() if isinstance(node, InSegment))

    def channels_used(self) -> frozenset[Channel]:
        """Consent channels tested."""
        return frozenset(node.channel for node in self.walk() if isinstance(node, Consent))

    def windows(self) -> tuple[timedelta, ...]:
        """Every distinct `within` duration, shortest first: when time alone can change the result."""
        found: set[timedelta] = set()
        for node in self.walk():
            if isinstance(node, Trait) and isinstance(node.test.value, timedelta):
                found.add(node.test.value)
            elif isinstance(node, Performed | Aggregate | NotPerformed) and node.within is not None:
                found.add(node.within)
            # A `within` on an event property is measured from the event's own time: it never expires.
        return tuple(sorted(found))


@dataclass(frozen=True)
class All(Node):
    """True when every condition is (true when empty)."""

    conditions: tuple[Condition, ...]

    def children(self) -> tuple[Condition, ...]:
        return self.conditions


@dataclass(frozen=True)
class AnyOf(Node):
    """True when at least one condition is."""

    conditions: tuple[Condition, ...]

    def children(self) -> tuple[Condition, ...]:
        return self.conditions


@dataclass(frozen=True)
class Not(Node):
    condition: Condition

    def children(self) -> tuple[Condition, ...]:
        return (self.condition,)


@dataclass(frozen=True)
class Trait(Node):
    """A profile trait (`email`, `created_at`, or a custom one) tested with one comparison."""

    name: str
    test: Comparison


@dataclass(frozen=True)
class Performed(Node):
    """The user performed `event` (with properties matching every filter) a number of times, within the
    last `within` or ever."""

    event: str
    where: tuple[PropertyFilter, ...] = ()
    count_op: CountOp = CountOp.AT_LEAST
    count: int = 1
    within: timedelta | None = None


@dataclass(frozen=True)
class Aggregate(Node):
    """`function` of `property` over the user's matching `event`s (within the last `within` or ever),
    compared with `test`: e.g. the sum of `revenue` of OrderCompleted over 90 days `gte` 500."""

    event: str
    function: AggregateFunction
    property: str
    test: Comparison
    where: tuple[PropertyFilter, ...] = ()
    within: timedelta | None = None


@dataclass(frozen=True)
class NotPerformed(Node):
    """The user did not perform `event` (matching every filter) within the last `within`, or never."""

    event: str
    where: tuple[PropertyFilter, ...] = ()
    within: timedelta | None = None


@dataclass(frozen=True)
class LastPerformed(Node):
    """The user's latest `event` has properties matching every filter (false when there is none)."""

    event: str
    where: tuple[PropertyFilter, ...]


@dataclass(frozen=True)
class InSegment(Node):
    """The user is a member of another segment."""

    segment: str


@dataclass(frozen=True)
class Consent(Node):
    """The user is (or, with `subscribed=False`, is not) subscribed to `channel`."""

    channel: Channel
    subscribed: bool = True


@dataclass(frozen=True)
class RandomBucket(Node):
    """A stable share of users: those whose hashed id falls below `below` percent for `salt`.

    The same salt always puts a user in the same bucket; a new salt reshuffles everyone."""

    salt: str
    below: float
    """0 to 100."""

    def bucket(self, user_id: str) -> float:
        """The user's bucket for this salt, in [0, 100), from SHA-256 so it is stable across processes."""
        digest = hashlib.sha256(f"{self.salt}:{user_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 * 100

    def contains(self, user_id: str) -> bool:
        return self.bucket(user_id) < self.below


@dataclass(frozen=True)
class Manual(Node):
    """The users listed in a CSV file (header `user_id`, one id per row), relative to the workspace root.
    Uploading a new file replaces the list; it does not add to it."""

    path: str


Condition: TypeAlias = (
    All | AnyOf | Not | Trait | Performed | Aggregate | NotPerformed | LastPerformed | InSegment | Consent
    | RandomBucket | Manual
)  # fmt: skip
_EVENT_LEAVES = (Performed, Aggregate, NotPerformed, LastPerformed)


@dataclass(frozen=True)
class Segment:
    """One `segments/NAME.yml`."""

    name: str
    condition: Condition
    description: str = ""
    file: str = ""
    """Where it was defined, relative to the workspace root (e.g. `segments/high_value.yml`)."""

    def walk(self) -> Iterator[Condition]:
        return self.condition.walk()

    def events_used(self) -> frozenset[str]:
        return self.condition.events_used()

    def traits_used(self) -> frozenset[str]:
        return self.condition.traits_used()

    def segments_used(self) -> frozenset[str]:
        return self.condition.segments_used()

    def channels_used(self) -> frozenset[Channel]:
        return self.condition.channels_used()

    def windows(self) -> tuple[timedelta, ...]:
        return self.condition.windows()

    def manual_files(self) -> tuple[str, ...]:
        """The CSV files of `manual` leaves, in the order written."""
        return tuple(node.path for node in self.walk() if isinstance(node, Manual))
