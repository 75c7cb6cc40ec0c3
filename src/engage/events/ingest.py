"""Ingestion: from raw Segment calls to events in the log.

Each call is validated on its own, so one bad event in a batch never costs the others: the valid ones
are stored and every rejected one is reported with its index, field and reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from engage.errors import EngageError
from engage.events.log import EventLog
from engage.events.schema import Event, InvalidEvent, parse_event
from engage.store.database import utcnow

__all__ = ["Ingestor", "IngestResult", "Rejection", "Limits", "PayloadTooLarge"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Segment's own: 32 KB per call, 500 KB per batch."""

    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024


class PayloadTooLarge(EngageError):
    pass


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


class Ingestor:
    def __init__(
        self,
        log: EventLog,
        *,
        phone_region: str = "US",
        limits: Limits | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.log = log
        self.phone_region = phone_region
        self.limits = limits or Limits()
        self.clock = clock

    def check_size(self, body: bytes, *, batch: bool) -> None:
        limit = self.limits.max_batch_bytes if batch else self.limits.max_event_bytes
        if len(body) > limit:
            kind = "batch" if batch else "event"
            raise PayloadTooLarge(f"{kind} is {len(body)} bytes; the limit is {limit} bytes")

    def single(self, call_type: str, raw: Any) -> IngestResult:
        """One call of `/v1/track`, `/v1/identify`, …; raises InvalidEvent when it is not acceptable."""
        now = self.clock()
        event = parse_event(raw, received_at=now, phone_region=self.phone_region, call_type=call_type)
        return self._store([event], [], now)

    def batch(self, body: Any, size: int) -> IngestResult:
        """A `/v1/batch` body: `{"batch": [...], "context": {...}}`, the context shared by every call."""
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            raise InvalidEvent("batch", "must be a list of calls")
        now = self.clock()
        shared_context = body.get("context") if isinstance(body.get("context"), dict) else None
        check_each = size > self.limits.max_event_bytes  # no call can exceed the limit if the body doesn't
        events: list[Event] = []
        rejected: list[Rejection] = []
        for index, raw in enumerate(body["batch"]):
            try:
                if check_each and len(orjson.dumps(raw)) > self.limits.max_event_bytes:
                    raise InvalidEvent("", f"event is larger than {self.limits.max_event_bytes} bytes")
                if shared_context and isinstance(raw, dict):
                    raw = {**raw, "context": {**shared_context, **(raw.get("context") or {})}}
                events.append(parse_event(raw, received_at=now, phone_region=self.phone_region))
            except InvalidEvent as exc:
                rejected.append(Rejection(index, exc.field, exc.message))
        return self._store(events, rejected, now)

    def _store(self, events: list[Event], rejected: list[Rejection], now: datetime) -> IngestResult:
        appended = self.log.append(events, now)
        return IngestResult(appended.accepted, appended.duplicates, rejected)
