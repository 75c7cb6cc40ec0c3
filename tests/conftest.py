"""Fixtures shared by the whole suite.

PostgreSQL and RabbitMQ tests skip with a reason when the service is absent, and fail instead when
ENGAGE_REQUIRE_SERVICES=1 (CI sets it).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from engage.bootstrap import Engage, bootstrap
from engage.demo.server import LocalServer
from engage.workspace import Workspace, init_workspace
from tests.helpers import Bearer, api_token, settled

POSTGRES_ADMIN_URL = os.environ.get(
    "ENGAGE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("ENGAGE_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/%2F")


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail, under ENGAGE_REQUIRE_SERVICES=1) unless `host:port` accepts connections."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        reason = f"{name} is not reachable on {host}:{port} ({exc})"
    if os.environ.get("ENGAGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; ENGAGE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def require_postgres() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)


def require_rabbitmq() -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    require_postgres()
    name = f"engage_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'engage.db'}"
    return request.getfixturevalue("postgres_url")


MakeWorkspace = Callable[..., Workspace]


def delete_exchange(exchange: str, partitions: int) -> None:
    """Remove a test's exchange and its partition queues from RabbitMQ."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for partition in range(partitions):
            channel.queue_delete(f"{exchange}.p{partition}")
        channel.exchange_delete(exchange)
    finally:
        connection.close()


@pytest.fixture
def make_workspace(tmp_path: Path) -> Iterator[MakeWorkspace]:
    """Write a workspace from the shipped example into a temporary folder, with settings overridden."""
    exchanges: list[str] = []

    def make(
        database_url: str | None = None,
        stream: str = "inprocess",
        exchange: str | None = None,
        batch_size: int | None = None,
        folder: str = "workspace",
    ) -> Workspace:
        root = tmp_path / folder
        init_workspace(root)
        endpoints = root / "endpoints.yml"
        content = endpoints.read_text()
        if database_url:
            content = content.replace("url: sqlite:///var/engage.db", f"url: {database_url}")
        if stream == "rabbitmq":
            exchange = exchange or f"engage.test.{uuid.uuid4().hex[:8]}"
            exchanges.append(exchange)
            content = content.replace("type: inprocess", f"type: rabbitmq\n  url: {RABBITMQ_URL}")
            content = content.replace("exchange: engage.events", f"exchange: {exchange}")
        if batch_size:
            content = content.replace("batch_size: 500", f"batch_size: {batch_size}")
        endpoints.write_text(content)
        return Workspace.load(root)

    yield make
    for exchange in exchanges:
        delete_exchange(exchange, partitions=8)


@pytest.fixture
def engage(make_workspace: MakeWorkspace, database_url: str) -> Iterator[Engage]:
    """A bootstrapped engine on a fresh workspace, on SQLite and on PostgreSQL."""
    instance = bootstrap(make_workspace(database_url=database_url))
    yield instance
    instance.close()


@pytest.fixture
def api(engage: Engage) -> Iterator[Api]:
    """The real HTTP API and a worker, on a free loopback port, with a client holding the write key (it
    sends events) and an `admin` API token (`Api.get` reads with it)."""
    with LocalServer(engage) as server, requests.Session() as session:
        session.auth = (engage.workspace.endpoints.ingest.write_keys[0], "")
        yield Api(server.url, session, engage, api_token(engage))


class Api:
    def __init__(self, url: str, session: requests.Session, engage: Engage, token: str):
        self.url = url
        self.session = session
        self.engage = engage
        self.token = token

    def post(self, path: str, body: object, **kwargs: object) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=30, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kwargs: object) -> requests.Response:
        """A read, with the API token."""
        kwargs.setdefault("auth", Bearer(self.token))
        return self.session.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def profile(self, identifier: str) -> dict:
        settled(self.engage)
        response = self.get(f"/v1/profiles/{identifier}")
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright, shared by the session's browser tests."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM_ARGS, chromium_path

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: object) -> Iterator[object]:
    """A fresh browser context (no cookies) and page for one test."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    try:
        yield context.new_page()
    finally:
        context.close()
