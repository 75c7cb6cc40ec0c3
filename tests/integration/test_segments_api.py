"""The segments HTTP API end to end, on SQLite and PostgreSQL: a real server and worker on a loopback
port, memberships made by the real consumers from ingested events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from engage.bootstrap import bootstrap
from engage.demo.server import LocalServer
from tests.conftest import Api, MakeWorkspace
from tests.helpers import Bearer, Clock, api_token, identify, send, settled, track, write_segments

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = START + timedelta(hours=1)
VIEWERS = [f"u{n}" for n in range(1, 8)]


@pytest.fixture
def api(make_workspace: MakeWorkspace, database_url: str) -> Iterator[Api]:
    """This module's own `api`: seven viewers, all in `no_orders` until u2 ordered an hour later and
    moved to `buyers`; u1 has an email; the anonymous a1 only browsed. Then the API and a worker."""
    workspace = make_workspace(database_url=database_url)
    write_segments(
        workspace.root,
        {
            "buyers": "description: Customers who ordered.\ncondition: {performed: OrderCompleted}\n",
            "emailable": "condition: {trait: email, exists: true}\n",
            "no_orders": "condition: {not_performed: OrderCompleted}\n",
        },
    )
    clock = Clock(START)
    engage = bootstrap(workspace, clock=clock)
    try:
        engage.segments.sync()
        send(
            engage,
            *(track(user, "ProductViewed") for user in VIEWERS),
            identify("u1", email="u1@shop.example"),
            {"type": "track", "anonymousId": "a1", "event": "ProductViewed"},
        )
        clock.advance(hours=1)
        send(engage, track("u2", "OrderCompleted"))
        with LocalServer(engage) as server, requests.Session() as session:
            session.auth = (workspace.endpoints.ingest.write_keys[0], "")
            yield Api(server.url, session, engage, api_token(engage, "segments:read", "profiles:read"))
    finally:
        engage.close()


def get(api: Api, path: str, **params: object) -> requests.Response:
    return api.get(path, params=params)


def profile_ids(api: Api) -> dict[str, str]:
    """user id (or anonymous id) -> profile id."""
    return {user: api.profile(user)["profile_id"] for user in [*VIEWERS, "a1"]}


def test_segments_are_listed_with_their_sizes(api: Api) -> None:
    response = get(api, "/v1/segments")
    assert response.status_code == 200
    assert response.json() == {
        "segments": [
            {
                "name": "buyers",
                "description": "Customers who ordered.",
                "size": 1,
                "file": "segments/buyers.yml",
            },
            {"name": "emailable", "description": "", "size": 1, "file": "segments/emailable.yml"},
            {"name": "no_orders", "description": "", "size": 7, "file": "segments/no_orders.yml"},
        ]
    }


def test_members_come_page_by_page_in_profile_id_order(api: Api) -> None:
    ids = profile_ids(api)
    expected = sorted(pid for user, pid in ids.items() if user != "u2")
    users = {pid: None if user == "a1" else user for user, pid in ids.items()}
    pages: list[list[dict]] = []
    after = None
    while True:
        params = {"limit": 3} if after is None else {"limit": 3, "after": after}
        body = get(api, "/v1/segments/no_orders/members", **params).json()
        pages.append(body["members"])
        after = body["next"]
        if after is None:
            break
        assert after == body["members"][-1]["profile_id"]
    assert [len(page) for page in pages] == [3, 3, 1]
    members = [member for page in pages for member in page]
    assert [m["profile_id"] for m in members] == expected
    assert [m["user_id"] for m in members] == [users[pid] for pid in expected]
    assert {m["entered_at"] for m in members} == {START.isoformat()}
    # An exact last page has no next one.
    body = get(api, "/v1/segments/no_orders/members", limit=7).json()
    assert len(body["members"]) == 7 and body["next"] is None
    assert get(api, "/v1/segments/buyers/members").json() == {
        "members": [{"profile_id": ids["u2"], "user_id": "u2", "entered_at": LATER.isoformat()}],
        "next": None,
    }


def test_a_member_leaving_between_pages_shifts_no_one(api: Api) -> None:
    ids = profile_ids(api)
    first = get(api, "/v1/segments/no_orders/members", limit=3).json()
    leaving = next(user for user, pid in ids.items() if pid == first["members"][0]["profile_id"])
    if leaving == "a1":
        body = {"anonymousId": "a1", "event": "OrderCompleted"}
    else:
        body = {"userId": leaving, "event": "OrderCompleted"}
    assert api.post("/v1/track", body).ok
    settled(api.engage)
    rest = []
    after = first["next"]
    while after is not None:
        page = get(api, "/v1/segments/no_orders/members", limit=3, after=after).json()
        rest += [member["profile_id"] for member in page["members"]]
        after = page["next"]
    remaining = sorted(pid for user, pid in ids.items() if user != "u2")[3:]
    assert rest == remaining  # an offset would have skipped the first of them
    again = get(api, "/v1/segments/no_orders/members", limit=3).json()
    assert ids[leaving] not in [member["profile_id"] for member in again["members"]]


def test_unknown_segments_and_bad_limits_are_refused(api: Api) -> None:
    response = get(api, "/v1/segments/nope/members")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown segment 'nope'"
    for limit in (0, 1001, "ten"):
        assert get(api, "/v1/segments/buyers/members", limit=limit).status_code == 422
    assert get(api, "/v1/segments/buyers/members", limit=1000).status_code == 200


@pytest.mark.parametrize("path", ["/v1/segments", "/v1/segments/buyers/members", "/v1/profiles/u2/segments"])
def test_every_route_needs_a_token_with_segments_read(api: Api, path: str) -> None:
    for auth in (None, ("not-the-key", ""), api.session.auth, Bearer("engage_000000000000_" + "0" * 64)):
        response = requests.get(api.url + path, auth=auth, timeout=30)  # type: ignore[arg-type]
        assert response.status_code == 401, auth
        assert response.headers["www-authenticate"].startswith("Bearer")
    journeys_only = api_token(api.engage, "journeys:read", name="journeys-only")
    response = requests.get(api.url + path, auth=Bearer(journeys_only), timeout=30)
    assert response.status_code == 403 and "'segments:read'" in response.json()["error"]


def test_a_profile_s_segments_now_and_over_time(api: Api) -> None:
    ids = profile_ids(api)
    response = get(api, "/v1/profiles/u2/segments")
    assert response.status_code == 200
    assert response.json() == {
        "profile_id": ids["u2"],
        "current": [{"segment": "buyers", "entered_at": LATER.isoformat()}],
        "history": [
            {"segment": "buyers", "entered_at": LATER.isoformat(), "exited_at": None},
            {"segment": "no_orders", "entered_at": START.isoformat(), "exited_at": LATER.isoformat()},
        ],
    }
    u1 = get(api, "/v1/profiles/u1/segments").json()
    assert sorted(stay["segment"] for stay in u1["current"]) == ["emailable", "no_orders"]
    assert len(u1["history"]) == 2 and all(stay["exited_at"] is None for stay in u1["history"])
    anonymous = get(api, "/v1/profiles/a1/segments").json()  # an anonymous id works too
    assert anonymous["profile_id"] == ids["a1"]
    assert anonymous["current"] == [{"segment": "no_orders", "entered_at": START.isoformat()}]
    response = get(api, "/v1/profiles/nobody/segments")
    assert response.status_code == 404
    assert response.json()["error"] == "no profile for 'nobody'"
