"""A fake SendGrid: the v3 mail send API, and SendGrid's signed Event Webhook coming back.

`FakeSendGrid` checks what SendGrid would refuse with a 400 (reporting every error at once, with the
field each concerns, as SendGrid does) and turns each accepted personalization into a `Delivery`, with
its legacy substitutions applied, so a test asserts on the email a customer would read rather than on
the request that described it. `SendGridSigner` and `sendgrid_event` build the webhooks SendGrid would
post about those deliveries, signed so that the real `EventWebhook` verifier accepts them.
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid import SendGridAPIClient

from engage.testing._server import FakeProvider, Json, Request, Response, json_response

__all__ = ["SENDGRID_API_KEY", "FakeSendGrid", "Delivery", "SendGridSigner", "sendgrid_event"]

SENDGRID_API_KEY = "SG.fake-engage-test-key"

_MAX_PERSONALIZATIONS = 1000
_MAX_SUBSTITUTION_BYTES = 10_000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Delivery:
    """One personalization of an accepted mail send, as the recipients would receive it.

    `message_id` starts with the request's X-Message-Id followed by a dot, like the `sg_message_id` of
    SendGrid's events, so code that matches events to sends by that prefix works against the fake.
    """

    message_id: str
    to: tuple[str, ...]
    subject: str | None
    text: str | None
    html: str | None
    headers: dict[str, str]
    custom_args: dict[str, str]
    from_email: str
    reply_to: str | None
    request_index: int


class FakeSendGrid(FakeProvider):
    """SendGrid's v3 `POST /v3/mail/send`: validates the essentials, records, and materializes deliveries."""

    def __init__(self, api_key: str = SENDGRID_API_KEY, *, port: int = 0):
        self.api_key = api_key
        self._requests: list[Json] = []
        self._deliveries: list[Delivery] = []
        super().__init__(port)

    @property
    def requests(self) -> list[Json]:
        """The accepted request bodies, parsed, in arrival order."""
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def deliveries(self) -> list[Delivery]:
        """One record per personalization of every accepted request, in arrival order."""
        with self._lock:
            return copy.deepcopy(self._deliveries)

    def client(self) -> SendGridAPIClient:
        """A SendGridAPIClient holding this fake's key and pointed at it."""
        return SendGridAPIClient(api_key=self.api_key, host=self.url)

    def _api(self, request: Request) -> Response:
        if request.path != "/v3/mail/send":
            return self._error(404, "resource not found")
        if request.method != "POST":
            return self._error(405, "method not allowed")
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            return self._error(401, "authorization required")
        if authorization != f"Bearer {self.api_key}":
            return self._error(401, "The provided authorization grant is invalid, expired, or revoked")
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "The request body could not be parsed as JSON.")
        errors = _mail_send_errors(body)
        if errors:
            return json_response(400, {"errors": errors})
        x_message_id = secrets.token_urlsafe(16)[:22]
        with self._lock:
            index = len(self._requests)
            self._requests.append(body)
            self._deliveries.extend(_deliveries(body, x_message_id, index))
        return Response(202, headers={"X-Message-Id": x_message_id})

    def _error(self, status: int, message: str, field: str | None = None) -> Response:
        return json_response(status, {"errors": [_sendgrid_error(message, field)]})

    def _state(self) -> Json:
        return {"requests": self._requests, "deliveries": self._deliveries}

    def _clear(self) -> None:
        self._requests.clear()
        self._deliveries.clear()


def _sendgrid_error(message: str, field: str | None) -> Json:
    return {"message": message, "field": field, "help": None}


