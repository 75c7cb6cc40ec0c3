"""One place that wires engage together: database, log, stream, consumers, ingestion.

`web/` and `cli/` call `bootstrap()` and nothing else to get a running engine; tests pass their own
workspace (and clock) instead of patching.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from engage.chat.service import Chat
from engage.events.consumers import ConsumerRegistry
from engage.events.ingest import Ingestor, Limits
from engage.events.log import EventLog
from engage.events.stream import EventStream, create_stream
from engage.journeys.runtime import Journeys
from engage.messaging.service import Messaging
from engage.profiles import ProfilesConsumer
from engage.recommend.runtime import Recommend
from engage.segments.runtime import Segments
from engage.store import Database, upgrade, utcnow
from engage.tokens import ApiTokens
from engage.workspace import Workspace

__all__ = ["Engage", "bootstrap"]

log = logging.getLogger(__name__)


@dataclass
class Engage:
    workspace: Workspace
    database: Database
    log: EventLog
    stream: EventStream
    consumers: ConsumerRegistry
    ingestor: Ingestor
    segments: Segments
    recommend: Recommend
    messaging: Messaging
    journeys: Journeys
    chat: Chat
    tokens: ApiTokens

    def work(self, stop: threading.Event) -> None:
        """Be a worker until `stop` is set: apply the segment and journey files (backfilling segments
        that changed), then deliver the stream to the consumers while the segment clock handles windows
        running out, the journey tick runs the steps that are due, the scheduler runs campaigns and
        retrains the recommender, and the dispatcher sends the messages that are due."""
        for applied in self.segments.sync():
            log.info(
                "segment %s %s: %d members (%d entered, %d exited)",
                applied.segment, applied.action, applied.members, applied.entered, applied.exited,
            )  # fmt: skip
        for change in self.journeys.sync():
            if change.action != "unchanged":
                log.info("%s %s %s (version %s)", change.kind, change.name, change.action, change.version)
        threads = [
            threading.Thread(target=self.segments.timer.run, args=(stop,), name="segment-clock"),
            threading.Thread(target=self.journeys.run, args=(stop,), name="journeys"),
            threading.Thread(target=self.messaging.run, args=(stop,), name="dispatcher"),
            *self.chat.threads(stop),
        ]
        for thread in threads:
            thread.start()
        scheduler = BackgroundScheduler(timezone=UTC)
        self.recommend.schedule(scheduler)
        self.journeys.schedule(scheduler)
        scheduler.start()
        try:
            self.stream.run(self.consumers, stop)
        finally:
            stop.set()
            scheduler.shutdown(wait=False)
            for thread in threads:
                thread.join()

    def close(self) -> None:
        self.chat.close()
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
    consumers.register(ProfilesConsumer())  # first: segments read the traits and consent it writes
    partitions = endpoints.event_stream.partitions if endpoints.event_stream.type == "rabbitmq" else 1
    segments = Segments.from_workspace(workspace, database, clock, partitions)
    consumers.register(segments.consumer)
    ingestor = Ingestor(
        log,
        phone_region=endpoints.profiles.default_region,
        limits=Limits(endpoints.ingest.max_event_bytes, endpoints.ingest.max_batch_bytes),
        clock=clock,
    )
    recommend = Recommend.from_workspace(workspace, database, clock, ingestor)
    consumers.register(recommend.consumer)
    messaging = Messaging(workspace, database, ingestor, recommend, clock)
    journeys = Journeys(workspace, database, messaging, clock)
    consumers.register(journeys.consumer)
    chat = Chat(workspace, database, ingestor, recommend, messaging, clock)
    consumers.register(chat.consumer)
    tokens = ApiTokens(database)  # on the wall clock: when a token was used is not shop time (the demo's)
    return Engage(
        workspace, database, log, stream, consumers, ingestor, segments, recommend, messaging, journeys, chat,
        tokens,
    )  # fmt: skip
