"""A customer's cart as their events left it: what they added, took out or changed since their last order.

Read from the event log (a cart is not stored apart from its events), including the events of profiles
merged into this one: a visitor's anonymous cart is still theirs once they sign in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from engage.store.codec import json_value

__all__ = ["CartItem", "current_cart", "CART_EVENTS"]

CART_EVENTS = ("ProductAdded", "ProductRemoved", "ProductQuantityUpdated", "OrderCompleted")
_LOOKBACK = 500
_EVENTS = text(
    "SELECT event, properties FROM event_log WHERE profile_id IN (SELECT CAST(:profile AS VARCHAR(32)) "
    "UNION SELECT from_profile FROM profile_merges WHERE into_profile = :profile) "
    f"AND event IN ({', '.join(repr(name) for name in CART_EVENTS)}) ORDER BY seq DESC LIMIT {_LOOKBACK}"
)


@dataclass(frozen=True)
class CartItem:
    product_id: str
    quantity: int
    price: float | None
    """The price the storefront reported when it was added, if it did."""


def current_cart(connection: Connection, profile_id: str) -> list[CartItem]:
    """The items in the profile's cart now, in the order they were first added."""
    since_order: list[tuple[str, dict[str, Any]]] = []
    for event, properties in connection.execute(_EVENTS, {"profile": profile_id}):
        if event == "OrderCompleted":
            break
        since_order.append((event, json_value(properties)))
    items: dict[str, CartItem] = {}
    for event, properties in reversed(since_order):
        product = properties.get("product_id")
        if not isinstance(product, str | int) or isinstance(product, bool):
            continue
        product = str(product)
        quantity = _quantity(properties.get("quantity"))
        current = items.get(product)
        if event == "ProductAdded":
            price = _price(properties.get("price"))
            held = current.quantity if current else 0
            items[product] = CartItem(
                product, held + quantity, price if price is not None else current and current.price
            )
        elif event == "ProductRemoved" and current is not None:
            left = current.quantity - quantity if properties.get("quantity") is not None else 0
            if left > 0:
                items[product] = CartItem(product, left, current.price)
            else:
                del items[product]
        elif event == "ProductQuantityUpdated" and current is not None:
            if quantity > 0:
                items[product] = CartItem(product, quantity, current.price)
            else:
                del items[product]
    return list(items.values())


def _quantity(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return 1 if value is None else 0


def _price(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
