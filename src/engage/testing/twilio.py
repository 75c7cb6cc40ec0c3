"""A fake Twilio: the Messages resource of the REST API, and Twilio's signed SMS webhooks.

`FakeTwilio` creates, fetches and lists messages the way the `twilio` library expects, paging included,
and answers invalid requests with Twilio's own error codes (21211, 21603, ...) so connector code that
maps those codes is exercised. Status callbacks and inbound SMS are posted by the fake itself, on the
test's command (`send_status`, `send_inbound`), signed with `twilio_signature` as Twilio signs them.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import cast

from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioClient

from engage.testing._server import FakeProvider, Json, Request, Response, json_response

__all__ = ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "FakeTwilio", "SentSms", "twilio_signature"]

TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_AUTH_TOKEN = "fake-engage-test-auth-token"

_API_VERSION = "2010-04-01"
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SHORT_CODE = re.compile(r"^\d{5,6}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_MAX_BODY = 1600
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SentSms:
    """One message created through the fake; `status` and `error_code` follow `send_status()`."""

    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    created_at: datetime
    status: str = "queued"
    error_code: int | None = None


class FakeTwilio(FakeProvider):
    """The Messages resource of Twilio's 2010-04-01 REST API, plus Twilio's side of the SMS webhooks.

    The fake hands each message to the carrier the moment it is created, so the DateSent list filters
    compare against the creation time even while the status still says queued.
    """

    def __init__(
        self,
        account_sid: str = TWILIO_ACCOUNT_SID,
        auth_token: str = TWILIO_AUTH_TOKEN,
        *,
        port: int = 0,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._clock = clock
        self._requests: list[dict[str, str | list[str]]] = []
        self._messages: dict[str, SentSms] = {}
        super().__init__(port)

    @property
    def messages(self) -> list[SentSms]:
        """Created messages, oldest first."""
        with self._lock:
            return list(self._messages.values())

    @property
    def requests(self) -> list[dict[str, str | list[str]]]:
        """The accepted create requests' form fields; a repeated field (MediaUrl) gives a list."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def client(self) -> TwilioClient:
        """A twilio Client holding this fake's credentials and pointed at it.

        twilio builds every API URL from `client.api.base_url`, then rewrites the host for an edge or a
        region, which would mangle 127.0.0.1. Both come from TWILIO_EDGE / TWILIO_REGION unless given, and
        an empty `environment` does not shield them (the library falls back to os.environ when it is
        falsy), hence the explicit blanks.
        """
        client = TwilioClient(
            self.account_sid, self.auth_token, environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""}
        )
        client.api.base_url = self.url
        return client

    def send_status(
        self, sid: str, status: str, error_code: int | None = None, signer_url: str | None = None
    ) -> tuple[int, str]:
        """POST a signed status callback for message `sid` to its StatusCallback, as Twilio does.

        `signer_url` is the URL to sign when it differs from the one posted to (a proxy in between);
        returns the receiver's status code and body.
        """
        with self._lock:
            if sid not in self._messages:
                raise ValueError(f"no message {sid} was created")
            message = dataclasses.replace(self._messages[sid], status=status, error_code=error_code)
            self._messages[sid] = message
        callback = message.status_callback
        if not callback:
            raise ValueError(f"message {sid} was created without a StatusCallback")
        params = {
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message.to,
            "AccountSid": self.account_sid,
            "ApiVersion": _API_VERSION,
        }
        if message.from_:
            params["From"] = message.from_
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return self._post_webhook(callback, params, signer_url)

    def send_inbound(
        self, url: str, from_: str, to: str, body: str, signer_url: str | None = None
    ) -> tuple[int, str]:
        """POST a signed inbound-SMS webhook to `url`; returns the receiver's status code and body."""
        sid = "SM" + uuid.uuid4().hex
        params = {
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": str(_segments(body)),
            "ApiVersion": _API_VERSION,
        }
        return self._post_webhook(url, params, signer_url)

    def _post_webhook(self, url: str, params: dict[str, str], signer_url: str | None) -> tuple[int, str]:
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1",
                "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
                "X-Twilio-Signature": twilio_signature(self.auth_token, signer_url or url, params),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def _api(self, request: Request) -> Response:
        match = _MESSAGES_PATH.match(request.path)
        if match is None:
            return self._error(404, f"The requested resource {request.path} was not found")
        if not self._authorized(request, match["account"]):
            return self._error(401, "Authenticate")
        sid = match["sid"]
        if sid is None and request.method == "POST":
            return self._create(request)
        if sid is None and request.method == "GET":
            return self._list(request)
        if sid is not None and request.method == "GET":
            with self._lock:
                message = self._messages.get(sid)
            if message is None:
                return self._error(404, f"The requested resource {request.path} was not found")
            return json_response(200, self._instance(message))
        return self._error(405, "Method not allowed")

    def _authorized(self, request: Request, account: str) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            return False
        return (username, password, account) == (self.account_sid, self.auth_token, self.account_sid)

    def _create(self, request: Request) -> Response:
        form = request.form()
        fields = {name: values[0] for name, values in form.items()}
        to, sender = fields.get("To", ""), fields.get("From")
        service, body = fields.get("MessagingServiceSid"), fields.get("Body", "")
        if not to:
            return self._error(400, "A 'To' phone number is required.", code=21604)
        if not _E164.match(to.removeprefix("whatsapp:")):
            return self._error(400, f"The 'To' number {to} is not a valid phone number.", code=21211)
        if not sender and not service:
            return self._error(400, "A 'From' phone number is required.", code=21603)
        if sender and not _valid_sender(sender):
            return self._error(
                400,
                f"The 'From' phone number provided ({sender}) is not a valid message-capable Twilio phone "
                "number for this destination.",
                code=21606,
            )
        if not body and "MediaUrl" not in form and "ContentSid" not in form:
            return self._error(400, "Message body is required.", code=21602)
        if len(body) > _MAX_BODY:
            return self._error(
                400, "The concatenated message body exceeds the 1600 character limit.", code=21617
            )
        message = SentSms(
            sid="SM" + uuid.uuid4().hex,
            to=to,
            from_=sender,
            messaging_service_sid=service,
            body=body,
            status_callback=fields.get("StatusCallback"),
            created_at=self._clock().replace(microsecond=0),
            status="queued" if sender else "accepted",
        )
        with self._lock:
            self._requests.append({k: v[0] if len(v) == 1 else list(v) for k, v in form.items()})
            self._messages[message.sid] = message
        return json_response(201, self._instance(message))

    def _list(self, request: Request) -> Response:
        query = {name: values[0] for name, values in request.query.items()}
        try:
            keep = _date_sent_filter(query)
            page, page_size = int(query.get("Page", 0)), min(int(query.get("PageSize", 50)), 1000)
        except ValueError as exc:
            return self._error(400, str(exc), code=20001)
        with self._lock:
            messages = [
                m
                for m in reversed(self._messages.values())
                if query.get("To", m.to) == m.to and query.get("From", m.from_) == m.from_ and keep(m)
            ]
        start = page * page_size
        items = messages[start : start + page_size]
        filters = {k: v for k, v in query.items() if k not in {"Page", "PageSize", "PageToken"}}
        uri = f"/{_API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def page_uri(number: int) -> str:
            return f"{uri}?{urllib.parse.urlencode({**filters, 'PageSize': page_size, 'Page': number})}"

        payload = {
            "messages": [self._instance(m) for m in items],
            "start": start,
            "end": start + max(len(items) - 1, 0),
            "page": page,
            "page_size": page_size,
            "uri": page_uri(page),
            "first_page_uri": page_uri(0),
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "next_page_uri": page_uri(page + 1) if start + page_size < len(messages) else None,
        }
        return json_response(200, payload)

    def _instance(self, message: SentSms) -> Json:
        uri = f"/{_API_VERSION}/Accounts/{self.account_sid}/Messages/{message.sid}"
        created = format_datetime(message.created_at)
        return {
            "sid": message.sid,
            "account_sid": self.account_sid,
            "api_version": _API_VERSION,
            "to": message.to,
            "from": message.from_,
            "messaging_service_sid": message.messaging_service_sid,
            "body": message.body,
            "status": message.status,
            "direction": "outbound-api",
            "num_segments": str(_segments(message.body)),
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": message.error_code,
            "error_message": None,
            "date_created": created,
            "date_updated": created,
            "date_sent": created,
            "uri": f"{uri}.json",
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        }

    def _error(self, status: int, message: str, code: int | None = None) -> Response:
        """Twilio's error JSON; without a specific code, 20000 + status, as Twilio's 20404 or 20429."""
        code = code or (20003 if status == 401 else 20000 + status)
        return json_response(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def _state(self) -> Json:
        return {"requests": self._requests, "messages": list(self._messages.values())}

    def _clear(self) -> None:
        self._requests.clear()
        self._messages.clear()


def _valid_sender(sender: str) -> bool:
    number = sender.removeprefix("whatsapp:")
    return bool(_E164.match(number) or _SHORT_CODE.match(number) or _ALPHANUMERIC_SENDER.match(number))


def _segments(body: str) -> int:
    """SMS segments: 160/153 GSM-7 units per single/concatenated part, 70/67 UCS-2 code units otherwise."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in body):
        units = len(body) + sum(c in _GSM7_EXTENDED for c in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else -(-units // part)


def _date_sent_filter(query: dict[str, str]) -> Callable[[SentSms], bool]:
    """Twilio's DateSent, DateSent< (on or before) and DateSent> (on or after) filters.

    Each takes a day (YYYY-MM-DD, compared with the day sent) or an ISO 8601 instant, which is what the
    library sends for a datetime.
    """
    bounds: list[Callable[[SentSms], bool]] = []
    for name, compare in (
        ("DateSent", lambda a, b: a == b),
        ("DateSent<", lambda a, b: a <= b),
        ("DateSent>", lambda a, b: a >= b),
    ):
        value = query.get(name)
        if value is None:
            continue
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                bounds.append(lambda m, day=day, compare=compare: compare(m.created_at.date(), day))
            else:
                instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
                bounds.append(lambda m, instant=instant, compare=compare: compare(m.created_at, instant))
        except ValueError:
            raise ValueError(f"Invalid {name} value: {value}") from None
    return lambda message: all(bound(message) for bound in bounds)


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The X-Twilio-Signature Twilio sends for a form POST of `params` to `url`."""
    return cast(str, RequestValidator(auth_token).compute_signature(url, params))