def _mail_send_errors(body: Any) -> list[Json]:
    """The 400 errors SendGrid would report for `body`, all at once as SendGrid does; empty when valid."""
    if not isinstance(body, dict):
        return [_sendgrid_error("The request body must be a JSON object.", None)]
    errors: list[Json] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            _sendgrid_error(
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
            )
        )
        personalizations = []
    elif len(personalizations) > _MAX_PERSONALIZATIONS:
        errors.append(
            _sendgrid_error(
                f"The personalizations field may not contain more than {_MAX_PERSONALIZATIONS} "
                "personalization objects per request.",
                "personalizations",
            )
        )
        personalizations = []
    for i, personalization in enumerate(personalizations):
        errors.extend(_personalization_errors(i, personalization))
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        errors.append(
            _sendgrid_error(
                "The from object must be provided for every email send. It is an object that requires the "
                "email parameter, but may also contain a name parameter.",
                "from.email",
            )
        )
    elif not _EMAIL.match(str(sender["email"])):
        errors.append(_sendgrid_error("The from email does not contain a valid address.", "from.email"))
    if not body.get("template_id"):
        errors.extend(_content_errors(body, personalizations))
    return errors


def _personalization_errors(i: int, personalization: Any) -> list[Json]:
    where = f"personalizations.{i}"
    if not isinstance(personalization, dict):
        return [_sendgrid_error("A personalization must be an object.", where)]
    errors: list[Json] = []
    to = personalization.get("to")
    if not isinstance(to, list) or not to:
        errors.append(
            _sendgrid_error(
                "The to array is required for all personalization objects, and must have at least one "
                "email object with a valid email address.",
                f"{where}.to",
            )
        )
    else:
        for j, recipient in enumerate(to):
            if not isinstance(recipient, dict) or not _EMAIL.match(str(recipient.get("email", ""))):
                errors.append(_sendgrid_error("Does not contain a valid address.", f"{where}.to.{j}.email"))
    substitutions = personalization.get("substitutions", {})
    if not isinstance(substitutions, dict) or not all(isinstance(v, str) for v in substitutions.values()):
        errors.append(_sendgrid_error("Substitution values must be strings.", f"{where}.substitutions"))
    elif _substitution_bytes(substitutions) > _MAX_SUBSTITUTION_BYTES:
        errors.append(
            _sendgrid_error(
                "The total size of the substitutions in a personalization may not exceed 10,000 bytes.",
                f"{where}.substitutions",
            )
        )
    return errors


def _substitution_bytes(substitutions: dict[str, str]) -> int:
    return sum(len(key.encode()) + len(value.encode()) for key, value in substitutions.items())


def _content_errors(body: Json, personalizations: list[Any]) -> list[Json]:
    errors: list[Json] = []
    every_personalization_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    if not body.get("subject") and not every_personalization_has_subject:
        errors.append(
            _sendgrid_error(
                "The subject is required. You can get around this requirement if you use a template with "
                "a subject defined or if every personalization has a subject defined.",
                "subject",
            )
        )
    content = body.get("content")
    if not isinstance(content, list) or not content:
        errors.append(
            _sendgrid_error(
                "Unless a valid template_id is provided, the content parameter is required. There must be at "
                "least one defined content block. We typically suggest both text/plain and text/html blocks "
                "are included, but only one block is required.",
                "content",
            )
        )
        return errors
    for k, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("value"), str) or not block["value"]:
            errors.append(
                _sendgrid_error(
                    "The content value must be a string at least one character in length.",
                    f"content.{k}.value",
                )
            )
    types = [block.get("type") for block in content if isinstance(block, dict)]
    if "text/plain" in types and types[0] != "text/plain":
        errors.append(
            _sendgrid_error(
                "The text/plain content type must be first, followed by any other content types.",
                "content.0.type",
            )
        )
    if types.count("text/plain") > 1 or types.count("text/html") > 1:
        errors.append(
            _sendgrid_error("If present, text/plain and text/html may only be provided once.", "content")
        )
    return errors


def _substitute(text: str | None, substitutions: dict[str, str]) -> str | None:
    """SendGrid's legacy substitutions: a plain replace of each key, in the order given."""
    if text is None:
        return None
    for key, value in substitutions.items():
        text = text.replace(key, value)
    return text


