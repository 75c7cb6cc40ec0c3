"""The operator dashboard in headless Chromium, against a shop that engage (API and worker, on a loopback
port) has run for real: storefront calls over the HTTP API, a trained recommender, journeys that send
through the outbox, a product clicked in an email and in the chat, and a conversation with the bot read
back from Rasa's events by engage's own reader.

Each test logs in as an operator would, reads the figures a page shows and compares them with the
database, and saves a screenshot under test-artifacts/.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import text

from engage.bootstrap import Engage, bootstrap
from engage.demo.server import LocalServer
from engage.web.admin import PASSWORD_VARIABLE
from engage.workspace import Workspace, init_workspace
from tests.browser import screenshot
from tests.helpers import logged, settled, wait_for

PASSWORD = "operator secret"
SHOPPERS = ["ann", "bob", "cy", "dee", "eve", "fay"]


@dataclass
class LiveShop:
    engage: Engage
    url: str

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engage.database.read() as connection:
            return connection.execute(text(sql), params).scalar_one()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    root = tmp_path_factory.mktemp("admin-browser") / "workspace"
    init_workspace(root)
    config = root / "recommender.yml"
    config.write_text(config.read_text().replace("model: auto", "model: itemknn"))  # quick to train
    # The messages' links and open pixel point at this very server, so a page that let them load or
    # follow would be caught recording an open or a click.
    port = free_port()
    endpoints = root / "endpoints.yml"
    endpoints.write_text(
        endpoints.read_text().replace(
            "public_url: http://127.0.0.1:8000", f"public_url: http://127.0.0.1:{port}"
        )
    )
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(PASSWORD_VARIABLE, PASSWORD)
        engage = bootstrap(Workspace.load(root))
        try:
            with LocalServer(engage, port=port) as server, requests.Session() as http:
                http.auth = (engage.workspace.endpoints.ingest.write_keys[0], "")
                run_the_shop(engage, server.url, http)
                yield LiveShop(engage, server.url)
        finally:
            engage.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_the_shop(engage: Engage, url: str, http: requests.Session) -> None:
    products = [product.id for product in engage.recommend.catalog][:40]

    def batch(*calls: dict[str, Any]) -> None:
        response = http.post(f"{url}/v1/batch", json={"batch": list(calls)}, timeout=30)
        assert response.status_code == 200 and "rejected" not in response.json(), response.text

    batch(
        *(
            {"type": "track", "userId": person, "event": "ProductViewed",
             "properties": {"product_id": products[(n * 7 + k) % len(products)]}}
            for n, person in enumerate(SHOPPERS)
            for k in range(6)
        )
    )  # fmt: skip
    settled(engage)
    engage.recommend.train()
    batch(
        *(
            {"type": "identify", "userId": person,
             "traits": {"email": f"{person}@example.com", "first_name": person.title()}}
            for person in SHOPPERS
        ),
        *({"type": "track", "userId": person, "event": "UserSignedUp"} for person in SHOPPERS),
        {"type": "track", "userId": "ann", "event": "ProductAdded",
         "properties": {"cart_id": "cart-ann", "product_id": products[0]}},
        {"type": "track", "userId": "bob", "event": "OrderCompleted",
         "properties": {"order_id": "o-1", "revenue": 42.5, "products": [{"product_id": products[1]}]}},
    )  # fmt: skip

    def all_sent() -> bool:
        settled(engage)
        with engage.database.read() as connection:
            statuses = connection.execute(text("SELECT status FROM messages")).scalars().all()
        return len(statuses) >= len(SHOPPERS) + 1 and set(statuses) == {"sent"}

    wait_for(all_sent, timeout=30, what="the welcome and thank-you emails to be sent")

    # ann clicks the first product in her welcome email
    with engage.database.read() as connection:
        message_id = connection.execute(
            text("SELECT id FROM messages WHERE address = 'ann@example.com' AND template = 'email/welcome'")
        ).scalar_one()
    message = engage.messaging.get(message_id)
    assert message is not None and message.body is not None
    index = next(n for n, link in enumerate(message.links) if link.get("item"))
    link = engage.messaging.signer.click_url(message.id, index)
    assert link in message.body
    assert requests.get(url + urlsplit(link).path, allow_redirects=False, timeout=30).status_code == 302

    # cy asks the bot for ideas on the website, gets product cards and taps the first
    chat = engage.chat.shop
    shopper = chat.shopper("cy-web", {"user_id": "cy"})
    listing = chat.recommend(shopper, n=3)
    card = urlsplit(chat.link(listing, 0)).path
    assert requests.get(url + card, allow_redirects=False, timeout=30).status_code == 302
    at = datetime.now(UTC).timestamp()
    said = {"event": "user", "text": "any ideas for me?", "message_id": uuid.uuid4().hex, "timestamp": at,
            "metadata": {"user_id": "cy"}, "parse_data": {"intent": {"name": "recommend", "confidence": 0.87},
            "entities": []}}  # fmt: skip
    cards = {"attachment": {"payload": {"elements": [{"title": p.name} for p in listing.products]}}}
    answered = {"event": "bot", "text": "Here are a few picks for you", "timestamp": at + 0.5, "data": cards}
    engage.chat.events.ingest([("1", "cy-web", said), ("2", "cy-web", answered)])
    settled(engage)


def log_in(page: Any, url: str, path: str = "/admin") -> None:
    page.goto(url + path)
    assert "/admin/login" in page.url
    page.get_by_label("Operator password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(url + path) + "$"))


def figure(page: Any, testid: str) -> int:
    return int(page.get_by_test_id(testid).inner_text().replace(",", ""))


def test_the_overview_after_logging_in(page: Any, shop: LiveShop) -> None:
    page.goto(shop.url + "/admin/journeys")
    page.get_by_label("Operator password").fill("not it")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_test_id("login-error").inner_text() == "That password is not right."
    log_in(page, shop.url)
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"

    events = shop.scalar("SELECT count(*) FROM event_log")
    assert figure(page, "events-total") == events
    window = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=59)
    recent = sum(1 for event in logged(shop.engage) if event.received_at >= window)
    assert figure(page, "events-last-hour") == recent > 0
    assert page.locator("svg.chart rect").count() >= 60  # a bar per minute
    for journey in ("signup_welcome", "abandoned_cart", "browse_abandonment", "post_purchase"):
        active = shop.scalar(
            "SELECT count(*) FROM journey_instances WHERE journey = :j AND status = 'active'", j=journey
        )
        assert figure(page, f"journey-active-{journey}") == active, journey
    assert figure(page, "journey-active-abandoned_cart") == 1
    sent = shop.scalar("SELECT count(*) FROM messages WHERE channel = 'email' AND status = 'sent'")
    assert figure(page, "messages-today-email-sent") == sent
    screenshot(page, "admin-overview")


def test_segments_and_a_segments_members(page: Any, shop: LiveShop) -> None:
    log_in(page, shop.url, "/admin/segments")
    for name in shop.engage.segments.engine.segments:
        size = shop.scalar(
            "SELECT count(*) FROM segment_memberships WHERE segment = :s AND exited_at IS NULL", s=name
        )
        assert figure(page, f"segment-size-{name}") == size, name
    screenshot(page, "admin-segments")

    page.get_by_role("link", name="email_users", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Segment email_users"
    assert figure(page, "segment-size") == len(SHOPPERS)
    assert page.get_by_test_id("member").count() == len(SHOPPERS)
    assert "name: email_users" in page.get_by_test_id("segment-definition").inner_text()
    screenshot(page, "admin-segment")


def test_journeys_and_a_journeys_funnel(page: Any, shop: LiveShop) -> None:
    log_in(page, shop.url, "/admin/journeys")
    entered = shop.scalar("SELECT count(*) FROM journey_instances WHERE journey = 'signup_welcome'")
    assert figure(page, "journey-entered-signup_welcome") == entered == len(SHOPPERS)
    screenshot(page, "admin-journeys")

    page.get_by_role("link", name="signup_welcome", exact=True).click()
    assert figure(page, "journey-entered") == len(SHOPPERS)
    assert figure(page, "funnel-step-0") == len(SHOPPERS)  # every one of them got the welcome email
    assert figure(page, "sends-email/welcome-sent") == shop.scalar(
        "SELECT count(*) FROM messages WHERE template = 'email/welcome' AND status = 'sent'"
    )
    assert page.locator("svg.chart").count() == 1
    screenshot(page, "admin-journey")


def test_messages_searched_and_one_shown_as_sent(page: Any, shop: LiveShop) -> None:
    log_in(page, shop.url, "/admin/messages")
    assert figure(page, "messages-total") == shop.scalar("SELECT count(*) FROM messages")
    page.get_by_label("Recipient").fill("bob@example.com")
    page.get_by_role("button", name="Search").click()
    bob = shop.scalar("SELECT count(*) FROM messages WHERE address = 'bob@example.com'")
    assert figure(page, "messages-total") == bob == 2  # the welcome and the thanks for the order
    assert page.get_by_test_id("message-row").count() == 2
    screenshot(page, "admin-messages")

    page.get_by_test_id("message-row").filter(has_text="email/welcome").get_by_role("link").click()
    assert page.get_by_test_id("message-status").inner_text() == "sent"
    assert page.get_by_test_id("history-status").all_inner_texts() == ["queued", "sending", "sent"]
    email = page.frame_locator("iframe[data-testid=message-html]")
    assert "Thanks for signing up" in email.locator("body").inner_text()
    screenshot(page, "admin-message")
    # Neither viewing it (its open pixel) nor clicking in it (its tracked links) reached the shop's links.
    email.get_by_role("link", name="Start shopping").click()
    page.wait_for_timeout(300)
    message_id = page.url.rsplit("/", 1)[1]
    assert shop.scalar("SELECT status FROM messages WHERE id = :m", m=message_id) == "sent"
    assert page.url.endswith(f"/admin/messages/{message_id}")


def test_recommendations_click_through(page: Any, shop: LiveShop) -> None:
    log_in(page, shop.url, "/admin/recommendations")
    log = logged(shop.engage)
    shown = [event for event in log if event.event == "RecommendationShown"]
    clicked = [event for event in log if event.event == "RecommendationClicked"]
    assert {event.channel for event in clicked} == {"email", "chat"}  # ann's email click, cy's card
    for channel in ("email", "chat"):
        lists = [event for event in shown if event.channel == channel]
        assert {event.properties["use_case"] for event in lists} == {"for_you"}
        assert figure(page, f"ctr-shown-{channel}-for_you") == len(lists)
        assert figure(page, f"ctr-clicks-{channel}-for_you") == 1
        assert figure(page, f"ctr-clicked-{channel}-for_you") == 1
    assert page.get_by_test_id("model-name").inner_text() == "itemknn"
    assert page.get_by_test_id("no-evaluations").is_visible()
    screenshot(page, "admin-recommendations")


def test_a_conversation_with_the_bot(page: Any, shop: LiveShop) -> None:
    log_in(page, shop.url, "/admin/conversations")
    assert figure(page, "conversations-total") == 1
    cy = shop.scalar("SELECT id FROM profiles WHERE user_id = 'cy'")
    assert figure(page, f"conversation-customer-turns-{cy}") == 1
    screenshot(page, "admin-conversations")

    page.get_by_role("link", name="cy", exact=True).click()
    assert page.get_by_test_id("turn-text").inner_text() == "any ideas for me?"
    assert page.get_by_test_id("turn-intent").inner_text() == "recommend"
    assert page.get_by_test_id("turn-confidence").inner_text() == "0.87"
    shown = [item.split(" (")[0] for item in page.get_by_test_id("shown-item").all_inner_texts()]
    (listed,) = [
        event
        for event in logged(shop.engage)
        if event.event == "RecommendationShown" and event.channel == "chat"
    ]
    assert shown == [shop.engage.recommend.catalog[item].name for item in listed.properties["items"]]
    assert page.get_by_test_id("turn-clicked").count() == 1
    screenshot(page, "admin-conversation")
