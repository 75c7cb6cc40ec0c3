"""Reading profiles: what `GET /v1/profiles/{id}` and `engage profiles show` return."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from engage.events.log import LoggedEvent
from engage.profiles.consent import CHANNELS, default_consent
from engage.store.codec import time_value
from engage.store.models import Consent, EventRecord, Identity, Profile

__all__ = ["find_profile_id", "profile_view"]

identities = Identity.__table__
profiles = Profile.__table__
consents = Consent.__table__
event_log = EventRecord.__table__


def find_profile_id(connection: Connection, identifier: str) -> str | None:
    """The profile of a user id, else of an anonymous id."""
    for kind in ("user", "anonymous"):
        profile_id = connection.execute(
            select(identities.c.profile_id).where(identities.c.kind == kind, identities.c.value == identifier)
        ).scalar_one_or_none()
        if profile_id is not None:
            return profile_id
    return None


def profile_view(
    connection: Connection, identifier: str, *, email_consent_default: bool = True, events: int = 50
) -> dict[str, Any] | None:
    """Traits, consent, identities and the latest events of the profile `identifier` names (the
    customer's own: engage's announcements, such as SegmentEntered, are left out)."""
    profile_id = find_profile_id(connection, identifier)
    if profile_id is None:
        return None
    row = connection.execute(select(profiles).where(profiles.c.id == profile_id)).mappings().one_or_none()
    traits: dict[str, Any] = dict(row["traits"]) if row else {}
    consent = {channel: default_consent(channel, traits, email_consent_default) for channel in CHANNELS}
    for found in connection.execute(select(consents).where(consents.c.profile_id == profile_id)).mappings():
        consent[found["channel"]] = {
            "subscribed": found["subscribed"],
            "source": found["source"],
            "updated_at": time_value(found["updated_at"]).isoformat(),
        }
    ids = connection.execute(
        select(identities.c.kind, identities.c.value)
        .where(identities.c.profile_id == profile_id)
        .order_by(identities.c.first_seen, identities.c.kind)
    ).all()
    recent = connection.execute(
        select(event_log)
        .where(event_log.c.profile_id == profile_id, event_log.c.channel != "system")
        .order_by(event_log.c.timestamp.desc(), event_log.c.seq.desc())
        .limit(events)
    ).all()
    return {
        "profile_id": profile_id,
        "user_id": row["user_id"] if row else None,
        "traits": traits,
        "consent": consent,
        "identities": [{"type": kind, "id": value} for kind, value in ids],
        "first_seen": time_value(row["first_seen"]).isoformat() if row else None,
        "last_seen": time_value(row["last_seen"]).isoformat() if row else None,
        "event_count": row["event_count"] if row else 0,
        "events": [_event_view(LoggedEvent.from_row(r)) for r in recent],
    }


def _event_view(event: LoggedEvent) -> dict[str, Any]:
    view: dict[str, Any] = {
        "messageId": event.message_id,
        "type": event.type,
        "channel": event.channel,
        "timestamp": event.timestamp.isoformat(),
    }
    if event.event:
        view["event"] = event.event
    if event.properties:
        view["properties"] = event.properties
    if event.traits:
        view["traits"] = event.traits
    return view
