"""Event streams, keyed by the `event_stream.type` of endpoints.yml."""

from __future__ import annotations

from engage.errors import EngageError
from engage.events.log import EventLog
from engage.events.stream.base import EventStream, partition_of
from engage.events.stream.inprocess import InProcessStream
from engage.store.database import Database

__all__ = ["EventStream", "InProcessStream", "create_stream", "partition_of", "STREAM_TYPES"]


def _stream_types() -> dict[str, type[EventStream]]:
    from engage.events.stream.rabbitmq import RabbitMQStream

    return {InProcessStream.name: InProcessStream, RabbitMQStream.name: RabbitMQStream}


STREAM_TYPES = ("inprocess", "rabbitmq")


def create_stream(config: object, database: Database, log: EventLog) -> EventStream:
    """Build the stream named by `config.type` (an `EventStreamConfig`)."""
    kind = getattr(config, "type", "inprocess")
    types = _stream_types()
    if kind not in types:
        raise EngageError(f"event_stream.type: unknown stream {kind!r} (known: {', '.join(types)})")
    return types[kind].from_config(config, database, log)
