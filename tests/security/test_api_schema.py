"""schemathesis against engage's own OpenAPI schema: every `/v1/*` and `/hooks/*` operation, called in-process
(ASGI) with what lets it past authentication (the workspace's write key for ingestion, an `admin` API
token for the reads, nothing for the webhooks, which check signatures), answers without a 5xx and as its
schema documents (status codes, content types, bodies), for inputs the schema allows and for inputs it
does not.
"""

from __future__ import annotations

import base64
import traceback
import uuid

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import just
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engage.bootstrap import Engage
from engage.web.app import create_app
from engage.web.ratelimit import INGEST_PATHS
from tests.helpers import api_token, send, track

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = r"^/(v1|hooks)/"
EXAMPLES = 40  # per operation and generation mode: the whole test stays well under two minutes


def test_api_conforms_to_its_schema(engage: Engage) -> None:
    write_key, token = _write_key(engage), _token(engage)
    trained(engage)
    app = create_app(engage)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=OPERATIONS)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10, [op.label for op in operations]
    failures: list[str] = []
    statuses: dict[str, set[int]] = {operation.label: set() for operation in operations}
    for operation in operations:
        path = operation.path
        auth = write_key if path in INGEST_PATHS else token if path.startswith("/v1/") else {}
        seen = statuses[operation.label]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode), auth=just(auth), seen=just(seen))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,  # the same inputs on every run: CI goes red on a change, not on luck
                suppress_health_check=list(HealthCheck),
            )
            def call(case: schemathesis.Case, auth: dict[str, str], seen: set[int]) -> None:
                seen.add(case.call_and_validate(headers=auth, checks=CHECKS).status_code)

            try:
                call()
            except Unsatisfiable:  # nothing to negate: a path parameter is any text, a body is free-form
                continue
            except (Exception, BaseExceptionGroup) as exc:  # collected: one run reports every operation
                failures.append(f"{operation.label} ({mode.value}): {_describe(exc)}")
    # Each /v1 operation got past authentication: a refused credential would be a documented 401 or 403,
    # and the run would pass having checked nothing but the refusal.
    for label, seen in statuses.items():
        if " /v1/" in label and seen <= {401, 403}:
            failures.append(f"{label}: only {sorted(seen)}: its credentials were refused")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def _describe(exc: BaseException) -> str:
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
    return "\n".join("".join(traceback.format_exception_only(part)).strip()[:600] for part in parts)


def trained(engage: Engage) -> None:
    """A recommendation model from a few shoppers' views of the shipped catalog (else every read is a 503)."""
    catalog = (engage.workspace.root / "catalog/products.csv").read_text().splitlines()[1:41]
    items = [line.split(",", 1)[0] for line in catalog]
    send(
        engage,
        *(
            track(f"s{s}", "ProductViewed", product_id=items[(s * 7 + i) % 40])
            for s in range(12)
            for i in range(6)
        ),
    )
    engage.recommend.train()


# ------------------------------------------------------------------ what schemathesis found, kept as tests


def _client(engage: Engage) -> TestClient:
    """A client that reads (with an `admin` token); ingestion calls pass `headers=_write_key(engage)`."""
    return TestClient(create_app(engage), headers=_token(engage))


def _write_key(engage: Engage) -> dict[str, str]:
    key = engage.workspace.endpoints.ingest.write_keys[0]
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _token(engage: Engage) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(engage, name=f'schema-{uuid.uuid4().hex[:8]}')}"}


def test_an_empty_user_id_is_a_422_naming_it(engage: Engage) -> None:
    """`GET /v1/related/X?user_id=` was a 500 (the exposure's event refused the empty userId)."""
    trained(engage)
    with _client(engage) as client:
        related = client.get("/v1/related/accessories-0001", params={"user_id": ""})
        ranked = client.post("/v1/rank", json={"items": ["accessories-0001"], "user_id": ""})
    assert related.status_code == 422 and related.json()["detail"][0]["loc"] == ["query", "user_id"]
    assert ranked.status_code == 422 and ranked.json()["detail"][0]["loc"] == ["body", "user_id"]


def test_a_blank_user_id_is_a_422_naming_it(engage: Engage) -> None:
    """`GET /v1/recommendations/%0D` was a 500: the event schema strips ids, and nothing was left."""
    trained(engage)
    with _client(engage) as client:
        blank = client.get("/v1/recommendations/%0D%20")
        padded = client.get("/v1/recommendations/%20u1")
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["path", "user_id"]
    assert padded.status_code == 200


def test_a_trending_window_past_a_year_is_a_422(engage: Engage) -> None:
    """`window_hours=1e12` was a 500 (OverflowError in timedelta)."""
    trained(engage)
    with _client(engage) as client:
        response = client.get("/v1/recommendations/u1", params={"use_case": "trending", "window_hours": 1e12})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "window_hours"]


def test_a_cart_without_items_is_a_documented_422_naming_items(engage: Engage) -> None:
    with _client(engage) as client:
        response = client.get("/v1/recommendations/u1", params={"use_case": "cart"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "items"]


def test_a_body_that_does_not_parse_is_a_400_in_the_api_error_shape(engage: Engage) -> None:
    """FastAPI's own 400 (`{"detail": ...}`) escaped the API's error body and was undocumented."""
    with _client(engage) as client:
        headers = {"content-type": "application/json"}
        response = client.post("/v1/rank", content=b"\xff", headers=headers)
    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "There was an error parsing the body"}


def test_refusals_are_documented(engage: Engage) -> None:
    paths = create_app(engage).openapi()["paths"]
    assert {"400", "401", "413"} <= set(paths["/v1/track"]["post"]["responses"])
    assert {"204", "403", "404"} <= set(paths["/hooks/twilio/status"]["post"]["responses"])
    assert "text/xml" in paths["/hooks/twilio/sms"]["post"]["responses"]["200"]["content"]
    assert "503" in paths["/v1/recommendations/{user_id}"]["get"]["responses"]


NUL_REQUESTS = [
    ("GET", "/v1/profiles/a%00b", None, ["path", "identifier"]),
    ("GET", "/v1/profiles/a%00b/segments", None, ["path", "identifier"]),
    ("GET", "/v1/segments/cart_abandoners/members?after=a%00", None, ["query", "after"]),
    ("GET", "/v1/recommendations/a%00", None, ["path", "user_id"]),
    ("POST", "/v1/rank", {"items": ["\x00"], "user_id": "u1"}, ["body", "items", 0]),
]


def test_nul_in_a_parameter_is_a_422_naming_it(engage: Engage) -> None:
    """On PostgreSQL each of these was a 500: it can neither store nor compare text holding NUL."""
    trained(engage)
    with _client(engage) as client:
        for method, url, body, loc in NUL_REQUESTS:
            response = client.request(method, url, json=body)
            assert response.status_code == 422, (url, response.text)
            assert response.json()["detail"][0]["loc"] == loc, url


def test_nul_in_an_event_is_a_400_naming_the_field(engage: Engage) -> None:
    with _client(engage) as client:
        body = {"userId": "u1", "event": "E", "properties": {"a": "x\x00"}}
        response = client.post("/v1/track", json=body, headers=_write_key(engage))
    assert response.status_code == 400
    assert response.json()["field"] == "properties.a" and "NUL" in response.json()["error"]
