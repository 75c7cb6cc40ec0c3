"""The `journeys` consumer: what events do to journeys, as they arrive.

For each event, in order: a goal it reaches converts the customer's instances (ended ones too: a
holdout converts or not like anyone); an `exit_on` it matches ends their running instances, withdrawing
the messages those still had waiting; a `wait_for` it matches resumes them; and a journey it triggers
starts a new instance, if the key and the re-entry rule let it. A merge of two profiles moves the merged
profile's instances along. The steps themselves run in the tick (`engage.journeys.runner`), woken here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection

from engage.events.log import MERGE_EVENT, LoggedEvent
from engage.journeys import store
from engage.journeys.conditions import event_matches
from engage.journeys.definition import Journey, WaitFor
from engage.journeys.library import Library
from engage.journeys.store import Instance
from engage.journeys.transitions import Transitions
from engage.messaging.records import Records
from engage.segments.compare import lookup
from engage.segments.store import SEGMENT_ENTERED

__all__ = ["JourneysConsumer", "trigger_data"]


class JourneysConsumer:
    name = "journeys"

    def __init__(
        self,
        library: Library,
        records: Records,
        clock: Callable[[], datetime],
        wake: Callable[[], None] = lambda: None,
    ):
        self.library = library
        self.records = records
        self.clock = clock
        self.wake = wake

    def handle(self, connection: Connection, events: Sequence[LoggedEvent]) -> None:
        self.library.refresh(connection)
        index = self.library.index
        relevant = [
            event for event in events if event.type in ("track", "merge") and index.journeys_for(event.event)
        ]
        if not relevant:
            return
        profiles = {event.profile_id for event in relevant}
        profiles |= {event.properties["from_profile"] for event in relevant if event.event == MERGE_EVENT}
        journeys = set().union(*(index.journeys_for(event.event) for event in relevant))
        found = store.instances_of(connection, profiles, journeys, lock=True)
        by_profile: dict[str, list[Instance]] = {}
        for instance in found:
            by_profile.setdefault(instance.profile_id, []).append(instance)
        now = self.clock()
        changes = Transitions()
        for event in relevant:
            if event.event == MERGE_EVENT:
                self._merge(event, by_profile, changes, now)
                continue
            for instance in by_profile.get(event.profile_id, []):
                self._follow(instance, event, changes, now)
            for journey in index.triggers.get(event.event or "", ()):
                if _starts(journey, event):
                    self._enter(journey, event, by_profile.setdefault(event.profile_id, []), changes, now)
        if changes.ended:
            sent = store.messages_of(connection, [instance.id for instance in changes.ended])
            reasons = {instance.id: instance.exit_reason or "" for instance in changes.ended}
            self.records.withdraw(connection, {m: reasons[i] for m, i in sent.items()}, now)
        store.write(connection, changes)
        if changes.entered or changes.changed:
            self.wake()

    def _follow(self, instance: Instance, event: LoggedEvent, changes: Transitions, now: datetime) -> None:
        """What `event` does to one of its customer's instances that it came after."""
        if event.seq <= instance.trigger.get("seq", 0):
            return
        journey = self.library.journey(instance.journey, instance.version)
        if journey is None:
            return
        goal = journey.goal
        # The goal's window opens at the trigger's own time, not when a worker took it in: an order placed
        # before the worker caught up is still the customer's conversion.
        if (
            goal is not None
            and instance.goal_at is None
            and (opened := triggered_at(instance)) <= event.timestamp <= opened + goal.within
            and event_matches(goal.match, event.event, event.properties, event.timestamp, instance.trigger)
        ):
            changes.convert(instance, event)
        if not instance.active:
            return
        for leaving in journey.exit_on:
            if event_matches(leaving, event.event, event.properties, event.timestamp, instance.trigger):
                changes.exit(instance, f"exit_on {event.event}", now, event.user_id)
                return
        node = journey.nodes[instance.step] if 0 <= instance.step < len(journey.nodes) else None
        if (
            node is not None
            and isinstance(node.step, WaitFor)
            and instance.waiting_since is not None
            and event_matches(
                node.step.match, event.event, event.properties, event.timestamp, instance.trigger
            )
        ):
            step = instance.step
            instance.step, instance.due_at = node.next, now
            instance.waiting_since = instance.waiting_for = None
            changes.step(instance, step, "wait_for", now, event.user_id, f"{event.event} came")

    def _enter(
        self,
        journey: Journey,
        event: LoggedEvent,
        theirs: list[Instance],
        changes: Transitions,
        now: datetime,
    ) -> None:
        key = ""
        if journey.key is not None:
            value = lookup(event.properties, journey.key)
            if value is None or value == "":
                return  # nothing to key the instance by: the event is not one this journey follows
            key = str(value)[:200]
        before = [instance for instance in theirs if instance.journey == journey.name and instance.key == key]
        if any(instance.active for instance in before):
            return
        if before and journey.re_entry == "never":
            return
        if before and journey.re_entry == "after":
            assert journey.re_entry_after is not None
            if now - max(instance.entered_at for instance in before) < journey.re_entry_after:
                return
        instance = Instance(
            id=uuid.uuid4().hex, journey=journey.name, version=journey.version, profile_id=event.profile_id,
            key=key, status="active", step=0, due_at=now, waiting_since=None, waiting_for=None,
            trigger=trigger_data(event), arm=None, entered_at=now,
        )  # fmt: skip
        theirs.append(instance)
        changes.enter(instance, event.user_id, event.message_id)

    def _merge(
        self, event: LoggedEvent, by_profile: dict[str, list[Instance]], changes: Transitions, now: datetime
    ) -> None:
        """The merged profile's instances become the surviving profile's; one that would run twice (the
        same journey and key) ends."""
        source, target = event.properties["from_profile"], event.properties["into_profile"]
        moving = by_profile.pop(source, [])
        staying = by_profile.setdefault(target, [])
        for instance in moving:
            instance.profile_id = target
            changes.change(instance)
            twin = any(
                other.active and other.journey == instance.journey and other.key == instance.key
                for other in staying
            )
            if instance.active and twin:
                changes.exit(instance, "profiles merged", now, event.user_id)
            staying.append(instance)


def _starts(journey: Journey, event: LoggedEvent) -> bool:
    trigger = journey.trigger
    if trigger.segment is not None:
        return event.event == SEGMENT_ENTERED and event.properties.get("segment") == trigger.segment
    return event_matches(trigger.as_match(), event.event, event.properties, event.timestamp, {})


def triggered_at(instance: Instance) -> datetime:
    """When the event that started `instance` happened (its entry time for instances stored without it)."""
    recorded = instance.trigger.get("timestamp")
    return datetime.fromisoformat(recorded) if isinstance(recorded, str) else instance.entered_at


def trigger_data(event: LoggedEvent) -> dict[str, object]:
    """What an instance keeps of the event that started it: the templates' `event`, and its place in the
    log (later events are those that can end or resume it)."""
    return {
        "name": event.event,
        "message_id": event.message_id,
        "seq": event.seq,
        "properties": event.properties,
        "timestamp": event.timestamp.isoformat(),
        "channel": event.channel,
    }
