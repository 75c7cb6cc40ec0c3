"""The loop of a worker's background jobs (the journey tick, the dispatcher, the SMS relay, the reader of
Rasa's events): do a round of work, go again at once while there is work, pause when there was none."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["poll"]

log = logging.getLogger(__name__)


def poll(
    step: Callable[[], int],
    stop: threading.Event,
    *,
    idle: float,
    what: str,
    wake: threading.Event | None = None,
    pause: Callable[[float], float] | None = None,
) -> None:
    """Call `step` (it returns how much it did) until `stop` is set. After a round that did nothing, wait
    `idle` seconds (or `pause(idle)`), cut short when `wake` is set (else when `stop` is). A round that
    fails (the database is down, a bug) is logged and tried again after `idle`: the loop never stops."""
    sleeper = wake if wake is not None else stop
    while not stop.is_set():
        try:
            done = step()
            seconds = 0.0 if done else (pause(idle) if pause is not None else idle)
        except Exception:
            log.exception("%s failed; trying again", what)
            seconds = idle
        if seconds:
            sleeper.wait(seconds)
            if wake is not None:
                wake.clear()
