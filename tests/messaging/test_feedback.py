"""What comes back, through engage's HTTP API: SendGrid's signed Event Webhook, Twilio's signed status
callbacks and inbound SMS with their keywords, and engage's tracked links, pixel and unsubscribe."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from engage.connectors.sendgrid import SEND_ID_ARG
from engage.messaging.records import MessageRecord
from engage.testing.providers import SendGridSigner, sendgrid_event, twilio_signature
from tests.helpers import api_token, send
from tests.messaging.conftest import PUBLIC_URL, TWILIO_TOKEN, Shop


def sent_email(shop: Shop, user: str = "c1", template: str = "email/weekly_picks") -> MessageRecord:
    record = shop.engage.messaging.send(template, user)
    shop.engage.messaging.dispatch()
    sent = shop.engage.messaging.get(record.id)
    assert sent is not None and sent.status == "sent"
    return sent


def sendgrid_post(shop: Shop, events: list[dict], *, tamper: bool = False, sign: bool = True):
    body = json.dumps(events)
    timestamp = str(int(shop.clock.now.timestamp()))
    headers = shop.signer.sign(body, timestamp) if sign else {}
    if tamper:
        body = body.replace("delivered", "bounce")
    return shop.http.post(
        "/hooks/sendgrid/events", content=body, headers={**headers, "content-type": "application/json"}
    )


def path_of(url: str) -> str:
    return urlsplit(url).path


# -- SendGrid --------------------------------------------------------------------------------------------


def test_sendgrid_events_become_the_customers_events_once_and_move_the_message_on(shop: Shop) -> None:
    message = sent_email(shop)
    at = int(shop.clock.now.timestamp())
    args = {SEND_ID_ARG: message.id}
    events = [
        sendgrid_event(
            "processed",
            "c1@example.com",
            timestamp=at,
            sg_message_id="m.0",
            custom_args=args,
            sg_event_id="e1",
        ),
        sendgrid_event(
            "delivered",
            "c1@example.com",
            timestamp=at + 5,
            sg_message_id="m.0",
            custom_args=args,
            sg_event_id="e2",
        ),
        sendgrid_event(
            "open",
            "c1@example.com",
            timestamp=at + 60,
            sg_message_id="m.0",
            custom_args=args,
            sg_event_id="e3",
        ),
    ]
    assert sendgrid_post(shop, events).status_code == 204
    assert sendgrid_post(shop, events).status_code == 204  # SendGrid delivers again: stored once
    assert [e.message_id for e in shop.events("EmailDelivered")] == ["sg-e2"]
    assert len(shop.events("EmailOpened")) == 1 and len(shop.events("EmailProcessed")) == 1
    opened = shop.events("EmailOpened")[0]
    assert (
        opened.user_id == "c1" and opened.channel == "email" and opened.properties["message_id"] == message.id
    )
    assert shop.engage.messaging.get(message.id).status == "opened"  # type: ignore[union-attr]
    late = [
        sendgrid_event(
            "delivered", "c1@example.com", timestamp=at + 90, sg_message_id="m.0", custom_args=args
        )
    ]
    sendgrid_post(shop, late)
    assert shop.engage.messaging.get(message.id).status == "opened"  # type: ignore[union-attr]  # never back


def test_a_bounce_and_an_unsubscribe_from_sendgrid(shop: Shop) -> None:
    message = sent_email(shop, "c3")
    at = int(shop.clock.now.timestamp())
    events = [
        sendgrid_event(
            "bounce",
            "c3@example.com",
            timestamp=at,
            sg_message_id="m.0",
            custom_args={SEND_ID_ARG: message.id},
            reason="550 no such user",
        ),
        sendgrid_event(
            "unsubscribe", "C5@Example.com", timestamp=at, sg_message_id="other.0"
        ),  # not engage's send
    ]
    assert sendgrid_post(shop, events).status_code == 204
    assert shop.engage.messaging.get(message.id).status == "bounced"  # type: ignore[union-attr]
    assert shop.events("EmailBounced")[0].properties["reason"] == "550 no such user"
    (unsubscribed,) = shop.events("Unsubscribed")
    assert unsubscribed.user_id == "c5"  # found by its address
    assert shop.engage.messaging.send("email/weekly_picks", "c5").error == "not subscribed to email"


@pytest.mark.parametrize("how", ["unsigned", "tampered", "another key"])
def test_an_unsigned_or_altered_sendgrid_webhook_is_refused_and_records_nothing(shop: Shop, how: str) -> None:
    message = sent_email(shop)
    events = [
        sendgrid_event(
            "delivered",
            "c1@example.com",
            timestamp=1_780_000_000,
            sg_message_id="m.0",
            custom_args={SEND_ID_ARG: message.id},
        )
    ]
    if how == "another key":
        shop.signer = SendGridSigner()
    response = sendgrid_post(shop, events, sign=how != "unsigned", tamper=how == "tampered")
    assert response.status_code == 403
    assert not shop.events("EmailDelivered") and not shop.events("EmailBounced")
    assert shop.engage.messaging.get(message.id).status == "sent"  # type: ignore[union-attr]


def test_a_signed_but_malformed_payload_is_a_400_naming_the_field(shop: Shop) -> None:
    body = json.dumps([{"event": "delivered", "email": "c1@example.com", "timestamp": 1}])
    headers = shop.signer.sign(body, "1")
    response = shop.http.post("/hooks/sendgrid/events", content=body, headers=headers)
    assert response.status_code == 400 and "[0].sg_event_id: required" in response.text


# -- Twilio ----------------------------------------------------------------------------------------------


def test_twilio_status_callbacks_signed_as_twilio_does(shop: Shop) -> None:
    messaging = shop.engage.messaging
    first, second = (
        messaging.send("sms/optin_confirmation", "c0"),
        messaging.send("sms/optin_confirmation", "c2"),
    )
    messaging.dispatch()
    sid_first, sid_second = (messaging.get(r.id).provider_id for r in (first, second))  # type: ignore[union-attr]
    url = f"{PUBLIC_URL}/hooks/twilio/status?send_id={first.id}"
    params = {
        "MessageSid": sid_first,
        "MessageStatus": "delivered",
        "To": "+14155550000",
        "AccountSid": "AC1",
    }
    headers = {"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, params)}
    assert (
        shop.http.post(path_of(url) + f"?send_id={first.id}", data=params, headers=headers).status_code == 204
    )
    failed = {"MessageSid": sid_second, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    url_second = f"{PUBLIC_URL}/hooks/twilio/status"  # no send id: found by Twilio's SID
    headers = {"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url_second, failed)}
    assert shop.http.post("/hooks/twilio/status", data=failed, headers=headers).status_code == 204
    assert messaging.get(first.id).status == "delivered"  # type: ignore[union-attr]
    assert messaging.get(second.id).status == "failed"  # type: ignore[union-attr]
    assert [e.user_id for e in shop.events("SmsDelivered")] == ["c0"]
    assert shop.events("SmsUndelivered")[0].properties["error_code"] == "30003"
    forged = {**params, "MessageStatus": "failed"}
    response = shop.http.post("/hooks/twilio/status", data=forged, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert response.status_code == 403 and not shop.events("SmsFailed")


def inbound(shop: Shop, body: str, sender: str = "+14155550002", signature: str | None = None):
    params = {
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "MessageSid": f"SM{abs(hash((body, sender))):032d}"[:34],
        "AccountSid": "AC1",
    }
    sign = twilio_signature(TWILIO_TOKEN, f"{PUBLIC_URL}/hooks/twilio/sms", params)
    return shop.http.post("/hooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature or sign})


def test_stop_start_and_help_by_sms(shop: Shop) -> None:
    stop = inbound(shop, " stop ")
    assert stop.status_code == 200 and stop.headers["content-type"].startswith("text/xml")
    assert "you are unsubscribed" in stop.text and "<Message>" in stop.text
    (opted_out,) = shop.events("SmsOptedOut")
    assert opted_out.user_id == "c2" and opted_out.context["consent"]["source"] == "sms:STOP"
    assert shop.engage.messaging.send("sms/abandoned_cart", "c2").error == "not subscribed to sms"
    help_reply = inbound(shop, "HELP")
    assert "help at shop.example.com/help" in help_reply.text and len(shop.events("SmsOptedOut")) == 1
    assert "you are subscribed again" in inbound(shop, "Start").text
    shop.drain()
    assert shop.engage.messaging.send("sms/abandoned_cart", "c2", key="after-start").status == "queued"


def test_y_confirms_a_pending_opt_in_and_the_reply_carries_a_tracked_pick(shop: Shop) -> None:
    messaging = shop.engage.messaging
    assert inbound(shop, "Y", sender="+14155550003").text.count("<Message>") == 0  # nothing pending: a reply
    assert shop.events("SmsReplied")[0].properties["body"] == "Y"
    invitation = messaging.send("sms/optin", "c3")  # c3 gave their number and has not opted in
    messaging.dispatch()
    assert messaging.get(invitation.id).status == "sent"  # type: ignore[union-attr]
    confirmed = inbound(shop, "y", sender="+14155550003")
    assert "you're in! Our top pick for you:" in confirmed.text and f"{PUBLIC_URL}/c/" in confirmed.text
    (opted_in,) = shop.events("SmsOptedIn")
    assert opted_in.user_id == "c3" and opted_in.context["consent"]["source"] == "sms:double opt-in"
    link = confirmed.text.split(f"{PUBLIC_URL}", 1)[1].split()[0]
    assert shop.http.get(link, follow_redirects=False).status_code == 302  # the reply's link resolves
    assert shop.engage.messaging.send("sms/abandoned_cart", "c3").status == "queued"  # events drained above


def test_other_text_is_a_reply_and_an_unknown_number_that_says_stop_is_remembered(shop: Shop) -> None:
    assert inbound(shop, "Do you have this in blue?").text.count("<Message>") == 0
    assert shop.events("SmsReplied")[-1].properties["body"] == "Do you have this in blue?"
    inbound(shop, "STOP", sender="+14155559999")
    (stopped,) = shop.events("SmsOptedOut")
    assert stopped.anonymous_id == "sms:+14155559999"
    reader = {"Authorization": f"Bearer {api_token(shop.engage, 'profiles:read')}"}
    profile = shop.http.get("/v1/profiles/sms:+14155559999", headers=reader).json()
    assert profile["traits"]["phone"] == "+14155559999" and profile["consent"]["sms"]["subscribed"] is False


def test_an_unsigned_inbound_sms_is_refused_and_records_nothing(shop: Shop) -> None:
    assert inbound(shop, "STOP", signature="Zm9yZ2Vk").status_code == 403
    assert not shop.events("SmsOptedOut")


# -- engage's links --------------------------------------------------------------------------------------


def test_a_click_on_a_recommended_product_redirects_and_attributes_back(shop: Shop) -> None:
    message = sent_email(shop)
    product_links = [i for i, link in enumerate(message.links) if link["recommendation_id"]]
    index = product_links[0]
    link = message.links[index]
    response = shop.http.get(
        path_of(shop.engage.messaging.signer.click_url(message.id, index)), follow_redirects=False
    )
    assert response.status_code == 302 and response.headers["location"] == link["url"]
    assert link["url"] == f"https://shop.example.com/products/{link['item']}"
    (clicked,) = shop.events("EmailClicked")
    (attributed,) = shop.events("RecommendationClicked")
    assert clicked.user_id == attributed.user_id == "c1" and attributed.channel == "email"
    assert attributed.properties == {
        "recommendation_id": link["recommendation_id"],
        "product_id": link["item"],
        "message_id": message.id,
    }
    shown = [
        e
        for e in shop.events("RecommendationShown")
        if e.properties["recommendation_id"] == link["recommendation_id"]
    ]
    assert len(shown) == 1 and link["item"] in shown[0].properties["items"]
    assert shop.engage.messaging.get(message.id).status == "clicked"  # type: ignore[union-attr]


def test_forged_and_altered_links_are_refused_with_no_redirect(shop: Shop) -> None:
    message = sent_email(shop)
    token = path_of(shop.engage.messaging.signer.click_url(message.id, 0)).rsplit("/", 1)[1]
    for bad in (
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        "AAAA" + token[4:],
        "https%3A%2F%2Fevil.example.com",
    ):
        response = shop.http.get(f"/c/{bad}", follow_redirects=False)
        assert response.status_code == 404 and "location" not in response.headers
    assert not shop.events("EmailClicked")


def test_an_expired_link_goes_to_the_shop_unrecorded(shop: Shop) -> None:
    message = sent_email(shop)
    shop.clock.advance(days=91)
    response = shop.http.get(
        path_of(shop.engage.messaging.signer.click_url(message.id, 1)), follow_redirects=False
    )
    assert response.status_code == 302 and response.headers["location"] == "https://shop.example.com"
    assert not shop.events("EmailClicked")


def test_the_open_pixel(shop: Shop) -> None:
    message = sent_email(shop)
    assert f'src="{shop.engage.messaging.signer.open_url(message.id)}"' in (message.body or "")
    response = shop.http.get(path_of(shop.engage.messaging.signer.open_url(message.id)))
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    assert len(shop.events("EmailOpened")) == 1
    assert shop.engage.messaging.get(message.id).status == "opened"  # type: ignore[union-attr]


def test_unsubscribing_asks_first_then_takes_effect_and_one_click_works(shop: Shop) -> None:
    message = sent_email(shop, "c7")
    path = path_of(shop.engage.messaging.signer.unsubscribe_url(message.id))
    page = shop.http.get(path)
    assert (
        page.status_code == 200
        and "Stop emails from Retail Demo Store to <strong>c7@example.com</strong>" in page.text
    )
    assert not shop.events("Unsubscribed")  # a link scanner's GET changes nothing
    done = shop.http.post(path, data={"List-Unsubscribe": "One-Click"})  # RFC 8058, as mail clients send it
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    shop.http.post(path)  # again: still once
    (unsubscribed,) = shop.events("Unsubscribed")
    assert (
        unsubscribed.user_id == "c7" and unsubscribed.context["consent"]["source"] == "email:unsubscribe link"
    )
    assert shop.engage.messaging.send("email/weekly_picks", "c7").error == "not subscribed to email"
    send(shop.engage)
    assert shop.http.get("/u/not-a-token").status_code == 404


def test_an_sms_link_click_is_an_sms_click(shop: Shop) -> None:
    record = shop.engage.messaging.send("sms/optin_confirmation", "c0")
    shop.engage.messaging.dispatch()
    link = next(part for part in shop.twilio.messages[0].body.split() if part.startswith(PUBLIC_URL))
    assert shop.http.get(path_of(link), follow_redirects=False).status_code == 302
    (clicked,) = shop.events("SmsClicked")
    assert clicked.channel == "sms" and clicked.properties["message_id"] == record.id
    assert shop.events("RecommendationClicked")[0].channel == "sms"
