"""The embedded stream: consumers in this process read the log directly.

Nothing besides the database is needed. Each consumer keeps its own offset in partition 0; a separate
`engage worker` process polls, one in the same process as the API is woken as soon as events land.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import DBAPIError

from engage.events.consumers import ConsumerRegistry, deliver, offset_of
from engage.events.stream.base import EventStream

__all__ = ["InProcessStream"]

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
FAST_POLL_SECONDS = 0.005
PARTITION = 0


class InProcessStream(EventStream):
    name = "inprocess"
    _moved = False

    def run(self, consumers: ConsumerRegistry, stop: threading.Event) -> None:
        self.log.keep_recent = True  # consumers here read what this process appends from memory
        pause = FAST_POLL_SECONDS
        while not stop.is_set():
            try:
                busy = self.deliver_once(consumers)
                # While events flow, look again soon (another process's appends wake nobody here);
                # once idle, back off to POLL_SECONDS.
                pause = FAST_POLL_SECONDS if busy or self._moved else min(pause * 2, POLL_SECONDS)
            except DBAPIError:
                pause = min(max(pause, POLL_SECONDS) * 2, 5.0)
                log.warning("database unavailable; retrying in %.1fs", pause, exc_info=True)
                busy = False
            if not busy:
                self._wake.wait(pause)
                self._wake.clear()

    def deliver_once(self, consumers: ConsumerRegistry) -> bool:
        """One round: each consumer gets its next batch. True when there may be more to do."""
        done = {consumer.name: offset_of(self.database, consumer.name, PARTITION) for consumer in consumers}
        if not done:
            return False
        events = self.log.read(after_seq=min(done.values()), limit=self.batch_size)
        for consumer in consumers:
            deliver(self.database, consumer, PARTITION, events)
        self._moved = bool(events)
        return len(events) == self.batch_size

    def drain(self, consumers: ConsumerRegistry) -> None:
        """Deliver everything in the log now, including what consumers announce while it runs (for
        commands and tests that need a settled state)."""
        while self.deliver_once(consumers) or self._moved:
            pass
