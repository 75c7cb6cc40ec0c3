"""Who enters a journey: the trigger's filters, the instance key, the re-entry rules, segment triggers,
and profiles that merge."""

from __future__ import annotations

import pytest

from tests.helpers import track
from tests.journeys.conftest import Shop, customer

JOURNEY = """
trigger:
  event: CartViewed
  where:
    total: {gte: 50}
re_entry: {re_entry}
steps:
  - wait: 1d
"""


@pytest.mark.parametrize(
    ("rule", "entries"),
    [
        ("never", ["active", None, None, None]),
        ("always", ["active", None, "active", "active"]),
        ("{after: 2d}", ["active", None, None, "active"]),
    ],
)
def test_re_entry_rules(shop: Shop, rule: str, entries: list[str | None]) -> None:
    shop.journey("carts", JOURNEY.replace("{re_entry}", rule))
    shop.send(customer("ann"))
    seen = []
    for hours in (0, 12, 24, 24):  # at 0h, 12h (the first instance still runs), 36h and 60h
        shop.later(hours=hours)
        before = len(shop.instances("carts"))
        shop.send(track("ann", "CartViewed", total=80))
        found = shop.instances("carts")
        seen.append(found[-1]["status"] if len(found) > before else None)
    assert seen == entries


def test_the_trigger_filter_and_a_missing_key_keep_customers_out(shop: Shop) -> None:
    shop.journey("carts", JOURNEY.replace("{re_entry}", "always"))
    shop.journey(
        "keyed",
        """
        trigger:
          event: CartViewed
        key: properties.cart_id
        steps:
          - wait: 1d
        """,
    )
    shop.send(customer("ann"), track("ann", "CartViewed", total=20))
    assert shop.instances("carts") == [] and shop.instances("keyed") == []


def test_entering_a_segment_starts_the_win_back_journey(shop: Shop) -> None:
    shop.shipped("win_back")
    shop.send(customer("ann"), track("ann", "OrderCompleted", order_id="o1", revenue=30))
    assert shop.instances("win_back") == []
    shop.later(days=61)  # no order in 60 days: lapsed
    (instance,) = shop.instances("win_back")
    assert instance["trigger"]["name"] == "SegmentEntered"
    assert shop.messages() == []  # it waits for 10:00 on a Tuesday, Wednesday or Thursday
    shop.later(days=3)
    assert [m.template for m in shop.messages(user="ann")] == ["email/win_back"]
    shop.send(track("ann", "OrderCompleted", order_id="o2", revenue=45))
    (ended,) = shop.instances("win_back")
    assert (ended["status"], ended["exit_reason"]) == ("exited", "exit_on OrderCompleted")
    assert ended["goal_at"] is not None


def test_a_cart_started_signed_out_follows_the_customer_when_they_sign_in(shop: Shop) -> None:
    shop.shipped("abandoned_cart")
    shop.send(customer("ann"))  # known from another device
    visitor = {"type": "track", "anonymousId": "anon-1", "event": "ProductAdded"}
    shop.send({**visitor, "properties": {"cart_id": "c1", "product_id": "1"}})
    (before,) = shop.instances("abandoned_cart")
    assert before["user"] is None
    shop.send({"type": "identify", "userId": "ann", "anonymousId": "anon-1"})  # signs in: the profiles merge
    (after,) = shop.instances("abandoned_cart")
    assert (after["id"], after["user"]) == (before["id"], "ann")
    shop.later(hours=1)
    assert [m.address for m in shop.messages()] == ["ann@example.com"]
