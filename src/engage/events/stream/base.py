"""The event stream: carries the log's events to the consumers, in order per profile, at least once.

An implementation has one job, to deliver; it never decides what an event means. Both built-ins read the
event log by `seq` (the only source of truth): `inprocess` hands events straight to the consumers in this
process; `rabbitmq` relays them to partition queues so several workers share the work.
"""

from __future__ import annotations

import threading
import zlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from engage.events.consumers import ConsumerRegistry
from engage.events.log import EventLog
from engage.store.database import Database

if TYPE_CHECKING:
    from engage.workspace import EventStreamConfig

__all__ = ["EventStream", "partition_of"]


def partition_of(profile_id: str, partitions: int) -> int:
    """Stable across processes and hosts (unlike `hash()`), so one profile always lands in one partition."""
    return zlib.crc32(profile_id.encode()) % partitions


class EventStream(ABC):
    name: ClassVar[str]

    def __init__(self, database: Database, log: EventLog, batch_size: int = 500):
        self.database = database
        self.log = log
        self.batch_size = batch_size
        self._wake = threading.Event()

    @classmethod
    def from_config(cls, config: EventStreamConfig, database: Database, log: EventLog) -> EventStream:
        return cls(database, log, batch_size=config.batch_size)

    def notify(self) -> None:
        """Events were appended by this process: deliver without waiting for the next poll."""
        self._wake.set()

    @abstractmethod
    def run(self, consumers: ConsumerRegistry, stop: threading.Event) -> None:
        """Deliver events to `consumers` until `stop` is set."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once after `run` returns."""
