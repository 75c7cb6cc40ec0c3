"""Exporting a segment's current members to CSV or Parquet with pandas, for a mailing tool or an analyst."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection

from engage.events.export import write_frame
from engage.segments.queries import member_contacts

__all__ = ["export_members", "COLUMNS"]

COLUMNS = ["profile_id", "user_id", "entered_at", "email", "phone"]


def export_members(connection: Connection, segment: str, output: Path, format: str) -> int:
    """Write the current members of `segment` to `output` in `format` (csv or parquet); returns how many."""
    records = [asdict(contact) for contact in member_contacts(connection, segment)]
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    frame["entered_at"] = pd.to_datetime(frame["entered_at"], utc=True)
    return write_frame(frame, output, format)
