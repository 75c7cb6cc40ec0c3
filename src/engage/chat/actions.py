"""engage's custom actions for the shop's Rasa bot, served by rasa-sdk's action server
(`engage.chat.action_server`). Each reads the turn (entities, slots, the customer's words), asks `ChatShop`,
and answers in the channel's form (`engage.chat.replies`). Slots remember the last list shown
(`shown_products`) and the product the conversation is about (`focus_product`), so "the second one", "more
like this" and "add it" resolve."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from engage.chat.replies import cart_text, listing_reply, money, product_reply
from engage.chat.shop import ChatShop, Listing, Shopper
from engage.chat.words import CategoryWords, amount, position, quantity
from engage.recommend.catalog import Product

__all__ = ["engage_actions"]

_BUDGET = re.compile(
    r"(?:under|below|less than|max(?:imum)?|up to|within|no more than|<|budget(?: of| is)?)\s*\$?\s*"
    r"(\d+(?:\.\d{1,2})?|[a-z]+(?:[ -][a-z]+)?)",
    re.IGNORECASE,
)
_ORDER_ID = re.compile(r"\b(?:#\s*)?([A-Z]{0,4}-?\d{3,})\b", re.IGNORECASE)
_NO_PREFERENCE = {
    "any",
    "anything",
    "whatever",
    "no preference",
    "dont care",
    "don't care",
    "not sure",
    "surprise me",
}


def engage_actions(shop: ChatShop) -> list[Action]:
    """Every custom action of the bot, bound to `shop`."""
    words = CategoryWords(shop.catalog)
    return [
        Recommend(shop, words), GiftIdeas(shop, words), SearchProducts(shop, words), ProductInfo(shop, words),
        RelatedItems(shop, words), AddToCart(shop, words), ShowCart(shop, words), RemoveFromCart(shop, words),
        Checkout(shop, words), OrderStatus(shop, words), OptOut(shop, words), HumanHandoff(shop, words),
        ValidateGiftFinder(words),
    ]  # fmt: skip


class _ShopAction(Action):
    action_name = ""

    def __init__(self, shop: ChatShop, words: CategoryWords):
        self.shop = shop
        self.words = words

    def name(self) -> str:
        return self.action_name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        metadata = tracker.latest_message.get("metadata") or {}
        shopper = self.shop.shopper(tracker.sender_id, metadata)
        return self.act(_Turn(tracker), shopper, dispatcher)

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        raise NotImplementedError

    # -- shared reading of a turn -----------------------------------------------------------------

    def category(self, turn: _Turn) -> tuple[str | None, str | None]:
        """The category this message asks for (not an earlier one: "and for me?" starts afresh)."""
        found = self.words.find(turn.entity("category"), turn.text)
        return found if found else (None, None)

    def budget(self, turn: _Turn) -> float | None:
        said = _BUDGET.search(turn.text)
        return amount(turn.entity("budget")) or (amount(said.group(1)) if said else None)

    def chosen(self, turn: _Turn) -> Product | None:
        """The product the customer means: named, pointed at in the last list, or the one being talked of."""
        named = self.shop.product(turn.entity("product"))
        if named is not None:
            return named
        shown = turn.slot("shown_products") or []
        index = position(turn.entity("ordinal"), len(shown))
        if index is None and shown:
            index = position(turn.text, len(shown)) if _points(turn.text) else None
        if index is not None:
            return self.shop.product(shown[index])
        focus = self.shop.product(turn.slot("focus_product"))
        if focus is not None:
            return focus
        return self.shop.product(shown[0]) if len(shown) == 1 else None

    def show(
        self, dispatcher: CollectingDispatcher, shopper: Shopper, listing: Listing, intro: str
    ) -> list[EventType]:
        message, products = listing_reply(self.shop, listing, intro, shopper.channel)
        dispatcher.utter_message(**message)
        shown = [product.id for product in products]
        return [
            SlotSet("shown_products", shown),
            SlotSet("focus_product", shown[0] if len(shown) == 1 else None),
        ]


class _Turn:
    def __init__(self, tracker: Tracker):
        self.tracker = tracker
        self.text = str(tracker.latest_message.get("text") or "")

    def entity(self, name: str) -> str | None:
        value = next(iter(self.tracker.get_latest_entity_values(name)), None)
        return str(value) if value is not None else None

    def slot(self, name: str) -> Any:
        return self.tracker.get_slot(name)


def _points(text: str) -> bool:
    """Whether a message points into a list ("the 2nd", "number 3", "#1", "first one", "last")."""
    return bool(
        re.search(
            r"\b(first|second|third|fourth|fifth|last|\d+(st|nd|rd|th)|number \d|#\d|no\.? ?\d)\b|^\D*\d\D*$",
            text,
            re.I,
        )
    )


# -- finding products -----------------------------------------------------------------------------------


class Recommend(_ShopAction):
    action_name = "action_recommend"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        category, style = self.category(turn)
        budget = self.budget(turn)
        listing = self.shop.recommend(shopper, category, style, budget)
        if not listing.products and style:
            listing = self.shop.recommend(shopper, category, None, budget)
        if not listing.products:
            dispatcher.utter_message(
                text=f"I found nothing{_intro('', category, style, budget)[:-1]}. Try a higher budget?"
            )
            return []
        return self.show(dispatcher, shopper, listing, _intro("Picks for you", category, style, budget))


class GiftIdeas(_ShopAction):
    action_name = "action_gift_ideas"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        category = turn.slot("category")
        found = self.words.find(category) if category and category != "any" else None
        budget = amount(turn.slot("budget"))
        recipient = str(turn.slot("recipient") or "them")
        listing = self.shop.gift(shopper, found[0] if found else None, found[1] if found else None, budget)
        if not listing.products and found:
            listing = self.shop.gift(shopper, found[0], None, budget)
        reset = [SlotSet("recipient", None), SlotSet("budget", None), SlotSet("category", None)]
        if not listing.products:
            dispatcher.utter_message(
                text=f"I found no gifts{_intro('', None, None, budget)[:-1]}. Try a higher budget?"
            )
            return reset
        who = recipient if recipient.lower().startswith(("my ", "a ", "an ", "the ")) else f"your {recipient}"
        intro = _intro(
            f"Gift ideas for {who}", found[0] if found else None, found[1] if found else None, budget
        )
        return self.show(dispatcher, shopper, listing, intro) + reset


class SearchProducts(_ShopAction):
    action_name = "action_search_products"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        category, style = self.category(turn)
        budget = self.budget(turn)
        query = turn.entity("product") or _BUDGET.sub("", turn.text)
        listing = self.shop.search(shopper, query, category, style, budget)
        if not listing.products and category:
            listing = self.shop.recommend(shopper, category, style, budget)
        if not listing.products:
            dispatcher.utter_message(
                text="I couldn't find that. Try other words, or ask me for recommendations."
            )
            return []
        return self.show(
            dispatcher, shopper, listing, _intro("Here is what I found", category, style, budget)
        )


class RelatedItems(_ShopAction):
    action_name = "action_related_items"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        product = self.chosen(turn)
        if product is None:
            dispatcher.utter_message(text="More like which one? Say its number from the list, or its name.")
            return []
        listing = self.shop.related(shopper, product)
        if not listing.products:
            dispatcher.utter_message(text=f"I have nothing close to the {product.name} yet.")
            return []
        events = self.show(dispatcher, shopper, listing, f"More like the {product.name}:")
        return events


class ProductInfo(_ShopAction):
    action_name = "action_product_info"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        product = self.chosen(turn)
        if product is None:
            dispatcher.utter_message(text="Which product? Say its number from the list, or its name.")
            return []
        dispatcher.utter_message(**product_reply(self.shop, self.shop.one(shopper, product), shopper.channel))
        return [SlotSet("focus_product", product.id)]


# -- the cart -------------------------------------------------------------------------------------------


class AddToCart(_ShopAction):
    action_name = "action_add_to_cart"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        product = self.chosen(turn)
        if product is None:
            dispatcher.utter_message(
                text="Which one should I add? Say its number from the list, or its name."
            )
            return []
        if product.stock <= 0:
            dispatcher.utter_message(text=f"Sorry, the {product.name} is out of stock.")
            return []
        count = quantity(turn.entity("quantity"))
        lines = self.shop.add_to_cart(shopper, product, count)
        dispatcher.utter_message(
            text=f"Added {count} x {product.name} ({money(product.price * count)}). {cart_text(lines)}. "
            'Say "checkout" when you are ready.'
        )
        return [SlotSet("focus_product", product.id), SlotSet("quantity", None)]


class ShowCart(_ShopAction):
    action_name = "action_show_cart"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        lines = self.shop.cart(shopper)
        if not lines:
            dispatcher.utter_message(text="Your cart is empty. Want some recommendations?")
            return []
        dispatcher.utter_message(text=f"{cart_text(lines)}.")
        return []


class RemoveFromCart(_ShopAction):
    action_name = "action_remove_from_cart"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        lines = self.shop.cart(shopper)
        if not lines:
            dispatcher.utter_message(text="Your cart is already empty.")
            return []
        in_cart = [line.product for line in lines]
        product = self.shop.product(turn.entity("product"))
        if product is None:
            index = position(turn.entity("ordinal") or turn.text, len(in_cart))
            product = in_cart[index] if index is not None else None
        if product is None:
            product = next((p for p in in_cart if _mentions(turn.text, p)), None)
        if product is None and len(in_cart) == 1:
            product = in_cart[0]
        if product is None or product not in in_cart:
            dispatcher.utter_message(text=f"Which one should I take out? {cart_text(lines)}.")
            return []
        left = self.shop.remove_from_cart(shopper, product)
        rest = cart_text(left) + "." if left else "Your cart is now empty."
        dispatcher.utter_message(text=f"Removed the {product.name}. {rest}")
        return [SlotSet("focus_product", None)]


class Checkout(_ShopAction):
    action_name = "action_checkout"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        lines = self.shop.cart(shopper)
        if not lines:
            dispatcher.utter_message(text="Your cart is empty, so there is nothing to check out yet.")
            return []
        dispatcher.utter_message(text=f"{cart_text(lines)}. Check out here: {self.shop.checkout_url()}")
        return []


# -- orders, consent, people ----------------------------------------------------------------------------


class OrderStatus(_ShopAction):
    action_name = "action_order_status"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        said = turn.entity("order_id") or turn.slot("order_id")
        if not said:
            found = _ORDER_ID.search(turn.text)
            said = found.group(1) if found else None
        if not said:
            dispatcher.utter_message(response="utter_ask_order_id")
            return []
        order = self.shop.order(shopper, said)
        if order is None:
            dispatcher.utter_message(
                text=f"I can't find order {said} on your account. Check your confirmation email?"
            )
            return [SlotSet("order_id", None)]
        total = f", {money(order.total)}" if order.total is not None else ""
        items = f"{order.items} item{'s' if order.items != 1 else ''}" if order.items else "your items"
        dispatcher.utter_message(
            text=f"Order {order.order_id} was placed on {order.placed_at:%b %d, %Y} ({items}{total}). "
            "It is being prepared; the tracking link comes by email when it ships."
        )
        return [SlotSet("order_id", None)]


class OptOut(_ShopAction):
    action_name = "action_opt_out"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        lowered = turn.text.lower()
        channels: list[str] = []
        if "mail" in lowered or "newsletter" in lowered:
            channels.append("email")
        if any(word in lowered for word in ("text", "sms", "messages", "phone")):
            channels.append("sms")
        if not channels:
            channels = ["sms"] if shopper.channel == "sms" else ["email", "sms"]
        self.shop.opt_out(shopper, channels)
        named = " and ".join("emails" if channel == "email" else "texts" for channel in channels)
        dispatcher.utter_message(
            text=f"Done: no more marketing {named} from us. You can opt back in any time."
        )
        return []


class HumanHandoff(_ShopAction):
    action_name = "action_human_handoff"

    def act(self, turn: _Turn, shopper: Shopper, dispatcher: CollectingDispatcher) -> list[EventType]:
        self.shop.handoff(shopper, turn.text)
        dispatcher.utter_message(
            text="I've asked a colleague to take over; they will answer here within one business day."
        )
        return []


# -- the gift finder form -------------------------------------------------------------------------------


class ValidateGiftFinder(FormValidationAction):
    def __init__(self, words: CategoryWords):
        self.words = words

    def name(self) -> str:
        return "validate_gift_finder_form"

    def validate_recipient(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        said = str(value or "").strip()
        return {"recipient": said or None}

    def validate_budget(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        found = amount(str(value)) if value else None
        if found is None:
            found = amount(str(tracker.latest_message.get("text") or ""))
        if found is None or found <= 0:
            dispatcher.utter_message(text="How much would you like to spend? For example $40.")
            return {"budget": None}
        return {"budget": f"{found:g}"}

    def validate_category(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(tracker.latest_message.get("text") or "")
        if (
            str(value or text).strip().lower() in _NO_PREFERENCE
            or text.strip().lower().rstrip(".!") in _NO_PREFERENCE
        ):
            return {"category": "any"}
        found = self.words.find(str(value) if value else None, text)
        if found is None:
            dispatcher.utter_message(
                text=f"I know these: {', '.join(self.words.categories)}. Or say 'anything'."
            )
            return {"category": None}
        return {"category": found[1] or found[0]}


def _intro(title: str, category: str | None, style: str | None, budget: float | None) -> str:
    where = f" in {(style or category or '').replace('-', ' ')}" if category or style else ""
    under = f" under {money(budget).removesuffix('.00')}" if budget else ""
    return f"{title}{where}{under}:"


def _mentions(text: str, product: Product) -> bool:
    words = [word for word in re.findall(r"[a-z]+", product.name.lower()) if len(word) > 3]
    return any(word in text.lower() for word in words)