def _deliveries(body: Json, x_message_id: str, request_index: int) -> list[Delivery]:
    contents: dict[str, str] = {}
    for block in body.get("content", []):
        contents.setdefault(block["type"], block["value"])
    reply_to = (body.get("reply_to") or {}).get("email")
    deliveries = []
    for i, personalization in enumerate(body["personalizations"]):
        substitutions = personalization.get("substitutions", {})
        sender = personalization.get("from") or body["from"]
        deliveries.append(
            Delivery(
                message_id=f"{x_message_id}.{i}",
                to=tuple(recipient["email"] for recipient in personalization["to"]),
                subject=_substitute(personalization.get("subject", body.get("subject")), substitutions),
                text=_substitute(contents.get("text/plain"), substitutions),
                html=_substitute(contents.get("text/html"), substitutions),
                headers={**body.get("headers", {}), **personalization.get("headers", {})},
                custom_args={**body.get("custom_args", {}), **personalization.get("custom_args", {})},
                from_email=sender["email"],
                reply_to=reply_to,
                request_index=request_index,
            )
        )
    return deliveries


# --- Event Webhook ---------------------------------------------------------------------------------------


class SendGridSigner:
    """Signs Event Webhook payloads the way SendGrid does, with a fresh ECDSA P-256 key pair."""

    SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
    TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

    def __init__(self) -> None:
        self._private_key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key_base64(self) -> str:
        """The verification key as SendGrid's settings page shows it: base64 DER SubjectPublicKeyInfo."""
        der = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def sign(self, payload: bytes | str, timestamp: str) -> dict[str, str]:
        """The signature and timestamp headers for `payload`: ECDSA-SHA256 over timestamp + payload."""
        body = payload.encode("utf-8") if isinstance(payload, str) else payload
        signature = self._private_key.sign(timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
        return {
            self.SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            self.TIMESTAMP_HEADER: timestamp,
        }


_SENDGRID_EVENTS = {
    "processed",
    "dropped",
    "delivered",
    "deferred",
    "bounce",
    "open",
    "click",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
}


def sendgrid_event(
    event: str,
    email: str,
    *,
    timestamp: int,
    sg_message_id: str,
    custom_args: Mapping[str, str] | None = None,
    url: str | None = None,
    reason: str | None = None,
    bounce_type: str = "bounce",
    categories: list[str] | None = None,
    sg_event_id: str | None = None,
) -> Json:
    """One Event Webhook event as SendGrid posts it (a payload is a JSON list of these).

    Custom args sit at the top level next to SendGrid's own fields, as SendGrid sends them; one that
    collides with a SendGrid field is refused, since SendGrid would not deliver it either.
    """
    if event not in _SENDGRID_EVENTS:
        raise ValueError(f"unknown SendGrid event {event!r}; known: {', '.join(sorted(_SENDGRID_EVENTS))}")
    if event == "click" and url is None:
        raise ValueError("a click event needs the clicked url")
    payload: Json = {
        "email": email,
        "timestamp": timestamp,
        "event": event,
        "sg_event_id": sg_event_id or secrets.token_urlsafe(16)[:22],
        "sg_message_id": sg_message_id,
        "smtp-id": f"<{sg_message_id.split('.', 1)[0]}@fake.sendgrid.net>",
    }
    if categories:
        payload["category"] = categories
    if event == "delivered":
        payload["response"] = "250 OK"
    elif event == "deferred":
        payload.update(response=reason or "400 try again later", attempt="1")
    elif event == "dropped":
        payload["reason"] = reason or "Bounced Address"
    elif event == "bounce":
        payload.update(reason=reason or "550 5.1.1 unknown recipient", status="5.1.1", type=bounce_type)
    elif event in {"open", "click"}:
        payload.update(useragent="Mozilla/5.0 (engage fake)", ip="192.0.2.1")
        if url is not None:
            payload["url"] = url
    clashes = set(custom_args or {}) & set(payload)
    if clashes:
        raise ValueError(f"custom args may not reuse SendGrid's event fields: {sorted(clashes)}")
    return {**payload, **(custom_args or {})}
