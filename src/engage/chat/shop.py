"""What the shop's assistant can do for a customer, whatever the channel: find and recommend products, keep
a cart, look up an order, change consent. The custom actions (`engage.chat.actions`) turn Rasa's turns
into these calls and the answers into messages; everything here is plain engage.

Every list the bot shows goes through a recommender use case with the channel it is shown on, so it is
logged as `RecommendationShown` (a search's matches are ranked for the shopper, `rank`); every change the
bot makes is an event through ingestion, on channel `chat` (web) or `sms`, like a storefront's.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from engage.messaging.announce import Announcer
from engage.messaging.cart import current_cart
from engage.messaging.config import ShopConfig
from engage.messaging.context import Recipient
from engage.messaging.customers import load_customers, profiles_of
from engage.messaging.links import LinkKind, LinkSigner
from engage.recommend.answers import Filters, NoModelError, Recommendations
from engage.recommend.catalog import Catalog, Product
from engage.recommend.service import Recommender
from engage.store.codec import json_value, time_value
from engage.store.database import Database

__all__ = ["ChatShop", "Shopper", "Listing", "CartLine", "Order", "CHANNELS"]

CHANNELS = ("chat", "sms")
_LOOKBACK = 500
_OPEN_CART = text(
    "SELECT event, properties FROM event_log WHERE profile_id IN (SELECT CAST(:profile AS VARCHAR(32)) "
    "UNION SELECT from_profile FROM profile_merges WHERE into_profile = :profile) "
    f"AND event IN ('ProductAdded', 'OrderCompleted') ORDER BY seq DESC LIMIT {_LOOKBACK}"
)
_ORDERS = text(
    "SELECT properties, timestamp FROM event_log WHERE profile_id IN (SELECT CAST(:profile AS VARCHAR(32)) "
    "UNION SELECT from_profile FROM profile_merges WHERE into_profile = :profile) "
    f"AND event = 'OrderCompleted' ORDER BY seq DESC LIMIT {_LOOKBACK}"
)
_KINDS = text("SELECT kind FROM identities WHERE kind IN ('user', 'anonymous') AND value = :value")
_SHOWN = text(
    "SELECT properties, channel, user_id, anonymous_id, profile_id, timestamp FROM event_log "
    "WHERE message_id = :message_id"
)


@dataclass(frozen=True)
class Shopper:
    """Who the bot talks to, and where."""

    recipient: Recipient
    """`profile_id` is empty for a visitor engage has not seen yet (their first event creates it)."""
    channel: str
    """`chat` (the website) or `sms`."""

    @property
    def user(self) -> str:
        return self.recipient.identity


@dataclass(frozen=True)
class Listing:
    """Products shown together, as the recommender answered (its id attributes a click back)."""

    products: list[Product]
    recommendation_id: str | None
    use_case: str


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def total(self) -> float:
        return self.product.price * self.quantity


@dataclass(frozen=True)
class Order:
    order_id: str
    placed_at: datetime
    total: float | None
    items: int


class ChatShop:
    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        recommender: Recommender,
        announcer: Announcer,
        signer: LinkSigner,
        shop: ShopConfig,
        clock: Callable[[], datetime],
    ):
        self.database = database
        self.catalog = catalog
        self.recommender = recommender
        self.announcer = announcer
        self.signer = signer
        self.shop = shop
        self.clock = clock
        self._names = {product.name.lower(): product for product in catalog.products}

    # -- who ------------------------------------------------------------------------------------------

    def shopper(self, sender_id: str, metadata: Mapping[str, Any] | None) -> Shopper:
        """The customer behind a conversation. An SMS conversation's sender is the profile the phone number
        belongs to (engage's SMS relay sends it so); on the web the chat page says who the visitor is
        (`user_id` once signed in, else `anonymous_id`); a bare sender is taken as the recommender takes
        it: a user id, unless engage knows it only as an anonymous id."""
        metadata = metadata or {}
        channel = "sms" if metadata.get("channel") == "sms" else "chat"
        with self.database.read() as connection:
            if channel == "sms":
                customer = load_customers(connection, [sender_id]).get(sender_id)
                if customer is not None:
                    return Shopper(customer.recipient, channel)
            user_id, anonymous_id = metadata.get("user_id"), metadata.get("anonymous_id")
            identity = str(user_id or anonymous_id or sender_id)
            profile = profiles_of(connection, [identity]).get(identity)
            if user_id or anonymous_id:
                is_user = bool(user_id)
            else:  # as the recommender takes a bare id: a user id unless only known as anonymous
                kinds = {kind for (kind,) in connection.execute(_KINDS, {"value": identity})}
                is_user = "user" in kinds or "anonymous" not in kinds
            traits: dict[str, Any] = {}
            if profile:
                customer = load_customers(connection, [profile]).get(profile)
                traits = dict(customer.recipient.traits) if customer else {}
        return Shopper(Recipient(profile or "", identity, is_user, traits), channel)

    # -- finding products -----------------------------------------------------------------------------

    def product(self, reference: str | None) -> Product | None:
        """A product by its id, its name, or a name close enough ("slim cork belt", "the cork belt")."""
        if not reference:
            return None
        reference = reference.strip()
        if reference in self.catalog:
            return self.catalog[reference]
        lowered = reference.lower()
        if lowered in self._names:
            return self._names[lowered]
        close = difflib.get_close_matches(lowered, list(self._names), n=1, cutoff=0.75)
        if close:
            return self._names[close[0]]
        containing = [product for name, product in self._names.items() if lowered in name]
        return containing[0] if len(containing) == 1 else None

    def recommend(
        self,
        shopper: Shopper,
        category: str | None = None,
        style: str | None = None,
        max_price: float | None = None,
        n: int = 5,
    ) -> Listing:
        """The shopper's own picks, within a category (and style) and a budget."""
        filters = self._filters(category, max_price)
        return self._listing(
            lambda f, k, channel: self.recommender.for_you(shopper.user, k, f, channel=channel),
            shopper, filters, style, n,
        )  # fmt: skip

    def gift(
        self, shopper: Shopper, category: str | None, style: str | None, max_price: float | None, n: int = 5
    ) -> Listing:
        """Ideas for someone else: what sells best in the category within the budget (the shopper's own
        taste says little about their dad's)."""
        filters = self._filters(category, max_price)
        return self._listing(
            lambda f, k, channel: self.recommender.popular(k, f, user=shopper.user, channel=channel),
            shopper, filters, style, n,
        )  # fmt: skip

    def related(self, shopper: Shopper, product: Product, n: int = 5) -> Listing:
        filters = Filters(in_stock=True)

        def related(f: Filters, k: int, channel: str | None) -> Recommendations:
            return self.recommender.related(product.id, k, f, user=shopper.user, channel=channel)

        return self._listing(related, shopper, filters, None, n)

    def one(self, shopper: Shopper, product: Product) -> Listing:
        """A product shown alone (its details), logged as shown like a list of one."""
        try:
            answer = self.recommender.rank(shopper.user, [product.id], channel=shopper.channel)
        except NoModelError:
            return Listing([product], None, "catalog")
        return Listing([product], answer.recommendation_id, "rank")

    def search(
        self,
        shopper: Shopper,
        query: str,
        category: str | None = None,
        style: str | None = None,
        max_price: float | None = None,
        n: int = 5,
    ) -> Listing:
        """Products whose name, style or description holds the query's words (the more, the better), in
        the category and budget; ties ranked for the shopper."""
        words = [word for word in _words(query) if word not in _STOP_WORDS and len(word) > 1]
        scored: list[tuple[int, Product]] = []
        for product in self.catalog.products:
            if (category and product.category != category) or (style and product.style != style):
                continue
            if (max_price is not None and product.price > max_price) or product.stock <= 0:
                continue
            haystack = f"{product.name} {product.style} {product.description}".lower()
            score = sum(3 if word in product.name.lower() else 1 for word in words if word in haystack)
            if score or not words:
                scored.append((score, product))
        scored.sort(key=lambda pair: -pair[0])
        best = [product.id for _, product in scored[: n * 4]]
        if not best:
            return Listing([], None, "search")
        try:
            answer = self.recommender.rank(shopper.user, best, channel=shopper.channel)
        except NoModelError:
            return Listing([self.catalog[item] for item in best[:n]], None, "search")
        top = {score_product.id: score for score, score_product in scored[: n * 4]}
        ordered = sorted(answer.item_ids, key=lambda item: -top[item])  # stable: the model breaks ties
        return Listing([self.catalog[item] for item in ordered[:n]], answer.recommendation_id, "search")

    def _filters(self, category: str | None, max_price: float | None) -> Filters:
        return Filters(in_stock=True, categories=(category,) if category else (), max_price=max_price)

    def _listing(
        self,
        use_case: Callable[[Filters, int, str | None], Recommendations],
        shopper: Shopper,
        filters: Filters,
        style: str | None,
        n: int,
    ) -> Listing:
        try:
            if style:  # the recommender filters by category; a style is a part of one
                preview = use_case(filters, n * 8, None)
                in_style = [item for item in preview.item_ids if self.catalog[item].style == style][:n]
                if in_style:
                    answer = self.recommender.rank(shopper.user, in_style, channel=shopper.channel)
                    return Listing(
                        [self.catalog[i] for i in answer.item_ids], answer.recommendation_id, "search"
                    )
            answer = use_case(filters, n, shopper.channel)
        except NoModelError:
            return self._without_model(filters, style, n)
        return Listing(
            [self.catalog[item] for item in answer.item_ids], answer.recommendation_id, answer.use_case
        )

    def _without_model(self, filters: Filters, style: str | None, n: int) -> Listing:
        """Before the first training: promoted, then best-stocked products that pass the filters."""
        chosen = [
            product
            for product in sorted(self.catalog.products, key=lambda p: (not p.promoted, -p.stock))
            if product.stock > 0
            and (not filters.categories or product.category in filters.categories)
            and (filters.max_price is None or product.price <= filters.max_price)
            and (style is None or product.style == style)
        ]
        return Listing(chosen[:n], None, "catalog")

    # -- links ------------------------------------------------------------------------------------

    def product_url(self, product: Product) -> str:
        return self.shop.product_url.replace("{product_id}", product.id)

    def link(self, listing: Listing, index: int) -> str:
        """The tracked link of the `index`th product of a list: a click is a `RecommendationClicked` of the
        shopper it was shown to, on the channel it was shown on."""
        if listing.recommendation_id is None:
            return self.product_url(listing.products[index])
        return self.signer.recommendation_url(listing.recommendation_id, index)

    def click(self, token: str) -> str:
        """Where a tracked list link goes, once its click is recorded; InvalidLink for a token engage did not
        sign. A link to a list engage has no record of goes to the shop's home page."""
        found = self.signer.read(token, LinkKind.RECOMMENDATION)
        shown = self._shown(found.send_id)
        if shown is None:
            return self.shop.url
        properties, channel, user_id, anonymous_id, profile_id, _ = shown
        item = self.shown_item(found.send_id, found.index, shown)
        if item is None:
            return self.shop.url
        recipient = Recipient(profile_id, user_id or anonymous_id, bool(user_id), {})
        clicked = {
            "recommendation_id": found.send_id,
            "product_id": item,
            "use_case": json_value(properties).get("use_case"),
            "position": found.index + 1,
        }
        call = self.announcer.call(
            recipient, "RecommendationClicked", channel, clicked, f"rclick-{uuid.uuid4().hex}"
        )
        self.announcer.track([call])
        return self.product_url(self.catalog[item])

    def shown_item(self, recommendation_id: str, index: int, shown: Any = None) -> str | None:
        """The product at `index` of the list `recommendation_id` as it was shown; None if unknown."""
        shown = shown or self._shown(recommendation_id)
        items = (json_value(shown[0]).get("items") or []) if shown is not None else []
        if index >= len(items) or items[index] not in self.catalog:
            return None
        return items[index]

    def _shown(self, recommendation_id: str) -> Any:
        with self.database.read() as connection:
            return connection.execute(_SHOWN, {"message_id": f"rec-{recommendation_id}"}).first()

    # -- the cart -----------------------------------------------------------------------------------

    def cart(self, shopper: Shopper) -> list[CartLine]:
        if not shopper.recipient.profile_id:
            return []
        with self.database.read() as connection:
            items = current_cart(connection, shopper.recipient.profile_id)
        return [
            CartLine(self.catalog[item.product_id], item.quantity)
            for item in items
            if item.product_id in self.catalog
        ]

    def add_to_cart(self, shopper: Shopper, product: Product, quantity: int = 1) -> list[CartLine]:
        properties = {
            "product_id": product.id, "name": product.name, "category": product.category,
            "price": product.price, "quantity": quantity, "cart_id": self._cart_id(shopper),
        }  # fmt: skip
        self._track(shopper, "ProductAdded", properties)
        return self.cart(self._known(shopper))

    def remove_from_cart(self, shopper: Shopper, product: Product) -> list[CartLine]:
        properties = {"product_id": product.id, "name": product.name, "cart_id": self._cart_id(shopper)}
        self._track(shopper, "ProductRemoved", properties)
        return self.cart(shopper)

    def checkout_url(self) -> str:
        return self.shop.cart_url

    def _cart_id(self, shopper: Shopper) -> str:
        """The cart the shopper's storefront (or this chat) opened since their last order, else a new one."""
        if shopper.recipient.profile_id:
            with self.database.read() as connection:
                for event, properties in connection.execute(
                    _OPEN_CART, {"profile": shopper.recipient.profile_id}
                ):
                    if event == "OrderCompleted":
                        break
                    cart_id = json_value(properties).get("cart_id")
                    if cart_id:
                        return str(cart_id)
        return f"chat-{uuid.uuid4().hex[:16]}"

    def _known(self, shopper: Shopper) -> Shopper:
        """The shopper with their profile, once their first event made one."""
        if shopper.recipient.profile_id:
            return shopper
        with self.database.read() as connection:
            profile = profiles_of(connection, [shopper.user]).get(shopper.user, "")
        recipient = Recipient(profile, shopper.user, shopper.recipient.is_user_id, shopper.recipient.traits)
        return Shopper(recipient, shopper.channel)

    # -- orders, consent, people ------------------------------------------------------------------

    def order(self, shopper: Shopper, order_id: str) -> Order | None:
        """The shopper's own order with this id (another customer's is never found)."""
        wanted = _order_key(order_id)
        if not shopper.recipient.profile_id or not wanted:
            return None
        with self.database.read() as connection:
            for properties, timestamp in connection.execute(
                _ORDERS, {"profile": shopper.recipient.profile_id}
            ):
                found = json_value(properties)
                if _order_key(str(found.get("order_id", ""))) == wanted:
                    total = found.get("revenue", found.get("total"))
                    products = found.get("products")
                    return Order(
                        str(found.get("order_id")), time_value(timestamp),
                        float(total) if isinstance(total, int | float) else None,
                        len(products) if isinstance(products, list) else 0,
                    )  # fmt: skip
        return None

    def opt_out(self, shopper: Shopper, channels: Sequence[str]) -> None:
        """The shopper stops marketing on `channels` (email, sms), as if they had unsubscribed there."""
        calls = []
        for channel in channels:
            event = "SmsOptedOut" if channel == "sms" else "Unsubscribed"
            call = self.announcer.call(
                shopper.recipient, event, shopper.channel, {"via": "chat"}, f"chat-optout-{uuid.uuid4().hex}"
            )
            call["context"]["consent"] = {
                "categoryPreferences": {channel: False},
                "source": f"{shopper.channel}:bot",
            }
            calls.append(call)
        self.announcer.track(calls)

    def handoff(self, shopper: Shopper, said: str) -> None:
        """A person is asked to take over: `ChatHandoffRequested`, for the shop's support tools to pick up."""
        self._track(shopper, "ChatHandoffRequested", {"text": said[:500]})

    def _track(self, shopper: Shopper, event: str, properties: Mapping[str, Any]) -> None:
        call = self.announcer.call(
            shopper.recipient, event, shopper.channel, properties, f"chat-{uuid.uuid4().hex}"
        )
        self.announcer.track([call])


_STOP_WORDS = {
    "a", "an", "the", "for", "me", "my", "some", "any", "do", "you", "have", "i", "im", "looking", "search",
    "find", "show", "want", "need", "something", "under", "below", "with", "and", "or", "of", "to", "in",
    "on", "please", "is", "are", "there", "got", "sell", "buy", "get", "like", "good", "nice", "new",
}  # fmt: skip


def _words(query: str) -> list[str]:
    return [word.strip(".,!?'\"") for word in query.lower().split()]


def _order_key(order_id: str) -> str:
    return "".join(ch for ch in order_id.upper() if ch.isalnum())
