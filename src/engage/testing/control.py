"""The `/_fake/` control API from the outside: what a benchmark uses to drive fakes in another process.

In process a test calls `fake.fail_next(...)` directly; `FakeControl` offers the same methods over HTTP,
so code written against it drives a fake alike whether it runs in a thread or in `start_process()`'s child.
"""

from __future__ import annotations

import json
import urllib.request
from typing import cast

from engage.testing._server import CONTROL_PREFIX, Json

__all__ = ["FakeControl"]


class FakeControl:
    """Reads and programs a fake through its `/_fake/` endpoints, e.g. from a benchmark's process."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def state(self) -> Json:
        """What the fake recorded: attempts, connections_opened, requests, and deliveries or messages."""
        return self._call("GET", "requests")

    def fail_next(self, count: int, status: int) -> None:
        self._call("POST", "faults", {"fail_next": {"count": count, "status": status}})

    def hang_next(self, count: int, seconds: float) -> None:
        self._call("POST", "faults", {"hang_next": {"count": count, "seconds": seconds}})

    def down(self, is_down: bool = True) -> None:
        self._call("POST", "faults", {"down": is_down})

    def reset(self) -> None:
        self._call("POST", "reset")

    def _call(self, method: str, action: str, payload: Json | None = None) -> Json:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}{CONTROL_PREFIX}{action}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return cast(Json, json.loads(response.read()))
