"""The tick: instances whose step is due run their steps until they wait again or end.

Each batch is one write transaction. It claims due instances (on PostgreSQL `FOR UPDATE SKIP LOCKED`:
several workers share the work, and the rows of a worker that dies return with its connection), checks
once more that no `exit_on` event came meanwhile (the stream may lag behind the log), runs their steps,
records their messages through the messaging policies under one send key per instance and step, and
writes their new state, history and events. It commits all of that or none of it, so a crash at any point
repeats the batch at most, and a repeated send finds its key already recorded: nothing is sent twice.

Time is the injected clock's, and a step's times follow the step's due time rather than the moment the
tick got to it: `wait: 1h` after a wait that ended at 10:00 ends at 11:00 even if the tick ran at 10:05.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from engage.journeys import store
from engage.journeys.conditions import Facts, bucket, event_matches, holds
from engage.journeys.definition import END, Branch, Exit, Journey, Send, Split, Update, Wait, WaitFor
from engage.journeys.library import Library
from engage.journeys.store import Instance
from engage.journeys.transitions import COMPLETED, HOLDOUT, Transitions
from engage.messaging.service import Messaging, Request
from engage.polling import poll
from engage.store.database import Database

__all__ = ["Runner", "BATCH", "send_key"]

BATCH = 500
MIN_PAUSE = 0.005
"""Seconds: the shortest sleep between ticks when nothing could be claimed."""


def send_key(instance: Instance, step: int) -> str:
    """A send step's message is recorded once per instance, whatever repeats the step."""
    return f"journey:{instance.journey}:{instance.id}:{step}"


class Runner:
    def __init__(
        self,
        database: Database,
        library: Library,
        messaging: Messaging,
        clock: Callable[[], datetime],
        email_consent_default: bool,
    ):
        self.database = database
        self.library = library
        self.messaging = messaging
        self.clock = clock
        self.email_consent_default = email_consent_default
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event, idle: float = 0.5) -> None:
        """Tick until `stop` is set; when nothing is due, sleeps until the next step is (at most `idle`
        seconds, as another worker or a new instance may bring an earlier one) or until woken."""
        poll(self.run_once, stop, idle=idle, what="running journey steps", wake=self._wake,
             pause=self._until_next_due)  # fmt: skip

    def run_once(self, limit: int = BATCH) -> int:
        """Run one batch of due instances; how many there were."""
        now = self.clock()
        with self.database.write() as connection:
            self.library.refresh(connection)
            due = store.claim_due(connection, now, limit)
            if due:
                _Tick(self, connection, now).run(due)
        if due:
            self.messaging.wake()
        return len(due)

    def _until_next_due(self, idle: float) -> float:
        with self.database.read() as connection:
            due = store.next_due(connection)
        if due is None:
            return idle
        # Never 0: rows due now that another worker holds would make this loop spin.
        return min(idle, max(MIN_PAUSE, (due - self.clock()).total_seconds()))

    def run_due(self, rounds: int = 1000) -> int:
        """Run batches until nothing is due now; how many instances were run."""
        handled = 0
        for _ in range(rounds):
            done = self.run_once()
            handled += done
            if not done:
                break
        return handled


