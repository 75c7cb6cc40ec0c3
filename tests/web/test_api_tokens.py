"""Scoped API tokens, end to end: made, listed and revoked with the real CLI, used over the HTTP API, on
SQLite and PostgreSQL. The write key only sends events; the operator's dashboard session also reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from engage.bootstrap import Engage
from engage.cli.main import main
from engage.tokens import ApiTokens
from engage.web import create_app
from engage.web.admin import PASSWORD_VARIABLE
from engage.web.ratelimit import INGEST_PATHS
from tests.helpers import Clock

READS = {
    "profiles:read": "/v1/profiles/u1",
    "segments:read": "/v1/segments",
    "journeys:read": "/v1/journeys",
    "recommendations:read": "/v1/recommendations/u1?use_case=popular",
}


@pytest.fixture
def client(engage: Engage) -> Iterator[TestClient]:
    """The HTTP API on a shop with one customer, u1 (sent with the write key)."""
    with TestClient(create_app(engage), follow_redirects=False) as http:
        sent = http.post(
            "/v1/identify", json={"userId": "u1", "traits": {"firstName": "Uma"}}, auth=write_key(engage)
        )
        assert sent.status_code == 200, sent.text
        engage.stream.drain(engage.consumers)
        yield http


def write_key(engage: Engage) -> tuple[str, str]:
    return (engage.workspace.endpoints.ingest.write_keys[0], "")


def cli(engage: Engage, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "-w", str(engage.workspace.root)])
    out, err = capsys.readouterr()
    return code, out, err


def create(engage: Engage, capsys: pytest.CaptureFixture[str], name: str, *scopes: str) -> str:
    code, out, err = cli(engage, capsys, "tokens", "create", name, *(f"--scope={scope}" for scope in scopes))
    assert code == 0, err
    assert "will not be shown again" in err
    return out.strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_from_the_cli_reads_what_its_scopes_allow(
    engage: Engage, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    token = create(engage, capsys, "crm", "profiles:read", "segments:read")
    assert token.startswith("engage_") and len(token) > 70
    profile = client.get("/v1/profiles/u1", headers=bearer(token))
    assert profile.status_code == 200 and profile.json()["traits"] == {"first_name": "Uma"}
    assert client.get("/v1/segments", headers=bearer(token)).status_code == 200
    assert client.get("/v1/profiles/u1/segments", headers=bearer(token)).status_code == 200
    for path in ("/v1/journeys", "/v1/recommendations/u1"):
        refused = client.get(path, headers=bearer(token))
        needed = "journeys:read" if "journeys" in path else "recommendations:read"
        assert refused.status_code == 403, path
        assert refused.json()["error"] == f"the API token 'crm' lacks the scope {needed!r} (it has: " + (
            "profiles:read segments:read)"
        )
        assert refused.headers["www-authenticate"] == (
            f'Bearer realm="engage", error="insufficient_scope", scope="{needed}"'
        )
    # A token reads; it sends nothing (ingestion takes the write key).
    assert (
        client.post("/v1/track", json={"userId": "u1", "event": "E"}, headers=bearer(token)).status_code
        == 401
    )


def test_an_admin_token_reads_everything(
    engage: Engage, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    token = create(engage, capsys, "ops", "admin")
    for path in READS.values():
        # 503 is the recommender without a model yet: past authorization.
        assert client.get(path, headers=bearer(token)).status_code in (200, 503), path
    assert client.post("/v1/rank", json={"items": ["a"]}, headers=bearer(token)).status_code in (200, 503)


def test_each_scope_reads_its_own_operations_only(engage: Engage, client: TestClient) -> None:
    for scope, allowed in READS.items():
        token = engage.tokens.create(scope.replace(":", "-"), [scope]).value
        for path in READS.values():
            status = client.get(path, headers=bearer(token)).status_code
            assert (status in (200, 503)) if path == allowed else status == 403, (scope, path, status)


def test_a_revoked_token_is_refused_at_once(
    engage: Engage, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    token = create(engage, capsys, "storefront", "recommendations:read", "profiles:read")
    assert client.get("/v1/profiles/u1", headers=bearer(token)).status_code == 200
    revoked = cli(engage, capsys, "tokens", "revoke", "storefront")
    assert revoked[:2] == (0, f"revoked token 'storefront' ({token.split('_')[1]})\n")
    refused = client.get("/v1/profiles/u1", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="engage", error="invalid_token"'
    assert refused.json() == {
        "success": False,
        "error": "the API token is not valid: unknown, revoked or mistyped",
    }
    # The name is free again; the old token stays dead. A leaked token is revoked by the id it shows.
    again = create(engage, capsys, "storefront", "profiles:read")
    assert client.get("/v1/profiles/u1", headers=bearer(again)).status_code == 200
    assert client.get("/v1/profiles/u1", headers=bearer(token)).status_code == 401
    assert cli(engage, capsys, "tokens", "revoke", again.split("_")[1])[0] == 0
    assert client.get("/v1/profiles/u1", headers=bearer(again)).status_code == 401
    code, _, err = cli(engage, capsys, "tokens", "revoke", "storefront")
    assert (code, err) == (
        1,
        "error: no live token is named 'storefront' or has that id (engage tokens list)\n",
    )


@pytest.mark.parametrize(
    "presented",
    ["", "engage_", "not-a-token", "engage_000000000000_" + "0" * 64, "engage_ABCDEF000000_" + "0" * 64],
)
def test_a_malformed_or_unknown_token_is_a_401(engage: Engage, client: TestClient, presented: str) -> None:
    real = engage.tokens.create("real", ["admin"]).value
    tampered = real[:-1] + ("0" if real[-1] != "0" else "1")
    for token in (presented, tampered, real + "0"):
        response = client.get("/v1/segments", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_write_key_reads_nothing(engage: Engage, client: TestClient) -> None:
    for path in [*READS.values(), "/v1/journeys/abandoned_cart/stats", "/v1/related/x"]:
        response = client.get(path, auth=write_key(engage))
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="engage"'
        assert "a write key only sends events" in response.json()["error"]
    assert client.post("/v1/rank", json={"items": ["a"]}, auth=write_key(engage)).status_code == 401


def test_no_v1_operation_but_ingestion_is_open(engage: Engage, client: TestClient) -> None:
    """Every `/v1` operation of the schema refuses a request without credentials: a new read route that
    forgot its scope fails here."""
    operations = [
        (method, path)
        for path, methods in create_app(engage).openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in methods
    ]
    reads = [(method, path) for method, path in operations if path not in INGEST_PATHS]
    assert len(reads) == 9, reads
    for method, path in operations:
        url = path.replace("{identifier}", "u1").replace("{name}", "x").replace("{user_id}", "u1")
        response = client.request(method.upper(), url.replace("{item_id}", "i1"), json={"items": ["a"]})
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Basic" if path in INGEST_PATHS else "Bearer")


def test_the_operator_session_reads(
    engage: Engage, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "a long operator password")
    assert client.get("/v1/segments").status_code == 401
    logged_in = client.post("/admin/login", data={"password": "a long operator password"})
    assert logged_in.status_code == 303 and "Path=/;" in logged_in.headers["set-cookie"]
    for path in READS.values():
        assert client.get(path).status_code in (200, 503), path  # the cookie alone
    # A bearer token, when given, decides alone: a wrong one is refused beside a session.
    assert client.get("/v1/segments", headers=bearer("engage_000000000000_" + "0" * 64)).status_code == 401
    assert client.post("/admin/logout").status_code == 303
    assert client.get("/v1/segments").status_code == 401
    client.cookies.set("engage_admin", "99999999999.forged", path="/")
    assert client.get("/v1/segments").status_code == 401


def test_without_a_dashboard_password_no_cookie_reads(
    engage: Engage, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "a long operator password")
    assert client.post("/admin/login", data={"password": "a long operator password"}).status_code == 303
    assert client.get("/v1/segments").status_code == 200
    monkeypatch.delenv(PASSWORD_VARIABLE)
    assert client.get("/v1/segments").status_code == 401


def test_the_database_holds_only_the_secret_s_hash(
    engage: Engage, capsys: pytest.CaptureFixture[str]
) -> None:
    token = create(engage, capsys, "crm", "profiles:read")
    _, token_id, secret = token.split("_")
    with engage.database.read() as connection:
        (row,) = connection.execute(text("SELECT * FROM api_tokens")).mappings().all()
    assert row["id"] == token_id and row["name"] == "crm" and row["scopes"] == "profiles:read"
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    for value in row.values():
        assert secret not in str(value) and token not in str(value)


def test_listing_shows_names_scopes_and_dates_never_a_secret(
    engage: Engage, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli(engage, capsys, "tokens", "list")[1]
        == "no API tokens yet: engage tokens create NAME --scope SCOPE\n"
    )
    used = create(engage, capsys, "used", "segments:read")
    unused = create(engage, capsys, "unused", "journeys:read", "profiles:read")
    assert client.get("/v1/segments", headers=bearer(used)).status_code == 200
    assert cli(engage, capsys, "tokens", "revoke", "unused")[0] == 0
    with engage.database.read() as connection:
        hashes = connection.execute(text("SELECT secret_hash FROM api_tokens")).scalars().all()
    secrets = [token.split("_")[2] for token in (used, unused)] + list(hashes)

    code, table, _ = cli(engage, capsys, "tokens", "list")
    assert code == 0
    for name in ("used", "unused", used.split("_")[1], unused.split("_")[1], "segments:read"):
        assert name in table
    code, listed, _ = cli(engage, capsys, "tokens", "list", "--json")
    rows = {row["name"]: row for row in json.loads(listed)}
    assert set(rows["used"]) == {"name", "id", "scopes", "created_at", "last_used_at", "revoked_at"}
    assert rows["used"]["scopes"] == ["segments:read"] and rows["used"]["revoked_at"] is None
    assert rows["used"]["last_used_at"] is not None and rows["unused"]["last_used_at"] is None
    assert rows["unused"]["scopes"] == ["profiles:read", "journeys:read"] and rows["unused"]["revoked_at"]
    for secret in secrets:
        assert secret not in table and secret not in listed


def test_mistakes_are_one_line_errors(engage: Engage, capsys: pytest.CaptureFixture[str]) -> None:
    scopes = "profiles:read, segments:read, journeys:read, recommendations:read, admin"
    assert cli(engage, capsys, "tokens", "create", "x", "--scope", "profiles:write") == (
        1, "", f"error: unknown scope 'profiles:write'; the scopes are: {scopes}\n"
    )  # fmt: skip
    assert cli(engage, capsys, "tokens", "create", "x") == (
        1, "", f"error: a token needs at least one scope; the scopes are: {scopes}\n"
    )  # fmt: skip
    create(engage, capsys, "x", "admin")
    assert cli(engage, capsys, "tokens", "create", "x", "--scope", "admin")[2] == (
        "error: a token named 'x' exists; revoke it first or choose another name\n"
    )
    assert cli(engage, capsys, "tokens", "create", "two words", "--scope", "admin")[0] == 1
    assert len(engage.tokens.list()) == 1


def test_last_used_is_written_at_most_once_a_minute(engage: Engage) -> None:
    clock = Clock(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    tokens = ApiTokens(engage.database, clock)
    made = tokens.create("poller", ["segments:read"])
    writes: list[str] = []

    def last_used() -> datetime | None:
        (token,) = tokens.list()
        return token.last_used_at

    @event.listens_for(engage.database.engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    try:
        assert tokens.authenticate(made.value) is not None
        first = clock()
        assert last_used() == first and len(writes) == 1
        clock.advance(seconds=59)
        for _ in range(20):
            assert tokens.authenticate(made.value) is not None
        assert last_used() == first and len(writes) == 1
        clock.advance(seconds=2)
        assert tokens.authenticate(made.value) is not None
        assert last_used() == clock() and len(writes) == 2
        # Another process (a new ApiTokens) reads the recent time from the row and writes nothing either.
        assert ApiTokens(engage.database, clock).authenticate(made.value) is not None
        assert len(writes) == 2
    finally:
        event.remove(engage.database.engine, "before_cursor_execute", _seen)
