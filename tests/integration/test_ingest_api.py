"""The Segment-compatible ingestion API end to end, on SQLite and on PostgreSQL."""

from __future__ import annotations

import gzip
import uuid

import orjson
import pytest
import requests
from sqlalchemy import func, select

from engage.store.models import EventRecord
from tests.conftest import Api


def _count(api: Api) -> int:
    """Events the customers sent (engage's own announcements left out)."""
    with api.engage.database.read() as connection:
        log = EventRecord.__table__
        return connection.execute(
            select(func.count()).select_from(log).where(log.c.channel != "system")
        ).scalar_one()


def test_track_and_identify_build_a_profile(api: Api) -> None:
    assert api.post("/v1/track", {"userId": "u1", "event": "ProductViewed", "properties": {"sku": "p1"}}).ok
    response = api.post(
        "/v1/identify",
        {
            "userId": "u1",
            "traits": {
                "email": "Ann@Shop.Example",
                "firstName": "Ann",
                "phone": "(415) 555-2671",
                "timezone": "Europe/Paris",
                "locale": "fr-FR",
                "vip": True,
            },
        },
    )
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0}
    profile = api.profile("u1")
    assert profile["user_id"] == "u1"
    assert profile["traits"] == {
        "email": "Ann@shop.example",
        "first_name": "Ann",
        "phone": "+14155552671",
        "timezone": "Europe/Paris",
        "locale": "fr-FR",
        "vip": True,
    }
    assert [e.get("event", e["type"]) for e in profile["events"]] == ["identify", "ProductViewed"]
    assert profile["events"][1]["properties"] == {"sku": "p1"}
    assert profile["event_count"] == 2


def test_batch_keeps_valid_events_and_lists_each_rejection(api: Api) -> None:
    batch = [
        {"type": "track", "userId": "u2", "event": "ProductViewed"},
        {"type": "track", "userId": "u2"},
        {"type": "identify", "userId": "u2", "traits": {"email": "not-an-email"}},
        {"type": "track", "event": "CartViewed"},
        {"type": "page", "anonymousId": "a2", "name": "Home"},
        {"type": "spin", "userId": "u2"},
        {"type": "track", "userId": "u2", "event": "X", "timestamp": "yesterday"},
        "not an object",
    ]
    response = api.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "event"),
        (2, "traits.email"),
        (3, "userId"),
        (5, "type"),
        (6, "timestamp"),
        (7, ""),
    ]
    assert "email" in body["rejected"][1]["message"]
    assert _count(api) == 2


def test_a_batch_with_nothing_valid_is_a_400(api: Api) -> None:
    response = api.post("/v1/batch", {"batch": [{"type": "track", "userId": "u"}]})
    assert response.status_code == 400
    assert response.json()["rejected"][0]["field"] == "event"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/track", {"userId": "u"}, "event"),
        ("/v1/identify", {"userId": "u", "traits": {"phone": "12"}}, "traits.phone"),
        ("/v1/identify", {"userId": "u", "traits": {"timezone": "Mars/Olympus"}}, "traits.timezone"),
        ("/v1/track", {"userId": "u", "event": "E", "properties": [1, 2]}, "properties"),
        ("/v1/track", {"userId": "u", "event": "E", "channel": "fax"}, "channel"),
        ("/v1/alias", {"userId": "u"}, "previousId"),
        ("/v1/identify", {"type": "track", "userId": "u"}, "type"),
    ],
)
def test_a_bad_single_call_is_a_400_naming_the_field(api: Api, path: str, body: dict, field: str) -> None:
    response = api.post(path, body)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_the_same_message_id_is_stored_once(api: Api) -> None:
    call = {"type": "track", "userId": "u3", "event": "OrderCompleted", "messageId": "order-1-completed"}
    assert api.post("/v1/track", call).json()["accepted"] == 1
    assert api.post("/v1/track", call).json() == {"success": True, "accepted": 0, "duplicates": 1}
    body = api.post(
        "/v1/batch", {"batch": [call, {**call, "messageId": "m2"}, {**call, "messageId": "m2"}]}
    ).json()
    assert (body["accepted"], body["duplicates"]) == (1, 2)
    assert _count(api) == 2
    assert api.profile("u3")["event_count"] == 2


def test_anonymous_browsing_follows_the_visitor_into_their_account(api: Api) -> None:
    anon = f"anon-{uuid.uuid4().hex}"
    for sku in ("p1", "p2", "p3"):
        api.post("/v1/track", {"anonymousId": anon, "event": "ProductViewed", "properties": {"sku": sku}})
    api.post("/v1/identify", {"anonymousId": anon, "userId": "u4", "traits": {"email": "u4@shop.example"}})
    profile = api.profile("u4")
    assert profile == api.profile(anon)
    assert {"type": "anonymous", "id": anon} in profile["identities"]
    assert [e["properties"]["sku"] for e in profile["events"] if e.get("event") == "ProductViewed"] == [
        "p3",
        "p2",
        "p1",
    ]
    assert profile["event_count"] == 4


def test_a_second_device_merges_into_the_known_profile(api: Api) -> None:
    api.post(
        "/v1/identify",
        {"userId": "u5", "anonymousId": "laptop", "traits": {"firstName": "Bo", "tier": "gold"}},
    )
    api.post("/v1/track", {"anonymousId": "phone", "event": "ProductViewed", "properties": {"sku": "p9"}})
    api.post("/v1/identify", {"anonymousId": "phone", "traits": {"tier": "silver", "phone_model": "x"}})
    before = api.profile("phone")
    assert before["profile_id"] != api.profile("u5")["profile_id"]
    api.post("/v1/track", {"userId": "u5", "anonymousId": "phone", "event": "UserSignedIn"})
    merged = api.profile("u5")
    assert api.profile("phone")["profile_id"] == merged["profile_id"]
    assert merged["traits"] == {"first_name": "Bo", "tier": "gold", "phone_model": "x"}  # the known one wins
    assert merged["event_count"] == 4
    assert {e.get("event") for e in merged["events"]} >= {"ProductViewed", "UserSignedIn"}


