"""What a template sees when it renders one message, and what rendering it leaves behind.

    user            the customer's traits (`user.first_name | default("there")`), and `user.id`
    event           the event that triggered the message: its name, properties and time
    cart            the customer's cart now: products with `quantity`
    recommendations(use_case="for_you", n=4, **filters)
                    the recommender's answer as products (`name`, `price`, `image_url`, `url`, `reason`);
                    filters as the HTTP API's: in_stock, category, exclude_category, min_price, max_price,
                    exclude_purchased, exclude_viewed, promoted; `item=` for related, cart items for cart
    offer()         the customer's best offer (`description`, `coupon`, `discount`), or None
    product(id)     one product of the catalog (as in a recommendation, its `url` tracked), or None
    track(url, item=None)
                    `url` as a tracked link: a click is recorded, then the customer goes to `url`
    unsubscribe_url, open_url (email), shop (name, url, cart_url, support_email, address), data

A product's `url` is already tracked, with the recommendation it came from: a click on it is a
`RecommendationClicked` too. Every answer the recommender gave is kept, to be logged as shown on the
message's channel once the provider has taken the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engage.messaging.cart import CartItem
from engage.messaging.config import ShopConfig
from engage.messaging.links import LinkSigner
from engage.recommend.answers import Filters, NoModelError, Recommendations
from engage.recommend.catalog import Catalog
from engage.recommend.offers import Offer
from engage.recommend.service import Recommender

__all__ = [
    "Recipient",
    "MessageContext",
    "Prefetched",
    "prefetch_key",
    "USE_CASES",
    "Answers",
    "RecommenderAnswers",
]

USE_CASES = ("for_you", "popular", "trending", "related", "cart", "repurchase")
MAX_LINKS = 255
_FILTERS = {
    "in_stock": "in_stock",
    "category": "categories",
    "exclude_category": "exclude_categories",
    "min_price": "min_price",
    "max_price": "max_price",
    "exclude_purchased": "exclude_purchased",
    "exclude_viewed": "exclude_viewed",
    "promoted": "promoted",
}

Prefetched = dict[tuple[Any, ...], dict[str, Recommendations]]
"""Answers computed for a whole batch at once, by `prefetch_key` and then by the customer's identity."""


class Answers(Protocol):
    """Where a message's recommendations and offer come from."""

    def recommend(
        self, use_case: str, user: str, n: int, filters: Filters, item: str | None, cart: list[str]
    ) -> Recommendations: ...

    def offer(self, user: str) -> tuple[Recommendations, Offer | None]: ...


class RecommenderAnswers:
    """The recommender's own answers, not logged when asked (the message logs them once it is sent)."""

    def __init__(self, recommender: Recommender):
        self.recommender = recommender

    def recommend(
        self, use_case: str, user: str, n: int, filters: Filters, item: str | None, cart: list[str]
    ) -> Recommendations:
        recommender = self.recommender
        if use_case == "for_you":
            return recommender.for_you(user, n, filters, channel=None)
        if use_case == "popular":
            return recommender.popular(n, filters, user=user, channel=None)
        if use_case == "trending":
            return recommender.trending(n, filters=filters, user=user, channel=None)
        if use_case == "repurchase":
            return recommender.repurchase(user, n, channel=None)
        if use_case == "related":
            if not item:
                raise ValueError("recommendations('related') needs item=PRODUCT_ID")
            return recommender.related(str(item), n, filters, user=user, channel=None)
        return recommender.cart(cart, n, filters, user=user, channel=None)

    def offer(self, user: str) -> tuple[Recommendations, Offer | None]:
        answer = self.recommender.offer(user, 1, channel=None)
        return answer, self.recommender.offers[answer.items[0].item_id] if answer.items else None


@dataclass(frozen=True)
class Recipient:
    profile_id: str
    identity: str
    """The customer's user id, or an anonymous id when they have none: what their events carry."""
    is_user_id: bool
    traits: Mapping[str, Any]


def prefetch_key(use_case: str, n: int, filters: Filters) -> tuple[Any, ...]:
    return (use_case, n, filters)


