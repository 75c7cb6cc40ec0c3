"""`engage journeys simulate`: a dry run of one journey over a file of Segment calls, on a virtual clock.

The calls (one JSON object a line: identify or track, each with its `timestamp`) go through the real
engine (ingestion, profiles, segments, the journeys consumer, the tick and the messaging policies) on a
throwaway SQLite database, the clock jumping from each call to the next and to every due step in
between, so a week of journey takes a second. Nothing is sent: the report says what would be sent, when
(after quiet hours), to whom, and why each instance ended.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from engage.bootstrap import Engage, bootstrap
from engage.errors import ConfigError, EngageError, Problem
from engage.events.schema import InvalidEvent, parse_event
from engage.journeys.definition import Campaign
from engage.journeys.store import next_due
from engage.segments import store as segment_store
from engage.segments.trackers import from_micros
from engage.store.codec import json_value, time_value
from engage.workspace import Workspace
from engage.workspace.endpoints import DatabaseConfig, EventStreamConfig

__all__ = ["Line", "Simulation", "simulate", "read_calls"]

HORIZON = timedelta(days=60)
"""How long after the last call the clock keeps running for the steps still due."""


@dataclass(frozen=True)
class Line:
    """One thing that happened to an instance, in the order of the virtual clock."""

    at: datetime
    user: str
    what: str


@dataclass
class Simulation:
    journey: str
    calls: int
    lines: list[Line] = field(default_factory=list)
    entered: int = 0
    messages: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    still_running: int = 0


def read_calls(path: Path) -> list[dict[str, Any]]:
    """The calls of a JSONL file, in time order; ConfigError naming each line that is not a valid call
    with a timestamp."""
    calls: list[tuple[datetime, int, dict[str, Any]]] = []
    problems: list[Problem] = []
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EngageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            call = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            problems.append(Problem(path.name, number, f"not JSON: {exc}"))
            continue
        if not isinstance(call, dict) or not call.get("timestamp"):
            problems.append(
                Problem(path.name, number, "timestamp: required, each call happens at its own time")
            )
            continue
        try:
            event = parse_event(call, received_at=datetime.fromisoformat("2000-01-01T00:00:00+00:00"))
        except InvalidEvent as exc:
            problems.append(
                Problem(path.name, number, f"{exc.field}: {exc.message}" if exc.field else exc.message)
            )
            continue
        if event.type not in ("identify", "track"):
            problems.append(
                Problem(path.name, number, f"type: expected identify or track, got {event.type!r}")
            )
            continue
        calls.append((event.timestamp, number, call))
    if problems:
        raise ConfigError(problems)
    return [call for _, _, call in sorted(calls, key=lambda item: (item[0], item[1]))]


class _VirtualClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def simulate(workspace: Workspace, name: str, calls: list[dict[str, Any]]) -> Simulation:
    if not calls:
        raise EngageError("no calls to simulate")
    first = parse_event(calls[0], received_at=datetime.fromisoformat("2000-01-01T00:00:00+00:00")).timestamp
    clock = _VirtualClock(first)
    with tempfile.TemporaryDirectory(prefix="engage-simulate-") as folder:
        endpoints = workspace.endpoints.model_copy(
            update={
                "database": DatabaseConfig(url=f"sqlite:///{Path(folder) / 'simulation.db'}"),
                "event_stream": EventStreamConfig(),
            }
        )
        engage = bootstrap(Workspace(workspace.root, endpoints), clock=clock)
        try:
            applied = engage.journeys.sync_only(name)
            if isinstance(applied, Campaign):
                raise EngageError(
                    f"{name} is a campaign: simulate a journey, or run it with `engage campaigns run`"
                )
            engage.segments.sync()
            for call in calls:
                moment = parse_event(call, received_at=clock.now).timestamp
                _run_until(engage, clock, moment)
                clock.now = max(clock.now, moment)
                result = engage.ingestor.batch({"batch": [call]}, size=0)
                if result.rejected:
                    raise EngageError(f"a call was rejected: {result.rejected[0].as_dict()}")
                _settle(engage)
            _run_until(engage, clock, clock.now + HORIZON)
            return _report(engage, name, len(calls))
        finally:
            engage.close()


def _settle(engage: Engage) -> None:
    """Deliver what the log holds, then run what is due now, until neither has anything left."""
    while True:
        engage.stream.drain(engage.consumers)
        ran = engage.journeys.tick() + engage.segments.timer.tick()
        engage.stream.drain(engage.consumers)
        if not ran:
            return


def _run_until(engage: Engage, clock: _VirtualClock, until: datetime) -> None:
    """Move the clock to each due step (and segment window) up to `until`, running them."""
    _settle(engage)
    for _ in range(100_000):
        with engage.database.read() as connection:
            steps = next_due(connection)
            windows = segment_store.next_due(connection)
        candidates = [moment for moment in (steps, from_micros(windows) if windows else None) if moment]
        upcoming = min(candidates, default=None)
        if upcoming is None or upcoming > until:
            return
        clock.now = max(clock.now, upcoming)
        _settle(engage)


def _report(engage: Engage, name: str, calls: int) -> Simulation:
    simulation = Simulation(name, calls)
    with engage.database.read() as connection:
        users = dict(connection.execute(text("SELECT id, coalesce(user_id, id) FROM profiles")).all())
        instances = {
            row[0]: row
            for row in connection.execute(
                text(
                    "SELECT id, profile_id, key, status, exit_reason, entered_at, trigger "
                    "FROM journey_instances WHERE journey = :name"
                ),
                {"name": name},
            )
        }
        history = connection.execute(
            text(
                "SELECT s.instance_id, s.step, s.kind, s.at, s.detail, m.template, m.status, m.due_at, "
                "m.address, m.error FROM journey_steps AS s LEFT JOIN messages AS m ON m.id = s.message_id "
                "WHERE s.journey = :name ORDER BY s.at, s.id"
            ),
            {"name": name},
        ).all()
    lines: list[Line] = []
    for _, profile, key, _, _, entered, trigger in instances.values():
        started = json_value(trigger).get("name")
        about = f" ({key})" if key else ""
        lines.append(Line(time_value(entered), users.get(profile, profile), f"entered{about} on {started}"))
        simulation.entered += 1
    for instance_id, step, kind, at, detail, template, status, due, address, error in history:
        profile = instances[instance_id][1]
        user = users.get(profile, profile)
        when = time_value(at)
        if kind == "send" and template is not None:
            simulation.messages += status != "suppressed"
            if status == "suppressed":
                what = f"step {step}: {template} not sent: {error}"
            else:
                due_at = time_value(due)
                later = f", held until {due_at:%Y-%m-%d %H:%M} UTC" if due_at > when else ""
                what = f"step {step}: {template} to {address}{later}"
        elif kind == "exit":
            simulation.exits[detail or ""] = simulation.exits.get(detail or "", 0) + 1
            what = "completed" if detail == "completed" else f"exited: {detail}"
        else:
            what = f"step {step}: {kind}" + (f" ({detail})" if detail else "")
        lines.append(Line(when, user, what))
    simulation.still_running = sum(1 for row in instances.values() if row[3] == "active")
    simulation.lines = sorted(lines, key=lambda line: line.at)
    return simulation
