"""Sending through the real `sendgrid` and `twilio` libraries to local fake providers: what arrives there,
what engage records, the policies, retries and failures, and the window where a send is unknown."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from engage.connectors import sendgrid as sendgrid_connector
from engage.messaging.dispatcher import LEASE, UNKNOWN_GRACE
from engage.testing.providers import sendgrid_event
from tests.helpers import send, track
from tests.messaging.conftest import PUBLIC_URL, Shop

AUDIENCE = [f"c{n}" for n in range(12)]


def test_a_campaign_goes_to_sendgrid_in_batches_each_customer_getting_their_own_message(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sendgrid_connector, "MAX_PERSONALIZATIONS", 5)
    messaging = shop.engage.messaging
    records = messaging.send_many("email/weekly_picks", AUDIENCE, key=lambda user: f"weekly:49:{user}")
    assert {record.status for record in records} == {"queued"}
    assert messaging.dispatch() == 12
    assert len(shop.sendgrid.requests) == 3  # 5 + 5 + 2 personalizations
    deliveries = {delivery.to[0]: delivery for delivery in shop.sendgrid.deliveries}
    assert set(deliveries) == {f"c{n}@example.com" for n in range(12)}
    for record in records:
        sent = messaging.get(record.id)
        assert sent is not None and sent.status == "sent" and sent.provider == "sendgrid"
        delivery = deliveries[sent.address]  # type: ignore[index]
        number = sent.address.split("@")[0][1:]  # type: ignore[union-attr]
        assert delivery.subject == f"Cus{number}'s picks this week"
        assert delivery.custom_args == {sendgrid_connector.SEND_ID_ARG: sent.id}
        assert delivery.html == sent.body and delivery.text == sent.text  # what was sent is what is kept
        assert delivery.html.count(f'href="{PUBLIC_URL}/c/') >= 6  # 4 products, the header, the button
        assert sent.provider_id is not None and sent.provider_id.startswith(delivery.message_id.split(".")[0])
        unsubscribe = delivery.headers["List-Unsubscribe"]
        assert "<mailto:support@example.com?subject=unsubscribe%20" in unsubscribe
        assert f"<{PUBLIC_URL}/u/" in unsubscribe
        assert delivery.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert delivery.from_email == "shop@example.com" and delivery.reply_to == "support@example.com"
    assert len(shop.events("MessageSent")) == 12
    shown = shop.events("RecommendationShown")
    assert len(shown) == 12 and {event.channel for event in shown} == {"email"}
    assert all(len(event.properties["items"]) == 4 for event in shown)


def test_the_same_send_key_is_recorded_once_and_sent_once(shop: Shop) -> None:
    messaging = shop.engage.messaging
    first = messaging.send("email/welcome", "c1", key="journey:welcome:c1:step-1")
    again = messaging.send("email/welcome", "c1", key="journey:welcome:c1:step-1")
    assert again.id == first.id
    messaging.dispatch()
    messaging.send("email/welcome", "c1", key="journey:welcome:c1:step-1")
    messaging.dispatch()
    assert len(shop.sendgrid.deliveries) == 1


def test_sms_go_through_twilio_only_to_customers_who_opted_in(shop: Shop) -> None:
    messaging = shop.engage.messaging
    send(shop.engage, track("c2", "ProductAdded", product_id=next(iter(shop.engage.recommend.catalog)).id))
    opted_in, not_asked = messaging.send_many("sms/abandoned_cart", ["c2", "c3"])
    assert not_asked.status == "suppressed" and not_asked.error == "not subscribed to sms"
    messaging.dispatch()
    (sms,) = shop.twilio.messages
    sent = messaging.get(opted_in.id)
    assert sent is not None and sent.status == "sent" and sent.provider_id == sms.sid
    assert sms.to == "+14155550002" and sms.messaging_service_sid == "MG" + "2" * 32
    assert sms.status_callback == f"{PUBLIC_URL}/hooks/twilio/status?send_id={opted_in.id}"
    assert sms.body == sent.body and "your cart is waiting (1 item)" in sms.body
    assert sms.body.count(f"{PUBLIC_URL}/c/") == 2  # the cart and one pick
    assert [event.channel for event in shop.events("RecommendationShown")] == ["sms"]


def test_no_email_after_an_unsubscribe(shop: Shop) -> None:
    send(shop.engage, {"type": "track", "userId": "c4", "event": "Unsubscribed", "properties": {}})
    record = shop.engage.messaging.send("email/weekly_picks", "c4")
    assert (record.status, record.error) == ("suppressed", "not subscribed to email")
    assert shop.engage.messaging.dispatch() == 0 and not shop.sendgrid.deliveries


def test_marketing_waits_for_the_end_of_quiet_hours_in_the_customers_time_zone(shop: Shop) -> None:
    messaging = shop.engage.messaging
    shop.clock.now = shop.clock.now.replace(hour=2)  # 22:00 in New York, 04:00 in Paris
    send(shop.engage, {"type": "identify", "userId": "c6", "traits": {"timezone": "Europe/Paris"}})
    new_york, paris = messaging.send_many("sms/abandoned_cart", ["c0", "c6"])
    confirmation = messaging.send("sms/optin_confirmation", "c2")  # transactional: never waits
    assert new_york.due_at == shop.clock.now.replace(hour=13)  # 09:00 in New York
    assert paris.due_at == shop.clock.now.replace(hour=7)  # 09:00 in Paris
    history = messaging.history(new_york.id)
    assert history[0][0] == "queued" and "quiet hours in America/New_York until 09:00" in (
        history[0][2] or ""
    )
    messaging.dispatch()
    assert [sms.to for sms in shop.twilio.messages] == ["+14155550002"]
    assert messaging.get(confirmation.id).status == "sent"  # type: ignore[union-attr]
    shop.clock.advance(hours=5)
    messaging.dispatch()
    assert [sms.to for sms in shop.twilio.messages][1:] == ["+14155550006"]
    shop.clock.advance(hours=6)
    messaging.dispatch()
    assert [sms.to for sms in shop.twilio.messages][2:] == ["+14155550000"]
    assert messaging.get(new_york.id).status == "sent"  # type: ignore[union-attr]


def test_frequency_caps_suppress_marketing_but_never_transactional_messages(shop: Shop) -> None:
    messaging = shop.engage.messaging  # the shipped cap: 5 marketing emails per 7 days
    for week_day in range(5):
        messaging.send("email/weekly_picks", "c5", key=f"weekly:{week_day}:c5")
        messaging.dispatch()
        shop.clock.advance(hours=1)
    sixth = messaging.send("email/weekly_picks", "c5", key="weekly:5:c5")
    assert (sixth.status, sixth.error) == ("suppressed", "frequency cap: 5 of 5 per 7d")
    welcome = messaging.send("email/welcome", "c5")
    messaging.dispatch()
    assert messaging.get(welcome.id).status == "sent"  # type: ignore[union-attr]
    shop.clock.advance(days=7)
    assert messaging.send("email/weekly_picks", "c5", key="weekly:7:c5").status == "queued"


def test_429_and_5xx_wait_with_backoff_then_go_once(shop: Shop) -> None:
    messaging = shop.engage.messaging
    shop.sendgrid.fail_next(1, 429)
    shop.twilio.fail_next(2, 500)
    email = messaging.send("email/weekly_picks", "c0")
    sms = messaging.send("sms/abandoned_cart", "c0")
    messaging.dispatch()
    waiting = messaging.get(email.id)
    assert waiting is not None and waiting.status == "queued" and waiting.attempts == 1
    assert timedelta(seconds=1) <= waiting.due_at - shop.clock.now <= timedelta(seconds=30)  # Retry-After: 1
    assert not shop.sendgrid.deliveries and not shop.twilio.messages
    for _ in range(3):
        shop.clock.advance(minutes=2)
        messaging.dispatch()
    assert len(shop.sendgrid.deliveries) == 1 and len(shop.twilio.messages) == 1
    assert messaging.get(sms.id).attempts == 3  # type: ignore[union-attr]
    retries = [detail for status, _, detail in messaging.history(sms.id) if status == "queued" and detail]
    assert len(retries) == 2 and all("Twilio answered 500" in detail for detail in retries)
    assert len(shop.events("MessageSent")) == 2 and not shop.events("MessageFailed")


def test_a_provider_down_for_good_fails_the_message_after_its_attempts(shop: Shop) -> None:
    messaging = shop.engage.messaging
    shop.sendgrid.down(True)
    email = messaging.send("email/weekly_picks", "c1")
    for _ in range(10):
        messaging.dispatch()
        shop.clock.advance(hours=2)
    failed = messaging.get(email.id)
    assert failed is not None and (failed.status, failed.attempts) == ("failed", 8)
    assert failed.error is not None and failed.error.startswith(
        "gave up after 8 attempts: SendGrid answered 503"
    )
    (event,) = shop.events("MessageFailed")
    assert event.user_id == "c1" and event.properties["message_id"] == email.id and event.channel == "email"


def test_a_refused_message_fails_at_once_and_a_refused_batch_is_sent_again_one_by_one(shop: Shop) -> None:
    messaging = shop.engage.messaging
    shop.twilio.fail_next(1, 400)
    sms = messaging.send("sms/abandoned_cart", "c2")
    messaging.dispatch()
    assert messaging.get(sms.id).status == "failed"  # type: ignore[union-attr]
    assert "Twilio answered 400" in shop.events("MessageFailed")[0].properties["reason"]
    shop.sendgrid.fail_next(2, 400)  # the batch, then its first message alone
    batch = messaging.send_many("email/weekly_picks", ["c3", "c5", "c7"])
    messaging.dispatch()
    outcomes = {record.address: messaging.get(record.id).status for record in batch}  # type: ignore[union-attr]
    assert sorted(outcomes.values()) == ["failed", "sent", "sent"]  # the one refused alone, whichever it was
    sent = sorted(address for address, status in outcomes.items() if status == "sent")
    assert sorted(delivery.to[0] for delivery in shop.sendgrid.deliveries) == sent


def test_an_unanswered_sms_is_looked_up_at_twilio_and_never_sent_twice(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    messaging = shop.engage.messaging
    monkeypatch.setattr(messaging.connectors.sms.client.http_client, "timeout", 0.3)
    shop.twilio.hang_next(1, 1.0)  # Twilio takes the message, but answers after engage gave up
    sms = messaging.send("sms/abandoned_cart", "c0")
    messaging.dispatch()
    unknown = messaging.get(sms.id)
    assert unknown is not None and unknown.status == "unknown"
    time.sleep(1.0)  # let the fake finish taking the request it held
    shop.clock.advance(seconds=LEASE.total_seconds() + 1)
    messaging.dispatch()
    (sent_at_twilio,) = shop.twilio.messages
    settled = messaging.get(sms.id)
    assert settled is not None and settled.status == "sent" and settled.provider_id == sent_at_twilio.sid
    assert any("found at the provider" in (detail or "") for _, _, detail in messaging.history(sms.id))


def test_a_dispatcher_that_died_mid_batch_leaves_nothing_lost_nor_doubled(shop: Shop) -> None:
    messaging = shop.engage.messaging
    email, sms = messaging.send("email/weekly_picks", "c0"), messaging.send("sms/abandoned_cart", "c0")
    with shop.engage.database.write() as connection:  # claimed by a worker that then died
        assert len(messaging.records.claim(connection, shop.clock.now, 10)) == 2
    messaging.dispatch()
    assert not shop.sendgrid.deliveries and not shop.twilio.messages  # still its claim
    shop.clock.advance(seconds=LEASE.total_seconds() + 1)
    messaging.dispatch()  # Twilio never got the SMS: sent now; the email never left engage: sent now
    assert len(shop.twilio.messages) == 1 and len(shop.sendgrid.deliveries) == 1
    assert messaging.get(sms.id).status == messaging.get(email.id).status == "sent"  # type: ignore[union-attr]


def test_an_unanswered_email_waits_for_sendgrids_webhook_before_it_goes_again(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    messaging = shop.engage.messaging
    monkeypatch.setattr(messaging.connectors.email.client.client, "timeout", 0.3)
    shop.sendgrid.hang_next(1, 1.0)  # the batch taken by SendGrid, no answer in time
    answered, silent = messaging.send_many("email/weekly_picks", ["c1", "c3"])
    messaging.dispatch()
    assert {messaging.get(r.id).status for r in (answered, silent)} == {"unknown"}  # type: ignore[union-attr]
    assert shop.sendgrid.attempts == 1  # one batch request
    time.sleep(1.0)  # let the fake finish taking the request it held
    assert len(shop.sendgrid.deliveries) == 2
    # SendGrid's webhook settles the first: it was delivered.
    payload = [
        sendgrid_event(
            "delivered",
            "c1@example.com",
            timestamp=int(shop.clock.now.timestamp()),
            sg_message_id="x.0",
            custom_args={sendgrid_connector.SEND_ID_ARG: answered.id},
        )
    ]
    body = json.dumps(payload)
    headers = shop.signer.sign(body, str(int(shop.clock.now.timestamp())))
    assert shop.http.post("/hooks/sendgrid/events", content=body, headers=headers).status_code == 204
    shop.clock.advance(seconds=LEASE.total_seconds() + 1)
    messaging.dispatch()
    shop.clock.advance(seconds=UNKNOWN_GRACE.total_seconds() + 1)
    messaging.dispatch()
    assert messaging.get(answered.id).status == "delivered"  # type: ignore[union-attr]
    # No webhook ever came for the second: after the grace, it is sent again (the documented window).
    assert messaging.get(silent.id).status == "sent"  # type: ignore[union-attr]
    assert sorted(d.to[0] for d in shop.sendgrid.deliveries) == [
        "c1@example.com",
        "c3@example.com",
        "c3@example.com",
    ]
