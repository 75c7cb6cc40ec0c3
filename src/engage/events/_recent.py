"""The events this process appended lately, so a consumer in the same process need not read them back."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engage.events.log import LoggedEvent

__all__ = ["RecentEvents"]


class RecentEvents:
    """A bounded window of recently appended events, by `seq`.

    Only an unbroken run of `seq` values is served: a missing one may be another process's event, so the
    caller reads the log itself from there.
    """

    def __init__(self, capacity: int = 20_000):
        self._by_seq: dict[int, LoggedEvent] = {}
        self._order: deque[int] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, events: list[LoggedEvent]) -> None:
        with self._lock:
            for event in events:
                self._by_seq[event.seq] = event
                self._order.append(event.seq)
            while len(self._order) > self._capacity:
                del self._by_seq[self._order.popleft()]

    def after(self, seq: int, limit: int) -> list[LoggedEvent]:
        run: list[LoggedEvent] = []
        with self._lock:
            while len(run) < limit and (event := self._by_seq.get(seq + 1 + len(run))) is not None:
                run.append(event)
        return run
