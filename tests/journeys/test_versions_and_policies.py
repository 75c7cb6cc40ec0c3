"""A changed journey file is a new version that running instances do not follow; sends go through the
messaging policies (frequency caps, quiet hours) and their send keys."""

from __future__ import annotations

from engage.journeys.library import Library
from tests.helpers import track
from tests.journeys.conftest import Shop, customer

TWO_EMAILS = """
trigger:
  event: UserSignedUp
steps:
  - wait: 1d
  - send: {channel: email, template: welcome}
  - wait: 1d
  - send: {channel: email, template: weekly_picks}
"""


def test_running_instances_finish_on_the_version_they_started_on(shop: Shop) -> None:
    shop.journey("onboarding", TWO_EMAILS)
    shop.send(customer("old"), track("old", "UserSignedUp"))
    first = shop.instances("onboarding")[0]["version"]
    shop.journey("onboarding", TWO_EMAILS.replace("weekly_picks", "browse_abandonment").replace("1d", "2h"))
    shop.send(customer("new"), track("new", "UserSignedUp"))
    versions = {i["user"]: i["version"] for i in shop.instances("onboarding")}
    assert versions["old"] == first != versions["new"]
    shop.later(days=3)
    assert [m.template for m in shop.messages(user="old")] == ["email/welcome", "email/weekly_picks"]
    assert [m.template for m in shop.messages(user="new")] == ["email/welcome", "email/browse_abandonment"]
    # A removed file starts nobody; what runs on it finishes.
    shop.send(customer("late"), track("late", "UserSignedUp"))
    (shop.root / "journeys" / "onboarding.yml").unlink()
    applied = {change.name: change.action for change in shop.engage.journeys.sync()}
    assert applied == {"onboarding": "removed"}
    shop.send(customer("later"), track("later", "UserSignedUp"))
    shop.later(days=3)
    assert len(shop.messages(user="late")) == 2 and shop.messages(user="later") == []


def test_a_reload_in_another_process_reaches_a_running_worker(shop: Shop) -> None:
    shop.journey("onboarding", TWO_EMAILS)
    other = Library(shop.root, shop.engage.database)  # `engage journeys reload`, elsewhere
    (shop.root / "journeys" / "welcome_back.yml").write_text(
        "name: welcome_back\ntrigger:\n  event: UserSignedIn\n"
        "steps:\n  - send: {channel: email, template: win_back}\n"
    )
    assert {c.name: c.action for c in other.sync(shop.clock.now)}["welcome_back"] == "added"
    shop.engage.journeys.library.check_every = 0.0  # a worker looks again after `check_every` seconds
    shop.send(customer("ann"), track("ann", "UserSignedIn"))
    assert [m.template for m in shop.messages()] == ["email/win_back"]


def test_frequency_caps_hold_across_journeys(shop: Shop) -> None:
    for name, event, template in (
        ("views", "ProductViewed", "browse_abandonment"),
        ("carts", "CartViewed", "win_back"),
    ):
        shop.journey(
            name,
            f"trigger:\n  event: {event}\nre_entry: always\n"
            f"steps:\n  - send: {{channel: email, template: {template}}}\n",
        )
    shop.send(customer("ann"))
    for day in range(6):  # messaging.yml: email at most 5 a week
        shop.send(track("ann", "ProductViewed" if day % 2 else "CartViewed"))
        shop.engage.messaging.dispatch()
        shop.later(hours=20)
    statuses = [(m.status, m.error) for m in shop.messages()]
    assert statuses[:5] == [("sent", None)] * 5
    assert statuses[5] == ("suppressed", "frequency cap: 5 of 5 per 7d")
    assert shop.engage.journeys.stats("views").sends == {
        "email/browse_abandonment": {"sent": 2, "suppressed": 1}
    }


def test_quiet_hours_defer_an_sms_to_the_morning_in_the_customers_zone(shop: Shop) -> None:
    shop.journey(
        "texts",
        """
        trigger:
          event: CartViewed
        steps:
          - send: {channel: sms, template: abandoned_cart}
        """,
    )
    shop.clock.advance(hours=10)  # 22:00 in New York, 04:00 in Paris, 11:00 in Tokyo
    shop.send(
        customer("ny", sms=True), customer("paris", sms=True, timezone="Europe/Paris"),
        customer("tokyo", sms=True, timezone="Asia/Tokyo"),
        *[track(user, "CartViewed") for user in ("ny", "paris", "tokyo")],
    )  # fmt: skip
    due = {user: shop.messages(user=user)[0].due_at for user in ("ny", "paris", "tokyo")}
    assert due["tokyo"] == shop.clock.now
    assert (due["paris"] - shop.clock.now).total_seconds() == 5 * 3600  # 09:00 in Paris
    assert (due["ny"] - shop.clock.now).total_seconds() == 11 * 3600  # 09:00 in New York


def test_a_repeated_step_finds_its_message_already_recorded(shop: Shop) -> None:
    shop.journey(
        "hello", "trigger:\n  event: UserSignedUp\nsteps:\n  - send: {channel: email, template: welcome}\n"
    )
    shop.send(customer("ann"), track("ann", "UserSignedUp"))
    (message,) = shop.messages()
    again = shop.engage.messaging.send("email/welcome", "ann", key=message.send_key)
    assert again.id == message.id and len(shop.messages()) == 1
