"""The recommendations HTTP API end to end, on SQLite and PostgreSQL: a real server and worker on a loopback
port, a model trained from ingested events."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from engage.bootstrap import bootstrap
from engage.demo.server import LocalServer
from engage.recommend.catalog import Product, write_catalog
from tests.conftest import Api, MakeWorkspace
from tests.helpers import Bearer, api_token, send, settled, track

NOW = datetime.now(UTC).replace(microsecond=0)
CATEGORIES = ("books", "home", "outdoors")


def product(category: str, number: int) -> Product:
    return Product(
        id=f"{category}-{number:02d}",
        name=f"{category.title()} thing {number}",
        category=category,
        style="plain",
        description="A thing.",
        price=5.0 + number,
        image_url="",
        stock=3,
        promoted=False,
        created_at=NOW - timedelta(days=30),
    )


@pytest.fixture
def api(make_workspace: MakeWorkspace, database_url: str) -> Iterator[Api]:
    workspace = make_workspace(database_url=database_url)
    write_catalog(
        [product(c, n) for c in CATEGORIES for n in range(10)], workspace.root / "catalog/products.csv"
    )
    (workspace.root / "offers.yml").write_text(  # the shipped offers name the demo catalog's products
        "offers:\n"
        "  - {id: home-5, description: 5 off home, coupon: HOME5, discount: {amount: 5},\n"
        "     scope: {category: home}}\n"
        "  - {id: hello, description: 10% off, coupon: HELLO10, discount: {percent: 10}, scope: all,\n"
        "     fallback: true, priority: 1}\n"
    )
    engage = bootstrap(workspace)
    try:
        rng = random.Random(3)
        calls = []
        for shopper in range(30):
            favourite = CATEGORIES[shopper % 3]
            for step in range(12):
                at = (NOW - timedelta(days=2, minutes=shopper * 20 + step)).isoformat()
                calls.append(
                    track(
                        f"s{shopper}", "ProductViewed", at, product_id=f"{favourite}-{rng.randrange(10):02d}"
                    )
                )
        send(engage, *calls)
        engage.recommend.train()
        with LocalServer(engage) as server, requests.Session() as session:
            token = api_token(engage, "recommendations:read")
            session.auth = Bearer(token)  # every call here reads, `/v1/rank` too
            yield Api(server.url, session, engage, token)
    finally:
        engage.close()


def get(api: Api, path: str, **params: object) -> dict:
    response = api.session.get(api.url + path, params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_recommendations_by_use_case_with_filters(api: Api) -> None:
    answer = get(api, "/v1/recommendations/s0", n=5, channel="sms", category=["books", "home"])
    assert len(answer["items"]) == 5 and answer["use_case"] == "for_you"
    assert {item["id"].split("-")[0] for item in answer["items"]} <= {"books", "home"}
    assert answer["items"][0]["reason"].startswith("because you viewed")
    assert answer["recommendation_id"] and answer["model_version"]
    popular = get(api, "/v1/recommendations/nobody-yet", use_case="popular", n=3, max_price=8)
    assert len(popular["items"]) == 3 and all(item["reason"] == "popular" for item in popular["items"])
    cart = get(api, "/v1/recommendations/s1", use_case="cart", items=["home-01"], n=3)
    assert "home-01" not in [item["id"] for item in cart["items"]]
    offer = get(api, "/v1/recommendations/nobody-yet", use_case="offer", n=2)["items"]
    assert [item["id"] for item in offer] == ["hello"]
    assert offer[0]["offer"] == {"description": "10% off", "coupon": "HELLO10", "discount": "10% off",
                                 "scope": "all products"}  # fmt: skip
    response = api.session.get(f"{api.url}/v1/recommendations/s1", params={"use_case": "cart"}, timeout=30)
    assert response.status_code == 422 and "items" in response.text
    settled(api.engage)
    shown = [e for e in api.engage.log.read(0, limit=100_000) if e.event == "RecommendationShown"]
    assert {(e.user_id, e.channel, e.properties["recommendation_id"]) for e in shown} >= {
        ("s0", "sms", answer["recommendation_id"])
    }


def test_related_and_rank(api: Api) -> None:
    related = get(api, "/v1/related/outdoors-04", n=4)
    assert len(related["items"]) == 4 and "outdoors-04" not in [item["id"] for item in related["items"]]
    ranked = api.post("/v1/rank", {"user_id": "s2", "items": ["home-01", "mystery", "outdoors-02"]})
    assert ranked.status_code == 200, ranked.text
    items = ranked.json()["items"]
    assert items[-1] == {"id": "mystery", "score": None, "reason": "unknown to the model"}
    assert items[0]["id"] == "outdoors-02"  # s2 browses outdoors


def test_reads_need_an_api_token_not_the_write_key(api: Api) -> None:
    write_key = (api.engage.workspace.endpoints.ingest.write_keys[0], "")
    for auth in (None, write_key):
        response = requests.get(f"{api.url}/v1/recommendations/s0", auth=auth, timeout=30)
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        ranked = requests.post(f"{api.url}/v1/rank", json={"items": ["home-01"]}, auth=auth, timeout=30)
        assert ranked.status_code == 401
    assert "write key only sends events" in response.json()["error"]
