"""What shoppers do on the shop's site, as the Segment calls a storefront sends.

A visit is a few product views, 80% of them in the shopper's favourite categories (by affinity) and 20%
anywhere, popular products more often than others and new arrivals (products that came into the catalog in
the last 30 days) as often as a best seller, as a shop's new-in shelf shows them; a product is never seen
before it exists. Relative to views the funnel is the Retail Demo Store's: add to cart 8%, cart viewed 5%,
checkout started 2%, order completed 1%. A cart left unpaid stays the shopper's cart: a later visit may
add to it or buy it, and it is what the abandoned-cart journey reminds them of.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engage.demo.shoppers import Season, Shopper
from engage.recommend.catalog import Catalog, Product

__all__ = ["Cart", "Storefront", "is_new", "track", "signup", "new_arrivals"]

PERSONA_SHARE = 0.8
NEW_FOR = timedelta(days=30)
NEW_ARRIVAL_WEIGHT = 1.0
"""A new arrival is on the new-in shelf: seen as often as its category's best seller."""
CART_AGAIN = 0.3
"""The chance that a visit which adds nothing still goes to the cart left last time."""


@dataclass
class Cart:
    id: str
    products: list[Product] = field(default_factory=list)
    ordered: bool = False

    @property
    def open(self) -> bool:
        return bool(self.products) and not self.ordered


def track(
    rng: random.Random, ids: dict[str, str], event: str, when: datetime, properties: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": when.isoformat(),
        "properties": properties,
        **ids,
    }


def signup(rng: random.Random, shopper: Shopper, when: datetime) -> list[dict[str, Any]]:
    """The account form: traits (persona included, as the Retail Demo Store keeps it), then
    `UserSignedUp`; a phone number comes with SMS consent ticked on the form, or with "text me", which
    starts the SMS double opt-in."""
    ids = {"userId": shopper.user_id, "anonymousId": shopper.anonymous_id}
    traits: dict[str, Any] = {
        "createdAt": when.isoformat(),
        "email": shopper.email,
        "firstName": shopper.first_name,
        "timezone": shopper.timezone,
        "locale": "en-US",
        "persona": shopper.persona.name,
        "discount_persona": shopper.persona.discount,
    }
    context: dict[str, Any] = {}
    double_opt_in = False
    if shopper.phone:
        traits["phone"] = shopper.phone
        if rng.random() < 0.5:
            context["consent"] = {"categoryPreferences": {"sms": True}, "source": "web:signup-form"}
        else:  # ticked "text me" instead: the SMS double opt-in asks them to reply Y
            double_opt_in = True
    identify = {
        "type": "identify",
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": when.isoformat(),
        "traits": traits,
        "context": context,
        **ids,
    }
    calls = [identify, track(rng, ids, "UserSignedUp", when, {"signup_source": "web"})]
    if double_opt_in:
        calls.append(track(rng, ids, "SmsOptInRequested", when, {"phone": shopper.phone}))
    return calls


