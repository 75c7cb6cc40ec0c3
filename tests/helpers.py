"""Small helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from engage.bootstrap import Engage
from engage.events.consumers import offset_of


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def settled(engage: Engage, consumer: str = "profiles") -> None:
    """Wait until `consumer` has handled every event in the log (the in-process stream, partition 0)."""
    last = engage.log.last_seq()
    wait_for(lambda: offset_of(engage.database, consumer) >= last, what=f"{consumer} to reach seq {last}")