def test_a_shared_device_never_merges_two_known_customers(api: Api) -> None:
    api.post(
        "/v1/identify", {"userId": "alice", "anonymousId": "family-pc", "traits": {"firstName": "Alice"}}
    )
    api.post("/v1/identify", {"userId": "bob", "anonymousId": "family-pc", "traits": {"firstName": "Bob"}})
    alice, bob = api.profile("alice"), api.profile("bob")
    assert alice["profile_id"] != bob["profile_id"]
    assert alice["traits"]["first_name"] == "Alice" and bob["traits"]["first_name"] == "Bob"


def test_alias_merges_an_old_id_into_the_new_one(api: Api) -> None:
    api.post("/v1/track", {"userId": "old-id", "event": "ProductViewed"})
    api.post("/v1/track", {"userId": "new-id", "event": "CartViewed"})
    assert api.post("/v1/alias", {"previousId": "old-id", "userId": "new-id"}).ok
    merged = api.profile("new-id")
    assert api.profile("old-id")["profile_id"] == merged["profile_id"]
    assert merged["event_count"] == 3


def test_consent_per_channel_with_source_and_time(api: Api) -> None:
    api.post(
        "/v1/identify", {"userId": "u6", "traits": {"email": "u6@shop.example", "phone": "+14155550123"}}
    )
    consent = api.profile("u6")["consent"]
    assert consent["email"]["subscribed"] is True and consent["email"]["source"] == "default"
    assert consent["sms"] == {"subscribed": False, "source": "default", "updated_at": None}

    opt_in = {"categoryPreferences": {"sms": True}, "source": "checkout-form"}
    api.post(
        "/v1/identify", {"userId": "u6", "timestamp": "2026-03-01T10:00:00Z", "context": {"consent": opt_in}}
    )
    api.post(
        "/v1/track",
        {"userId": "u6", "event": "Unsubscribed", "channel": "email", "timestamp": "2026-03-02T10:00:00Z"},
    )
    # An older opt-out arriving late does not undo the newer opt-in.
    api.post(
        "/v1/track",
        {"userId": "u6", "event": "SmsOptedOut", "channel": "sms", "timestamp": "2026-02-01T10:00:00Z"},
    )
    consent = api.profile("u6")["consent"]
    assert consent["sms"] == {
        "subscribed": True,
        "source": "checkout-form",
        "updated_at": "2026-03-01T10:00:00+00:00",
    }
    assert consent["email"]["subscribed"] is False and consent["email"]["source"] == "email:Unsubscribed"


def test_a_write_key_is_required(api: Api) -> None:
    for path in ("/v1/track", "/v1/batch", "/v1/identify"):
        response = api.session.post(api.url + path, json={"userId": "u", "event": "E"}, auth=("wrong", ""))
        assert response.status_code == 401, path
    response = requests.post(api.url + "/v1/track", json={"userId": "u", "event": "E"}, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert api.get("/v1/profiles/u", auth=("wrong", "")).status_code == 401
    body = {
        "writeKey": api.engage.workspace.endpoints.ingest.write_keys[0],
        "batch": [{"type": "track", "userId": "u", "event": "E"}],
    }
    assert api.session.post(api.url + "/v1/batch", json=body, auth=("wrong", "")).status_code == 200
    assert _count(api) == 1


def test_size_limits_follow_segment(api: Api) -> None:
    big = "x" * (33 * 1024)
    response = api.post("/v1/track", {"userId": "u", "event": "E", "properties": {"blob": big}})
    assert response.status_code == 413
    batch = [{"type": "track", "userId": "u", "event": "E", "properties": {"blob": "y" * 20_000}}] * 30
    assert api.post("/v1/batch", {"batch": batch}).status_code == 413
    mixed = [
        {"type": "track", "userId": "u", "event": "Small"},
        {"type": "track", "userId": "u", "event": "Big", "properties": {"blob": big}},
    ]
    body = api.post("/v1/batch", {"batch": mixed}).json()
    assert (
        body["accepted"] == 1
        and body["rejected"][0]["index"] == 1
        and "larger" in body["rejected"][0]["message"]
    )


def test_gzip_bodies_and_invalid_json(api: Api) -> None:
    payload = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "gz", "event": "E"}]}))
    response = api.session.post(
        api.url + "/v1/batch",
        data=payload,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.json()["accepted"] == 1
    response = api.session.post(
        api.url + "/v1/track", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_health_and_unknown_profiles(api: Api) -> None:
    health = api.session.get(api.url + "/healthz").json()
    assert health["status"] == "ok"
    assert api.get("/v1/profiles/nobody").status_code == 404


def test_segment_clock_skew_correction(api: Api) -> None:
    api.post(
        "/v1/batch",
        {
            "sentAt": "2026-01-01T00:00:10Z",
            "batch": [
                {
                    "type": "track",
                    "userId": "skew",
                    "event": "E",
                    "originalTimestamp": "2026-01-01T00:00:00Z",
                    "sentAt": "2026-01-01T00:00:10Z",
                }
            ],
        },
    )
    event = api.profile("skew")["events"][0]
    received = api.engage.log.read(0, 10)[-1].received_at
    assert abs((received - api.engage.log.read(0, 10)[-1].timestamp).total_seconds() - 10) < 1
    assert event["event"] == "E"
