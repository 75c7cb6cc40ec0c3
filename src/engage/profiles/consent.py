"""Consent per channel: what a profile agreed to, where and when.

SMS needs an explicit opt-in; email is subscribed by default when the shop says so
(`profiles.email_consent_default`) and the profile has an address. A later change wins only if it
happened later: an old event arriving late cannot undo a newer choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engage.events.log import LoggedEvent

__all__ = ["ConsentChange", "consent_changes", "CONSENT_EVENTS", "default_consent"]

# Events that change consent by their meaning, whatever channel reports them.
CONSENT_EVENTS: dict[str, tuple[str, bool]] = {
    "Unsubscribed": ("email", False),
    "SmsOptedOut": ("sms", False),
    "SmsOptedIn": ("sms", True),
}
CHANNELS = ("email", "sms")


@dataclass(frozen=True, slots=True)
class ConsentChange:
    channel: str
    subscribed: bool
    source: str
    at: datetime
    message_id: str


def _source(event: LoggedEvent) -> str:
    declared = (event.context.get("consent") or {}).get("source")
    return str(declared) if declared else f"{event.channel}:{event.event or event.type}"


def consent_changes(event: LoggedEvent) -> list[ConsentChange]:
    changes = []
    if event.event in CONSENT_EVENTS and event.type == "track":
        channel, subscribed = CONSENT_EVENTS[event.event]
        changes.append(ConsentChange(channel, subscribed, _source(event), event.timestamp, event.message_id))
    preferences = (event.context.get("consent") or {}).get("categoryPreferences") or {}
    for channel in CHANNELS:
        if channel in preferences:
            changes.append(
                ConsentChange(
                    channel, preferences[channel], _source(event), event.timestamp, event.message_id
                )
            )
    return changes


def default_consent(channel: str, traits: dict[str, Any], email_default: bool) -> dict[str, Any]:
    subscribed = channel == "email" and email_default and bool(traits.get("email"))
    return {"subscribed": subscribed, "source": "default", "updated_at": None}