@dataclass
class MessageContext:
    """One message's rendering: its variables for the template, then the links and exposures it made."""

    send_id: str
    channel: str
    recipient: Recipient
    answers: Answers
    catalog: Catalog
    signer: LinkSigner
    shop: ShopConfig
    cart_of: Callable[[str], list[CartItem]]
    event: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    prefetched: Prefetched = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)
    exposures: list[Recommendations] = field(default_factory=list)
    asked: list[tuple[Any, ...]] = field(default_factory=list)
    """Each `recommendations()` call's key, for a batch to prefetch the same for the rest."""
    _answered: dict[tuple[Any, ...], Recommendations] = field(default_factory=dict)
    _offer: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def variables(self) -> dict[str, Any]:
        shop = self.shop
        values: dict[str, Any] = {
            "user": {
                **self.recipient.traits,
                "id": self.recipient.identity if self.recipient.is_user_id else None,
            },
            "event": {"name": None, "properties": {}, **self.event},
            "cart": _Lazy(self._cart),
            "recommendations": self.recommendations,
            "offer": self.offer,
            "product": self.product,
            "track": self.track,
            "unsubscribe_url": self.signer.unsubscribe_url(self.send_id),
            "shop": {
                "name": shop.name,
                "url": shop.url,
                "cart_url": shop.cart_url,
                "support_email": shop.support_email,
                "address": shop.address,
            },
            "data": dict(self.data),
        }
        if self.channel == "email":
            values["open_url"] = self.signer.open_url(self.send_id)
        return values

    def track(self, url: str, item: str | None = None, recommendation_id: str | None = None) -> str:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"track() needs an http:// or https:// URL, not {url!r}")
        link = {"url": url, "item": item, "recommendation_id": recommendation_id}
        if link in self.links:
            return self.signer.click_url(self.send_id, self.links.index(link))
        if len(self.links) == MAX_LINKS:
            raise ValueError(f"a message has at most {MAX_LINKS} tracked links")
        self.links.append(link)
        return self.signer.click_url(self.send_id, len(self.links) - 1)

    def recommendations(self, use_case: str = "for_you", n: int = 4, **options: Any) -> list[dict[str, Any]]:
        if use_case not in USE_CASES:
            raise ValueError(f"unknown use case {use_case!r}; the use cases are {', '.join(USE_CASES)}")
        if not isinstance(n, int) or not 1 <= n <= 50:
            raise ValueError(f"n must be a number from 1 to 50, not {n!r}")
        item = options.pop("item", None)
        unknown = sorted(set(options) - set(_FILTERS))
        if unknown:
            raise ValueError(f"unknown filter {', '.join(unknown)}; the filters are {', '.join(_FILTERS)}")
        filters = Filters(**{_FILTERS[key]: _filter_value(key, value) for key, value in options.items()})
        key = prefetch_key(use_case, n, filters)
        self.asked.append(key)
        answer = self._answered.get((key, item)) or self.prefetched.get(key, {}).get(self.recipient.identity)
        if answer is None:
            cart = (
                [entry.product_id for entry in self.cart_of(self.recipient.profile_id)]
                if use_case == "cart"
                else []
            )
            try:
                answer = self.answers.recommend(use_case, self.recipient.identity, n, filters, item, cart)
            except NoModelError:  # nothing trained yet: the template shows no recommendations
                return []
        if (key, item) not in self._answered:  # the HTML and text parts ask alike: one answer, shown once
            self._answered[(key, item)] = answer
            self.exposures.append(answer)
        return [self._product(found.item_id, answer.recommendation_id, found.reason) for found in answer.items
                if found.item_id in self.catalog]  # fmt: skip

    def offer(self) -> dict[str, Any] | None:
        if "offer" not in self._offer:  # the HTML and text parts ask alike: one answer, shown once
            self._offer["offer"] = self._ask_offer()
        return self._offer["offer"]

    def _ask_offer(self) -> dict[str, Any] | None:
        try:
            answer, chosen = self.answers.offer(self.recipient.identity)
        except NoModelError:
            return None
        if chosen is None:
            return None
        self.exposures.append(answer)
        return {
            "id": chosen.id,
            "description": chosen.description,
            "coupon": chosen.coupon,
            "discount": str(chosen.discount),
            "scope": str(chosen.scope),
            "reason": answer.items[0].reason,
        }

    def product(self, product_id: Any) -> dict[str, Any] | None:
        return (
            self._product(str(product_id))
            if product_id is not None and str(product_id) in self.catalog
            else None
        )

    def _cart(self) -> list[dict[str, Any]]:
        return [
            {**self._product(entry.product_id), "quantity": entry.quantity}
            | ({"price": entry.price} if entry.price is not None else {})
            for entry in self.cart_of(self.recipient.profile_id)
            if entry.product_id in self.catalog
        ]

    def _product(
        self, product_id: str, recommendation_id: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        product = self.catalog[product_id]
        page = self.shop.product_url.replace("{product_id}", product.id)
        return {
            "id": product.id,
            "name": product.name,
            "category": product.category,
            "description": product.description,
            "price": product.price,
            "image_url": product.image_url,
            "url": self.track(page, item=product.id, recommendation_id=recommendation_id),
            "reason": reason,
        }


def _filter_value(key: str, value: Any) -> Any:
    if key in ("category", "exclude_category"):
        return (value,) if isinstance(value, str) else tuple(value)
    return value


class _Lazy(Sequence[Any]):
    """A list computed when the template first looks at it: most templates never read the cart."""

    def __init__(self, load: Callable[[], list[Any]]):
        self._load = load
        self._items: list[Any] | None = None

    def _loaded(self) -> list[Any]:
        if self._items is None:
            self._items = self._load()
        return self._items

    def __getitem__(self, index: Any) -> Any:
        return self._loaded()[index]

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._loaded())

    def __bool__(self) -> bool:
        return bool(self._loaded())
