"""What comes back from a message, as events: the providers' webhooks (SendGrid's events, Twilio's status
callbacks), the customer's clicks, opens and unsubscribes through engage's signed links, and inbound SMS
with their keywords (STOP and its kind, START, HELP, and Y to a pending opt-in).

Each event is appended for the message's customer, with an id derived from the provider's own (a
redelivered webhook is stored once), and the message's status moves forward.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from engage.connectors.sendgrid import EmailEvent
from engage.connectors.twilio import InboundSms, SmsStatus
from engage.messaging.announce import Announcer
from engage.messaging.config import MessagingConfig
from engage.messaging.context import Recipient
from engage.messaging.customers import load_customers
from engage.messaging.links import LinkKind, LinkSigner
from engage.messaging.records import MessageRecord, Records
from engage.messaging.templates import Templates
from engage.store import Database

__all__ = ["Feedback", "Reply", "STOP_WORDS", "START_WORDS", "HELP_WORDS", "CONFIRM_WORDS", "OPT_IN_WINDOW"]

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
CONFIRM_WORDS = frozenset({"Y"})
"""The reply to an opt-in invitation (`opt_in` templates): a plain YES is also Twilio's opt-in keyword."""
OPT_IN_WINDOW = timedelta(days=30)
"""How long an opt-in invitation can be answered."""

_EMAIL_EVENTS = {
    "processed": ("EmailProcessed", None),
    "delivered": ("EmailDelivered", "delivered"),
    "open": ("EmailOpened", "opened"),
    "click": ("EmailClicked", "clicked"),
    "bounce": ("EmailBounced", "bounced"),
    "dropped": ("EmailDropped", "dropped"),
    "spamreport": ("EmailMarkedAsSpam", None),
    "unsubscribe": ("Unsubscribed", None),
    "group_unsubscribe": ("Unsubscribed", None),
}
"""SendGrid's event → engage's event and the message's status (None: the status stays)."""
_SMS_STATUSES = {"delivered": "SmsDelivered", "failed": "SmsFailed", "undelivered": "SmsUndelivered"}
_SMS_FINAL = {"delivered": "delivered", "failed": "failed", "undelivered": "failed"}
_BY_ADDRESS = text("SELECT profile_id FROM addresses WHERE channel = :channel AND address = :address")


@dataclass(frozen=True)
class Reply:
    """What to answer an inbound SMS with (empty: nothing)."""

    text: str
    event: str | None
    """The event the SMS became (SmsOptedOut, SmsOptedIn, SmsReplied, …), or None."""


