"""Reading segments and their members: what `engage segments` and the `/v1/segments` API show.

Plain functions over the caller's connection, alike on SQLite and PostgreSQL. The segment engine
(`engage.segments.store`) is the only writer of these tables; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, literal, select, union_all

from engage.store.codec import time_value
from engage.store.models import Profile, SegmentDefinition, SegmentMembership

__all__ = [
    "AppliedDefinition",
    "Member",
    "Contact",
    "MembershipChange",
    "Stay",
    "segment_sizes",
    "applied_definitions",
    "member_page",
    "member_contacts",
    "recent_changes",
    "profile_stays",
]

memberships = SegmentMembership.__table__
definitions = SegmentDefinition.__table__
profiles = Profile.__table__


@dataclass(frozen=True)
class AppliedDefinition:
    """A segment as the worker last applied it to the database."""

    name: str
    description: str
    file: str
    fingerprint: str
    applied_at: datetime
    retired_at: datetime | None
    """Set once its file was removed and its members let go."""


@dataclass(frozen=True)
class Member:
    profile_id: str
    user_id: str | None
    entered_at: datetime


@dataclass(frozen=True)
class Contact:
    """A member and how to reach them."""

    profile_id: str
    user_id: str | None
    entered_at: datetime
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class MembershipChange:
    """A profile entering (`entered`) or leaving a segment."""

    at: datetime
    entered: bool
    profile_id: str
    user_id: str | None


@dataclass(frozen=True)
class Stay:
    """A profile's time in a segment: `exited_at` is None while it is still a member."""

    segment: str
    entered_at: datetime
    exited_at: datetime | None


def segment_sizes(connection: Connection, segments: Collection[str] | None = None) -> dict[str, int]:
    """How many current members each segment (of `segments`, or every one) has; a segment without any
    is left out."""
    query = select(memberships.c.segment, func.count()).where(memberships.c.exited_at.is_(None))
    if segments is not None:
        query = query.where(memberships.c.segment.in_(segments))
    return {segment: count for segment, count in connection.execute(query.group_by(memberships.c.segment))}


def applied_definitions(connection: Connection) -> dict[str, AppliedDefinition]:
    """Every segment the worker has applied, retired ones included, by name."""
    rows = connection.execute(select(definitions)).mappings()
    return {
        row["name"]: AppliedDefinition(
            row["name"],
            row["description"],
            row["file"],
            row["fingerprint"],
            time_value(row["applied_at"]),
            _time_or_none(row["retired_at"]),
        )
        for row in rows
    }


def member_page(
    connection: Connection, segment: str, *, limit: int, after: str | None = None
) -> list[Member]:
    """Up to `limit` current members whose profile id sorts after `after`, in profile id order.

    Keyset pagination: a member who enters or exits meanwhile shifts no other member between pages."""
    query = _current_members(segment, memberships.c.profile_id, profiles.c.user_id, memberships.c.entered_at)
    if after is not None:
        query = query.where(memberships.c.profile_id > after)
    rows = connection.execute(query.order_by(memberships.c.profile_id).limit(limit))
    return [Member(profile_id, user_id, time_value(entered_at)) for profile_id, user_id, entered_at in rows]


def member_contacts(connection: Connection, segment: str) -> list[Contact]:
    """Every current member with the profile's `email` and `phone` traits, in profile id order."""
    query = _current_members(
        segment,
        memberships.c.profile_id,
        profiles.c.user_id,
        memberships.c.entered_at,
        profiles.c.traits["email"].as_string(),
        profiles.c.traits["phone"].as_string(),
    )
    rows = connection.execute(query.order_by(memberships.c.profile_id))
    return [
        Contact(profile_id, user_id, time_value(entered_at), email, phone)
        for profile_id, user_id, entered_at, email, phone in rows
    ]


def recent_changes(connection: Connection, segment: str, limit: int = 20) -> list[MembershipChange]:
    """The latest `limit` entries and exits of a segment, latest first."""
    entries = select(
        memberships.c.id,
        memberships.c.profile_id,
        memberships.c.entered_at.label("at"),
        literal("entered").label("change"),
    ).where(memberships.c.segment == segment)
    exits = select(
        memberships.c.id,
        memberships.c.profile_id,
        memberships.c.exited_at.label("at"),
        literal("exited").label("change"),
    ).where(memberships.c.segment == segment, memberships.c.exited_at.is_not(None))
    changes = union_all(entries, exits).subquery()
    rows = connection.execute(
        select(changes.c.at, changes.c.change, changes.c.profile_id, profiles.c.user_id)
        .select_from(changes.outerjoin(profiles, profiles.c.id == changes.c.profile_id))
        # A stay's exit comes after its entry even when both happened at the same moment.
        .order_by(changes.c.at.desc(), changes.c.id.desc(), changes.c.change.desc())
        .limit(limit)
    )
    return [
        MembershipChange(time_value(at), change == "entered", profile_id, user_id)
        for at, change, profile_id, user_id in rows
    ]


def profile_stays(connection: Connection, profile_id: str) -> list[Stay]:
    """Every stay of a profile in any segment, current ones included, the latest entered first."""
    rows = connection.execute(
        select(memberships.c.segment, memberships.c.entered_at, memberships.c.exited_at)
        .where(memberships.c.profile_id == profile_id)
        .order_by(memberships.c.entered_at.desc(), memberships.c.id.desc())
    )
    return [
        Stay(segment, time_value(entered_at), _time_or_none(exited_at))
        for segment, entered_at, exited_at in rows
    ]


def _current_members(segment: str, *columns: Any) -> Select[Any]:
    """`columns` of the segment's current members joined to their profiles (a merged-away profile no
    longer has one: its user id reads as None)."""
    return (
        select(*columns)
        .select_from(memberships.outerjoin(profiles, profiles.c.id == memberships.c.profile_id))
        .where(memberships.c.segment == segment, memberships.c.exited_at.is_(None))
    )


def _time_or_none(value: Any) -> datetime | None:
    return time_value(value) if value is not None else None
