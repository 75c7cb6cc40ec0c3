"""The typed model of journeys and campaigns, immutable, and a journey's steps compiled into a graph.

A journey's steps are nested lists (a `branch`'s arms, a `split`'s arms, a `wait_for`'s `on_timeout`);
`compile_steps` flattens them into numbered nodes, each knowing the node that follows it, so an instance's
place is one number and the graph is the same for every instance of a version. A nested list runs, then
the journey continues after the step that held it; `exit` ends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal, TypeAlias
from zoneinfo import ZoneInfo

from engage.segments.definition import Condition, PropertyFilter
from engage.segments.definition import Node as ConditionNode

__all__ = [
    "TriggerProperties",
    "EventMatch",
    "Trigger",
    "Goal",
    "Wait",
    "WaitFor",
    "Branch",
    "Split",
    "Arm",
    "Send",
    "Update",
    "Exit",
    "Step",
    "Journey",
    "Campaign",
    "Node",
    "compile_steps",
    "END",
    "WEEKDAYS",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
END = -1
"""The node number past the last step: the journey is complete."""


@dataclass(frozen=True)
class TriggerProperties(ConditionNode):
    """A branch condition on the properties of the event that started the instance."""

    where: tuple[PropertyFilter, ...]


@dataclass(frozen=True)
class EventMatch:
    """An event by name, its properties filtered, some of them equal to the trigger's (`match`:
    property of this event → property of the trigger)."""

    event: str
    where: tuple[PropertyFilter, ...] = ()
    match: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Trigger:
    """An event (with filters), or entering a segment."""

    event: str | None = None
    where: tuple[PropertyFilter, ...] = ()
    segment: str | None = None

    def as_match(self) -> EventMatch:
        return EventMatch(self.event or "", self.where)


@dataclass(frozen=True)
class Goal:
    """Converted when this event comes within `within` of entering."""

    match: EventMatch
    within: timedelta


@dataclass(frozen=True)
class Wait:
    duration: timedelta | None = None
    until: time | None = None
    """A local time in the customer's time zone, on one of `days`."""
    days: tuple[int, ...] = tuple(range(7))
    """Allowed weekdays (Monday 0) for `until`."""

    def ends(self, start: datetime, zone: ZoneInfo) -> datetime:
        """When a wait that starts at `start` is over, for a customer in `zone`."""
        if self.duration is not None:
            return start + self.duration
        assert self.until is not None
        local = start.astimezone(zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            moment = datetime.combine(day, self.until, tzinfo=zone)
            if day.weekday() in self.days and moment >= local:
                return moment.astimezone(start.tzinfo)
        raise AssertionError("a week always holds an allowed day")


@dataclass(frozen=True)
class WaitFor:
    match: EventMatch
    timeout: timedelta
    on_timeout: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Branch:
    arms: tuple[tuple[Condition, tuple[Step, ...]], ...]
    otherwise: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Arm:
    name: str
    percent: float
    steps: tuple[Step, ...] = ()
    holdout: bool = False
    """Receives nothing: the instance leaves with the reason `holdout`, still counted for the goal."""


@dataclass(frozen=True)
class Split:
    arms: tuple[Arm, ...]


@dataclass(frozen=True)
class Send:
    channel: str
    template: str
    """`channel/name`."""
    fallback: str | None = None
    """The template (`channel/name`) to send instead when the customer cannot be reached on `channel`."""


@dataclass(frozen=True)
class Update:
    traits: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Exit:
    reason: str = "exit step"


Step: TypeAlias = Wait | WaitFor | Branch | Split | Send | Update | Exit


@dataclass(frozen=True)
class Journey:
    name: str
    description: str
    trigger: Trigger
    steps: tuple[Step, ...]
    key: str | None = None
    """A trigger property (`properties.cart_id`) that names the instance; None: one per customer."""
    re_entry: Literal["never", "always", "after"] = "never"
    re_entry_after: timedelta | None = None
    exit_on: tuple[EventMatch, ...] = ()
    goal: Goal | None = None
    version: str = ""
    """A hash of the file's content: a changed file is a new version."""
    file: str = ""
    nodes: tuple[Node, ...] = field(default=(), compare=False)
    """The steps compiled (`compile_steps`)."""


@dataclass(frozen=True)
class Campaign:
    name: str
    description: str
    schedule: str
    """A cron expression (minute hour day month weekday)."""
    audience: str
    """A segment."""
    send: Send
    timezone: str | None = None
    """An IANA zone for the schedule; "user": at the scheduled local time in each customer's zone; None:
    messaging.yml's."""
    rate_limit: int | None = None
    """Messages a minute at most."""
    holdout: float = 0.0
    goal: Goal | None = None
    catch_up: timedelta = timedelta(hours=6)
    """A run missed while engage was down is made up when it starts if it is no older than this."""
    version: str = ""
    file: str = ""


@dataclass(frozen=True)
class Node:
    """One step of the compiled graph: what it is and where each way out of it leads."""

    step: Step
    next: int
    """The node after it (END past the last)."""
    targets: tuple[int, ...] = ()
    """Branch: each arm's first node, then otherwise's. Split: each arm's. WaitFor: on_timeout's."""


def compile_steps(steps: tuple[Step, ...]) -> tuple[Node, ...]:
    nodes: list[Node | None] = []

    def block(items: tuple[Step, ...], after: int) -> int:
        """Compile `items`, which continue to `after`; the number of their first node (or `after`)."""
        starts = list(range(len(nodes), len(nodes) + len(items)))
        nodes.extend([None] * len(items))  # this block's nodes first, numbered in order; nested ones after
        for position, step in enumerate(items):
            following = starts[position + 1] if position + 1 < len(items) else after
            if isinstance(step, Exit):
                following = END
            targets: tuple[int, ...] = ()
            if isinstance(step, Branch):
                targets = tuple(block(arm, following) for _, arm in step.arms) + (
                    block(step.otherwise, following),
                )
            elif isinstance(step, Split):
                targets = tuple(block(arm.steps, following) for arm in step.arms)
            elif isinstance(step, WaitFor):
                targets = (block(step.on_timeout, following),)
            nodes[starts[position]] = Node(step, following, targets)
        return starts[0] if starts else after

    block(steps, END)
    return tuple(node for node in nodes if node is not None)