class _Tick:
    """One batch's work, in its transaction."""

    def __init__(self, runner: Runner, connection: Connection, now: datetime):
        self.runner = runner
        self.library = runner.library
        self.messaging = runner.messaging
        self.connection = connection
        self.now = now
        self.changes = Transitions()
        self.sends: list[tuple[int, Request]] = []
        self.facts: Facts

    def run(self, due: list[Instance]) -> None:
        self.facts = Facts.load(
            self.connection, {i.profile_id for i in due}, self.runner.email_consent_default
        )
        journeys = {(i.journey, i.version): self.library.journey(i.journey, i.version) for i in due}
        left = self._exits_logged(due, journeys)
        for instance in due:
            journey = journeys[(instance.journey, instance.version)]
            user = self.facts.of(instance.profile_id).user_id
            if journey is None:
                self.changes.exit(instance, f"version {instance.version} is gone", self.now, user)
            elif instance.id in left:
                self.changes.exit(instance, left[instance.id], self.now, user)
            else:
                self._advance(instance, journey, user)
        if self.sends:
            planned = self.messaging.plan(self.connection, [request for _, request in self.sends])
            stored = self.messaging.store(self.connection, planned)
            for (entry, _), record in zip(self.sends, planned.records, strict=True):
                message = stored[record.send_key]
                reason = message.error or planned.reasons.get(message.id)
                detail = f"{message.template} {message.status}" + (f": {reason}" if reason else "")
                self.changes.sent(entry, message.id, detail)
        store.write(self.connection, self.changes)

    def _exits_logged(
        self, due: list[Instance], journeys: dict[tuple[str, str], Journey | None]
    ) -> dict[str, str]:
        """Instances an `exit_on` event already ends, read from the log itself: the consumer may not have
        seen it yet, and a message must not go out after it."""
        watched = [i for i in due if (j := journeys[(i.journey, i.version)]) is not None and j.exit_on]
        if not watched:
            return {}
        names = {match.event for i in watched for match in journeys[(i.journey, i.version)].exit_on}  # type: ignore[union-attr]
        after = min(int(i.trigger.get("seq", 0)) for i in watched)
        events = store.logged_events(self.connection, {i.profile_id for i in watched}, names, after)
        by_profile: dict[str, list[tuple[int, str, dict, datetime]]] = {}
        for seq, profile, name, properties, at in events:
            by_profile.setdefault(profile, []).append((seq, name, properties, at))
        left = {}
        for instance in watched:
            journey = journeys[(instance.journey, instance.version)]
            assert journey is not None
            for seq, name, properties, at in by_profile.get(instance.profile_id, ()):
                if seq > int(instance.trigger.get("seq", 0)) and any(
                    event_matches(match, name, properties, at, instance.trigger) for match in journey.exit_on
                ):
                    left[instance.id] = f"exit_on {name}"
                    break
        return left

    def _advance(self, instance: Instance, journey: Journey, user: str | None) -> None:  # noqa: PLR0912
        """Run the instance's steps from where it is until it waits or ends."""
        at = instance.due_at or self.now
        changes, nodes = self.changes, journey.nodes
        for _ in range(2 * len(nodes) + 1):  # no cycles: a node is reached once (a wait: started, ended)
            if instance.step == END or instance.step >= len(nodes):
                changes.exit(instance, COMPLETED, self.now, user)
                return
            number, node = instance.step, nodes[instance.step]
            step = node.step
            if isinstance(step, Wait | WaitFor) and instance.waiting_since is None:
                instance.waiting_since = at
                if isinstance(step, Wait):
                    zone = self.messaging.policy.zone(
                        self.facts.of(instance.profile_id).traits.get("timezone")
                    )
                    instance.due_at = step.ends(at, zone)
                else:
                    instance.due_at = at + step.timeout
                    instance.waiting_for = step.match.event
                changes.change(instance)
                if instance.due_at > self.now:
                    return
                continue  # already over (the tick is late): on to what follows it
            if isinstance(step, Wait):
                at = instance.due_at or at
                instance.step, instance.waiting_since = node.next, None
                changes.step(instance, number, "wait", self.now, user, f"until {at:%Y-%m-%d %H:%M} UTC")
            elif isinstance(step, WaitFor):
                at = instance.due_at or at
                instance.step, instance.waiting_since, instance.waiting_for = node.targets[0], None, None
                changes.step(
                    instance, number, "wait_for", self.now, user, f"no {step.match.event}: timed out"
                )
            elif isinstance(step, Branch):
                trigger, facts = instance.trigger, self.facts
                chosen = next(
                    (
                        n
                        for n, (when, _) in enumerate(step.arms)
                        if holds(when, facts, instance.profile_id, trigger, at)
                    ),
                    None,
                )
                instance.step = node.targets[chosen if chosen is not None else -1]
                detail = f"when #{chosen + 1}" if chosen is not None else "otherwise"
                changes.step(instance, number, "branch", self.now, user, detail)
            elif isinstance(step, Split):
                arm_number = _arm(
                    journey, step, self.facts.of(instance.profile_id).user_id or instance.profile_id
                )
                arm = step.arms[arm_number]
                instance.arm = arm.name
                changes.step(instance, number, "split", self.now, user, f"arm {arm.name}")
                if arm.holdout:
                    changes.exit(instance, HOLDOUT, self.now, user)
                    return
                instance.step = node.targets[arm_number]
            elif isinstance(step, Send):
                entry = changes.step(instance, number, "send", self.now, user, step.template)
                self.sends.append((entry, self._request(instance, journey, number, step)))
                instance.step = node.next
            elif isinstance(step, Update):
                changes.identify(instance, number, dict(step.traits), self.now, user)
                self.facts.of(instance.profile_id).traits.update(step.traits)
                instance.step = node.next
                changes.step(instance, number, "update", self.now, user, ", ".join(k for k, _ in step.traits))
            elif isinstance(step, Exit):
                changes.exit(instance, step.reason, self.now, user)
                return
        raise AssertionError(f"journey {journey.name} went round in circles")

    def _request(self, instance: Instance, journey: Journey, number: int, step: Send) -> Request:
        event = {k: v for k, v in instance.trigger.items() if k != "seq"}
        data = {"journey": journey.name, "instance": instance.id, "step": number}
        if instance.arm:
            data["arm"] = instance.arm
        return Request(
            step.template,
            instance.profile_id,
            send_key(instance, number),
            event,
            data,
            fallback=step.fallback,
        )


def _arm(journey: Journey, split: Split, who: str) -> int:
    """The arm `who` falls in: stable for the customer, across instances and versions, as long as the
    split's arms keep their names."""
    place = bucket(f"{journey.name}:split:{','.join(arm.name for arm in split.arms)}", who)
    total = 0.0
    for number, arm in enumerate(split.arms):
        total += arm.percent
        if place < total:
            return number
    return len(split.arms) - 1
