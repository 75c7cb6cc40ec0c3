"""Event streams, keyed by the `event_stream.type` of endpoints.yml."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engage.errors import EngageError
from engage.events.log import EventLog
from engage.events.stream.base import EventStream, partition_of
from engage.events.stream.inprocess import InProcessStream
from engage.store.database import Database

if TYPE_CHECKING:
    from engage.workspace import EventStreamConfig

__all__ = ["EventStream", "InProcessStream", "create_stream", "partition_of"]


def _stream_types() -> dict[str, type[EventStream]]:
    from engage.events.stream.rabbitmq import RabbitMQStream

    return {InProcessStream.name: InProcessStream, RabbitMQStream.name: RabbitMQStream}


def create_stream(config: EventStreamConfig, database: Database, log: EventLog) -> EventStream:
    """Build the stream named by `config.type`."""
    types = _stream_types()
    if config.type not in types:
        raise EngageError(f"event_stream.type: unknown stream {config.type!r} (known: {', '.join(types)})")
    return types[config.type].from_config(config, database, log)