class Storefront:
    def __init__(self, catalog: Catalog, seed: int, season: Season):
        self.season = season
        self.by_category: dict[str, list[Product]] = {}
        for product in catalog:
            self.by_category.setdefault(product.category, []).append(product)
        self.categories = sorted(self.by_category)
        # Popularity within a category: a few products are seen far more than the rest (Zipf-like).
        shuffled = random.Random(seed)
        self._weights: dict[str, list[float]] = {}
        for category, products in self.by_category.items():
            shuffled.shuffle(products)
            self._weights[category] = [1 / (rank + 1) ** 0.9 for rank in range(len(products))]
        self._cheap: dict[str, float] = {
            category: sorted(p.price for p in products)[len(products) // 2]
            for category, products in self.by_category.items()
        }

    def pick(self, rng: random.Random, shopper: Shopper, when: datetime) -> Product:
        persona = shopper.persona
        if self.season.on(when) and rng.random() < self.season.share:
            category = self.season.category
        elif rng.random() < PERSONA_SHARE:
            category = rng.choices(
                persona.categories, weights=[persona.affinity(c) for c in persona.categories]
            )[0]
        else:
            category = rng.choice(self.categories)
        products, weights = [], []
        for product, weight in zip(self.by_category[category], self._weights[category], strict=True):
            if product.created_at <= when:
                products.append(product)
                weights.append(NEW_ARRIVAL_WEIGHT if is_new(product, when) else weight)
        for _ in range(3):
            product = rng.choices(products, weights=weights)[0]
            if persona.discount != "lower_priced" or product.price <= self._cheap[category]:
                return product
        return product

    def visit(
        self, rng: random.Random, shopper: Shopper, when: datetime, cart: Cart, *, signed_in: bool,
        also_view: Iterable[Product] = (),
    ) -> tuple[list[dict[str, Any]], datetime]:  # fmt: skip
        """One visit's calls and when it ended; what they add goes into `cart` (ordered, if they buy it);
        `also_view` are products the shopper came for (a link they clicked), viewed first."""
        ids = {"userId": shopper.user_id} if signed_in else {"anonymousId": shopper.anonymous_id}
        calls: list[dict[str, Any]] = []
        added = False
        views = [*also_view, *(self.pick(rng, shopper, when) for _ in range(rng.randint(1, 7)))]
        for product in views:
            when += timedelta(seconds=rng.randint(15, 180))
            calls.append(track(rng, ids, "ProductViewed", when, _item(product)))
            if rng.random() < 0.08 * _discount_pull(shopper, product, self._cheap):
                cart.products.append(product)
                added = True
                calls.append(
                    track(
                        rng, ids, "ProductAdded", when, {**_item(product), "quantity": 1, "cart_id": cart.id}
                    )
                )
        if cart.open and (added or rng.random() < CART_AGAIN) and rng.random() < 0.6:
            checkout, when = self.checkout(rng, ids, when, cart, signed_in and rng.random() < 0.4, 0.5)
            calls += checkout
        return calls, when

    def checkout(
        self, rng: random.Random, ids: dict[str, str], when: datetime, cart: Cart, starts: bool, buys: float
    ) -> tuple[list[dict[str, Any]], datetime]:
        """The cart viewed; if the shopper `starts` checking out, the order with the chance `buys`."""
        when += timedelta(seconds=rng.randint(10, 60))
        products = _items(cart.products)
        calls = [track(rng, ids, "CartViewed", when, {"cart_id": cart.id, "products": products})]
        if starts:
            when += timedelta(seconds=rng.randint(30, 240))
            calls.append(track(rng, ids, "CheckoutStarted", when, {"cart_id": cart.id, "products": products}))
            if rng.random() < buys:
                order = {
                    "order_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "cart_id": cart.id,
                    "revenue": round(sum(p.price for p in cart.products), 2),
                    "products": products,
                }
                calls.append(track(rng, ids, "OrderCompleted", when, order))
                cart.ordered = True
        return calls, when


def is_new(product: Product, when: datetime) -> bool:
    return when - NEW_FOR < product.created_at <= when


def _discount_pull(shopper: Shopper, product: Product, cheap: dict[str, float]) -> float:
    """Discount lovers add cheaper items more readily."""
    if shopper.persona.discount == "all_discounts" and product.price <= cheap[product.category]:
        return 1.5
    return 1.0


def _item(product: Product) -> dict[str, Any]:
    return {"product_id": product.id, "category": product.category, "price": product.price}


def _items(products: list[Product]) -> list[dict[str, Any]]:
    return [{**_item(product), "quantity": 1} for product in products]


def new_arrivals(
    catalog: Catalog, seed: int, start: datetime, end: datetime, share: float = 0.1
) -> list[Product]:
    """The catalog with a `share` of its products arriving between `start` and `end` (the live period's
    new collection): their `created_at` moves there."""
    rng = random.Random(seed + 3)
    products = []
    for product in catalog:
        if rng.random() < share:
            product = dataclasses.replace(
                product, created_at=(start + (end - start) * rng.random()).replace(microsecond=0)
            )
        products.append(product)
    return products
