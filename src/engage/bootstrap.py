"""One place that wires engage together: database, log, stream, consumers, ingestion.

`web/` and `cli/` call `bootstrap()` and nothing else to get a running engine; tests pass their own
workspace (and clock) instead of patching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engage.events.consumers import ConsumerRegistry
from engage.events.ingest import Ingestor, Limits
from engage.events.log import EventLog
from engage.events.stream import EventStream, create_stream
from engage.profiles import ProfilesConsumer
from engage.store import Database, upgrade, utcnow
from engage.workspace import Workspace

__all__ = ["Engage", "bootstrap"]


@dataclass
class Engage:
    workspace: Workspace
    database: Database
    log: EventLog
    stream: EventStream
    consumers: ConsumerRegistry
    ingestor: Ingestor

    def close(self) -> None:
        self.stream.close()
        self.database.dispose()


def bootstrap(
    workspace: Workspace, *, migrate: bool = True, clock: Callable[[], datetime] = utcnow
) -> Engage:
    endpoints = workspace.endpoints
    database = Database(endpoints.database.url, pool_size=endpoints.database.pool_size)
    if migrate:
        upgrade(database)
    log = EventLog(database)
    stream = create_stream(endpoints.event_stream, database, log)
    log.on_append = stream.notify
    consumers = ConsumerRegistry()
    consumers.register(ProfilesConsumer())
    ingestor = Ingestor(
        log,
        phone_region=endpoints.profiles.default_region,
        limits=Limits(endpoints.ingest.max_event_bytes, endpoints.ingest.max_batch_bytes),
        clock=clock,
    )
    return Engage(workspace, database, log, stream, consumers, ingestor)
