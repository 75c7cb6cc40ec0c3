"""The `/chat` page in a real browser: headless Chromium opens engage's chat page, the rasa-webchat widget
connects to the real Rasa server over socketio (the trained bot, engage's real action server), and the
visitor asks for kitchen things under $50 as a shopper would, by typing.

What it checks is what the shopper and the shop would see: product cards in a carousel, each a houseware
at or under $50 as the catalog says; a tapped card going through engage's tracked `/r/TOKEN` link to the
product's page, recorded as a `RecommendationClicked`; and the visitor's identity from the page's URL
(`/chat?user_id=...`) riding along with each message, so the chat turns are that profile's events.

The browser has no outside network: the shop's host (https://shop.example.com) and its image host are
answered by `context.route`, and the cards' links, which start with the workspace's `public_url`
(http://127.0.0.1:8000), are sent on to the engage under test as a reverse proxy in front of it would: the
`/r/` request really reaches engage, whose 302 the browser follows. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from engage.bootstrap import Engage, bootstrap
from engage.chat.rasa import ActionServerProcess, RasaServer
from engage.demo.server import LocalServer
from engage.workspace import Workspace
from tests.browser import screenshot
from tests.helpers import identify, logged, send, track, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the session's first Rasa test trains the bot

VISITOR = "browser-visitor"
ASK = "show me something for the kitchen under $50"
BUDGET = 50.0
SHOP = "https://shop.example.com"
IMAGES = "https://shop.example"
WAIT_MS = 60_000  # Rasa's first answer after loading its model takes a few seconds


@dataclass
class Site:
    engage: Engage
    url: str
    public_url: str
    rasa: RasaServer

    def rasa_trouble(self) -> str:
        """The warnings and errors in Rasa's log, which say why a widget got no answer."""
        lines = self.rasa.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        found = [line for line in lines if re.search(r"ERROR|Error|never awaited|Traceback", line)]
        return "\n".join(found[-15:]) or "(nothing)"

    def events(self, name: str) -> list[Any]:
        return [event for event in logged(self.engage) if event.event == name]

    def profile_of(self, user_id: str) -> str:
        return self.engage.chat.shop.shopper(user_id, {"user_id": user_id}).recipient.profile_id


