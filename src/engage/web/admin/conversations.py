"""The bot's conversations as the event log holds them: each customer turn a `ChatMessage` (with its intent
and confidence), each bot turn a `ChatReplied` (`engage.chat.rasa_events`), and the lists the bot showed
and the customer clicked (`RecommendationShown`, `RecommendationClicked` on channel chat or sms)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, distinct, func, or_, select

from engage.store.codec import time_value
from engage.store.models import EventRecord, Profile

__all__ = ["Conversation", "Turn", "conversations", "transcript", "CHAT_TURNS"]

event_log = EventRecord.__table__
profiles = Profile.__table__

CHAT_TURNS = ("ChatMessage", "ChatReplied")
LISTS = ("RecommendationShown", "RecommendationClicked")


@dataclass(frozen=True)
class Conversation:
    profile_id: str
    user_id: str | None
    channels: str
    customer_turns: int
    bot_turns: int
    first_at: datetime
    last_at: datetime


def conversations(connection: Connection, *, limit: int, offset: int) -> tuple[list[Conversation], int]:
    """Customers who talked to the bot, the latest conversation first, and how many there are."""
    turns = event_log.c.event.in_(CHAT_TURNS)
    total = connection.execute(select(func.count(distinct(event_log.c.profile_id))).where(turns)).scalar_one()
    said = func.sum(case((event_log.c.event == "ChatMessage", 1), else_=0))
    latest = func.max(event_log.c.timestamp)
    rows = connection.execute(
        select(
            event_log.c.profile_id,
            profiles.c.user_id,
            func.min(event_log.c.channel),
            func.max(event_log.c.channel),
            said,
            func.count(),
            func.min(event_log.c.timestamp),
            latest,
        )  # fmt: skip
        .select_from(event_log.outerjoin(profiles, profiles.c.id == event_log.c.profile_id))
        .where(turns)
        .group_by(event_log.c.profile_id, profiles.c.user_id)
        .order_by(latest.desc(), event_log.c.profile_id)
        .limit(limit)
        .offset(offset)
    )
    found = [
        Conversation(
            profile_id,
            user_id,
            lowest if lowest == highest else f"{lowest}, {highest}",
            int(customer),
            int(count) - int(customer),
            time_value(first),
            time_value(last),
        )  # fmt: skip
        for profile_id, user_id, lowest, highest, customer, count, first, last in rows
    ]
    return found, int(total)


@dataclass(frozen=True)
class Turn:
    """A line of a transcript: the customer's message, the bot's, or products shown or clicked."""

    event: str
    channel: str
    at: datetime
    properties: dict[str, Any]


def transcript(connection: Connection, profile_id: str, limit: int = 500) -> list[Turn]:
    """A customer's latest `limit` chat turns and the products the bot showed them (and they clicked),
    oldest first."""
    rows = connection.execute(
        select(event_log.c.event, event_log.c.channel, event_log.c.timestamp, event_log.c.properties)
        .where(
            event_log.c.profile_id == profile_id,
            or_(
                event_log.c.event.in_(CHAT_TURNS),
                and_(event_log.c.event.in_(LISTS), event_log.c.channel.in_(("chat", "sms"))),
            ),
        )
        .order_by(event_log.c.timestamp.desc(), event_log.c.seq.desc())
        .limit(limit)
    ).all()
    return [
        Turn(event, channel, time_value(at), properties or {}) for event, channel, at, properties in rows
    ][::-1]
