"""SendGrid, both ways: email out through the official `sendgrid` library, and its signed Event Webhook in.

Out: the emails of one batch go in as few `POST /v3/mail/send` requests as SendGrid allows, up to 1,000
personalizations each. Each personalization is one customer's message: its own subject, `List-Unsubscribe`
headers, engage's send id in `custom_args`, and its rendered HTML and text as the values of two
substitution tags that the shared content consists of. SendGrid caps a personalization's substitutions at
10,000 bytes; a longer message goes alone, its content sent as it is. A request SendGrid refuses as a whole
(a 400, one bad address among a thousand) is sent again one message at a time, so only the bad one fails.
SendGrid's own click and open tracking are turned off: engage's tracked links and pixel count them.

In: each webhook event carries engage's send id back from `custom_args`; its `sg_event_id` makes the
event's id in engage's log, so a redelivered webhook is stored once.
"""

from __future__ import annotations

import json
import socket
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook

from engage.connectors.base import Accepted, DeliveryError, Email, Outcome
from engage.workspace.connectors import SendGridConfig

__all__ = [
    "SendGridConnector",
    "EmailEvent",
    "parse_events",
    "verify_signature",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SEND_ID_ARG",
]

MAX_PERSONALIZATIONS = 1_000
MAX_SUBSTITUTIONS_BYTES = 10_000
SEND_ID_ARG = "engage_send_id"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_HTML_TAG = "-engage-html-"
_TEXT_TAG = "-engage-text-"


class SendGridConnector:
    name = "sendgrid"

    def __init__(self, config: SendGridConfig):
        self.config = config
        self.client = SendGridAPIClient(
            api_key=config.api_key, host=config.base_url or "https://api.sendgrid.com"
        )
        self.client.client.timeout = config.timeout
        sender: dict[str, str] = {"email": str(config.from_email)}
        if config.from_name:
            sender["name"] = config.from_name
        self._common: dict[str, Any] = {
            "from": sender,
            "tracking_settings": {
                "click_tracking": {"enable": False, "enable_text": False},
                "open_tracking": {"enable": False},
                "subscription_tracking": {"enable": False},
            },
        }
        if config.reply_to:
            self._common["reply_to"] = {"email": str(config.reply_to)}

    def send_emails(self, emails: Sequence[Email]) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        batch: list[Email] = []
        for email in emails:
            if _substitutions_size(email) > MAX_SUBSTITUTIONS_BYTES:
                outcomes[email.send_id] = self._send_alone(email)
                continue
            batch.append(email)
            if len(batch) == MAX_PERSONALIZATIONS:
                outcomes.update(self._send_batch(batch))
                batch = []
        if batch:
            outcomes.update(self._send_batch(batch))
        return [outcomes[email.send_id] for email in emails]

    def _send_batch(self, emails: list[Email]) -> dict[str, Outcome]:
        body = {
            **self._common,
            "personalizations": [_personalization(email) for email in emails],
            "content": [
                {"type": "text/plain", "value": _TEXT_TAG},
                {"type": "text/html", "value": _HTML_TAG},
            ],
        }
        outcome = self._post(body)
        if (
            isinstance(outcome, DeliveryError)
            and not outcome.retryable
            and not outcome.unknown
            and len(emails) > 1
        ):
            return {email.send_id: self._send_alone(email) for email in emails}  # find the bad one(s)
        return {email.send_id: outcome for email in emails}

    def _send_alone(self, email: Email) -> Outcome:
        personalization = _personalization(email)
        del personalization["substitutions"]
        body = {
            **self._common,
            "personalizations": [personalization],
            "content": [
                {"type": "text/plain", "value": email.text},
                {"type": "text/html", "value": email.html},
            ],
        }
        return self._post(body)

    def _post(self, body: dict[str, Any]) -> Outcome:
        try:
            response = self.client.send(body)
        except http_errors.HTTPError as exc:
            return _refused(exc)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                return DeliveryError(f"SendGrid did not answer: {exc.reason}", retryable=True, unknown=True)
            return DeliveryError(f"SendGrid cannot be reached: {exc.reason}", retryable=True)
        except (
            TimeoutError,
            ConnectionError,
            OSError,
        ) as exc:  # the request went out; the answer did not come
            return DeliveryError(f"SendGrid did not answer: {exc}", retryable=True, unknown=True)
        headers = {key.lower(): value for key, value in dict(response.headers or {}).items()}
        return Accepted(headers.get("x-message-id"))