@dataclass
class Network:
    """What the browser asked for: the `/r/` requests sent on to engage and the shop's pages it opened."""

    engage_url: str
    public_url: str
    proxied: list[str] = field(default_factory=list)
    shop_pages: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    navigations: list[tuple[str, int, str | None]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def logged(self, message: Any) -> None:  # a playwright ConsoleMessage
        self.console.append(f"{message.type}: {message.text}")

    def saw(self, response: Any) -> None:  # a playwright Response
        if response.request.is_navigation_request():
            self.navigations.append((response.url, response.status, response.headers.get("location")))

    def handle(self, route: Any) -> None:  # a playwright Route
        url = route.request.url
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if url.startswith(self.public_url + "/"):
            target = self.engage_url + url.removeprefix(self.public_url)
            self.proxied.append(target)
            route.continue_(url=target)
        elif parts.hostname == "127.0.0.1":  # engage itself, and Rasa's socket.io polling
            route.continue_()
        elif origin == SHOP:
            self.shop_pages.append(url)
            title = f"Retail Demo Store: {parts.path}"
            route.fulfill(
                status=200,
                content_type="text/html",
                body=f"<!DOCTYPE html><html><head><title>{title}</title></head>"
                f"<body><h1>Product page</h1><p>{url}</p></body></html>",
            )
        elif origin == IMAGES:
            name = parts.path.rsplit("/", 1)[-1].split(".")[0]
            route.fulfill(status=200, content_type="image/svg+xml", body=_placeholder(name))
        else:  # Google Fonts and anything else outside: refused at once rather than left to time out
            self.refused.append(url)
            route.abort()


def _placeholder(name: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="440" height="300">'
        '<rect width="100%" height="100%" fill="#d9e4dd"/>'
        f'<text x="50%" y="50%" font-size="28" text-anchor="middle" font-family="Arial">{name}</text></svg>'
    )


def appears(
    page: Any, locator: Any, what: str, site: Site, network: Network, timeout: float = WAIT_MS
) -> None:
    """Wait for `locator` to be visible; on a timeout, fail with a screenshot and the browser's console."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        locator.wait_for(state="visible", timeout=timeout)
    except PlaywrightTimeout:
        path = screenshot(page, "chat-browser-timeout")
        console = "\n".join(network.console[-40:]) or "(nothing)"
        raise AssertionError(
            f"{what} did not appear within {timeout / 1000:.0f} s (screenshot: {path}); refused requests: "
            f"{network.refused}; the browser's console:\n{console}\nRasa's log ({site.rasa.log_path}):\n"
            f"{site.rasa_trouble()}"
        ) from None


def cooks(engage: Engage) -> None:
    """Shoppers who browse kitchen things, so the recommender has a trained model and the bot's lists are
    tracked (`/r/` links); and the visitor, signed in and known to engage, but with no history yet."""
    housewares = [product.id for product in engage.recommend.catalog if product.category == "housewares"]
    calls = [identify(VISITOR, email="browser-visitor@example.com", first_name="Robin")]
    for n in range(40):
        calls.append(identify(f"browser-cook{n}", email=f"browser-cook{n}@example.com"))
        calls += [
            track(f"browser-cook{n}", "ProductViewed", product_id=housewares[(n * 7 + k * 3) % 60])
            for k in range(8)
        ]
    send(engage, *calls)


@pytest.fixture(scope="module")
def site(
    bot_workspace: Workspace, rasa_server: RasaServer, action_server: ActionServerProcess
) -> Iterator[Site]:
    """engage (API and worker) on a free loopback port, on the session's bot workspace, whose action server
    and Rasa server the widget reaches."""
    root = bot_workspace.root
    config = root / "recommender.yml"
    config.write_text(config.read_text().replace("model: auto", "model: itemknn"))
    engage = bootstrap(Workspace.load(root))
    cooks(engage)
    engage.recommend.train()
    with LocalServer(engage) as server:
        yield Site(engage, server.url, engage.workspace.endpoints.public_url.rstrip("/"), rasa_server)
    engage.close()


def test_a_visitor_asks_the_chat_widget_for_kitchen_things_and_taps_a_card(site: Site, page: Any) -> None:
    network = Network(site.url, site.public_url)
    page.context.route("**/*", network.handle)
    page.context.on("response", network.saw)
    page.on("console", network.logged)
    page.on("pageerror", lambda error: network.console.append(f"pageerror: {error}"))
    profile = site.profile_of(VISITOR)
    assert profile, "the visitor is known to engage before chatting"

    # The page, and the widget (embedded: open at once) greeting the visitor once its socket is confirmed.
    response = page.goto(f"{site.url}/chat?user_id={VISITOR}")
    assert response is not None and response.status == 200
    assert page.title() == "Retail Demo Store assistant"
    widget = page.locator("#webchat .rw-conversation-container")  # rendered into the page's own box
    appears(page, widget, "the chat widget", site, network, timeout=30_000)
    greeting = widget.locator(".rw-response .rw-message-text").first
    appears(page, greeting, "the bot's greeting", site, network)
    assert "assistant" in greeting.inner_text()
    box, main = widget.bounding_box(), page.locator("main").bounding_box()
    assert box and main and main["x"] <= box["x"] and box["x"] + box["width"] <= main["x"] + main["width"]
    screenshot(page, "chat-browser-1-greeting")

    # The visitor types the question and sends it with the widget's send button.
    page.locator("textarea.rw-new-message").fill(ASK)
    page.locator("button.rw-send").click()
    page.locator(".rw-client", has_text=ASK).wait_for(state="visible")
    cards = page.locator(".rw-carousel-container .rw-carousel-card")
    appears(page, cards.first, "the bot's product cards", site, network)
    page.locator(".rw-carousel-card-image").first.evaluate("image => image.decode()")
    screenshot(page, "chat-browser-2-kitchen-cards")

    # Each card is a houseware within the budget, priced as the catalog says, linking through /r/.
    catalog = {product.name: product for product in site.engage.recommend.catalog}
    shown = []
    for index in range(cards.count()):
        card = cards.nth(index)
        title = card.locator(".rw-carousel-card-title").inner_text().strip()
        product = catalog.get(title)
        assert product is not None, f"card {index + 1} names no product of the catalog: {title!r}"
        subtitle = card.locator(".rw-carousel-card-subtitle").inner_text()
        price = re.search(r"\$([\d,]+\.\d\d)", subtitle)
        assert price, subtitle
        assert float(price.group(1).replace(",", "")) == pytest.approx(product.price), (title, subtitle)
        assert product.category == "housewares" and product.price <= BUDGET, (title, product)
        assert "housewares" in subtitle
        link = card.locator("a.rw-carousel-card-title").get_attribute("href")
        assert link and link.startswith(f"{site.public_url}/r/"), link
        assert card.locator("a.rw-reply", has_text="View").get_attribute("href") == link
        buttons = {text.strip() for text in card.locator(".rw-reply").all_inner_texts()}
        assert buttons >= {"View", "Details", "More like this", "Add to cart"}, buttons
        shown.append(product)
    assert shown, "no product cards"

    # What the bot showed is logged as shown to the visitor's own profile, in the cards' order.
    listed = wait_until(
        lambda: [e for e in site.events("RecommendationShown") if e.profile_id == profile],
        "the list shown to be logged",
    )
    assert listed[-1].channel == "chat" and listed[-1].user_id == VISITOR
    assert listed[-1].properties["items"][: len(shown)] == [product.id for product in shown]

    # Tapping the second card's title opens the product in a new tab, through engage's /r/ link.
    tapped_index = 1 if len(shown) > 1 else 0
    tapped = shown[tapped_index]
    tapped_card = cards.nth(tapped_index)
    token_link = tapped_card.locator("a.rw-carousel-card-title").get_attribute("href")
    with page.context.expect_page() as opened:
        tapped_card.locator("a.rw-carousel-card-title").click()
    product_page = opened.value
    product_page.wait_for_url(f"{SHOP}/products/{tapped.id}", timeout=30_000)
    product_page.locator("h1", has_text="Product page").wait_for(state="visible")
    screenshot(product_page, "chat-browser-3-product-page")

    # The browser's own view of that navigation: engage's 302 for the token, then the product's page.
    at_engage = site.url + token_link.removeprefix(site.public_url)
    assert network.proxied == [at_engage]
    token_hop, product_hop = network.navigations[-2:]
    assert token_hop == (at_engage, 302, f"{SHOP}/products/{tapped.id}"), network.navigations
    assert product_hop == (f"{SHOP}/products/{tapped.id}", 200, None), network.navigations
    assert network.shop_pages == [f"{SHOP}/products/{tapped.id}"]

    # The click came back as a RecommendationClicked of the visitor, for the tapped card's product.
    clicks = wait_until(
        lambda: [e for e in site.events("RecommendationClicked") if e.user_id == VISITOR],
        "the tapped card's click to be logged",
    )
    assert len(clicks) == 1
    click = clicks[0]
    assert click.profile_id == profile and click.channel == "chat"
    assert click.properties["product_id"] == tapped.id
    assert click.properties["position"] == tapped_index + 1
    assert click.properties["recommendation_id"] == listed[-1].properties["recommendation_id"]

    # The visitor's identity rode along with each message: the turns are the signed-in visitor's events.
    # The widget keeps its conversation (Rasa's sender id) in localStorage's `chat_session`.
    conversation = page.evaluate("() => JSON.parse(localStorage.getItem('chat_session') || '{}')")
    assert conversation.get("session_id"), conversation
    turns = wait_until(
        lambda: [
            e for e in site.events("ChatMessage") if e.user_id == VISITOR and e.properties["text"] == ASK
        ],
        "the visitor's message to come back from Rasa's event broker",
    )
    said = turns[0]
    assert said.profile_id == profile and said.channel == "chat"
    assert said.properties["intent"] == "recommend"
    assert said.properties["input_channel"] == "socketio"
    assert said.properties["conversation_id"] == conversation["session_id"]
    replied = wait_until(
        lambda: [
            e for e in site.events("ChatReplied") if e.profile_id == profile and e.properties.get("cards")
        ],
        "the bot's cards to come back from Rasa's event broker",
    )
    assert replied[-1].properties["cards"][: len(shown)] == [product.name for product in shown]
