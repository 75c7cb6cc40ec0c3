"""The official `segment-analytics-python` client, pointed at engage, delivers track and identify."""

from __future__ import annotations

import pytest
from segment.analytics import Client

from tests.conftest import Api


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_the_official_segment_client_delivers_end_to_end(api: Api, gzip: bool) -> None:
    errors: list[Exception] = []
    client = Client(
        api.engage.workspace.endpoints.ingest.write_keys[0],
        host=api.url,
        gzip=gzip,
        on_error=lambda error, _batch: errors.append(error),
        max_retries=1,
    )
    client.track(
        anonymous_id="visitor-1", event="ProductViewed", properties={"product_id": "p7", "price": 19.5}
    )
    client.page(anonymous_id="visitor-1", name="Home")
    client.identify(
        user_id="cust-1",
        anonymous_id="visitor-1",
        traits={"email": "cust-1@shop.example", "firstName": "Cleo"},
        context={"consent": {"categoryPreferences": {"sms": True}}},
    )
    client.track(user_id="cust-1", event="OrderCompleted", properties={"order_id": "o1", "revenue": 19.5})
    client.flush()
    client.join()
    assert errors == []

    profile = api.profile("cust-1")
    assert profile["traits"] == {"email": "cust-1@shop.example", "first_name": "Cleo"}
    assert profile["consent"]["sms"]["subscribed"] is True
    # What the client sent; engage's own messages (the post-purchase journey's email) may follow the order.
    events = [
        event.get("event", event["type"])
        for event in reversed(profile["events"])
        if event["channel"] not in ("email", "sms")
    ]
    assert events == ["ProductViewed", "Home", "identify", "OrderCompleted"]
    assert api.profile("visitor-1")["profile_id"] == profile["profile_id"]


def test_a_wrong_write_key_reaches_the_clients_error_handler(api: Api) -> None:
    errors: list[Exception] = []
    client = Client(
        "not-the-key", host=api.url, on_error=lambda error, _batch: errors.append(error), max_retries=0
    )
    client.track(user_id="x", event="E")
    client.flush()
    client.join()
    assert errors and getattr(errors[0], "status", None) == 401
