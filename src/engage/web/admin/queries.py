"""What the dashboard reads that the engine does not already compute: read-only SQLAlchemy Core over the
store's tables, alike on SQLite and PostgreSQL.

Times go in as aware datetimes (converted to UTC here: SQLite keeps naive UTC text) and come out in UTC.
Counts over time windows are sums of CASE expressions, one per bucket, so one scan answers a whole chart
without any dialect's date functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, distinct, func, literal, or_, select, union

from engage.store.codec import time_value
from engage.store.models import (
    EventRecord,
    JourneyInstance,
    JourneyStepRecord,
    Message,
    Profile,
    SegmentMembership,
)

__all__ = [
    "MessageFilter",
    "MessageRow",
    "ClickThrough",
    "events_per_minute",
    "event_total",
    "messages_by_channel_and_status",
    "segment_size_history",
    "journey_funnel",
    "message_choices",
    "search_messages",
    "user_id_of",
    "click_through",
]

event_log = EventRecord.__table__
profiles = Profile.__table__
memberships = SegmentMembership.__table__
messages = Message.__table__
instances = JourneyInstance.__table__
steps = JourneyStepRecord.__table__

SHOWN, CLICKED = "RecommendationShown", "RecommendationClicked"
# A batch's events are stamped when received and numbered when appended, which on PostgreSQL may be a
# little later and out of order; a minute is far more than that takes.
_APPEND_SLACK = timedelta(minutes=1)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _bucket_counts(column: Any, edges: Sequence[datetime]) -> list[Any]:
    """One `sum(CASE …)` per interval [edges[i], edges[i + 1])."""
    return [
        func.coalesce(func.sum(case((and_(column >= _utc(start), column < _utc(end)), 1), else_=0)), 0)
        for start, end in zip(edges, edges[1:], strict=False)
    ]


# -- overview -----------------------------------------------------------------------------------------


def events_per_minute(connection: Connection, now: datetime, minutes: int = 60) -> list[int]:
    """Events received in each of the last `minutes` whole minutes, the current one last."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    edges = [end - timedelta(minutes=minutes - n) for n in range(minutes + 1)]
    # The log is appended in the order events arrive, so the newest rows are the highest seq: start the
    # scan after the last row older than the window rather than reading the whole log.
    before = connection.execute(
        select(event_log.c.seq)
        .where(event_log.c.received_at < _utc(edges[0] - _APPEND_SLACK))
        .order_by(event_log.c.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    row = connection.execute(
        select(*_bucket_counts(event_log.c.received_at, edges)).where(
            event_log.c.seq > (before or 0), event_log.c.received_at >= _utc(edges[0])
        )
    ).one()
    return [int(count) for count in row]


def event_total(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(event_log)).scalar_one())


def messages_by_channel_and_status(connection: Connection, since: datetime) -> dict[tuple[str, str], int]:
    """Messages created since `since`, counted by (channel, status)."""
    rows = connection.execute(
        select(messages.c.channel, messages.c.status, func.count())
        .where(messages.c.created_at >= _utc(since))
        .group_by(messages.c.channel, messages.c.status)
    )
    return {(channel, status): count for channel, status, count in rows}


# -- segments -----------------------------------------------------------------------------------------


def segment_size_history(
    connection: Connection, segment: str, now: datetime, points: int = 60
) -> list[tuple[datetime, int]]:
    """The segment's size at `points` moments from its first entry until `now` (the last one is `now`):
    members who had entered by then and not yet exited."""
    first = connection.execute(
        select(func.min(memberships.c.entered_at)).where(memberships.c.segment == segment)
    ).scalar_one_or_none()
    if first is None:
        return []
    start = time_value(first)
    step = max(now - start, timedelta(seconds=1)) / (points - 1)
    moments = [start + step * n for n in range(points - 1)] + [now]
    sizes = [
        func.coalesce(
            func.sum(
                case(
                    (
                        and_(
                            memberships.c.entered_at <= _utc(moment),
                            or_(memberships.c.exited_at.is_(None), memberships.c.exited_at > _utc(moment)),
                        ),
                        1,
                    ),
                    else_=0,
                )
            ),
            0,
        )
        for moment in moments
    ]
    row = connection.execute(select(*sizes).where(memberships.c.segment == segment)).one()
    return [(moment, int(size)) for moment, size in zip(moments, row, strict=True)]


# -- journeys -----------------------------------------------------------------------------------------


def journey_funnel(connection: Connection, journey: str, version: str) -> tuple[int, dict[int, int]]:
    """For the instances of one version of a journey: how many entered, and how many reached each step
    (went through it, wait there now, or left there), by step number."""
    of_version = and_(instances.c.journey == journey, instances.c.version == version)
    entered = connection.execute(select(func.count()).select_from(instances).where(of_version)).scalar_one()
    went_through = (
        select(steps.c.instance_id, steps.c.step)
        .select_from(steps.join(instances, instances.c.id == steps.c.instance_id))
        .where(of_version, steps.c.journey == journey)
    )
    waiting = select(instances.c.id, instances.c.step).where(of_version, instances.c.status == "active")
    reached = union(went_through, waiting).subquery()
    rows = connection.execute(
        select(reached.c.step, func.count(distinct(reached.c.instance_id))).group_by(reached.c.step)
    )
    return int(entered), {int(step): int(count) for step, count in rows}


# -- messages -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageFilter:
    recipient: str = ""
    """An address (or part of one), a user id or a profile id."""
    template: str = ""
    channel: str = ""
    status: str = ""
    journey: str = ""
    """A journey or a campaign."""

    def conditions(self) -> list[Any]:
        found: list[Any] = []
        if self.recipient:
            found.append(
                or_(
                    messages.c.address.icontains(self.recipient, autoescape=True),
                    profiles.c.user_id == self.recipient,
                    messages.c.profile_id == self.recipient,
                )
            )
        if self.template:
            found.append(messages.c.template == self.template)
        if self.channel:
            found.append(messages.c.channel == self.channel)
        if self.status:
            found.append(messages.c.status == self.status)
        if self.journey:
            found.append(
                or_(
                    messages.c.data["journey"].as_string() == self.journey,
                    messages.c.data["campaign"].as_string() == self.journey,
                )
            )
        return found


@dataclass(frozen=True)
class MessageRow:
    id: str
    created_at: datetime
    channel: str
    template: str
    status: str
    address: str | None
    user_id: str | None
    subject: str | None
    journey: str | None
    """The journey or campaign that sent it."""


def message_choices(connection: Connection) -> tuple[list[str], list[str]]:
    """The templates and statuses messages have, for the search form."""
    templates = connection.execute(select(messages.c.template).distinct().order_by(messages.c.template))
    statuses = connection.execute(select(messages.c.status).distinct().order_by(messages.c.status))
    return list(templates.scalars()), list(statuses.scalars())


def search_messages(
    connection: Connection, where: MessageFilter, *, limit: int, offset: int
) -> tuple[list[MessageRow], int]:
    """A page of the messages `where` selects, newest first, and how many it selects in all."""
    joined = messages.outerjoin(profiles, profiles.c.id == messages.c.profile_id)
    conditions = where.conditions()
    total = connection.execute(select(func.count()).select_from(joined).where(*conditions)).scalar_one()
    rows = connection.execute(
        select(
            messages.c.id,
            messages.c.created_at,
            messages.c.channel,
            messages.c.template,
            messages.c.status,
            messages.c.address,
            profiles.c.user_id,
            messages.c.subject,
            messages.c.data,
        )  # fmt: skip
        .select_from(joined)
        .where(*conditions)
        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    found = [
        MessageRow(
            ident,
            time_value(created),
            channel,
            template,
            status,
            address,
            user_id,
            subject,
            (data or {}).get("journey") or (data or {}).get("campaign"),
        )  # fmt: skip
        for ident, created, channel, template, status, address, user_id, subject, data in rows
    ]
    return found, int(total)


def user_id_of(connection: Connection, profile_id: str) -> str | None:
    return connection.execute(
        select(profiles.c.user_id).where(profiles.c.id == profile_id)
    ).scalar_one_or_none()


# -- recommendations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClickThrough:
    """Lists of recommendations shown on a channel for a use case, and the clicks on them."""

    channel: str
    use_case: str
    shown: int
    clicks: int
    clicked: int
    """Lists with at least one click."""

    @property
    def rate(self) -> float | None:
        return self.clicked / self.shown if self.shown else None


def click_through(connection: Connection) -> list[ClickThrough]:
    """By channel and use case of the list shown: lists shown, clicks, and lists clicked. A click is
    attributed through its recommendation id to the `RecommendationShown` it came from (logged under the
    message id `rec-<recommendation id>`); a click on a list engage has no record of counts under the
    click's own channel and use case `unknown`."""
    use_case = event_log.c.properties["use_case"].as_string()
    shown_rows = connection.execute(
        select(event_log.c.channel, use_case, func.count())
        .where(event_log.c.event == SHOWN)
        .group_by(event_log.c.channel, use_case)
    )
    shown = {(channel, case_ or "unknown"): count for channel, case_, count in shown_rows}
    clicks, exposures = event_log.alias("clicks"), event_log.alias("exposures")
    recommendation = clicks.c.properties["recommendation_id"].as_string()
    channel = func.coalesce(exposures.c.channel, clicks.c.channel)
    clicked_use_case = func.coalesce(exposures.c.properties["use_case"].as_string(), literal("unknown"))
    click_rows = connection.execute(
        select(channel, clicked_use_case, func.count(), func.count(distinct(recommendation)))
        .select_from(clicks.outerjoin(exposures, exposures.c.message_id == literal("rec-") + recommendation))
        .where(clicks.c.event == CLICKED)
        .group_by(channel, clicked_use_case)
    )
    clicked = {(channel_, case_): (count, lists) for channel_, case_, count, lists in click_rows}
    return [
        ClickThrough(key[0], key[1], shown.get(key, 0), *clicked.get(key, (0, 0)))
        for key in sorted(set(shown) | set(clicked))
    ]
