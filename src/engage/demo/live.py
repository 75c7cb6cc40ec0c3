"""The live period of the demo: the shop running on an accelerated clock, step by step.

Each step the simulated world acts through engage's public interfaces only, over HTTP on 127.0.0.1:
storefront calls (`/v1/batch`, with the write key) and home-page recommendations (`/v1/recommendations`,
with an API token the demo makes, `DEMO_TOKEN`), opens and clicks of the emails in the outbox (the open
pixel, tracked links), SMS at the local Twilio answered by delivery callbacks, taps, `Y` and `STOP`
replies and questions for the bot (Twilio-signed webhooks), and web chats with the real Rasa server.
Then engage does one worker's round on the same clock: the consumers, the journey tick, due campaigns,
the dispatcher, the SMS relay to the bot and the bot's turns read back.

Shoppers open and click with probabilities that grow with how well what they were shown fits their
persona: that is what makes retraining on channel clicks pay off. A click brings the shopper to the shop: a
product link to a visit that starts at that product, a link to their cart (or to a product in it) back to
the cart they left, where many of them buy it. That is what the reminders' conversion against the holdout
measures.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from requests.auth import AuthBase

from engage.bootstrap import Engage
from engage.demo.shoppers import Season, Shopper
from engage.demo.storefront import Cart, Storefront, is_new, signup, track
from engage.errors import EngageError
from engage.messaging.links import InvalidLink, LinkKind
from engage.recommend.catalog import Product
from engage.testing.twilio import FakeTwilio
from engage.tokens import TokenError
from engage.web.hooks import TWILIO_SMS_PATH

__all__ = ["LiveShop", "SimulatedClock", "SHOP_NUMBER", "DEMO_TOKEN"]

SHOP_NUMBER = "+15005550006"
DEMO_TOKEN = "demo-storefront"
"""The API token the storefront's home page reads recommendations with (the write key only sends)."""
STEP = timedelta(minutes=30)
_LINK = re.compile(r"https?://[^\s\"'<>]+/(?:c|r|o|u)/[A-Za-z0-9_\-]+(?:\.gif)?")

# What a shopper's interest in a product does to the chance of a click: a small base, the rest from
# persona affinity (0.6 for a shopper's first category), and more for a new arrival in their categories.
CLICK_BASE = 0.01
CLICK_PER_AFFINITY = 0.2
NEW_ARRIVAL_INTEREST = 2.0
EMAIL_OPEN = 0.45
CART_CLICK = 0.2
"""The chance of clicking a link to the cart they left (or to a product in it) while it is still open."""
BACK_TO_CART_CHECKOUT = 0.7
BACK_TO_CART_BUYS = 0.6
STOP_CHANCE = 0.04
ORDINALS = ("first", "second", "third", "fourth", "fifth")


@dataclass
class IngestTally:
    """What the ingestion API answered the storefront."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    examples: list[str] = field(default_factory=list)

    def record(self, sent: int, body: dict[str, Any]) -> None:
        self.sent += sent
        self.accepted += body.get("accepted", 0)
        self.duplicates += body.get("duplicates", 0)
        for rejection in body.get("rejected", []):
            self.rejected += 1
            example = f"{rejection['field']}: {rejection['message']}"
            if len(self.examples) < 3 and example not in self.examples:
                self.examples.append(example)


def _broken(rng: random.Random, call: dict[str, Any]) -> dict[str, Any]:
    """What a storefront bug might send."""
    broken = {**call, "messageId": f"broken-{call['messageId']}"}
    choice = rng.randrange(3)
    if choice == 0:
        broken.pop("event", None)
    elif choice == 1:
        broken = {**broken, "type": "identify", "traits": {"email": "not-an-email"}}
    else:
        broken["timestamp"] = "yesterday"
    return broken


class SimulatedClock:
    """The demo's clock: it moves only when the demo moves it."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def click_chance(shopper: Shopper, product: Product | None, now: datetime, season: Season) -> float:
    if product is None:
        return CLICK_BASE
    interest = CLICK_PER_AFFINITY * shopper.interest(product.category, now, season)
    return CLICK_BASE + interest * (NEW_ARRIVAL_INTEREST if is_new(product, now) else 1.0)


