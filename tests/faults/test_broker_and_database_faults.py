"""Production faults under load: PostgreSQL dropping every connection, RabbitMQ restarting, a worker killed
while another runs.

engage runs as it does in production, as processes: `engage serve` (the API) and `engage worker` on
PostgreSQL and RabbitMQ. A storefront client posts batches the whole time and, as Segment's libraries do,
sends a batch again when it gets no answer or a 5xx. Meanwhile the fault strikes. Afterwards, with no
manual step: every event the client sent is in the log exactly once, every profile counted each of its
events exactly once, nothing went to the dead letters, and both processes are still up.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select, text

from engage.store import Database
from engage.store.models import DeadLetter, EventRecord, Profile, StreamOffset
from engage.workspace import Workspace
from tests.conftest import POSTGRES_ADMIN_URL, MakeWorkspace, require_postgres, require_rabbitmq
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.rabbitmq]

USERS = 100  # one event of each shopper per batch: every shopper ends with the same count
BATCH = 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_LOGS: dict[int, Path] = {}


def _engage(*args: str) -> subprocess.Popen[bytes]:
    """An engage process logging to a file: a pipe nobody reads while it runs would block it once full
    (a fault makes processes log)."""
    env = {**os.environ, "ENGAGE_LOG_LEVEL": "WARNING"}
    log = Path(tempfile.mkstemp(prefix=f"engage-{args[0]}-", suffix=".log")[1])
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "engage.cli.main", *args], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    _LOGS[process.pid] = log
    return process


def _output(process: subprocess.Popen[bytes]) -> str:
    return _LOGS[process.pid].read_text(errors="replace")[-3000:]


class Storefront:
    """Posts batches of ProductViewed until stopped, retrying each batch until the API stores it."""

    def __init__(self, url: str, write_key: str, pause: float = 0.01):
        self.url = url
        self.pause = pause  # between batches
        self.session = requests.Session()
        self.session.auth = (write_key, "")
        self.sent = 0
        self.retries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="storefront", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "the storefront never got its last batch stored"

    def _run(self) -> None:
        start = datetime(2026, 6, 1, tzinfo=UTC)
        while not self._stop.is_set():
            first = self.sent
            batch = [
                {
                    "type": "track", "event": "ProductViewed", "userId": f"shopper-{n % USERS}",
                    "messageId": f"view-{n}", "timestamp": (start + timedelta(seconds=n)).isoformat(),
                    "properties": {"product_id": f"p{n % 50}"},
                }
                for n in range(first, first + BATCH)
            ]  # fmt: skip
            while True:  # the same batch until it is stored: the retries carry the same messageIds
                try:
                    response = self.session.post(f"{self.url}/v1/batch", json={"batch": batch}, timeout=10)
                    if response.status_code == 200:
                        break
                    assert response.status_code >= 500, response.text  # never a 4xx for a good batch
                except requests.RequestException:
                    pass
                self.retries += 1
                time.sleep(0.2)
            self.sent += BATCH
            time.sleep(self.pause)


@contextmanager
def running_shop(
    workspace: Workspace, workers: int = 1, pause: float = 0.01
) -> Iterator[tuple[Storefront, list[subprocess.Popen[bytes]]]]:
    port = _free_port()
    processes = [_engage("serve", "--workspace", str(workspace.root), "--port", str(port))]
    processes += [_engage("worker", "--workspace", str(workspace.root)) for _ in range(workers)]
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return requests.get(f"{url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(answers, timeout=60, what="the API to answer")
        yield Storefront(url, workspace.endpoints.ingest.write_keys[0], pause), processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            _LOGS.pop(process.pid).unlink(missing_ok=True)


def _counts(database: Database) -> tuple[int, int, int, set[int]]:
    profiles, events = Profile.__table__, EventRecord.__table__
    with database.read() as connection:
        logged = connection.execute(
            select(func.count()).select_from(events).where(events.c.event == "ProductViewed")
        ).scalar_one()
        applied = connection.execute(select(func.coalesce(func.sum(profiles.c.event_count), 0))).scalar_one()
        dead = connection.execute(select(func.count()).select_from(DeadLetter.__table__)).scalar_one()
        per_profile = set(connection.execute(select(profiles.c.event_count)).scalars())
    return logged, applied, dead, per_profile


def _survives(
    workspace: Workspace,
    fault: Callable[[list[subprocess.Popen[bytes]]], None],
    *,
    faults: int = 2,
    settle: float = 3.0,
    workers: int = 1,
    pause: float = 0.01,
) -> Storefront:
    """Run the shop under load, strike `fault` (given the processes: the API, then the workers) `faults`
    times, and check nothing was lost or applied twice and every process in the list is up at the end."""
    database = Database(workspace.endpoints.database.url)
    try:
        with running_shop(workspace, workers, pause) as (storefront, processes):
            storefront.start()
            wait_for(lambda: storefront.sent >= 20 * BATCH, timeout=60, what="the storefront to get going")
            for _ in range(faults):
                fault(processes)
                before = storefront.sent
                wait_for(lambda b=before: storefront.sent >= b + 10 * BATCH, timeout=120,
                         what="ingestion to come back after the fault")  # fmt: skip
                time.sleep(settle)
            storefront.stop()
            sent = storefront.sent
            wait_for(lambda: _counts(database)[1] >= sent, timeout=120, what="the worker to apply everything")
            time.sleep(1.0)  # a redelivery after the finish line would show now
            for process in processes:
                assert process.poll() is None, _output(process)
        logged, applied, dead, per_profile = _counts(database)
        assert logged == sent, "every event the storefront sent is in the log once"
        assert applied == sent, "every event applied once"
        assert per_profile == {sent // USERS}
        assert dead == 0
        return storefront
    finally:
        database.dispose()


def _workspace(make_workspace: MakeWorkspace, postgres_url: str) -> Workspace:
    workspace = make_workspace(database_url=postgres_url, stream="rabbitmq", batch_size=200)
    for journey in (workspace.root / "journeys").glob("*.yml"):
        journey.unlink()  # the stream alone: journeys would add messages and events of their own
    return workspace


def test_postgres_dropping_every_connection_under_load_loses_nothing(
    make_workspace: MakeWorkspace, postgres_url: str
) -> None:
    require_rabbitmq()
    workspace = _workspace(make_workspace, postgres_url)
    name = postgres_url.rsplit("/", 1)[-1]
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def terminate_backends(_processes: object) -> None:
        with admin.connect() as connection:
            ended = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).scalar_one()
        assert ended > 0, "the API and the worker hold connections to terminate"

    try:
        _survives(workspace, terminate_backends, faults=3)
    finally:
        admin.dispose()


def test_rabbitmq_restarting_under_load_loses_nothing(
    make_workspace: MakeWorkspace, postgres_url: str
) -> None:
    require_rabbitmq()
    require_postgres()

    def restart_rabbitmq(_processes: object) -> None:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
        time.sleep(2.0)  # the broker stays down a while: publishes and consumers must wait, not drop
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)

    if shutil.which("rabbitmqctl") is None:
        reason = "rabbitmqctl is not on PATH: this test restarts the local RabbitMQ"
        if os.environ.get("ENGAGE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; ENGAGE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    workspace = _workspace(make_workspace, postgres_url)
    _survives(workspace, restart_rabbitmq, faults=1, settle=5.0)


def test_a_worker_killed_under_load_is_replaced_at_once_and_a_new_one_takes_its_share(
    make_workspace: MakeWorkspace, postgres_url: str
) -> None:
    """Two workers share the partitions. One is killed with SIGKILL mid-batch: the other, standing in line
    on every partition queue, takes its partitions over at once (no restart, no lease to wait out); a new
    worker then joins and takes its share back. Each time, nothing lost and nothing applied twice."""
    require_rabbitmq()
    workspace = _workspace(make_workspace, postgres_url)

    def kill_a_worker_then_add_one(processes: list[subprocess.Popen[bytes]]) -> None:
        victim = processes[1]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        del processes[1]  # the survivor alone now: every partition moves on, with no worker restarted
        before = _profile_offsets(database)
        wait_for(
            lambda: all(seq > before.get(p, 0) for p, seq in _profile_offsets(database).items()),
            timeout=30,
            what="every partition to move on without the killed worker",
        )
        processes.append(_engage("worker", "--workspace", str(workspace.root)))

    database = Database(workspace.endpoints.database.url)
    try:
        # at most 1,000 events/s: a lone worker keeps up, so the check is on handover, not on catching up
        _survives(workspace, kill_a_worker_then_add_one, faults=2, workers=2, pause=0.1)
    finally:
        database.dispose()


def _profile_offsets(database: Database) -> dict[int, int]:
    """How far the profiles consumer got in each partition."""
    offsets = StreamOffset.__table__
    with database.read() as connection:
        rows = connection.execute(
            select(offsets.c.partition, offsets.c.seq).where(offsets.c.consumer == "profiles")
        ).all()
    return {partition: seq for partition, seq in rows}