class Feedback:
    def __init__(
        self,
        database: Database,
        records: Records,
        signer: LinkSigner,
        announcer: Announcer,
        config: MessagingConfig,
        templates: Templates,
        clock: Callable[[], datetime],
        reply_with: Callable[[str, Recipient], str] | None = None,
    ):
        self.database = database
        self.records = records
        self.signer = signer
        self.announcer = announcer
        self.config = config
        self.templates = templates
        self.clock = clock
        self.reply_with = reply_with
        """Renders and records a template as the reply to an inbound SMS (the opt-in confirmation)."""

    # -- SendGrid ----------------------------------------------------------------------------------

    def email_events(self, events: list[EmailEvent]) -> int:
        """Record SendGrid's events; how many were about a known customer."""
        calls = []
        with self.database.write() as connection:
            messages = self.records.get(connection, {e.send_id for e in events if e.send_id})
            owners = {m.profile_id for m in messages.values()}
            by_address = {}
            for event in events:
                if event.send_id not in messages:
                    profile = connection.execute(
                        _BY_ADDRESS, {"channel": "email", "address": event.email.lower()}
                    ).scalar()
                    if profile is not None:
                        by_address[event.event_id] = profile
            customers = load_customers(connection, owners | set(by_address.values()))
            for event in events:
                message = messages.get(event.send_id or "")
                profile = message.profile_id if message is not None else by_address.get(event.event_id)
                customer = customers.get(profile) if profile else None
                mapped = _EMAIL_EVENTS.get(event.kind)
                if message is not None:
                    detail = event.reason or event.url or event.kind
                    status = mapped[1] if mapped else None
                    if status:
                        self.records.advance(
                            connection, message.id, status, event.at, f"sendgrid {event.kind}: {detail}"
                        )
                    else:
                        self.records.history(
                            connection, [(message.id, event.kind, event.at, f"sendgrid: {detail}")]
                        )
                if customer is None or mapped is None:
                    continue
                properties: dict[str, Any] = {"provider": "sendgrid"}
                if message is not None:
                    properties |= about(message)
                properties |= {k: v for k, v in (("url", event.url), ("reason", event.reason)) if v}
                call = self.announcer.call(
                    customer.recipient, mapped[0], "email", properties, f"sg-{event.event_id}", event.at
                )
                if event.kind in ("spamreport", "unsubscribe", "group_unsubscribe"):
                    call["context"]["consent"] = {
                        "categoryPreferences": {"email": False},
                        "source": f"sendgrid:{event.kind}",
                    }
                calls.append(call)
        self.announcer.track(calls)
        return len(calls)

    # -- Twilio ------------------------------------------------------------------------------------

    def sms_status(self, status: SmsStatus, send_id: str | None) -> bool:
        """Record a status callback; whether it was about a message engage knows."""
        now = self.clock()
        with self.database.write() as connection:
            message = self.records.get(connection, [send_id]).get(send_id or "") if send_id else None
            if message is None:
                message = self.records.by_provider_id(connection, status.sid)
            if message is None:
                return False
            detail = f"twilio {status.status}" + (
                f" (error {status.error_code})" if status.error_code else ""
            )
            final = _SMS_FINAL.get(status.status)
            if final:
                self.records.advance(connection, message.id, final, now, detail)
            else:
                self.records.history(connection, [(message.id, status.status, now, detail)])
            customer = load_customers(connection, [message.profile_id]).get(message.profile_id)
        event = _SMS_STATUSES.get(status.status)
        if event and customer is not None:
            properties = {**about(message), "provider": "twilio"}
            if status.error_code:
                properties["error_code"] = status.error_code
            self.announcer.track(
                [
                    self.announcer.call(
                        customer.recipient, event, "sms", properties, f"tw-{status.sid}-{status.status}"
                    )
                ]
            )
        return True

    def inbound_sms(self, sms: InboundSms) -> Reply:
        """An SMS a customer sent: its keyword acted on, or handed on as `SmsReplied`; what to answer."""
        word = sms.body.strip().upper().rstrip(".!")
        recipient = self._sender(sms.from_)
        base = {"message_sid": sms.sid, "from": sms.from_, "to": sms.to}
        if word in STOP_WORDS:
            self._consent(recipient, "SmsOptedOut", False, f"sms:{word}", sms)
            return Reply(self.config.sms.stop_reply, "SmsOptedOut")
        if (word in CONFIRM_WORDS or word == "YES") and self._invited(recipient):
            self._consent(recipient, "SmsOptedIn", True, "sms:double opt-in", sms)
            reply = self.reply_with(sms.from_, recipient) if self.reply_with else self.config.sms.start_reply
            return Reply(reply, "SmsOptedIn")
        if word in START_WORDS:
            self._consent(recipient, "SmsOptedIn", True, f"sms:{word}", sms)
            return Reply(self.config.sms.start_reply, "SmsOptedIn")
        if word in HELP_WORDS:
            return Reply(self.config.sms.help, None)
        call = self.announcer.call(
            recipient, "SmsReplied", "sms", {**base, "body": sms.body}, f"tw-in-{sms.sid}"
        )
        if not recipient.profile_id:
            call["traits"] = {"phone": sms.from_}
        self.announcer.track([call])
        return Reply("", "SmsReplied")

    def _sender(self, phone: str) -> Recipient:
        """The customer with this number; a new one, known by their number, if there is none."""
        with self.database.read() as connection:
            profile = connection.execute(_BY_ADDRESS, {"channel": "sms", "address": phone}).scalar()
            customer = load_customers(connection, [profile]).get(profile) if profile else None
        if customer is not None:
            return customer.recipient
        return Recipient("", f"sms:{phone}", False, {"phone": phone})

    def _invited(self, recipient: Recipient) -> bool:
        """Whether an opt-in invitation went to this customer within `OPT_IN_WINDOW`."""
        invitations = [name for name in self.templates.names("sms") if self.templates.settings(name).opt_in]
        if not recipient.profile_id or not invitations:
            return False
        since = self.clock() - OPT_IN_WINDOW
        with self.database.read() as connection:
            return self.records.received(connection, recipient.profile_id, invitations, since) > 0

    def _consent(
        self, recipient: Recipient, event: str, subscribed: bool, source: str, sms: InboundSms
    ) -> None:
        call = self.announcer.call(
            recipient, event, "sms", {"message_sid": sms.sid, "body": sms.body}, f"tw-in-{sms.sid}"
        )
        call["context"]["consent"] = {"categoryPreferences": {"sms": subscribed}, "source": source}
        if not recipient.profile_id:
            call["traits"] = {"phone": sms.from_}  # a number engage did not know: its profile starts here
        self.announcer.track([call])

    # -- engage's links ------------------------------------------------------------------------------

    def click(self, token: str) -> str:
        """Where a tracked link goes, once its click is recorded; InvalidLink for a token engage did not
        sign. An expired link goes to the shop's home page, unrecorded."""
        found = self.signer.read(token, LinkKind.CLICK)
        message, customer = self._message(found.send_id)
        if message is None or found.index >= len(message.links):
            return self.config.shop.url
        now = self.clock()
        if now - message.created_at > self.config.links.expire:
            return self.config.shop.url
        link = message.links[found.index]
        with self.database.write() as connection:
            self.records.advance(connection, message.id, "clicked", now, link["url"])
        if customer is not None:
            properties = {**about(message), "url": link["url"]}
            if link.get("item"):
                properties["product_id"] = link["item"]
            event = "EmailClicked" if message.channel == "email" else "SmsClicked"
            calls = [
                self.announcer.call(customer, event, message.channel, properties, f"click-{uuid.uuid4().hex}")
            ]
            if link.get("recommendation_id") and link.get("item"):
                clicked = {
                    "recommendation_id": link["recommendation_id"],
                    "product_id": link["item"],
                    "message_id": message.id,
                }
                calls.append(
                    self.announcer.call(
                        customer,
                        "RecommendationClicked",
                        message.channel,
                        clicked,
                        f"rclick-{uuid.uuid4().hex}",
                    )
                )
            self.announcer.track(calls)
        return str(link["url"])

    def open(self, token: str) -> None:
        found = self.signer.read(token, LinkKind.OPEN)
        message, customer = self._message(found.send_id)
        if message is None:
            return
        now = self.clock()
        with self.database.write() as connection:
            self.records.advance(connection, message.id, "opened", now, "pixel")
        if customer is not None:
            properties = about(message)
            self.announcer.track(
                [
                    self.announcer.call(
                        customer, "EmailOpened", "email", properties, f"open-{uuid.uuid4().hex}"
                    )
                ]
            )

    def unsubscribe(self, token: str) -> MessageRecord | None:
        """Unsubscribe the message's customer from its channel (once, however often the link is used)."""
        found = self.signer.read(token, LinkKind.UNSUBSCRIBE)
        message, customer = self._message(found.send_id)
        if message is None or customer is None:
            return message
        event = "Unsubscribed" if message.channel == "email" else "SmsOptedOut"
        call = self.announcer.call(
            customer, event, message.channel, {"message_id": message.id}, f"unsub-{message.id}"
        )
        call["context"]["consent"] = {
            "categoryPreferences": {message.channel: False},
            "source": f"{message.channel}:unsubscribe link",
        }
        self.announcer.track([call])
        return message

    def message_of(self, token: str, kind: LinkKind) -> MessageRecord | None:
        """The message a valid token names (for the unsubscribe page to say what it unsubscribes from)."""
        return self._message(self.signer.read(token, kind).send_id)[0]

    def _message(self, send_id: str) -> tuple[MessageRecord | None, Recipient | None]:
        with self.database.read() as connection:
            message = self.records.get(connection, [send_id]).get(send_id)
            if message is None:
                return None, None
            customer = load_customers(connection, [message.profile_id]).get(message.profile_id)
        return message, customer.recipient if customer is not None else None


def about(message: MessageRecord) -> dict[str, Any]:
    """What an event about a message says of it: the message, its template, and the journey (with its
    instance) or the campaign it belongs to, so a journey can wait for a click on its own message."""
    found: dict[str, Any] = {"message_id": message.id, "template": message.template}
    found |= {key: message.data[key] for key in ("journey", "instance", "campaign") if key in message.data}
    return found