@dataclass
class ChatScript:
    """What shoppers ask the bot: their own categories, sometimes with a budget, sometimes small talk."""

    phrases: dict[str, str] = field(default_factory=dict)

    def opener(self, rng: random.Random, shopper: Shopper) -> str:
        category = (
            shopper.persona.categories[0] if rng.random() < 0.7 else rng.choice(shopper.persona.categories)
        )
        words = self.phrases.get(category, category)
        choice = rng.random()
        if choice < 0.35:
            return f"show me some {words}"
        if choice < 0.6:
            return f"any {words} under ${rng.choice((25, 40, 60, 100))}?"
        if choice < 0.75:
            return "recommend me something"
        if choice < 0.85:
            return f"what's popular in {words}"
        if choice < 0.93:
            return "what's your return policy?"
        return "hi there"


class _Bearer(AuthBase):
    def __init__(self, token: str):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def reader_token(engage: Engage) -> str:
    """A new `DEMO_TOKEN` for the home page's recommendations (the last run's revoked, if it is there)."""
    with contextlib.suppress(TokenError):  # none yet: a new workspace
        engage.tokens.revoke(DEMO_TOKEN)
    return engage.tokens.create(DEMO_TOKEN, ["recommendations:read"]).value


class LiveShop:
    def __init__(
        self, engage: Engage, clock: SimulatedClock, url: str, twilio: FakeTwilio, rasa_url: str | None,
        shoppers: list[Shopper], storefront: Storefront, seed: int,
    ):  # fmt: skip
        self.engage = engage
        self.clock = clock
        self.url = url
        self.twilio = twilio
        self.rasa_url = rasa_url
        self.shoppers = shoppers
        self.storefront = storefront
        self.rng = random.Random(seed + 2)
        self.seed = seed
        self._luck: dict[int, random.Random] = {}
        self.http = requests.Session()
        self.http.auth = (engage.workspace.endpoints.ingest.write_keys[0], "")
        self.reader = _Bearer(reader_token(engage))
        self.by_email = {shopper.email: shopper for shopper in shoppers}
        self.by_phone = {shopper.phone: shopper for shopper in shoppers if shopper.phone}
        self.by_name = {product.name: product for product in engage.recommend.catalog}
        self.catalog = engage.recommend.catalog
        self.public_url = engage.workspace.endpoints.public_url
        self.outbox = engage.workspace.root / "var" / "outbox"
        self.script = ChatScript({"housewares": "kitchen stuff", "homedecor": "home decor"})
        self._seen_files: set[Path] = set()
        self._seen_sms = 0
        self._carts: dict[int, Cart] = {}
        self._carts_made: Counter[int] = Counter()
        self._landings: list[dict[str, Any]] = []
        """The visits that clicks in messages lead to, made at the start of the next step."""
        self._opted_out: set[str] = set()
        self.ingest = IngestTally()
        self.chats_web = 0

    # -- the world's side of a step --------------------------------------------------------------------

    def luck(self, shopper: Shopper) -> random.Random:
        """Each shopper's own dice for everything they do: their choices stay the same whatever order
        engage happened to answer or send things in (its ids are random)."""
        if shopper.number not in self._luck:
            self._luck[shopper.number] = random.Random(self.seed * 1_000_003 + shopper.number)
        return self._luck[shopper.number]

    def step(self, start: datetime, chat_rate: float) -> None:
        """Everything shoppers do in [start, start + STEP), then engage's round at its end."""
        end = start + STEP
        self.clock.now = start
        calls, self._landings = self._landings, []
        for shopper in self.shoppers:
            if start <= shopper.joined < end:
                calls += self._arrive(shopper)
            elif shopper.joined < start and self.luck(shopper).random() < self._visit_chance(shopper, start):
                calls += self._visit(shopper, start + STEP * self.luck(shopper).random())
        self._post(calls)
        self.clock.now = end
        self.work()
        self._read_inbox()
        self._chat(chat_rate)
        self.work()

    def _visit_chance(self, shopper: Shopper, when: datetime) -> float:
        """Visits per step: more by day than by night in the shopper's own time zone."""
        hour = when.astimezone(ZoneInfo(shopper.timezone)).hour
        daytime = 1.6 if 8 <= hour < 22 else 0.25
        return min(1.0, shopper.activity * daytime * STEP / timedelta(days=1))

    def _arrive(self, shopper: Shopper) -> list[dict[str, Any]]:
        """A new customer: browses anonymously, signs up (the browsing follows them), sometimes buys."""
        when = shopper.joined
        luck = self.luck(shopper)
        calls, when = self.storefront.visit(luck, shopper, when, self._cart(shopper), signed_in=False)
        calls += signup(luck, shopper, when + timedelta(minutes=2))
        return calls

    def _visit(self, shopper: Shopper, when: datetime) -> list[dict[str, Any]]:
        """A signed-in visit: the home page's picks for them (a click opens that product), then browsing."""
        came_for: list[Product] = []
        calls: list[dict[str, Any]] = []
        picks = self._home_page(shopper)
        if picks is not None:
            recommendation_id, products = picks
            for product in products:
                if self.luck(shopper).random() < click_chance(
                    shopper, product, self.clock.now, self.storefront.season
                ):
                    clicked = {"recommendation_id": recommendation_id, "product_id": product.id}
                    calls.append(
                        track(
                            self.luck(shopper),
                            {"userId": shopper.user_id},
                            "RecommendationClicked",
                            when,
                            clicked,
                        )
                    )
                    calls[-1]["context"] = {"channel": "web"}
                    came_for.append(product)
                    break
        visit, _ = self.storefront.visit(
            self.luck(shopper), shopper, when, self._cart(shopper), signed_in=True, also_view=came_for
        )
        return calls + visit

    def _cart(self, shopper: Shopper) -> Cart:
        """The shopper's cart: the one they left, until they order it."""
        cart = self._carts.get(shopper.number)
        if cart is None or cart.ordered:
            self._carts_made[shopper.number] += 1
            number = self._carts_made[shopper.number]
            cart = self._carts[shopper.number] = Cart(f"cart-{shopper.number}-live-{number}")
        return cart

    def _home_page(self, shopper: Shopper) -> tuple[str, list[Product]] | None:
        response = self.http.get(
            f"{self.url}/v1/recommendations/{shopper.user_id}",
            params={"use_case": "for_you", "n": 5, "channel": "web"},
            auth=self.reader,
            timeout=30,
        )
        if response.status_code in (401, 403):  # the token is wrong: a bug, not a shop without a model yet
            response.raise_for_status()
        if response.status_code != 200:
            return None
        body = response.json()
        products = [self.catalog.get(item["id"]) for item in body.get("items", [])]
        return body["recommendation_id"], [p for p in products if p is not None]

    def _post(self, calls: list[dict[str, Any]]) -> None:
        """The storefront's batches; now and then one carries a broken call (rejected by field, the rest
        kept) or is sent twice by a client that timed out (stored once)."""
        calls.sort(key=lambda call: call["timestamp"])
        for offset in range(0, len(calls), 200):
            batch = calls[offset : offset + 200]
            if self.rng.random() < 0.1:
                batch = [*batch, _broken(self.rng, self.rng.choice(batch))]
            for _ in range(2 if self.rng.random() < 0.05 else 1):
                response = self.http.post(f"{self.url}/v1/batch", json={"batch": batch}, timeout=60)
                if response.status_code >= 500:
                    response.raise_for_status()
                self.ingest.record(len(batch), response.json())

    # -- what recipients do with their messages --------------------------------------------------------

    def _read_inbox(self) -> None:
        emails = []
        for path in self.outbox.glob("*/*.eml"):
            if path not in self._seen_files:
                self._seen_files.add(path)
                with path.open("rb") as file:
                    emails.append(BytesParser(policy=policy.default).parse(file))
        for message in sorted(emails, key=lambda message: (str(message["To"]), str(message["Subject"]))):
            self._read_email(message)
        texts = self.twilio.messages
        for sms in sorted(texts[self._seen_sms :], key=lambda sms: (sms.to, _LINK.sub("", sms.body))):
            self._read_sms(sms.sid, sms.to, sms.body)
        self._seen_sms = len(texts)

    def _read_email(self, message: EmailMessage) -> None:
        shopper = self.by_email.get(str(message["To"]).rsplit("<", 1)[-1].rstrip(">"))
        if shopper is None or self.luck(shopper).random() >= EMAIL_OPEN:
            return
        html_part = message.get_body(preferencelist=("html",))
        links = _LINK.findall(html_part.get_content() if html_part is not None else "")
        for link in links:
            if "/o/" in link:
                self._get(link)
        self._click_one([link for link in links if "/c/" in link], shopper)
        if self.luck(shopper).random() < 0.01:
            unsubscribe = next((link for link in links if "/u/" in link), None)
            if unsubscribe:
                self.http.post(self._local(unsubscribe), timeout=30)

    def _read_sms(self, sid: str, to: str, body: str) -> None:
        self.twilio.send_status(sid, "delivered")
        shopper = self.by_phone.get(to)
        if shopper is None or to in self._opted_out:
            return
        self._click_one(_LINK.findall(body), shopper)
        if "reply y" in body.lower() and self.luck(shopper).random() < 0.75:
            self._text(shopper, "Y")
        elif self.luck(shopper).random() < STOP_CHANCE:
            self._text(shopper, "STOP")
            self._opted_out.add(to)

    def _click_one(self, links: list[str], shopper: Shopper) -> None:
        """At most one click per message, each link weighed by the shopper's interest in what it shows; the
        click brings them to the shop in the next step."""
        cart = self._carts.get(shopper.number)
        for link in links:
            product, to_cart = self._target_of(link, cart)
            chance = (
                CART_CLICK
                if to_cart
                else click_chance(shopper, product, self.clock.now, self.storefront.season)
            )
            if self.luck(shopper).random() < chance:
                self._get(link)
                self._land(shopper, product, to_cart)
                return

    def _land(self, shopper: Shopper, product: Product | None, to_cart: bool) -> None:
        luck = self.luck(shopper)
        when = self.clock.now + timedelta(seconds=luck.randint(5, 120))
        if to_cart:
            starts = luck.random() < BACK_TO_CART_CHECKOUT
            calls, _ = self.storefront.checkout(
                luck, {"userId": shopper.user_id}, when, self._cart(shopper), starts, BACK_TO_CART_BUYS
            )
        else:
            also_view = [product] if product is not None else []
            calls, _ = self.storefront.visit(
                luck, shopper, when, self._cart(shopper), signed_in=True, also_view=also_view
            )
        self._landings += calls

    def _target_of(self, link: str, cart: Cart | None) -> tuple[Product | None, bool]:
        """The product a tracked link shows (what the reader sees beside it), and whether it leads back to
        the shopper's open cart (the cart's page, or a product in it)."""
        path = urlsplit(link).path
        kind, token = path.split("/")[1], path.rsplit("/", 1)[-1]
        signer = self.engage.messaging.signer
        url = None
        try:
            if kind == "c":
                found = signer.read(token, LinkKind.CLICK)
                message = self.engage.messaging.get(found.send_id)
                if message is None or found.index >= len(message.links):
                    return None, False
                url, item = message.links[found.index].get("url"), message.links[found.index].get("item")
            elif kind == "r":
                found = signer.read(token, LinkKind.RECOMMENDATION)
                item = self.engage.chat.shop.shown_item(found.send_id, found.index)
            else:
                return None, False
        except InvalidLink:
            return None, False
        product = self.catalog.get(item) if item else None
        if cart is None or not cart.open:
            return product, False
        in_cart = product is not None and any(kept.id == product.id for kept in cart.products)
        return product, in_cart or url == self.engage.messaging.config.shop.cart_url

    def _get(self, link: str) -> None:
        self.http.get(self._local(link), allow_redirects=False, timeout=30)

    def _local(self, link: str) -> str:
        return self.url + link.removeprefix(self.public_url)

    def _text(self, shopper: Shopper, body: str) -> None:
        assert shopper.phone is not None
        status, answer = self.twilio.send_inbound(
            self.url + TWILIO_SMS_PATH, shopper.phone, SHOP_NUMBER, body,
            signer_url=self.public_url + TWILIO_SMS_PATH,
        )  # fmt: skip
        if status != 200:
            raise EngageError(f"the Twilio webhook answered {status}: {answer}")

    # -- chats -----------------------------------------------------------------------------------------

    def _chat(self, rate: float) -> None:
        if self.rasa_url is None:
            return
        for shopper in self.shoppers:
            if shopper.joined >= self.clock.now or self.luck(shopper).random() >= rate:
                continue
            if shopper.phone and shopper.persona.channel == "sms" and shopper.phone not in self._opted_out:
                self._text(shopper, self.script.opener(self.luck(shopper), shopper))
            else:
                self._web_chat(shopper)
                self.chats_web += 1

    def _web_chat(self, shopper: Shopper) -> None:
        session = f"web-{shopper.user_id}-{self.chats_web}"
        answers = self._say(session, shopper, self.script.opener(self.luck(shopper), shopper))
        cards = [element for answer in answers if answer.get("attachment")
                 for element in answer["attachment"].get("payload", {}).get("elements", [])]  # fmt: skip
        for position, card in enumerate(cards[: len(ORDINALS)]):
            product = self.by_name.get(card.get("title", ""))
            link = (card.get("default_action") or {}).get("url")
            if link and self.luck(shopper).random() < click_chance(
                shopper, product, self.clock.now, self.storefront.season
            ):
                self._get(link)
                if self.luck(shopper).random() < 0.3:
                    self._say(session, shopper, f"add the {ORDINALS[position]} one to my cart")
                break

    def _say(self, session: str, shopper: Shopper, text: str) -> list[dict[str, Any]]:
        response = self.http.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": session, "message": text, "metadata": {"user_id": shopper.user_id}},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    # -- engage's side of a step ---------------------------------------------------------------------

    def work(self) -> None:
        """One worker's round at the clock's time, until nothing more is due now."""
        engage = self.engage
        for _ in range(20):
            engage.stream.drain(engage.consumers)
            ran = engage.journeys.tick() + engage.segments.timer.tick()
            ran += engage.chat.relay.relay_once()
            if engage.chat.reader is not None:
                ran += engage.chat.reader.read_once()
            engage.stream.drain(engage.consumers)
            ran += engage.messaging.dispatch()
            if not ran:
                return

    def finish(self, wait_for_bot: bool) -> None:
        """The period's last deliveries: texts sent in its last step reach their phones, and the bot's
        last turns come back from its broker (Rasa writes them a moment after answering)."""
        self.work()
        self._read_inbox()
        if wait_for_bot:
            time.sleep(1.0)
        self.work()

    def due_campaigns(self, since: datetime, until: datetime) -> list[tuple[str, datetime]]:
        """Each campaign run scheduled in (since, until]."""
        runs = []
        campaigns = self.engage.journeys.campaigns
        campaigns.library.load()
        for name, campaign in sorted(campaigns.library.campaigns.items()):
            moment = campaigns.next_run(campaign, since)
            while moment is not None and moment <= until:
                runs.append((name, moment))
                moment = campaigns.next_run(campaign, moment + timedelta(seconds=1))
        return sorted(runs, key=lambda run: run[1])
