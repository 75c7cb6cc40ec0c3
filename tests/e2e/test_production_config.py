"""The production files as shipped: `engage check` passes on endpoints.production.yml with its variables set,
and `honcho start` runs the Procfile (one API process, two workers; Rasa and its action server left out)
against PostgreSQL and RabbitMQ, an event posted to the API reaching its profile, read with an API token
made by `honcho run engage tokens create`."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from engage.workspace import init_workspace
from tests.conftest import RABBITMQ_URL, delete_exchange, require_rabbitmq
from tests.helpers import Bearer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.rabbitmq]

PRODUCTION_FILE = "endpoints.production.yml"
PARTITIONS = 16  # as endpoints.production.yml has it
WRITE_KEY = "prod-test-write-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _delete_queue(queue: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()


@pytest.fixture
def production(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """A workspace from the example and the variables of .env.example filled in for this machine's services.

    The workspace's copy of endpoints.production.yml is changed only in the names it declares on RabbitMQ
    (its exchange and Rasa's queue), so that they are the test's own and can be removed afterwards."""
    require_rabbitmq()
    root = tmp_path / "shop"
    init_workspace(root)
    suffix = uuid.uuid4().hex[:8]
    exchange, rasa_queue = f"engage.test.prod.{suffix}", f"rasa.test.prod.{suffix}"
    path = root / PRODUCTION_FILE
    content = path.read_text()
    assert content.count("exchange: engage.events") == 1 and content.count("- rasa.events") == 1
    path.write_text(
        content.replace("exchange: engage.events", f"exchange: {exchange}").replace(
            "- rasa.events", f"- {rasa_queue}"
        )
    )
    database, amqp = make_url(postgres_url), make_url(RABBITMQ_URL.replace("amqp://", "postgresql://", 1))
    port = _free_port()
    variables = {
        "ENGAGE_ENDPOINTS": PRODUCTION_FILE,
        "PORT": str(port),
        "ENGAGE_BIND": "127.0.0.1",
        "POSTGRES_HOST": database.host or "127.0.0.1",
        "POSTGRES_USER": database.username or "postgres",
        "POSTGRES_PASSWORD": database.password or "",
        "ENGAGE_DB": database.database or "",
        "RASA_DB": f"{database.database}_rasa",  # only read by Rasa, which this test leaves out
        "RABBITMQ_HOST": amqp.host or "127.0.0.1",
        "RABBITMQ_USER": amqp.username or "guest",
        "RABBITMQ_PASSWORD": amqp.password or "guest",
        "REDIS_HOST": "127.0.0.1",
        "ENGAGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ENGAGE_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "ENGAGE_WRITE_KEY": WRITE_KEY,
        "ENGAGE_ADMIN_PASSWORD": "not-used-here",
        "ENGAGE_RASA_URL": "http://127.0.0.1:5005",
        "ENGAGE_RASA_TOKEN": "prod-test-rasa-token",
        "RASA_TELEMETRY_ENABLED": "false",
        "SENDGRID_API_KEY": "SG.test",
        "TWILIO_ACCOUNT_SID": "ACtest",
        "TWILIO_AUTH_TOKEN": "test",
        "ENGAGE_LOG_LEVEL": "WARNING",
    }
    lines = (root / ".env.example").read_text().splitlines()
    example = {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}
    read = set()
    for name in (PRODUCTION_FILE, "Procfile", "connectors/sendgrid.yml", "connectors/twilio.yml"):
        code = [line.partition(" #")[0] for line in (root / name).read_text().splitlines()]
        text = "\n".join(line for line in code if not line.lstrip().startswith("#"))
        read |= set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text))
    assert read - {"PORT"} <= example, f".env.example lacks {sorted(read - example)}"
    assert example <= set(variables), f"the test does not set {sorted(example - set(variables))}"
    # Quoted: honcho drops a `NAME=` line with nothing after it (this machine's PostgreSQL has no password).
    (root / ".env").write_text("".join(f'{name}="{value}"\n' for name, value in variables.items()))
    try:
        yield root, variables
    finally:
        delete_exchange(exchange, PARTITIONS)
        _delete_queue(rasa_queue)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to honcho's process group (honcho stops its processes, then exits); SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _environ() -> dict[str, str]:
    """This environment without engage's own settings (honcho's .env brings them), `engage` on PATH."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ENGAGE_")}
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    return environ


def test_engage_check_passes_on_the_production_file(production: tuple[Path, dict[str, str]]) -> None:
    root, variables = production
    result = subprocess.run(
        [sys.executable, "-m", "engage.cli.main", "check", "--workspace", str(root)],
        env={**_environ(), **variables},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"workspace OK: {PRODUCTION_FILE}"), result.stdout


def test_honcho_runs_the_procfile_on_postgres_and_rabbitmq(
    production: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, variables = production
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent))
    assert honcho, "honcho is not installed: pip install -e '.[production]'"
    log_path = tmp_path / "honcho.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [honcho, "start", "-c", "api=1,worker=2", "api", "worker"],  # the Procfile without the chatbot
            cwd=root,
            env=_environ(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{variables['PORT']}"
    try:
        with requests.Session() as session:
            session.auth = (WRITE_KEY, "")

            def answers() -> bool:
                assert process.poll() is None, f"honcho exited:\n{log_path.read_text()}"
                try:
                    return session.get(f"{url}/healthz", timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(answers, "the API process to answer", timeout=60)
            calls = [
                ("identify", {"userId": "prod-u1", "messageId": "prod-m1", "traits": {"name": "Ann"}}),
                ("track", {"userId": "prod-u1", "event": "ProductViewed", "messageId": "prod-m2",
                           "properties": {"product_id": "p-1"}}),
            ]  # fmt: skip
            for call, body in calls:
                response = session.post(f"{url}/v1/{call}", json=body, timeout=10)
                assert response.status_code == 200, response.text
            # Reading takes an API token, made as the README says: with .env's variables, by honcho.
            made = subprocess.run(
                [honcho, "run", "engage", "tokens", "create", "prod-reader", "--scope", "profiles:read"],
                cwd=root, env=_environ(), capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert made.returncode == 0, made.stdout + made.stderr
            reader = Bearer(made.stdout.strip())

            def applied() -> dict | None:
                found = session.get(f"{url}/v1/profiles/prod-u1", auth=reader, timeout=10)
                assert found.status_code in (200, 404), found.text
                view = found.json() if found.status_code == 200 else {}
                return view if view.get("event_count", 0) >= 2 else None  # counted by a worker's consumer

            view = wait_until(applied, "both calls to reach the profile through RabbitMQ and a worker", 30)
            assert view["user_id"] == "prod-u1" and view["traits"]["name"] == "Ann", view
            assert {event["messageId"] for event in view["events"]} == {"prod-m1", "prod-m2"}, view
    finally:
        _stop(process)
    output = log_path.read_text()
    for name in ("api.1", "worker.1", "worker.2"):
        assert f"{name} " in output or f"{name}|" in output, output
    assert "Traceback" not in output, output
