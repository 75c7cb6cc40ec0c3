"""Rate limits on the public endpoints, through the real HTTP server: 429 with Retry-After, nothing of a
refused request stored, served again once the bucket refills, counted per write key or per IP address,
and a bad `rate_limits` value is an `engage check` error at its line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from engage.bootstrap import Engage, bootstrap
from engage.cli.main import main
from engage.demo.server import LocalServer
from engage.store.models import EventRecord
from engage.web.app import create_app
from engage.workspace import Workspace, init_workspace

LIMITS = """
rate_limits:
  ingest: {rate: 1/min, burst: 3}
  links: {rate: 1/s, burst: 1}
  webhooks: {rate: 1/min, burst: 2}
  chat: {rate: 1/min, burst: 1}
  login: {rate: 1/min, burst: 2}
"""


def _workspace(root: Path, extra: str) -> Path:
    init_workspace(root)
    endpoints = root / "endpoints.yml"
    text = endpoints.read_text().replace("    - dev-write-key\n", "    - dev-write-key\n    - other-key\n")
    endpoints.write_text(text + extra)
    return root


@pytest.fixture
def engage(tmp_path: Path) -> Iterator[Engage]:
    instance = bootstrap(Workspace.load(_workspace(tmp_path / "workspace", LIMITS)))
    yield instance
    instance.close()


@pytest.fixture
def url(engage: Engage) -> Iterator[str]:
    with LocalServer(engage, worker=False) as server:
        yield server.url


def _stored(engage: Engage) -> int:
    with engage.database.read() as connection:
        log = EventRecord.__table__
        return connection.execute(
            select(func.count()).select_from(log).where(log.c.channel != "system")
        ).scalar_one()


def _track(url: str, key: str, user: str, **kwargs: object) -> requests.Response:
    body = {"userId": user, "event": "ProductViewed"}
    return requests.post(f"{url}/v1/track", json=body, auth=(key, ""), timeout=30, **kwargs)  # type: ignore[arg-type]


def _retry_after(response: requests.Response) -> int:
    value = int(response.headers["Retry-After"])
    assert value >= 1
    return value


def test_ingestion_over_the_limit_is_a_429_and_stores_nothing(engage: Engage, url: str) -> None:
    assert [_track(url, "dev-write-key", f"u{n}").status_code for n in range(3)] == [200, 200, 200]
    refused = _track(url, "dev-write-key", "u3")
    assert refused.status_code == 429
    assert refused.json() == {"success": False, "error": refused.json()["error"]}
    assert "1/min per write key" in refused.json()["error"]
    assert 1 <= _retry_after(refused) <= 60
    batch = {"batch": [{"type": "track", "userId": "u4", "event": "CartViewed"}]}
    refused = requests.post(f"{url}/v1/batch", json=batch, auth=("dev-write-key", ""), timeout=30)
    assert refused.status_code == 429 and _retry_after(refused) >= 1
    assert _stored(engage) == 3


def test_each_write_key_has_its_own_bucket(engage: Engage, url: str) -> None:
    for n in range(3):
        assert _track(url, "dev-write-key", f"u{n}").ok
    assert _track(url, "dev-write-key", "u3").status_code == 429
    assert _track(url, "other-key", "v1").ok
    # A key that is not valid counts against the IP address, so it cannot mint fresh buckets: still a 401.
    assert _track(url, "made-up-key", "w1").status_code == 401
    assert _stored(engage) == 4


def test_links_are_limited_per_ip_and_served_again_after_waiting(url: str) -> None:
    def click(ip: str) -> requests.Response:
        return requests.get(f"{url}/c/not-a-token", headers={"X-Forwarded-For": ip}, timeout=30)

    assert click("203.0.113.1").status_code == 404  # served: a token engage did not sign
    refused = click("203.0.113.1")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/plain")
    assert refused.text.startswith("too many requests")
    assert click("203.0.113.2").status_code == 404  # another address, another bucket
    time.sleep(_retry_after(refused) + 0.05)
    assert click("203.0.113.1").status_code == 404


def test_webhooks_chat_and_login_are_limited(url: str) -> None:
    def hook() -> requests.Response:
        return requests.post(f"{url}/hooks/twilio/sms", data={"Body": "hi"}, timeout=30)

    assert [hook().status_code for _ in range(3)][-1] == 429
    assert requests.get(f"{url}/chat", timeout=30).status_code != 429  # 503 where the widget is not built
    assert requests.get(f"{url}/chat", timeout=30).status_code == 429
    logins = [
        requests.post(f"{url}/admin/login", data={"password": "x"}, timeout=30, allow_redirects=False)
        for _ in range(3)
    ]
    assert logins[-1].status_code == 429 and _retry_after(logins[-1]) >= 1
    assert requests.get(f"{url}/admin/login", timeout=30).status_code != 429  # only POST is limited
    assert requests.get(f"{url}/healthz", timeout=30).ok  # not a limited endpoint


def test_the_clock_is_a_parameter(engage: Engage) -> None:
    now = [1000.0]
    app = create_app(engage)
    limits = app.state.rate_limits
    limits.set_clock(lambda: now[0])
    scope = {"type": "http", "path": "/c/x", "method": "GET", "client": ("198.51.100.7", 1), "headers": []}
    assert limits.check(scope) is None
    group, wait = limits.check(scope)
    assert (group.name, wait) == ("links", 1)
    now[0] += 1.0
    assert limits.check(scope) is None


def test_disabled_limits_refuse_nothing(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws", LIMITS.replace("rate_limits:\n", "rate_limits:\n  enabled: false\n"))
    instance = bootstrap(Workspace.load(root))
    try:
        with LocalServer(instance, worker=False) as server:
            assert all(_track(server.url, "dev-write-key", f"u{n}").ok for n in range(5))
    finally:
        instance.close()


def test_a_bad_value_is_an_engage_check_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENGAGE_WORKSPACE", raising=False)
    bad = "rate_limits:\n  links:\n    rate: lots\n  login: {rate: 10/min, burst: 0}\n"
    root = _workspace(tmp_path / "ws", bad)
    line = len((root / "endpoints.yml").read_text().splitlines())  # the last line: login
    capsys.readouterr()
    assert main(["check", "-w", str(root)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"endpoints.yml:{line - 1}: rate_limits.links.rate: 'lots' is not a rate: "
        "write a positive count per unit, e.g. 100/s or 10/min",
        f"endpoints.yml:{line}: rate_limits.login.burst: Input should be greater than or equal to 1",
    ]
