"""A shop running journeys on a clock the tests move: events go in through ingestion, the consumers and
the tick run at once, and messages are recorded through the messaging policies (sent through the outbox
when a test dispatches them)."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from engage.bootstrap import Engage, bootstrap
from engage.events.log import LoggedEvent
from engage.journeys.store import next_due
from engage.messaging.records import MessageRecord
from engage.segments import store as segment_store
from engage.segments.trackers import from_micros
from engage.store.codec import json_value
from engage.workspace import Workspace, example_workspace
from tests.conftest import MakeWorkspace
from tests.helpers import Clock, identify, send

# A Monday, 16:00 UTC: noon in New York, 18:00 in Paris.
MONDAY_NOON_IN_NEW_YORK = datetime(2026, 6, 1, 16, tzinfo=UTC)


@dataclass
class Shop:
    engage: Engage
    clock: Clock

    @property
    def root(self) -> Path:
        return self.engage.workspace.root

    # -- journeys ----------------------------------------------------------------------------------

    def journey(self, name: str, body: str) -> None:
        """Write journeys/NAME.yml (`name:` first, then `body`) and record it."""
        path = self.root / "journeys" / f"{name}.yml"
        path.write_text(f"name: {name}\n{textwrap.dedent(body)}", encoding="utf-8")
        self.engage.journeys.sync()

    def shipped(self, *names: str) -> None:
        """Use the shipped journeys `names`."""
        for name in names:
            shutil.copy(example_workspace() / "journeys" / f"{name}.yml", self.root / "journeys")
        self.engage.journeys.sync()

    # -- time and events ---------------------------------------------------------------------------

    def send(self, *calls: dict[str, Any]) -> None:
        """Ingest `calls`, let the consumers handle them and run the steps due now."""
        send(self.engage, *calls)
        self.run()

    def run(self) -> None:
        """Run what is due now until nothing is: the tick, the segment clock, the consumers."""
        for _ in range(20):
            self.engage.stream.drain(self.engage.consumers)
            ran = self.engage.journeys.tick() + self.engage.segments.timer.tick()
            self.engage.stream.drain(self.engage.consumers)
            if not ran:
                return
        raise AssertionError("the journeys never settled")

    def later(self, **delta: float) -> None:
        """Move the clock on by `delta`, stopping at every due step on the way."""
        target = self.clock.now + timedelta(**delta)
        while True:
            with self.engage.database.read() as connection:
                steps = next_due(connection)
                windows = segment_store.next_due(connection)
            moment = min((m for m in (steps, from_micros(windows) if windows else None) if m), default=None)
            if moment is None or moment > target or moment <= self.clock.now:
                break
            self.clock.now = moment
            self.run()
        self.clock.now = target
        self.run()

    # -- what happened -----------------------------------------------------------------------------

    def messages(self, template: str | None = None, user: str | None = None) -> list[MessageRecord]:
        with self.engage.database.read() as connection:
            ids = [
                message_id
                for (message_id,) in connection.execute(
                    text(
                        "SELECT m.id FROM messages AS m JOIN profiles AS p ON p.id = m.profile_id "
                        "WHERE (CAST(:template AS text) IS NULL OR m.template = :template) "
                        "AND (CAST(:user AS text) IS NULL OR p.user_id = :user) ORDER BY m.created_at, m.id"
                    ),
                    {"template": template, "user": user},
                )
            ]
            found = self.engage.messaging.records.get(connection, ids)
        return [found[message_id] for message_id in ids]

    def instances(self, journey: str) -> list[dict[str, Any]]:
        with self.engage.database.read() as connection:
            rows = connection.execute(
                text(
                    "SELECT i.*, p.user_id AS customer FROM journey_instances AS i "
                    "JOIN profiles AS p ON p.id = i.profile_id WHERE journey = :journey "
                    "ORDER BY entered_at, i.id"
                ),
                {"journey": journey},
            )
            return [
                {**row._mapping, "user": row.customer, "trigger": json_value(row.trigger)} for row in rows
            ]

    def events(self, name: str) -> list[LoggedEvent]:
        return [event for event in self.engage.log.read(0, limit=1_000_000) if event.event == name]


def customer(
    user: str,
    *,
    email: bool = True,
    phone: bool = False,
    sms: bool = False,
    timezone: str = "America/New_York",
    **traits: Any,
) -> dict[str, Any]:
    """An identify call: a customer with an email (subscribed by the shop's default), a phone, opted in
    to SMS or not, in `timezone`."""
    values: dict[str, Any] = {"first_name": user.title(), "timezone": timezone, **traits}
    if email:
        values["email"] = f"{user}@example.com"
    if phone or sms:
        values["phone"] = f"+1415555{abs(hash(user)) % 10_000:04d}"
    call = identify(user, **values)
    if sms:
        call["context"] = {"consent": {"categoryPreferences": {"sms": True}, "source": "checkout form"}}
    return call


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_NOON_IN_NEW_YORK)


def open_shop(make_workspace: MakeWorkspace, database_url: str, clock: Clock) -> Shop:
    workspace = make_workspace(database_url=database_url)
    for path in (workspace.root / "journeys").glob("*.yml"):
        path.unlink()
    engage = bootstrap(Workspace.load(workspace.root), clock=clock)
    engage.segments.sync()
    return Shop(engage, clock)


@pytest.fixture
def shop(make_workspace: MakeWorkspace, tmp_path: Path, clock: Clock) -> Iterator[Shop]:
    """On SQLite."""
    opened = open_shop(make_workspace, f"sqlite:///{tmp_path / 'engage.db'}", clock)
    yield opened
    opened.engage.close()


@pytest.fixture
def any_shop(make_workspace: MakeWorkspace, database_url: str, clock: Clock) -> Iterator[Shop]:
    """On SQLite and on PostgreSQL."""
    opened = open_shop(make_workspace, database_url, clock)
    yield opened
    opened.engage.close()
