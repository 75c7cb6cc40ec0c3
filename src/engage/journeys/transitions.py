"""What happens to instances in a batch, gathered to be written at once (`store.write`): each transition
is a change of the instance, a line of its history and an event on the stream.

    JourneyEntered        {journey, version, instance, key, trigger}
    JourneyStepCompleted  {journey, version, instance, step, kind, detail, arm, message_id}
    JourneyExited         {journey, version, instance, reason, step, arm}   (reason `completed` at the end)
    JourneyConverted      {journey, version, instance, goal, arm, holdout}

Event ids are made from the instance and the step, so a batch retried after a crash logs each once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from engage.events.log import LoggedEvent, system_event
from engage.journeys.store import Instance
from engage.store.codec import time_param

__all__ = ["Transitions", "StepEntry", "HOLDOUT", "COMPLETED"]

HOLDOUT = "holdout"
COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class StepEntry:
    """One line of an instance's history."""

    instance_id: str
    journey: str
    step: int
    kind: str
    at: datetime
    detail: str | None = None
    message_id: str | None = None

    def params(self, sqlite: bool) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id, "journey": self.journey, "step": self.step, "kind": self.kind,
            "at": time_param(self.at, sqlite), "detail": self.detail, "message_id": self.message_id,
        }  # fmt: skip


@dataclass
class Transitions:
    entered: list[Instance] = field(default_factory=list)
    changed: dict[str, Instance] = field(default_factory=dict)
    history: list[StepEntry] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    ended: list[Instance] = field(default_factory=list)
    """Instances that exited early: the messages they recorded that still wait are withdrawn."""
    _step_events: dict[int, dict[str, Any]] = field(default_factory=dict)

    def change(self, instance: Instance) -> None:
        if all(instance is not other for other in self.entered):
            self.changed[instance.id] = instance

    def enter(self, instance: Instance, user_id: str | None, cause: str) -> None:
        self.entered.append(instance)
        self._announce(
            f"journey-entered:{instance.id}", "JourneyEntered", instance, user_id, instance.entered_at,
            {"key": instance.key, "trigger": instance.trigger.get("name")}, cause,
        )  # fmt: skip

    def step(
        self,
        instance: Instance,
        step: int,
        kind: str,
        at: datetime,
        user_id: str | None,
        detail: str | None = None,
    ) -> int:
        """The instance completed `step`, a `kind` (wait, send, …); the entry's place, for `sent`."""
        self.change(instance)
        self.history.append(StepEntry(instance.id, instance.journey, step, kind, at, detail))
        properties = {"step": step, "kind": kind, "detail": detail, "arm": instance.arm}
        self._announce(
            f"journey-step:{instance.id}:{step}", "JourneyStepCompleted", instance, user_id, at, properties
        )
        self._step_events[len(self.history) - 1] = self.events[-1]
        return len(self.history) - 1

    def sent(self, entry: int, message_id: str, detail: str) -> None:
        """A send step's message, once recorded."""
        self.history[entry] = replace(self.history[entry], message_id=message_id, detail=detail)
        self._step_events[entry]["properties"].update(message_id=message_id, detail=detail)

    def exit(self, instance: Instance, reason: str, at: datetime, user_id: str | None) -> None:
        """End the instance: `completed` past its last step, else why it left."""
        self.change(instance)
        instance.status = "completed" if reason == COMPLETED else "exited"
        instance.exit_reason, instance.ended_at = reason, at
        instance.due_at = instance.waiting_since = instance.waiting_for = None
        self.history.append(StepEntry(instance.id, instance.journey, instance.step, "exit", at, reason))
        if reason not in (COMPLETED, HOLDOUT):
            self.ended.append(instance)
        self._announce(
            f"journey-exited:{instance.id}", "JourneyExited", instance, user_id, at,
            {"reason": reason, "step": instance.step, "arm": instance.arm},
        )  # fmt: skip

    def convert(self, instance: Instance, event: LoggedEvent) -> None:
        self.change(instance)
        instance.goal_at = event.timestamp
        self._announce(
            f"journey-converted:{instance.id}", "JourneyConverted", instance, event.user_id, event.timestamp,
            {"goal": event.event, "arm": instance.arm, "holdout": instance.exit_reason == HOLDOUT},
            event.message_id,
        )  # fmt: skip

    def identify(
        self, instance: Instance, step: int, traits: Mapping[str, Any], at: datetime, user_id: str | None
    ) -> None:
        """Set traits of the customer, as an identify call would (the profiles consumer applies it)."""
        row = system_event(
            f"journey-update:{instance.id}:{step}", "", instance.profile_id, user_id, at, {},
            {"journey": instance.journey, "instance": instance.id},
        )  # fmt: skip
        row.update(type="identify", event=None, traits=dict(traits))
        self.events.append(row)

    def __bool__(self) -> bool:
        return bool(self.entered or self.changed or self.history or self.events)

    def _announce(
        self,
        message_id: str,
        name: str,
        instance: Instance,
        user_id: str | None,
        at: datetime,
        properties: dict[str, Any],
        cause: str | None = None,
    ) -> None:
        common = {"journey": instance.journey, "version": instance.version, "instance": instance.id}
        context = {"cause": cause} if cause else {}
        self.events.append(
            system_event(
                message_id, name, instance.profile_id, user_id, at, {**common, **properties}, context
            )
        )
