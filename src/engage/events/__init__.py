"""Events: the schema of what engage accepts, ingestion, identity, the log and the stream."""

from engage.events.consumers import Consumer, ConsumerRegistry, deliver
from engage.events.ingest import Ingestor, IngestResult, Rejection
from engage.events.log import AppendResult, EventLog, LoggedEvent
from engage.events.schema import Event, InvalidEvent, parse_event

__all__ = [
    "AppendResult",
    "Consumer",
    "ConsumerRegistry",
    "Event",
    "EventLog",
    "IngestResult",
    "Ingestor",
    "InvalidEvent",
    "LoggedEvent",
    "Rejection",
    "deliver",
    "parse_event",
]
