"""The shop's policies, checked when a message is recorded and again when it is sent: a message goes out
now, waits (quiet hours: deferred, never dropped), or is suppressed with the reason.

- Consent: no SMS without an opt-in, no email after an unsubscribe (or without an address). The one
  exception is a template marked `opt_in` in templates.yml, the SMS that asks a customer who gave their
  number to confirm ("reply Y"): it goes to a number that has not opted in yet, never to one that opted out.
- Quiet hours, per channel, in the customer's time zone (their `timezone` trait, else messaging.yml's):
  a marketing message waits until they end.
- Frequency caps, per channel: a customer gets at most `max` marketing messages per `per`.
Transactional templates (a confirmation the customer asked for) neither wait nor count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engage.messaging.config import MessagingConfig, TemplateSettings

__all__ = ["Decision", "Policy", "Reachability", "reachability"]


@dataclass(frozen=True)
class Reachability:
    """What the policies need to know of one customer on one channel."""

    address: str | None
    """Their email address or phone number."""
    subscribed: bool
    opted_out: bool
    """They said no themselves (unsubscribed, STOP), as opposed to never having said yes."""
    timezone: str | None


@dataclass(frozen=True)
class Decision:
    action: Literal["send", "defer", "suppress"]
    due_at: datetime
    reason: str | None = None


class Policy:
    def __init__(self, config: MessagingConfig):
        self.config = config

    def decide(
        self,
        channel: str,
        settings: TemplateSettings,
        reach: Reachability,
        now: datetime,
        recently_sent: int,
    ) -> Decision:
        unreachable = self.unreachable(channel, settings, reach)
        if unreachable is not None:
            return Decision("suppress", now, unreachable)
        if settings.transactional:
            return Decision("send", now)
        cap = self.config.frequency_caps.get(channel)
        if cap is not None and recently_sent >= cap.max:
            return Decision(
                "suppress", now, f"frequency cap: {recently_sent} of {cap.max} per {_days(cap.per)}"
            )
        quiet = self.config.quiet_hours.get(channel)
        if quiet is not None:
            zone = self.zone(reach.timezone)
            local = now.astimezone(zone)
            if quiet.contains(local.time()):
                end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
                if end <= local:
                    end = (end + timedelta(days=1)).replace(hour=quiet.end.hour, minute=quiet.end.minute)
                return Decision(
                    "defer", end.astimezone(now.tzinfo), f"quiet hours in {zone.key} until {end:%H:%M}"
                )
        return Decision("send", now)

    def unreachable(self, channel: str, settings: TemplateSettings, reach: Reachability) -> str | None:
        """Why consent or a missing address keep the message from the customer; None when they do not."""
        if not reach.address:
            return "no email address" if channel == "email" else "no phone number"
        if settings.opt_in:
            if reach.opted_out:
                return f"opted out of {channel}"
        elif not reach.subscribed:
            return f"not subscribed to {channel}"
        return None

    def zone(self, name: str | None) -> ZoneInfo:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return ZoneInfo(self.config.timezone)

    def cap_window(self, channel: str) -> timedelta | None:
        cap = self.config.frequency_caps.get(channel)
        return cap.per if cap is not None else None


def reachability(
    channel: str, traits: Mapping[str, Any], consent: Mapping[str, Any] | None, email_default: bool
) -> Reachability:
    """`channel`'s reachability from a profile's traits and its consent row for the channel (None: never
    changed, so the shop's default)."""
    address = traits.get("email") if channel == "email" else traits.get("phone")
    address = address if isinstance(address, str) and address else None
    if consent is not None:
        subscribed = bool(consent["subscribed"])
        opted_out = not subscribed
    else:
        subscribed = channel == "email" and email_default and address is not None
        opted_out = False
    timezone = traits.get("timezone") if isinstance(traits.get("timezone"), str) else None
    return Reachability(address, subscribed, opted_out, timezone)


def _days(period: timedelta) -> str:
    return f"{period.days}d" if period.days and not period.seconds else str(period)
