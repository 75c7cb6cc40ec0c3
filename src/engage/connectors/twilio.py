"""Twilio, both ways: SMS out through the official `twilio` library, status callbacks and inbound SMS in,
each checked with the library's `RequestValidator` (HMAC-SHA1 of the full URL and the sorted form fields
under the account's auth token: Rasa's own Twilio channel checks nothing).

Out: one `Messages.create` per SMS, from the Messaging Service or the number in `connectors/twilio.yml`,
with a status callback that names engage's send id. When a request got no answer, `find` asks Twilio for
the messages sent to that number since, and matches the body: the message is then known to be sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from engage.connectors.base import Accepted, DeliveryError, Sms
from engage.workspace.connectors import TwilioConfig

__all__ = ["TwilioConnector", "SmsStatus", "InboundSms", "parse_status", "parse_inbound", "SIGNATURE_HEADER"]

SIGNATURE_HEADER = "X-Twilio-Signature"
OPTED_OUT = "21610"
"""Twilio's code for a recipient who replied STOP to the sending number."""


class TwilioConnector:
    name = "twilio"

    def __init__(self, config: TwilioConfig, status_url: str):
        self.config = config
        self.status_url = status_url
        """Where Twilio reports each message's status; engage's send id is added to it."""
        # Another base URL (a local fake) must not be rewritten for TWILIO_EDGE / TWILIO_REGION: blanks, as
        # an empty mapping would fall back to os.environ.
        environment = {"TWILIO_EDGE": "", "TWILIO_REGION": ""} if config.base_url else None
        self.client = Client(
            config.account_sid,
            config.auth_token,
            http_client=TwilioHttpClient(timeout=config.timeout),
            environment=environment,
        )
        if config.base_url:
            self.client.api.base_url = config.base_url
        self.validator = RequestValidator(config.auth_token)

    def send_sms(self, sms: Sms) -> Accepted:
        sender = (
            {"messaging_service_sid": self.config.messaging_service_sid}
            if self.config.messaging_service_sid
            else {"from_": self.config.from_number}
        )
        callback = f"{self.status_url}?{urlencode({'send_id': sms.send_id})}"
        try:
            message = self.client.messages.create(
                to=sms.to, body=sms.body, status_callback=callback, **sender
            )
        except TwilioRestException as exc:
            raise _refused(exc) from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise DeliveryError(f"Twilio cannot be reached: {exc}", retryable=True) from exc
        except requests.exceptions.ConnectionError as exc:
            if "Connection refused" in str(exc) or "Name or service not known" in str(exc):
                raise DeliveryError(f"Twilio cannot be reached: {exc}", retryable=True) from exc
            raise DeliveryError(f"Twilio did not answer: {exc}", retryable=True, unknown=True) from exc
        except requests.exceptions.RequestException as exc:  # a read timeout: the request went out
            raise DeliveryError(f"Twilio did not answer: {exc}", retryable=True, unknown=True) from exc
        return Accepted(message.sid)

    def find(self, sms: Sms, since_seconds: float) -> str | None:
        since = datetime.now(UTC) - timedelta(seconds=since_seconds + 86_400)  # Twilio filters by day
        try:
            sent = self.client.messages.list(to=sms.to, date_sent_after=since, limit=200)
        except TwilioRestException as exc:
            raise _refused(exc) from exc
        except requests.exceptions.RequestException as exc:
            raise DeliveryError(f"Twilio cannot be asked: {exc}", retryable=True) from exc
        for message in sent:
            if message.body == sms.body:
                return str(message.sid)
        return None

    def verify(self, url: str, params: Mapping[str, str], signature: str) -> bool:
        """Whether Twilio signed this request to `url` (the full URL Twilio called, query included)."""
        return bool(signature) and bool(self.validator.validate(url, dict(params), signature))


def _refused(exc: TwilioRestException) -> DeliveryError:
    status = int(exc.status or 0)
    retryable = status in (401, 403, 429) or status >= 500 or status == 0
    return DeliveryError(
        f"Twilio answered {status}: {exc.msg} (code {exc.code})",
        retryable=retryable,
        code=str(exc.code) if exc.code is not None else None,
    )


# ---------------------------------------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class SmsStatus:
    """A status callback: where one message stands at Twilio."""

    sid: str
    status: str
    """queued, sending, sent, delivered, undelivered, failed, …"""
    to: str
    error_code: str | None


@dataclass(frozen=True)
class InboundSms:
    sid: str
    from_: str
    to: str
    body: str


def parse_status(form: Mapping[str, str]) -> SmsStatus:
    """ValueError names a missing field."""
    for key in ("MessageSid", "MessageStatus"):
        if not form.get(key):
            raise ValueError(f"{key}: required")
    return SmsStatus(
        form["MessageSid"], form["MessageStatus"], form.get("To", ""), form.get("ErrorCode") or None
    )


def parse_inbound(form: Mapping[str, str]) -> InboundSms:
    for key in ("MessageSid", "From"):
        if not form.get(key):
            raise ValueError(f"{key}: required")
    return InboundSms(form["MessageSid"], form["From"], form.get("To", ""), form.get("Body", ""))
