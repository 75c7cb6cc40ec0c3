"""A worker killed with SIGKILL mid-stream loses nothing and applies nothing twice once restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engage.events.log import EventLog
from engage.events.schema import parse_event
from engage.store import Database, upgrade
from engage.store.models import DeadLetter, EventRecord, Profile
from engage.workspace import Workspace
from tests.conftest import MakeWorkspace, require_rabbitmq
from tests.helpers import wait_for

USERS = 400
EVENTS = 12_000


def _fill_log(database: Database) -> None:
    log = EventLog(database)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    for offset in range(0, EVENTS, 500):
        events = [
            parse_event(
                {
                    "type": "track",
                    "userId": f"u{n % USERS}",
                    "event": "ProductViewed",
                    "messageId": f"m{n}",
                    "timestamp": (start + timedelta(seconds=n)).isoformat(),
                    "properties": {"n": n},
                },
                received_at=start,
            )
            for n in range(offset, offset + 500)
        ]
        log.append(events, start)


def _applied(database: Database) -> int:
    with database.read() as connection:
        return connection.execute(
            select(func.coalesce(func.sum(Profile.__table__.c.event_count), 0))
        ).scalar_one()


def _worker(workspace: Workspace) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ENGAGE_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "engage.cli.main", "worker", "--workspace", str(workspace.root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "setup",
    [
        "inprocess-sqlite",
        pytest.param("rabbitmq-postgres", marks=[pytest.mark.rabbitmq, pytest.mark.postgres]),
    ],
)
def test_sigkill_mid_stream_then_restart(
    setup: str, make_workspace: MakeWorkspace, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if setup == "inprocess-sqlite":
        workspace = make_workspace(batch_size=100)
    else:
        require_rabbitmq()
        workspace = make_workspace(
            database_url=request.getfixturevalue("postgres_url"), stream="rabbitmq", batch_size=100
        )
    for journey in (workspace.root / "journeys").glob("*.yml"):
        journey.unlink()  # the stream alone: no journey adds events of its own to count
    database = Database(workspace.endpoints.database.url)
    upgrade(database)
    _fill_log(database)

    worker = _worker(workspace)
    try:
        wait_for(
            lambda: _applied(database) > EVENTS // 10, timeout=60, what="the worker to start applying events"
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    killed_at = _applied(database)
    assert 0 < killed_at < EVENTS, "the kill must land mid-stream"

    time.sleep(0.5)
    worker = _worker(workspace)
    try:
        wait_for(lambda: _applied(database) >= EVENTS, timeout=120, what="the restarted worker to finish")
        time.sleep(1.0)  # anything redelivered after the finish line would show up now
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=30)[0].decode()
    assert worker.returncode == 0, output

    profiles, events = Profile.__table__, EventRecord.__table__
    with database.read() as connection:
        counts = {
            user: count
            for user, count in connection.execute(select(profiles.c.user_id, profiles.c.event_count))
        }
        logged = connection.execute(select(func.count()).select_from(events)).scalar_one()
        dead = connection.execute(select(func.count()).select_from(DeadLetter.__table__)).scalar_one()
    assert logged == EVENTS
    assert dead == 0
    assert len(counts) == USERS
    assert set(counts.values()) == {EVENTS // USERS}, "every event applied exactly once per profile"
    database.dispose()
