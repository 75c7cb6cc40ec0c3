"""The events engage accepts: the Segment tracking spec plus engage's `channel`.

A raw call (one JSON object of `/v1/track`, `/v1/identify`, … or one item of `/v1/batch`) is validated
with pydantic into an `Event`. Anything wrong raises `InvalidEvent` naming the field, so the HTTP layer
can answer 400 for a single call and list the rejected indexes of a batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from engage.errors import EngageError
from engage.events.traits import InvalidTrait, normalize_traits

__all__ = ["Event", "InvalidEvent", "parse_event", "CALL_TYPES", "CHANNELS"]

CALL_TYPES = ("track", "identify", "page", "screen", "alias", "group")
CHANNELS = ("web", "email", "sms", "chat", "system")
CONSENT_CHANNELS = ("email", "sms")
# Segment's context.channel describes the library, not the conversation channel.
_SEGMENT_LIBRARY_CHANNELS = {"browser": "web", "server": "web", "mobile": "web", "client": "web"}

Id = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class InvalidEvent(EngageError):
    """An event that cannot be accepted; `field` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class _Call(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=200)

    type: Literal["track", "identify", "page", "screen", "alias", "group"]
    messageId: Id | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    previousId: Id | None = None
    groupId: Id | None = None
    event: Id | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    channel: Literal["web", "email", "sms", "chat", "system"] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _required_by_type(self) -> _Call:
        if self.type == "alias":
            if not self.userId:
                raise _missing("userId")
            if not self.previousId:
                raise _missing("previousId")
        elif not (self.userId or self.anonymousId):
            raise _missing("userId", "userId or anonymousId is required")
        if self.type == "track" and not self.event:
            raise _missing("event")
        if self.type == "group" and not self.groupId:
            raise _missing("groupId")
        return self


class _Missing(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def _missing(field: str, message: str = "") -> _Missing:
    return _Missing(field, message or f"{field} is required")


@dataclass(slots=True)
class Event:
    """A validated, normalised call, ready for identity resolution and the log."""

    message_id: str
    type: str
    channel: str
    timestamp: datetime
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timestamp(call: _Call, received_at: datetime) -> datetime:
    if call.timestamp is not None:
        return _utc(call.timestamp)
    if call.originalTimestamp is not None and call.sentAt is not None:
        # Segment's clock-skew correction: trust the server's clock for when the batch was sent.
        return received_at - (_utc(call.sentAt) - _utc(call.originalTimestamp))
    if call.originalTimestamp is not None:
        return _utc(call.originalTimestamp)
    return received_at


def _channel(call: _Call) -> str:
    if call.channel:
        return call.channel
    declared = call.context.get("channel")
    if declared is None:
        return "web"
    if declared in CHANNELS:
        return str(declared)
    if declared in _SEGMENT_LIBRARY_CHANNELS:
        return _SEGMENT_LIBRARY_CHANNELS[declared]
    raise InvalidEvent("context.channel", f"unknown channel {declared!r} (known: {', '.join(CHANNELS)})")


def _check_consent(context: dict[str, Any]) -> None:
    consent = context.get("consent")
    if consent is None:
        return
    prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(prefs, dict):
        raise InvalidEvent("context.consent.categoryPreferences", "must be an object of channel: true|false")
    for channel, value in prefs.items():
        if channel in CONSENT_CHANNELS and not isinstance(value, bool):
            raise InvalidEvent(f"context.consent.categoryPreferences.{channel}", "must be true or false")


def _field_of(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"])


def parse_event(
    raw: Any, *, received_at: datetime, phone_region: str = "US", call_type: str | None = None
) -> Event:
    """Validate one raw call. `call_type` is the endpoint's type (`/v1/track` → track) for single calls."""
    if not isinstance(raw, dict):
        raise InvalidEvent("", "an event must be a JSON object")
    _refuse_nul(raw, "")
    if call_type is not None:
        if raw.get("type", call_type) != call_type:
            raise InvalidEvent("type", f"must be {call_type!r} on /v1/{call_type}")
        raw = {**raw, "type": call_type}
    try:
        call = _Call.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _Missing):
            raise InvalidEvent(cause.field, str(cause)) from None
        raise InvalidEvent(_field_of(error), error["msg"]) from None

    traits = call.traits
    context_traits = call.context.get("traits")
    try:
        if traits:
            traits = normalize_traits(traits, phone_region)
        if isinstance(context_traits, dict) and context_traits:
            call.context["traits"] = normalize_traits(context_traits, phone_region)
    except InvalidTrait as exc:
        prefix = "traits" if call.traits and exc.field in _trait_keys(call.traits) else "context.traits"
        raise InvalidEvent(f"{prefix}.{exc.field}", str(exc)) from None
    _check_consent(call.context)

    properties = call.properties
    if call.type in ("page", "screen") and call.name and "name" not in properties:
        properties = {**properties, "name": call.name}
    event_name = call.event if call.type == "track" else (call.name or None)
    return Event(
        message_id=call.messageId or uuid.uuid4().hex,
        type=call.type,
        channel=_channel(call),
        timestamp=_timestamp(call, received_at),
        event=event_name,
        user_id=call.userId,
        anonymous_id=call.anonymousId,
        previous_id=call.previousId,
        properties=properties,
        traits=traits,
        context=call.context,
    )


def _refuse_nul(value: Any, field: str) -> None:
    """Refuse NUL (\\u0000) in a key or a text: PostgreSQL cannot store it (it was a 500 there)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidEvent(field, "contains a NUL character (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{field}.{key}" if field else str(key)
            if isinstance(key, str) and "\x00" in key:
                raise InvalidEvent(path, "contains a NUL character (\\u0000) in its name")
            _refuse_nul(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{field}[{index}]")


def _trait_keys(traits: dict[str, Any]) -> set[str]:
    from engage.events.traits import RESERVED_TRAITS

    return {RESERVED_TRAITS.get(key, key) for key in traits}
