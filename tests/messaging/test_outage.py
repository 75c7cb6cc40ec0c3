"""A provider outage delays sends, never drops or doubles them: SendGrid and Twilio down for hours, then
back, and every message waiting in between goes out exactly once."""

from __future__ import annotations

from collections import Counter

from tests.messaging.conftest import CUSTOMERS, Shop


def test_an_outage_of_both_providers_delays_every_message_and_sends_each_once(shop: Shop) -> None:
    messaging = shop.engage.messaging
    shop.sendgrid.down(True)
    shop.twilio.down(True)
    emails = [messaging.send("email/weekly_picks", f"c{n}") for n in range(CUSTOMERS)]
    texts = [messaging.send("sms/win_back", f"c{n}") for n in range(CUSTOMERS)]
    queued = [message for message in emails + texts if message.status == "queued"]
    assert len(queued) >= CUSTOMERS, "the emails (and the texts of customers who opted in) wait to be sent"

    for _ in range(4):  # three hours of outage: each attempt fails and is tried again later
        messaging.dispatch()
        shop.clock.advance(minutes=45)
    assert not shop.sendgrid.deliveries and not shop.twilio.messages
    waiting = [messaging.get(message.id) for message in queued]
    assert all(
        message is not None and message.status == "queued" and message.attempts >= 2 for message in waiting
    )

    shop.sendgrid.down(False)
    shop.twilio.down(False)
    for _ in range(6):
        shop.clock.advance(hours=1)
        messaging.dispatch()

    sent = [messaging.get(message.id) for message in queued]
    assert all(message is not None and message.status == "sent" for message in sent), [
        (m.status, m.error) for m in sent if m is not None
    ]
    to = Counter(address for delivery in shop.sendgrid.deliveries for address in delivery.to)
    texted = Counter(sms.to for sms in shop.twilio.messages)
    assert to and max(to.values()) == 1, "each email went out once"
    assert sum(to.values()) == sum(1 for m in queued if m.channel == "email")
    assert (
        sum(texted.values()) == sum(1 for m in queued if m.channel == "sms")
        and max(texted.values(), default=1) == 1
    )
    assert not shop.events("MessageFailed")
