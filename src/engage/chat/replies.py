"""How the bot's answers look on each channel: on the web, product cards (Rasa's generic template, which
Rasa's channels pass on and the webchat widget shows as a carousel) with buttons; by SMS, a short numbered
list with tracked links, kept to two segments where it can be."""

from __future__ import annotations

import json
from typing import Any

from engage.chat.shop import CartLine, ChatShop, Listing
from engage.messaging.sms import sms_length
from engage.recommend.catalog import Product

__all__ = ["listing_reply", "product_reply", "cart_text", "money", "SMS_ITEMS"]

SMS_ITEMS = 3
"""Items in an SMS list at most; fewer when three would not fit `SMS_SEGMENTS`."""
SMS_SEGMENTS = 2
_SMS_NAME = 26


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def listing_reply(
    shop: ChatShop, listing: Listing, intro: str, channel: str
) -> tuple[dict[str, Any], list[Product]]:
    """The keyword arguments of `dispatcher.utter_message` that show `listing`, and the products it shows
    (an SMS shows fewer when all would not fit its segments): what "the first one" means next."""
    if channel == "sms":
        body, count = intro, 0
        for count in range(min(SMS_ITEMS, len(listing.products)), 0, -1):
            body = _sms_list(shop, listing, intro, count)
            if sms_length(body).segments <= SMS_SEGMENTS:
                break
        return {"text": body}, listing.products[:count]
    elements = [_card(shop, listing, index, product) for index, product in enumerate(listing.products)]
    message = {
        "text": intro,
        "attachment": {"type": "template", "payload": {"template_type": "generic", "elements": elements}},
    }
    return message, listing.products


def product_reply(shop: ChatShop, listing: Listing, channel: str) -> dict[str, Any]:
    """One product's details (a listing of one, so its link is tracked like a list's)."""
    product = listing.products[0]
    stock = "In stock" if product.stock > 0 else "Out of stock for now"
    about = f"{product.name}: {money(product.price)}. {product.description} {stock}."
    if channel == "sms":
        return {"text": f"{about} {shop.link(listing, 0)}"}
    card = _card(shop, listing, 0, product)
    return {
        "text": about,
        "attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [card]}},
    }


def cart_text(lines: list[CartLine]) -> str:
    count = sum(line.quantity for line in lines)
    total = sum(line.total for line in lines)
    listed = "; ".join(
        f"{index + 1}. {line.quantity} x {line.product.name} {money(line.total)}"
        for index, line in enumerate(lines)
    )
    return f"Your cart ({count} item{'s' if count != 1 else ''}, {money(total)}): {listed}"


def _sms_list(shop: ChatShop, listing: Listing, intro: str, count: int) -> str:
    lines = [intro]
    for index, product in enumerate(listing.products[:count]):
        lines.append(
            f"{index + 1}. {_short(product.name)} {money(product.price)} {shop.link(listing, index)}"
        )
    return "\n".join(lines)


def _card(shop: ChatShop, listing: Listing, index: int, product: Product) -> dict[str, Any]:
    def postback(intent: str) -> str:
        return f"/{intent}{json.dumps({'product': product.id})}"

    return {
        "title": product.name,
        "subtitle": f"{money(product.price)} · {product.category}",
        "image_url": product.image_url,
        "default_action": {"type": "web_url", "url": shop.link(listing, index)},
        "buttons": [
            {"title": "View", "type": "web_url", "url": shop.link(listing, index)},
            {"title": "Details", "type": "postback", "payload": postback("product_info")},
            {"title": "More like this", "type": "postback", "payload": postback("related_items")},
            {"title": "Add to cart", "type": "postback", "payload": postback("add_to_cart")},
        ],
    }


def _short(name: str) -> str:
    return name if len(name) <= _SMS_NAME else name[: _SMS_NAME - 2].rstrip() + ".."  # GSM-7, not "…"
