"""Exporting the log to Parquet or CSV with pandas."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pandas as pd

from engage.events.log import EventLog, LoggedEvent

__all__ = ["export_events", "write_frame", "COLUMNS"]

COLUMNS = [
    "seq", "message_id", "type", "event", "channel", "profile_id", "user_id", "anonymous_id",
    "timestamp", "received_at", "properties", "traits", "context",
]  # fmt: skip


def _record(event: LoggedEvent) -> dict[str, object]:
    record = event.to_dict()
    # Nested objects vary from event to event; JSON text keeps every export loadable with one schema.
    for key in ("properties", "traits", "context"):
        record[key] = orjson.dumps(record[key]).decode()
    return record


def export_events(log: EventLog, since: datetime, output: Path, format: str) -> int:
    records = [_record(event) for page in log.since(since) for event in page]
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    for column in ("timestamp", "received_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return write_frame(frame, output, format)


def write_frame(frame: pd.DataFrame, output: Path, format: str) -> int:
    """Write `frame` to `output` as csv or parquet, creating its folder; returns how many rows."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if format == "parquet":
        frame.to_parquet(output, index=False)
    else:
        frame.to_csv(output, index=False)
    return len(frame)
