"""Small helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from requests.auth import AuthBase

from engage.bootstrap import Engage
from engage.events.consumers import offset_of
from engage.events.log import LoggedEvent
from engage.segments import SEGMENTS_DIR


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """What `check` returns once it is truthy (polled every 0.2 s), else an AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def logged(engage: Engage) -> list[LoggedEvent]:
    """Every event in the log, read from the database. (`log.read` serves this process's recent events from
    memory and stops at the first one it did not append, so it can return fewer than the log holds.)"""
    return [event for page in engage.log.since(datetime.min.replace(tzinfo=UTC)) for event in page]


def settled(engage: Engage) -> None:
    """Wait until every consumer has handled every event in the log (the in-process stream, partition 0),
    including the events consumers announce meanwhile."""

    def caught_up() -> bool:
        last = engage.log.last_seq()
        return all(offset_of(engage.database, name) >= last for name in engage.consumers.names())

    wait_for(caught_up, what="every consumer to reach the end of the log")


class Clock:
    """A clock the test moves by hand (`bootstrap(..., clock=clock)`): nothing sleeps."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def write_segments(root: Path, segments: dict[str, str]) -> None:
    """Make `segments` (name -> YAML after the `name:` line) the workspace's only segment files, without
    the shipped journeys (which name shipped segments)."""
    folder = root / SEGMENTS_DIR
    for old in [*folder.glob("*.yml"), *(root / "journeys").glob("*.yml")]:
        old.unlink()
    for name, body in segments.items():
        (folder / f"{name}.yml").write_text(f"name: {name}\n{textwrap.dedent(body)}", encoding="utf-8")


def send(engage: Engage, *calls: dict[str, Any]) -> None:
    """Ingest `calls` as one batch and deliver them (and what the consumers announce) to the consumers."""
    result = engage.ingestor.batch({"batch": list(calls)}, size=0)
    assert not result.rejected, result.rejected
    engage.stream.drain(engage.consumers)


def track(user: str, event: str, at: str | None = None, **properties: Any) -> dict[str, Any]:
    """A track call by a known user, happening `at` (ISO 8601; when received, if None)."""
    call = {"type": "track", "userId": user, "event": event, "properties": properties}
    return {**call, "timestamp": at} if at else call


def identify(user: str, at: str | None = None, **traits: Any) -> dict[str, Any]:
    call = {"type": "identify", "userId": user, "traits": traits}
    return {**call, "timestamp": at} if at else call


class Bearer(AuthBase):
    """requests' auth for an API token: `session.get(url, auth=Bearer(token))`."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def api_token(engage: Engage, *scopes: str, name: str = "tests") -> str:
    """A new API token holding `scopes` (`admin`, which reads everything, when none are given)."""
    return engage.tokens.create(name, scopes or ["admin"]).value
