"""The workspace's segments at work: one engine, shared by the consumer, the clock and the backfill."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from engage.segments.backfill import Applied, sync_definitions
from engage.segments.consumer import SegmentClock, SegmentsConsumer
from engage.segments.definition import Segment
from engage.segments.engine import SegmentEngine
from engage.segments.loader import load_segments, read_manual
from engage.store.database import Database
from engage.workspace import Workspace

__all__ = ["Segments"]


class Segments:
    def __init__(
        self,
        definitions: list[Segment],
        database: Database,
        clock: Callable[[], datetime],
        *,
        manual: dict[str, frozenset[str]] | None = None,
        email_consent_default: bool = True,
        partitions: int = 1,
    ):
        self.database = database
        self.clock = clock
        self.partitions = partitions
        self.engine = SegmentEngine(definitions, manual=manual, email_consent_default=email_consent_default)
        self.consumer = SegmentsConsumer(self.engine, clock)
        self.timer = SegmentClock(database, self.engine, clock)

    @classmethod
    def from_workspace(
        cls, workspace: Workspace, database: Database, clock: Callable[[], datetime], partitions: int = 1
    ) -> Segments:
        definitions = list(load_segments(workspace.root).values())
        manual = {
            path: read_manual(workspace.root, path)
            for segment in definitions
            for path in segment.manual_files()
        }
        return cls(
            definitions,
            database,
            clock,
            manual=manual,
            email_consent_default=workspace.endpoints.profiles.email_consent_default,
            partitions=partitions,
        )

    def sync(self) -> list[Applied]:
        """Backfill new and edited segments, retire removed ones (see `engage.segments.backfill`)."""
        return sync_definitions(
            self.database, self.engine, self.clock(), consumer=self.consumer.name, partitions=self.partitions
        )
