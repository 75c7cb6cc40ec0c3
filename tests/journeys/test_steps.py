"""Every kind of step, on journeys written for the test."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tests.helpers import track
from tests.journeys.conftest import Shop, customer


def test_wait_until_a_local_time_on_allowed_weekdays(shop: Shop) -> None:
    shop.journey(
        "thanks",
        """
        trigger:
          event: OrderCompleted
        steps:
          - wait:
              until: "10:00"
              days: [mon, tue, wed, thu, fri]
          - send: {channel: email, template: cross_sell}
        """,
    )
    # Friday 2026-06-05, 16:00 UTC: noon in New York, 18:00 in Paris; the next weekday 10:00 is Monday.
    shop.clock.now = datetime(2026, 6, 5, 16, tzinfo=UTC)
    shop.send(
        customer("ny"), customer("paris", timezone="Europe/Paris"), customer("tokyo", timezone="Asia/Tokyo"),
        track("ny", "OrderCompleted"), track("paris", "OrderCompleted"), track("tokyo", "OrderCompleted"),
    )  # fmt: skip
    zones = {"ny": "America/New_York", "paris": "Europe/Paris", "tokyo": "Asia/Tokyo"}
    local = {
        i["user"]: _utc(i["due_at"]).astimezone(ZoneInfo(zones[i["user"]])) for i in shop.instances("thanks")
    }
    assert {user: moment.strftime("%a %H:%M") for user, moment in local.items()} == {
        "ny": "Mon 10:00",
        "paris": "Mon 10:00",
        "tokyo": "Mon 10:00",
    }
    shop.later(days=3)
    sent = {m.address: m.created_at for m in shop.messages()}
    assert sent["tokyo@example.com"] < sent["paris@example.com"] < sent["ny@example.com"]


def test_wait_for_resumes_on_the_matching_event_or_times_out(shop: Shop) -> None:
    shop.journey(
        "browse",
        """
        trigger:
          event: ProductViewed
        re_entry: always
        steps:
          - wait_for:
              event: ProductAdded
              where:
                product_id: {eq: "7"}
              timeout: 2h
              on_timeout:
                - send: {channel: email, template: browse_abandonment}
          - update:
              engaged: true
        """,
    )
    shop.send(customer("ann"), customer("bob"), track("ann", "ProductViewed"), track("bob", "ProductViewed"))
    shop.later(minutes=30)
    shop.send(track("ann", "ProductAdded", product_id="8"), track("bob", "ProductAdded", product_id="7"))
    by_user = {i["user"]: i for i in shop.instances("browse")}
    assert by_user["bob"]["status"] == "completed"  # resumed at once, on past its wait
    assert by_user["ann"]["status"] == "active" and by_user["ann"]["waiting_for"] == "ProductAdded"
    shop.later(hours=2)
    assert [m.address for m in shop.messages()] == ["ann@example.com"]
    profiles = {user: shop.engage.database.fetch(
        "SELECT traits FROM profiles WHERE user_id = :user", {"user": user}
    )[0][0] for user in ("ann", "bob")}  # fmt: skip
    assert all('"engaged":true' in traits.replace(" ", "") for traits in profiles.values())


def test_branch_on_traits_segments_and_the_trigger_properties(shop: Shop) -> None:
    shop.journey(
        "ordered",
        """
        trigger:
          event: OrderCompleted
        re_entry: always
        steps:
          - branch:
              - when:
                  trigger:
                    revenue: {gte: 100}
                steps:
                  - exit: {reason: big spender}
              - when:
                  in_segment: sms_opted_in
                steps:
                  - exit: {reason: texted}
              - when:
                  trait: plan
                  eq: gold
                steps:
                  - exit: {reason: gold}
              - otherwise:
                  - exit: {reason: everyone else}
        """,
    )
    shop.send(
        customer("big"), customer("texter", sms=True), customer("gold", plan="gold"), customer("plain"),
        track("big", "OrderCompleted", revenue=250), track("texter", "OrderCompleted", revenue=10),
        track("gold", "OrderCompleted", revenue=10), track("plain", "OrderCompleted", revenue=10),
    )  # fmt: skip
    reasons = {i["user"]: i["exit_reason"] for i in shop.instances("ordered")}
    assert reasons == {"big": "big spender", "texter": "texted", "gold": "gold", "plain": "everyone else"}


def test_split_arms_are_stable_per_customer_and_follow_the_percentages(shop: Shop) -> None:
    body = """
        trigger:
          event: CartViewed
        re_entry: always
        steps:
          - split:
              - arm: a
                percent: 50
                steps:
                  - send: {channel: email, template: welcome}
              - arm: b
                percent: 30
                steps:
                  - send: {channel: email, template: weekly_picks}
              - arm: control
                percent: 20
                holdout: true
        """
    shop.journey("ab", body)
    users = [f"u{n}" for n in range(600)]
    shop.send(*[customer(user) for user in users], *[track(user, "CartViewed") for user in users])
    first = {i["user"]: i["arm"] for i in shop.instances("ab")}
    counts = Counter(first.values())
    assert 260 <= counts["a"] <= 340 and 140 <= counts["b"] <= 220 and 80 <= counts["control"] <= 160
    assert Counter(m.template for m in shop.messages()) == {
        "email/welcome": counts["a"],
        "email/weekly_picks": counts["b"],
    }
    # The same customers again, on a new version of the file: each lands in the same arm.
    shop.journey("ab", body + "description: the same split, a new version\n")
    shop.later(minutes=1)
    shop.send(*[track(user, "CartViewed") for user in users])
    second = [i for i in shop.instances("ab") if i["version"] != shop.instances("ab")[0]["version"]]
    assert len(second) == 600
    assert all(first[i["user"]] == i["arm"] for i in second)
    exits = Counter(i["exit_reason"] for i in shop.instances("ab"))
    assert exits["holdout"] == 2 * counts["control"]


def test_send_falls_back_to_the_other_channel_without_consent(shop: Shop) -> None:
    shop.journey(
        "nudge",
        """
        trigger:
          event: CheckoutStarted
        steps:
          - send:
              channel: sms
              template: abandoned_cart
              fallback: {channel: email, template: abandoned_cart}
        """,
    )
    shop.send(
        customer("texter", sms=True), customer("mailer", phone=True), customer("nobody", email=False),
        *[track(user, "CheckoutStarted") for user in ("texter", "mailer", "nobody")],
    )  # fmt: skip
    by_user = {}
    for user in ("texter", "mailer", "nobody"):
        (message,) = shop.messages(user=user)
        by_user[user] = (message.template, message.status, message.error)
    assert by_user["texter"] == ("sms/abandoned_cart", "queued", None)
    assert by_user["mailer"] == ("email/abandoned_cart", "queued", None)
    assert by_user["nobody"] == ("email/abandoned_cart", "suppressed", "no email address")


def test_every_transition_is_an_event_on_the_stream(shop: Shop) -> None:
    shop.journey(
        "hello",
        """
        trigger:
          event: UserSignedUp
        steps:
          - wait: 1h
          - send: {channel: email, template: welcome}
        """,
    )
    shop.send(customer("ann"), track("ann", "UserSignedUp"))
    shop.later(hours=1)
    shop.engage.messaging.dispatch()
    shop.run()
    (instance,) = shop.instances("hello")
    (entered,) = shop.events("JourneyEntered")
    assert entered.properties["instance"] == instance["id"] and entered.channel == "system"
    steps = [(e.properties["step"], e.properties["kind"]) for e in shop.events("JourneyStepCompleted")]
    assert steps == [(0, "wait"), (1, "send")]
    (sent,) = shop.events("MessageSent")
    assert (sent.properties["journey"], sent.properties["instance"]) == ("hello", instance["id"])
    (exited,) = shop.events("JourneyExited")
    assert exited.properties["reason"] == "completed"


def _utc(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
