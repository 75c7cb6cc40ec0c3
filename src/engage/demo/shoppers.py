"""Simulated storefront traffic, as the Retail Demo Store's generator makes it.

Shoppers have a persona (two or three favourite categories with affinity weights about 0.6 / 0.25 /
0.15), browse anonymously, add to cart at about 8% of views, sign up (their anonymous history must follow
them into the account), sometimes opt in to SMS, sometimes unsubscribe. Everything is a Segment call,
deterministic for a seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["CATEGORIES", "Shopper", "simulate"]

CATEGORIES = [
    "accessories", "apparel", "beauty", "books", "electronics", "footwear", "furnishing", "groceries",
    "homedecor", "housewares", "instruments", "jewelry", "outdoors", "seasonal", "tools", "toys",
]  # fmt: skip
FIRST_NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivan", "Jin", "Kofi", "Lea"]
TIMEZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Europe/Berlin"]
AFFINITY = (0.6, 0.25, 0.15)
PRODUCTS_PER_CATEGORY = 25


@dataclass
class Shopper:
    number: int
    anonymous_id: str
    categories: list[str]
    signs_up: bool
    sms_opt_in: bool
    unsubscribes: bool
    second_device: bool

    @property
    def user_id(self) -> str:
        return f"user-{self.number:05d}"


def _product(rng: random.Random, shopper: Shopper) -> dict[str, Any]:
    category = rng.choices(shopper.categories, weights=AFFINITY[: len(shopper.categories)])[0]
    index = rng.randrange(PRODUCTS_PER_CATEGORY)
    return {
        "product_id": f"{category[:3]}-{index:03d}",
        "category": category,
        "price": round(rng.uniform(5, 120), 2),
    }


def _call(rng: random.Random, type_: str, when: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": when.isoformat(),
        **fields,
    }


def simulate(users: int, days: int, seed: int, start: datetime) -> Iterator[dict[str, Any]]:
    """Segment calls of `users` shoppers over `days`, in time order per shopper."""
    rng = random.Random(seed)
    for number in range(1, users + 1):
        shopper = Shopper(
            number=number,
            anonymous_id=str(uuid.UUID(int=rng.getrandbits(128))),
            categories=rng.sample(CATEGORIES, rng.choice((2, 3))),
            signs_up=rng.random() < 0.6,
            sms_opt_in=rng.random() < 0.3,
            unsubscribes=rng.random() < 0.1,
            second_device=rng.random() < 0.15,
        )
        yield from _journey(rng, shopper, start, days)


def _journey(rng: random.Random, shopper: Shopper, start: datetime, days: int) -> Iterator[dict[str, Any]]:
    when = start + timedelta(minutes=rng.randrange(days * 24 * 60))
    anon = {"anonymousId": shopper.anonymous_id}
    cart: list[dict[str, Any]] = []
    cart_id = f"cart-{shopper.number}-1"
    for _ in range(rng.randint(3, 12)):
        when += timedelta(seconds=rng.randint(10, 300))
        product = _product(rng, shopper)
        yield _call(rng, "track", when, event="ProductViewed", properties=product, **anon)
        if rng.random() < 0.08:
            cart.append({**product, "quantity": 1, "cart_id": cart_id})
            yield _call(rng, "track", when, event="ProductAdded", properties=cart[-1], **anon)
    if not shopper.signs_up:
        return
    when += timedelta(minutes=rng.randint(1, 20))
    ids = {"userId": shopper.user_id, **anon}
    traits = {
        "createdAt": when.isoformat(),
        "email": f"{shopper.user_id}@shop.example.com",
        "firstName": rng.choice(FIRST_NAMES),
        "timezone": rng.choice(TIMEZONES),
        "locale": "en-US",
        "persona": "_".join(shopper.categories),
    }
    context: dict[str, Any] = {}
    if shopper.sms_opt_in:
        traits["phone"] = f"+1415555{shopper.number % 10000:04d}"
        context["consent"] = {"categoryPreferences": {"sms": True}, "source": "web:signup-form"}
    yield _call(rng, "identify", when, traits=traits, context=context, **ids)
    yield _call(rng, "track", when, event="UserSignedUp", properties={"signup_source": "web"}, **ids)
    yield from _checkout(rng, shopper, when, cart)
    if shopper.second_device:
        when += timedelta(days=rng.randint(1, 5))
        # Browses anonymously on a second device, then signs in: the two profiles become one.
        device_anon = {"anonymousId": str(uuid.UUID(int=rng.getrandbits(128)))}
        for _ in range(rng.randint(1, 4)):
            when += timedelta(seconds=rng.randint(10, 300))
            product = _product(rng, shopper)
            yield _call(rng, "track", when, event="ProductViewed", properties=product, **device_anon)
        yield _call(rng, "track", when, event="UserSignedIn", userId=shopper.user_id, **device_anon)
    if shopper.unsubscribes:
        when += timedelta(days=rng.randint(1, 10))
        yield _call(rng, "track", when, event="Unsubscribed", channel="email", userId=shopper.user_id)


def _checkout(
    rng: random.Random, shopper: Shopper, when: datetime, cart: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """About half of the carts reach checkout and most of those are paid; some buyers come back for
    bigger orders, so value segments have members."""
    ids = {"userId": shopper.user_id}
    carts = 1
    while cart and rng.random() < 0.5:
        when += timedelta(minutes=rng.randint(2, 30))
        revenue = round(sum(item["price"] * item["quantity"] for item in cart), 2)
        products = [item["product_id"] for item in cart]
        cart_id = f"cart-{shopper.number}-{carts}"
        checkout = {"products": products, "cart_id": cart_id}
        yield _call(rng, "track", when, event="CheckoutStarted", properties=checkout, **ids)
        if rng.random() < 0.2:
            return  # abandoned at checkout
        order = {
            "order_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "revenue": revenue,
            "products": products,
            "cart_id": cart_id,
        }
        yield _call(rng, "track", when, event="OrderCompleted", properties=order, **ids)
        when += timedelta(days=rng.randint(1, 4))
        carts += 1
        cart = [
            {
                **_product(rng, shopper),
                "quantity": rng.randint(1, 4),
                "cart_id": f"cart-{shopper.number}-{carts}",
            }
            for _ in range(rng.randint(1, 4))
        ]
        for item in cart:
            yield _call(rng, "track", when, event="ProductAdded", properties=item, **ids)