def _personalization(email: Email) -> dict[str, Any]:
    recipient = {"email": email.to}
    if email.to_name:
        recipient["name"] = email.to_name
    personalization: dict[str, Any] = {
        "to": [recipient],
        "subject": email.subject,
        "custom_args": {SEND_ID_ARG: email.send_id},
        "substitutions": {_HTML_TAG: email.html, _TEXT_TAG: email.text},
    }
    if email.headers:
        personalization["headers"] = dict(email.headers)
    return personalization


def _substitutions_size(email: Email) -> int:
    return len(_HTML_TAG) + len(_TEXT_TAG) + len(email.html.encode()) + len(email.text.encode())


def _refused(exc: http_errors.HTTPError) -> DeliveryError:
    status = int(exc.status_code)
    try:
        detail = "; ".join(error.get("message", "") for error in json.loads(exc.body).get("errors", []))
    except (ValueError, AttributeError, TypeError):
        detail = ""
    message = f"SendGrid answered {status}" + (f": {detail}" if detail else "")
    headers = {key.lower(): value for key, value in dict(exc.headers or {}).items()}
    retry_after = _seconds(headers.get("retry-after"))
    # 429 and 5xx pass; a rejected key (401, 403) is the shop's setting to fix, not the message's fault.
    retryable = status in (401, 403, 408, 429) or status >= 500
    return DeliveryError(message, retryable=retryable, retry_after=retry_after, code=str(status))


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------- the webhook


@dataclass(frozen=True)
class EmailEvent:
    """One event of SendGrid's Event Webhook."""

    event_id: str
    kind: str
    """processed, delivered, deferred, open, click, bounce, dropped, spamreport, unsubscribe,
    group_unsubscribe, group_resubscribe."""
    send_id: str | None
    email: str
    at: datetime
    url: str | None = None
    reason: str | None = None


def verify_signature(public_key: str, payload: bytes, signature: str, timestamp: str) -> bool:
    """Whether SendGrid signed `payload` at `timestamp` (the Event Webhook's ECDSA signature, checked by
    the sendgrid library's own helper against the verification key from SendGrid's settings)."""
    webhook = EventWebhook()
    try:
        key = webhook.convert_public_key_to_ecdsa(public_key)
        return bool(webhook.verify_signature(payload.decode("utf-8"), signature, timestamp, key))
    except (ValueError, TypeError, UnicodeDecodeError):
        return False


def parse_events(payload: bytes) -> list[EmailEvent]:
    """The events of one webhook request; ValueError names what is malformed."""
    try:
        raw = json.loads(payload)
    except ValueError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ValueError("the body must be a JSON array of events")
    events = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"[{index}]: an event must be an object")
        for key in ("event", "email", "timestamp", "sg_event_id"):
            if key not in item:
                raise ValueError(f"[{index}].{key}: required")
        try:
            at = datetime.fromtimestamp(int(item["timestamp"]), UTC)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"[{index}].timestamp: not a Unix time") from None
        send_id = item.get(SEND_ID_ARG)
        events.append(
            EmailEvent(
                event_id=str(item["sg_event_id"]),
                kind=str(item["event"]),
                send_id=str(send_id) if send_id else None,
                email=str(item["email"]),
                at=at,
                url=item.get("url"),
                reason=item.get("reason") or item.get("response"),
            )
        )
    return events
