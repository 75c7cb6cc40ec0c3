"""What a journey tests about an instance: a branch's `when` (the segment language's traits, segment
membership, consent and random buckets, and the trigger's properties), and whether an event matches an
`exit_on`, a `wait_for` or a goal.

The facts are read once for a whole batch of instances (`Facts.load`); the tests are pure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from engage.journeys.definition import EventMatch, TriggerProperties
from engage.segments.compare import compile_filter, lookup, matches
from engage.segments.definition import All, AnyOf, Condition, Consent, InSegment, Not, RandomBucket, Trait
from engage.segments.engine import ProfileFacts
from engage.segments.store import load_facts
from engage.store.codec import list_param, listed

__all__ = ["Facts", "holds", "event_matches", "bucket"]


@dataclass
class Facts:
    """Traits, consents and segments of the profiles of a batch."""

    profiles: dict[str, ProfileFacts]
    segments: dict[str, set[str]]
    email_consent_default: bool

    @classmethod
    def load(cls, connection: Connection, profile_ids: Collection[str], email_consent_default: bool) -> Facts:
        sqlite = connection.dialect.name == "sqlite"
        segments: dict[str, set[str]] = {}
        rows = connection.execute(
            text(
                f"SELECT m.profile_id, m.segment FROM {listed('ids', sqlite)} JOIN segment_memberships AS m "
                "ON m.profile_id = listed.value WHERE m.exited_at IS NULL"
            ),
            {"ids": list_param(sorted(profile_ids), sqlite)},
        )
        for profile_id, segment in rows:
            segments.setdefault(profile_id, set()).add(segment)
        return cls(load_facts(connection, profile_ids), segments, email_consent_default)

    def of(self, profile_id: str) -> ProfileFacts:
        return self.profiles.setdefault(profile_id, ProfileFacts())

    def subscribed(self, profile_id: str, channel: str) -> bool:
        facts = self.of(profile_id)
        choice = facts.consents.get(channel)
        if choice is not None:
            return choice
        return channel == "email" and self.email_consent_default and bool(facts.traits.get("email"))


def holds(
    condition: Condition, facts: Facts, profile_id: str, trigger: Mapping[str, Any], now: datetime
) -> bool:
    """Whether a branch's condition holds for the instance of `profile_id` started by `trigger`."""
    if isinstance(condition, All):
        return all(holds(child, facts, profile_id, trigger, now) for child in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(holds(child, facts, profile_id, trigger, now) for child in condition.conditions)
    if isinstance(condition, Not):
        return not holds(condition.condition, facts, profile_id, trigger, now)
    if isinstance(condition, Trait):
        return matches(lookup(facts.of(profile_id).traits, condition.name), condition.test, now)
    if isinstance(condition, InSegment):
        return condition.segment in facts.segments.get(profile_id, ())
    if isinstance(condition, Consent):
        return facts.subscribed(profile_id, condition.channel.value) == condition.subscribed
    if isinstance(condition, RandomBucket):
        return condition.contains(facts.of(profile_id).user_id or profile_id)
    if isinstance(condition, TriggerProperties):
        properties = trigger.get("properties") or {}
        at = _timestamp(trigger, now)
        return all(_filter(where)(properties, at) for where in condition.where)
    raise TypeError(f"a journey cannot test {type(condition).__name__}")  # the parser allows no other


def event_matches(
    match: EventMatch,
    name: str | None,
    properties: Mapping[str, Any],
    at: datetime,
    trigger: Mapping[str, Any],
) -> bool:
    """Whether an event (`name`, `properties`, at `at`) matches: its name, its filters, and the properties
    `match` pairs with the trigger's (present and equal)."""
    if name != match.event:
        return False
    if not all(_filter(where)(properties, at) for where in match.where):  # type: ignore[arg-type]
        return False
    started = trigger.get("properties") or {}
    for mine, theirs in match.match:
        value = lookup(properties, mine)  # type: ignore[arg-type]
        if value is None or value != lookup(started, theirs):
            return False
    return True


def bucket(salt: str, who: str) -> float:
    """A stable place in [0, 100) for `who` (a split's arm, a campaign's holdout)."""
    return RandomBucket(salt, 0).bucket(who)


@functools.lru_cache(maxsize=1024)
def _filter(where: Any) -> Callable[[dict[str, Any], datetime], bool]:
    return compile_filter(where)


def _timestamp(trigger: Mapping[str, Any], now: datetime) -> datetime:
    found = trigger.get("timestamp")
    return datetime.fromisoformat(found) if isinstance(found, str) else now
