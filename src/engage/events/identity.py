"""Identity resolution: which profile each event belongs to.

Runs inside the append transaction, for a whole batch at once: two indexed look-ups for every id in the
batch, then decisions in memory. An anonymous visitor who signs in keeps their history: the anonymous
profile gains the user id, or, when the user already has a profile, is merged into it. Two known users
are never merged by a shared anonymous id (a shared computer); only an explicit `alias` merges them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy import Connection, bindparam, insert, select, text, update

from engage.events.schema import Event
from engage.store.models import EventRecord, Identity, ProfileMerge

__all__ = ["IdentityResolver", "Merge"]

USER = "user"
ANONYMOUS = "anonymous"
_CHUNK = 500

identities = Identity.__table__
event_log = EventRecord.__table__
profile_merges = ProfileMerge.__table__

# Prepared once: an expanding parameter skips SQLAlchemy's per-value coercion on the hot path.
# One parameter for the whole list (a JSON array on SQLite, an array on PostgreSQL) rather than one
# placeholder per value, which SQLAlchemy would render anew on every call.
_BY_VALUE = {
    "sqlite": text(
        "SELECT value, profile_id FROM identities "
        "WHERE kind = :kind AND value IN (SELECT value FROM json_each(:values))"
    ),
    # A join, not `value = ANY(...)`: before PostgreSQL has statistics for a young table it plans ANY as
    # a filter that compares every row with every value.
    "postgresql": text(
        "SELECT i.value, i.profile_id FROM unnest(CAST(:values AS text[])) AS wanted(value) "
        "JOIN identities AS i ON i.kind = :kind AND i.value = wanted.value"
    ),
}
_USERS_OF = select(identities.c.profile_id, identities.c.value).where(
    identities.c.kind == USER, identities.c.profile_id.in_(bindparam("profiles", expanding=True))
)


@dataclass(frozen=True, slots=True)
class Merge:
    from_profile: str
    into_profile: str


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = list(values)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


@dataclass
class IdentityResolver:
    """Resolves a batch of events to profile ids, creating identities and merging as it goes."""

    connection: Connection
    now: datetime
    _profile_of: dict[tuple[str, str], str] = field(default_factory=dict)
    _user_of: dict[str, str] = field(default_factory=dict)
    _new_identities: list[dict[str, object]] = field(default_factory=list)

    def load(self, events: list[Event]) -> None:
        users = {e.user_id for e in events if e.user_id}
        anonymous = {e.anonymous_id for e in events if e.anonymous_id}
        previous = {e.previous_id for e in events if e.previous_id}
        sqlite = self.connection.dialect.name == "sqlite"
        statement = _BY_VALUE["sqlite" if sqlite else "postgresql"]
        for kind, wanted in ((USER, users | previous), (ANONYMOUS, anonymous | previous)):
            for chunk in _chunks(wanted):
                values: object = orjson.dumps(chunk).decode() if sqlite else chunk
                rows = self.connection.execute(statement, {"kind": kind, "values": values}).fetchall()
                for value, profile_id in rows:
                    self._profile_of[(kind, value)] = profile_id
                    if kind == USER:
                        self._user_of[profile_id] = value
        # Whether an anonymous profile already belongs to a user matters only where an event links it to
        # a user id it is not yet known under (a signup, a sign-in on a new device, a shared device).
        unknown_owner = set()
        for event in events:
            if event.user_id and event.anonymous_id:
                by_anon = self._profile_of.get((ANONYMOUS, event.anonymous_id))
                if by_anon is not None and by_anon != self._profile_of.get((USER, event.user_id)):
                    unknown_owner.add(by_anon)
        unknown_owner -= self._user_of.keys()
        for chunk in _chunks(unknown_owner):
            rows = self.connection.execute(_USERS_OF, {"profiles": chunk}).fetchall()
            for profile_id, value in rows:
                self._user_of[profile_id] = value

    def resolve(self, event: Event) -> tuple[str, Merge | None]:
        """The profile `event` belongs to, and the merge it caused, if any."""
        if event.type == "alias":
            return self._resolve_alias(event)
        user, anon = event.user_id, event.anonymous_id
        by_user = self._profile_of.get((USER, user)) if user else None
        by_anon = self._profile_of.get((ANONYMOUS, anon)) if anon else None
        if user and anon:
            if by_user is None and by_anon is None:
                profile = self._create()
                self._attach(USER, user, profile)
                self._attach(ANONYMOUS, anon, profile)
                return profile, None
            if by_user is None:
                assert by_anon is not None
                if by_anon in self._user_of:  # the device belongs to another known user
                    profile = self._create()
                    self._attach(USER, user, profile)
                    return profile, None
                self._attach(USER, user, by_anon)
                return by_anon, None
            if by_anon is None:
                self._attach(ANONYMOUS, anon, by_user)
                return by_user, None
            if by_anon != by_user and by_anon not in self._user_of:
                return by_user, self._merge(by_anon, by_user)
            return by_user, None
        if user:
            if by_user is None:
                by_user = self._create()
                self._attach(USER, user, by_user)
            return by_user, None
        assert anon is not None
        if by_anon is None:
            by_anon = self._create()
            self._attach(ANONYMOUS, anon, by_anon)
        return by_anon, None

    def _resolve_alias(self, event: Event) -> tuple[str, Merge | None]:
        assert event.user_id and event.previous_id
        target = self._profile_of.get((USER, event.user_id))
        source = self._profile_of.get((USER, event.previous_id)) or self._profile_of.get(
            (ANONYMOUS, event.previous_id)
        )
        if target is None and source is None:
            target = self._create()
            self._attach(USER, event.user_id, target)
            self._attach(ANONYMOUS, event.previous_id, target)
            return target, None
        if target is None:
            assert source is not None
            self._attach(USER, event.user_id, source)
            return source, None
        if source is None:
            self._attach(ANONYMOUS, event.previous_id, target)
            return target, None
        if source != target:
            return target, self._merge(source, target)
        return target, None

    def _create(self) -> str:
        return uuid.uuid4().hex

    def _attach(self, kind: str, value: str, profile_id: str) -> None:
        self._profile_of[(kind, value)] = profile_id
        if kind == USER:
            self._user_of.setdefault(profile_id, value)
        self._new_identities.append(
            {"kind": kind, "value": value, "profile_id": profile_id, "first_seen": self.now}
        )

    def _merge(self, source: str, target: str) -> Merge:
        """Fold `source` into `target`: its identities and its history now belong to `target`."""
        self.flush()
        for key, profile_id in self._profile_of.items():
            if profile_id == source:
                self._profile_of[key] = target
        if source in self._user_of:
            self._user_of.setdefault(target, self._user_of.pop(source))
        self.connection.execute(
            update(identities).where(identities.c.profile_id == source).values(profile_id=target)
        )
        self.connection.execute(
            update(event_log).where(event_log.c.profile_id == source).values(profile_id=target)
        )
        self.connection.execute(
            update(profile_merges).where(profile_merges.c.into_profile == source).values(into_profile=target)
        )
        self.connection.execute(
            insert(profile_merges).values(from_profile=source, into_profile=target, merged_at=self.now)
        )
        return Merge(source, target)

    def flush(self) -> None:
        """Write the identities created so far."""
        if self._new_identities:
            self.connection.execute(insert(identities), self._new_identities)
            self._new_identities = []
