"""What messaging tells the rest of engage: events about a customer (sent, failed, delivered, opened,
clicked, opted out, replied), appended to the log through ingestion like any storefront's, with ids that
make a redelivered webhook or a retried step count once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engage.errors import EngageError
from engage.events.ingest import Ingestor
from engage.messaging.context import Recipient

__all__ = ["Announcer"]


class Announcer:
    def __init__(self, ingestor: Ingestor):
        self.ingestor = ingestor

    @staticmethod
    def call(
        recipient: Recipient,
        event: str,
        channel: str,
        properties: Mapping[str, Any],
        message_id: str,
        timestamp: datetime | None = None,
    ) -> dict[str, Any]:
        """One Segment track call about `recipient`."""
        call: dict[str, Any] = {
            "type": "track",
            "event": event,
            "userId" if recipient.is_user_id else "anonymousId": recipient.identity,
            "messageId": message_id,
            "properties": dict(properties),
            "context": {"channel": channel},
        }
        if timestamp is not None:
            call["timestamp"] = timestamp.isoformat()
        return call

    def track(self, calls: list[dict[str, Any]]) -> None:
        """Append `calls` in one batch (one already logged is kept once, by its messageId)."""
        if not calls:
            return
        result = self.ingestor.batch({"batch": calls}, size=0)
        if result.rejected:
            raise EngageError(f"messaging events rejected: {[r.as_dict() for r in result.rejected]}")
