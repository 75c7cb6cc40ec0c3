"""The shop's assistant end to end: the real Rasa server with the trained bot, engage's real action server,
and engage itself (API and worker) sending SMS through the real `twilio` library to a fake Twilio.

What a customer does is what the test does: talk to Rasa's REST channel as the website's chat would, send
a Twilio-signed inbound SMS to engage's webhook, open a link the bot gave. What it checks is what they and
the shop would see: the cards, the cart, the texts that arrive at Twilio, the events in the log, and the
recommender's next answer.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pytest
import requests

from engage.bootstrap import Engage, bootstrap
from engage.chat.rasa import ActionServerProcess, RasaEnvironment, RasaServer
from engage.demo.server import LocalServer
from engage.recommend.catalog import Product
from engage.testing.providers import FakeTwilio
from engage.workspace import Workspace
from tests.chat.conftest import bot_workspace_at, say
from tests.conftest import RABBITMQ_URL, require_rabbitmq
from tests.helpers import identify, logged, send, settled, track, wait_until

pytestmark = pytest.mark.slow

TWILIO_SID = "AC" + "3" * 32
TWILIO_TOKEN = "chat-twilio-token"
SHOP_NUMBER = "+15005550006"
PUBLIC_URL = "http://127.0.0.1:8000"


@dataclass
class Shop:
    engage: Engage
    url: str
    twilio: FakeTwilio
    rasa: RasaServer

    def product(self, title: str) -> Product:
        return next(product for product in self.engage.recommend.catalog if product.name == title)

    def events(self, name: str, channel: str | None = None) -> list[Any]:
        found = [event for event in logged(self.engage) if event.event == name]
        return [event for event in found if channel is None or event.channel == channel]

    def texts_to(self, phone: str) -> list[str]:
        return [message.body for message in self.twilio.messages if message.to == phone]

    def text_the_bot(self, phone: str, body: str) -> None:
        status, answer = self.twilio.send_inbound(
            f"{self.url}/hooks/twilio/sms",
            phone,
            SHOP_NUMBER,
            body,
            signer_url=f"{PUBLIC_URL}/hooks/twilio/sms",
        )
        assert status == 200, answer


def use_fake_twilio(root: Any, twilio: FakeTwilio) -> None:
    (root / "connectors" / "twilio.yml").write_text(
        f'account_sid: {TWILIO_SID}\nauth_token: {TWILIO_TOKEN}\nmessaging_service_sid: "MG{"4" * 32}"\n'
        f"base_url: {twilio.url}\n"
    )
    endpoints = root / "endpoints.yml"
    endpoints.write_text(endpoints.read_text().replace("sms: outbox", "sms: twilio"))


def shoppers(engage: Engage) -> None:
    """Shoppers who each browse two categories, so the recommender learns which products go together."""
    rng = random.Random(11)
    by_category: dict[str, list[str]] = {}
    for product in engage.recommend.catalog:
        by_category.setdefault(product.category, []).append(product.id)
    categories = sorted(by_category)
    calls: list[dict[str, Any]] = []
    for n in range(240):
        favourites = rng.sample(categories, 2)
        calls.append(identify(f"s{n}", email=f"s{n}@example.com"))
        calls += [
            track(f"s{n}", "ProductViewed", product_id=rng.choice(by_category[rng.choice(favourites)][:30]))
            for _ in range(12)
        ]
    calls.append(identify("reader", email="reader@example.com"))
    calls += [track("reader", "ProductViewed", product_id=item) for item in by_category["books"][:4]]
    dad = identify("dad-shopper", email="kid@example.com", phone="+14155550123", first_name="Kim")
    dad["context"] = {"consent": {"categoryPreferences": {"sms": True}, "source": "checkout form"}}
    calls.append(dad)
    send(engage, *calls)


@pytest.fixture(scope="module")
def shop(
    bot_workspace: Workspace, rasa_server: RasaServer, action_server: ActionServerProcess
) -> Iterator[Shop]:
    root = bot_workspace.root
    with FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN) as twilio:
        use_fake_twilio(root, twilio)
        config = root / "recommender.yml"
        config.write_text(config.read_text().replace("model: auto", "model: itemknn"))
        engage = bootstrap(Workspace.load(root))
        shoppers(engage)
        engage.recommend.train()
        with LocalServer(engage) as server:
            yield Shop(engage, server.url, twilio, rasa_server)
        engage.close()


def cards(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [element for answer in answers if answer.get("attachment")
            for element in answer["attachment"]["payload"]["elements"]]  # fmt: skip


def test_web_chat_recommends_within_the_ask_and_adds_to_the_cart(shop: Shop) -> None:
    answers = say(shop.rasa, "visitor-kitchen", "show me something for the kitchen under $50")
    shown = [shop.product(card["title"]) for card in cards(answers)]
    assert shown, f"no product cards in {answers}"
    assert all(product.category == "housewares" and product.price <= 50 for product in shown)
    for card in cards(answers):
        assert card["image_url"].startswith("https://") and re.match(r"\$\d+\.\d\d", card["subtitle"])
        assert {button["title"] for button in card["buttons"]} >= {"Details", "More like this", "Add to cart"}

    answers = say(shop.rasa, "visitor-kitchen", "add the first one")
    assert any(shown[0].name in (answer.get("text") or "") for answer in answers), answers
    settled(shop.engage)
    added = [event for event in shop.events("ProductAdded", "chat") if event.user_id == "visitor-kitchen"]
    assert [event.properties["product_id"] for event in added] == [shown[0].id]
    profile = added[0].profile_id
    shopper = shop.engage.chat.shop.shopper("visitor-kitchen", {})
    assert shopper.recipient.profile_id == profile
    assert [line.product.id for line in shop.engage.chat.shop.cart(shopper)] == [shown[0].id]
    shown_events = [e for e in shop.events("RecommendationShown", "chat") if e.profile_id == profile]
    assert shown_events and shown_events[0].properties["items"][: len(shown)] == [p.id for p in shown]

    answers = say(shop.rasa, "visitor-kitchen", "what's in my cart?")
    assert any("1 item" in (answer.get("text") or "") for answer in answers), answers
    # The broker is read every half second: wait for every turn, not for the first one read.
    wait_until(
        lambda: (
            {e.properties["intent"] for e in shop.events("ChatMessage", "chat") if e.profile_id == profile}
            >= {"recommend", "add_to_cart"}
        ),
        "the chat turns (recommend, add_to_cart) to come back from Rasa's event broker",
    )


def test_gift_finder_by_sms_over_several_texts(shop: Shop) -> None:
    phone = "+14155550123"
    shop.text_the_bot(phone, "any gift ideas for my dad?")
    wait_until(lambda: len(shop.texts_to(phone)) >= 1, "the bot to ask for a budget")
    assert re.search(r"budget|spend|how much", shop.texts_to(phone)[-1], re.I), shop.texts_to(phone)

    shop.text_the_bot(phone, "under 40")
    wait_until(lambda: len(shop.texts_to(phone)) >= 2, "the bot to ask for a kind of gift")
    shop.text_the_bot(phone, "books")
    ideas = wait_until(
        lambda: [text for text in shop.texts_to(phone)[2:] if "/r/" in text], "the gift ideas with links"
    )[0]
    lines = [line for line in ideas.splitlines() if re.match(r"\d\. ", line)]
    assert lines, ideas
    for line in lines:
        price = float(re.search(r"\$(\d+\.\d\d)", line).group(1))  # type: ignore[union-attr]
        assert price <= 40
        assert re.search(rf"{re.escape(PUBLIC_URL)}/r/[\w-]+", line)
    settled(shop.engage)
    shown = [e for e in shop.events("RecommendationShown", "sms")]
    assert shown and all(
        shop.engage.recommend.catalog[item].category == "books" for item in shown[-1].properties["items"]
    )
    turns = wait_until(lambda: shop.events("ChatMessage", "sms"), "the SMS turns as ChatMessage events")
    assert "find_gift" in {turn.properties["intent"] for turn in turns}


def test_a_tapped_card_is_a_click_and_changes_the_next_recommendations(shop: Shop) -> None:
    catalog = shop.engage.recommend.catalog
    session, who = "session-reader", {"user_id": "reader"}
    before = [
        shop.product(card["title"]) for card in cards(say(shop.rasa, session, "recommend me something", who))
    ]
    assert before and not any(product.category == "housewares" for product in before)

    kitchen = cards(say(shop.rasa, session, "show me something for the kitchen", who))
    tapped = shop.product(kitchen[1]["title"])
    link = kitchen[1]["default_action"]["url"]
    assert link.startswith(f"{PUBLIC_URL}/r/")
    response = requests.get(shop.url + link.removeprefix(PUBLIC_URL), allow_redirects=False, timeout=30)
    assert response.status_code == 302 and response.headers["location"].endswith(f"/{tapped.id}")
    settled(shop.engage)
    clicks = [e for e in shop.events("RecommendationClicked", "chat") if e.user_id == "reader"]
    assert [click.properties["product_id"] for click in clicks] == [tapped.id]

    after = [
        shop.product(card["title"]) for card in cards(say(shop.rasa, session, "recommend me something", who))
    ]
    assert any(catalog[product.id].category == "housewares" for product in after), [p.name for p in after]


def test_a_text_waits_while_rasa_is_down_and_is_answered_once_it_is_back(
    tmp_path: Any, bot_model: Any, rasa_env: RasaEnvironment
) -> None:
    workspace = bot_workspace_at(tmp_path / "workspace")
    phone = "+14155550199"
    with FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN) as twilio:
        use_fake_twilio(workspace.root, twilio)
        engage = bootstrap(Workspace.load(workspace.root))
        customer = identify("texter", phone=phone, first_name="Tess")
        customer["context"] = {"consent": {"categoryPreferences": {"sms": True}, "source": "checkout form"}}
        send(engage, customer)
        with LocalServer(engage) as server:
            shop = Shop(engage, server.url, twilio, None)  # type: ignore[arg-type]
            shop.text_the_bot(phone, "what is your return policy?")
            holding = wait_until(lambda: shop.texts_to(phone), "the holding reply")
            assert holding == ["Thanks for your message! Our assistant is busy; we'll reply soon."]
            with engage.database.read() as connection:
                kept = connection.exec_driver_sql("SELECT status, attempts FROM chat_inbox").all()
            assert [(status, attempts >= 1) for status, attempts in kept] == [("pending", True)]

            with (
                ActionServerProcess.for_workspace(workspace),
                RasaServer(workspace, bot_model, environment=rasa_env),
            ):
                answers = wait_until(
                    lambda: shop.texts_to(phone)[1:], "the answer once Rasa is back", timeout=120
                )
            assert len(answers) == 1 and "30 days" in answers[0], answers
            with engage.database.read() as connection:
                assert connection.exec_driver_sql("SELECT status FROM chat_inbox").scalars().all() == [
                    "answered"
                ]
            time.sleep(1)
            assert len(shop.texts_to(phone)) == 2, "the holding reply and the answer, each once"
        engage.close()


def test_the_chat_page_serves_the_widget_with_the_visitor_s_identity(shop: Shop) -> None:
    page = requests.get(f"{shop.url}/chat", params={"anonymous_id": "anon-42"}, timeout=30)
    assert page.status_code == 200, page.text
    assert '"anonymous_id": "anon-42"' in page.text and "/chat/widget.js" in page.text
    assert shop.engage.workspace.endpoints.rasa.url in page.text
    fresh = requests.get(f"{shop.url}/chat", timeout=30)
    assert fresh.cookies.get("engage_anonymous_id") in fresh.text
    widget = requests.get(f"{shop.url}/chat/widget.js", timeout=30)
    assert widget.status_code == 200 and widget.headers["content-type"].startswith("text/javascript")
    assert "WebChat" in widget.text


def test_chat_turns_come_back_through_rabbitmq_with_rasa_s_pika_broker(
    tmp_path: Any, bot_model: Any, rasa_env: RasaEnvironment
) -> None:
    require_rabbitmq()
    workspace = bot_workspace_at(tmp_path / "workspace")
    queue = f"engage.test.rasa.{uuid.uuid4().hex[:8]}"
    endpoints = workspace.root / "endpoints.yml"
    text = endpoints.read_text()
    sql_broker = "event_broker:\n" + text.split("event_broker:\n", 1)[1].split("\n\n", 1)[0]
    pika_broker = (
        "event_broker:\n  type: pika\n  url: 127.0.0.1\n  port: 5672\n  username: guest\n  password: guest\n"
        f"  queues: [{queue}]"
    )
    endpoints.write_text(text.replace(sql_broker, pika_broker))
    engage = bootstrap(Workspace.load(workspace.root))
    try:
        with (
            LocalServer(engage),
            ActionServerProcess.for_workspace(workspace),
            RasaServer(workspace, bot_model, environment=rasa_env) as rasa,
        ):
            say(rasa, "rabbit-visitor", "what's your return policy?")

            def both_turns() -> list[Any]:
                turns = [
                    e for e in logged(engage)
                    if e.event in ("ChatMessage", "ChatReplied") and e.user_id == "rabbit-visitor"
                ]  # fmt: skip
                return turns if {turn.event for turn in turns} == {"ChatMessage", "ChatReplied"} else []

            turns = wait_until(both_turns, "the customer's and the bot's turns through RabbitMQ")
            said = next(turn for turn in turns if turn.event == "ChatMessage")
            assert said.channel == "chat" and said.properties["intent"] == "return_policy"
            assert said.properties["text"] == "what's your return policy?"
            answered = next(turn for turn in turns if turn.event == "ChatReplied")
            assert "30 days" in answered.properties["text"]
    finally:
        engage.close()
        delete_queue(queue)


def delete_queue(queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()
