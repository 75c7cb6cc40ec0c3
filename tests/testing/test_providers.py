"""The fake providers, driven by the real `sendgrid` and `twilio` libraries over loopback HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from python_http_client.exceptions import BadRequestsError, TooManyRequestsError, UnauthorizedError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import CustomArg, From, Header, Mail, Personalization, Substitution, To
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from engage.testing.providers import (
    SENDGRID_API_KEY,
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
    FakeControl,
    FakeSendGrid,
    FakeTwilio,
    SendGridSigner,
    sendgrid_event,
    start_process,
    twilio_signature,
)


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def _redirected(url: str, auth_token: str = TWILIO_AUTH_TOKEN) -> Client:
    """A plain twilio Client pointed at `url` through `api.base_url`, the way engage's connector does it."""
    client = Client(TWILIO_ACCOUNT_SID, auth_token)
    client.api.base_url = url
    return client


@pytest.fixture(autouse=True)
def _no_twilio_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """An edge or region in the environment makes twilio rewrite the host of every URL."""
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)


@pytest.fixture
def twilio_client(twilio: FakeTwilio) -> Client:
    return _redirected(twilio.url)


class _Receiver(ThreadingHTTPServer):
    """A webhook endpoint that records each POST's path, headers and form fields."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        assert isinstance(self.server, _Receiver)
        self.server.received.append((self.path, dict(self.headers), form))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# --- SendGrid -----------------------------------------------------------------------------------------------


def test_sendgrid_materializes_each_personalization(sendgrid: FakeSendGrid) -> None:
    mail = Mail(
        from_email=From("shop@example.com", "Shop"),
        subject="Hello -name-",
        plain_text_content="Hi -name-, your code is -code-",
        html_content="<p>Hi -name-, your code is <b>-code-</b></p>",
    )
    mail.header = Header("X-Campaign", "spring")
    mail.custom_arg = CustomArg("campaign", "spring")
    for i in range(3):
        personalization = Personalization()
        personalization.add_to(To(f"user{i}@example.com", f"User {i}"))
        personalization.add_substitution(Substitution("-name-", f"User{i}"))
        personalization.add_substitution(Substitution("-code-", f"C{i}"))
        personalization.add_custom_arg(CustomArg("profile_id", f"p{i}"))
        personalization.add_header(Header("X-Profile", f"p{i}"))
        # Mail.add_personalization inserts at index 0 unless told otherwise, which would reverse them.
        mail.add_personalization(personalization, index=i)

    response = SendGridAPIClient(api_key=SENDGRID_API_KEY, host=sendgrid.url).send(mail)

    assert response.status_code == 202
    assert response.body == b""
    x_message_id = response.headers["X-Message-Id"]
    deliveries = sendgrid.deliveries
    assert [d.to for d in deliveries] == [(f"user{i}@example.com",) for i in range(3)]
    second = deliveries[1]
    assert second.message_id.startswith(f"{x_message_id}.")
    assert second.subject == "Hello User1"
    assert second.text == "Hi User1, your code is C1"
    assert second.html == "<p>Hi User1, your code is <b>C1</b></p>"
    assert second.headers == {"X-Campaign": "spring", "X-Profile": "p1"}
    assert second.custom_args == {"campaign": "spring", "profile_id": "p1"}
    assert second.from_email == "shop@example.com"
    assert {d.request_index for d in deliveries} == {0}
    assert len(sendgrid.requests) == 1
    assert sendgrid.requests[0]["personalizations"][2]["substitutions"] == {"-name-": "User2", "-code-": "C2"}


def test_sendgrid_rejects_more_than_1000_personalizations(sendgrid: FakeSendGrid) -> None:
    recipients = [f"user{i}@example.com" for i in range(1001)]
    mail = Mail("shop@example.com", recipients, "Hi", "text", is_multiple=True)

    with pytest.raises(BadRequestsError) as raised:
        sendgrid.client().send(mail)

    assert raised.value.status_code == 400
    errors = json.loads(raised.value.body)["errors"]
    assert [(e["field"], e["help"]) for e in errors] == [("personalizations", None)]
    assert sendgrid.requests == [] and sendgrid.attempts == 1


def _mail_body(**changes: object) -> dict:
    """A valid mail send body with `changes` applied; a value of None removes the key."""
    body: dict = {
        "personalizations": [{"to": [{"email": "b@example.com"}]}],
        "from": {"email": "a@example.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "v"}],
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_mail_body(personalizations=None), "personalizations"),
        (_mail_body(personalizations=[{"subject": "s"}]), "personalizations.0.to"),
        (_mail_body(personalizations=[{"to": [{"email": "nobody"}]}]), "personalizations.0.to.0.email"),
        (_mail_body(**{"from": None}), "from.email"),
        (_mail_body(content=None), "content"),
        (_mail_body(subject=None), "subject"),
        (
            _mail_body(
                personalizations=[{"to": [{"email": "b@x.com"}], "substitutions": {"-k-": "x" * 10_000}}]
            ),
            "personalizations.0.substitutions",
        ),
        (
            _mail_body(content=[{"type": "text/html", "value": "h"}, {"type": "text/plain", "value": "v"}]),
            "content.0.type",
        ),
    ],
)
def test_sendgrid_reports_invalid_requests_like_sendgrid(
    sendgrid: FakeSendGrid, body: dict, field: str
) -> None:
    with pytest.raises(BadRequestsError) as raised:
        sendgrid.client().client.mail.send.post(request_body=body)

    errors = json.loads(raised.value.body)["errors"]
    assert field in [e["field"] for e in errors]
    assert all(set(e) == {"message", "field", "help"} for e in errors)


def test_sendgrid_accepts_a_template_without_content(sendgrid: FakeSendGrid) -> None:
    body = {
        "personalizations": [{"to": [{"email": "b@example.com"}], "substitutions": {"-k-": "x" * 9_000}}],
        "from": {"email": "a@example.com"},
        "template_id": "d-123",
    }
    assert sendgrid.client().client.mail.send.post(request_body=body).status_code == 202
    assert sendgrid.deliveries[0].text is None


def test_sendgrid_checks_the_api_key(sendgrid: FakeSendGrid) -> None:
    with pytest.raises(UnauthorizedError) as raised:
        SendGridAPIClient(api_key="SG.wrong", host=sendgrid.url).send(
            Mail("shop@example.com", "b@example.com", "Hi", "text")
        )
    assert json.loads(raised.value.body)["errors"][0]["field"] is None


def test_sendgrid_rate_limit_then_success(sendgrid: FakeSendGrid) -> None:
    client = sendgrid.client()
    mail = Mail("shop@example.com", "b@example.com", "Hi", "text")
    sendgrid.fail_next(1, 429)

    with pytest.raises(TooManyRequestsError) as raised:
        client.send(mail)
    assert raised.value.headers["Retry-After"] == "1"
    assert client.send(mail).status_code == 202

    assert sendgrid.attempts == 2
    assert len(sendgrid.requests) == 1 and len(sendgrid.deliveries) == 1


def test_sendgrid_hang_times_out_the_client_yet_is_accepted(sendgrid: FakeSendGrid) -> None:
    client = sendgrid.client()
    client.client.timeout = 0.3
    sendgrid.hang_next(1, 0.8)

    with pytest.raises((TimeoutError, urllib.error.URLError)):
        client.send(Mail("shop@example.com", "b@example.com", "Hi", "text"))

    _wait_until(lambda: len(sendgrid.deliveries) == 1)


def test_sendgrid_down_answers_503_until_up(sendgrid: FakeSendGrid) -> None:
    client = sendgrid.client()
    mail = Mail("shop@example.com", "b@example.com", "Hi", "text")
    sendgrid.down()
    for _ in range(2):
        with pytest.raises(Exception) as raised:
            client.send(mail)
        assert getattr(raised.value, "status_code", None) == 503
    sendgrid.down(False)
    assert client.send(mail).status_code == 202
    assert sendgrid.attempts == 3


def test_sendgrid_signer_is_accepted_by_the_library() -> None:
    signer = SendGridSigner()
    events = [
        sendgrid_event(
            "delivered", "b@example.com", timestamp=1700000000, sg_message_id="abc.0", custom_args={"p": "1"}
        )
    ]
    payload = json.dumps(events)
    headers = signer.sign(payload, "1700000001")
    webhook = EventWebhook()
    key = webhook.convert_public_key_to_ecdsa(signer.public_key_base64)
    signature, timestamp = headers[signer.SIGNATURE_HEADER], headers[signer.TIMESTAMP_HEADER]

    assert webhook.verify_signature(payload, signature, timestamp, public_key=key) is True
    assert webhook.verify_signature(payload.replace("1", "2"), signature, timestamp, public_key=key) is False
    assert EventWebhook(public_key=signer.public_key_base64).verify_signature(payload, signature, timestamp)


def test_sendgrid_event_builder() -> None:
    click = sendgrid_event(
        "click",
        "b@example.com",
        timestamp=1700000000,
        sg_message_id="abc.0",
        url="https://shop.example/p/1",
        custom_args={"journey": "welcome"},
    )
    assert click["url"] == "https://shop.example/p/1" and click["journey"] == "welcome"
    assert {"email", "timestamp", "event", "sg_event_id", "sg_message_id"} <= set(click)
    bounce = sendgrid_event(
        "bounce", "b@example.com", timestamp=1, sg_message_id="abc.0", bounce_type="blocked"
    )
    assert bounce["type"] == "blocked" and bounce["reason"]
    with pytest.raises(ValueError, match="unknown SendGrid event"):
        sendgrid_event("opened", "b@example.com", timestamp=1, sg_message_id="abc.0")
    with pytest.raises(ValueError, match="event fields"):
        sendgrid_event("open", "b@example.com", timestamp=1, sg_message_id="x", custom_args={"email": "y"})


# --- Twilio -------------------------------------------------------------------------------------------------


def test_twilio_create_fetch_and_list(twilio: FakeTwilio, twilio_client: Client) -> None:
    message = twilio_client.messages.create(
        to="+15551234567", from_="+15005550006", body="hi", status_callback="http://127.0.0.1:9/status"
    )
    twilio_client.messages.create(to="+15557654321", from_="+15005550006", body="other")

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.to, message.body, message.from_) == (
        "queued",
        "+15551234567",
        "hi",
        "+15005550006",
    )
    assert message.num_segments == "1" and message.date_created.tzinfo is not None
    assert twilio_client.messages(message.sid).fetch().body == "hi"
    assert [m.sid for m in twilio_client.messages.list(to="+15551234567")] == [message.sid]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert len(twilio_client.messages.list(date_sent_after=yesterday)) == 2
    assert twilio_client.messages.list(date_sent_before=yesterday) == []
    assert len(twilio_client.messages.list(page_size=1)) == 2  # follows next_page_uri through base_url
    sent = twilio.messages[0]
    assert (sent.sid, sent.to, sent.from_, sent.status_callback) == (
        message.sid,
        "+15551234567",
        "+15005550006",
        "http://127.0.0.1:9/status",
    )
    assert twilio.requests[0]["Body"] == "hi"
    assert twilio.connections_opened == 1


def test_twilio_messaging_service_and_segments(twilio: FakeTwilio) -> None:
    service = "MG" + "1" * 32
    message = twilio.client().messages.create(
        to="+15551234567", messaging_service_sid=service, body="€" * 200
    )
    assert message.status == "accepted" and message.messaging_service_sid == service
    assert message.num_segments == "3"  # 400 GSM-7 units, 153 per concatenated part


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "5551234567", "from_": "+15005550006", "body": "hi"}, 21211),
        ({"to": "+15551234567", "body": "hi"}, 21603),
        ({"to": "+15551234567", "from_": "+1", "body": "hi"}, 21606),
        ({"to": "+15551234567", "from_": "+15005550006", "body": ""}, 21602),
    ],
)
def test_twilio_validation_errors(twilio: FakeTwilio, kwargs: dict, code: int) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio.client().messages.create(**kwargs)
    assert (raised.value.status, raised.value.code) == (400, code)
    assert twilio.messages == [] and twilio.attempts == 1


def test_twilio_checks_credentials(twilio: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as raised:
        _redirected(twilio.url, auth_token="wrong").messages.create(
            to="+15551234567", from_="+15005550006", body="hi"
        )
    assert (raised.value.status, raised.value.code) == (401, 20003)


def test_twilio_faults(twilio: FakeTwilio, twilio_client: Client) -> None:
    twilio.fail_next(1, 500)
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.messages.create(to="+15551234567", from_="+15005550006", body="hi")
    assert raised.value.status == 500
    twilio.fail_next(1, 429)
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.messages.create(to="+15551234567", from_="+15005550006", body="hi")
    assert (raised.value.status, raised.value.code) == (429, 20429)
    assert twilio_client.messages.create(to="+15551234567", from_="+15005550006", body="hi").sid
    assert twilio.attempts == 3 and len(twilio.messages) == 1


def test_twilio_status_callback_is_signed(twilio: FakeTwilio, receiver: _Receiver) -> None:
    callback = f"{receiver.url}/webhooks/twilio/status?journey=welcome"
    message = twilio.client().messages.create(
        to="+15551234567", from_="+15005550006", body="hi", status_callback=callback
    )

    assert twilio.send_status(message.sid, "undelivered", error_code=30003) == (204, "")

    path, headers, form = receiver.received[0]
    assert path == "/webhooks/twilio/status?journey=welcome"
    assert RequestValidator(TWILIO_AUTH_TOKEN).validate(callback, form, headers["X-Twilio-Signature"])
    assert form["MessageSid"] == form["SmsSid"] == message.sid
    assert (form["MessageStatus"], form["ErrorCode"], form["AccountSid"]) == (
        "undelivered",
        "30003",
        TWILIO_ACCOUNT_SID,
    )
    assert twilio.messages[0].status == "undelivered"
    assert twilio.client().messages(message.sid).fetch().error_code == 30003


def test_twilio_inbound_is_signed(twilio: FakeTwilio, receiver: _Receiver) -> None:
    url = f"{receiver.url}/webhooks/twilio/inbound"
    assert twilio.send_inbound(url, "+15551234567", "+15005550006", "STOP") == (204, "")
    _, headers, form = receiver.received[0]
    assert headers["X-Twilio-Signature"] == twilio_signature(TWILIO_AUTH_TOKEN, url, form)
    assert (form["From"], form["To"], form["Body"], form["NumMedia"]) == (
        "+15551234567",
        "+15005550006",
        "STOP",
        "0",
    )


def test_control_endpoints_in_process(twilio: FakeTwilio, twilio_client: Client) -> None:
    control = FakeControl(twilio.url)
    control.down()
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.messages.create(to="+15551234567", from_="+15005550006", body="hi")
    assert raised.value.status == 503
    control.down(False)
    twilio_client.messages.create(to="+15551234567", from_="+15005550006", body="hi")
    state = control.state()
    assert state["attempts"] == 2 and len(state["messages"]) == 1
    control.reset()
    assert control.state()["messages"] == [] and twilio.attempts == 0


# --- Process mode -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_process_mode() -> None:
    with start_process() as providers:
        client = _redirected(providers.twilio_url)
        message = client.messages.create(to="+15551234567", from_="+15005550006", body="hi")

        twilio = FakeControl(providers.twilio_url)
        assert [m["sid"] for m in twilio.state()["messages"]] == [message.sid]
        twilio.fail_next(1, 503)
        with pytest.raises(TwilioRestException) as raised:
            client.messages.create(to="+15551234567", from_="+15005550006", body="again")
        assert raised.value.status == 503
        assert twilio.state()["attempts"] == 2

        sendgrid = SendGridAPIClient(api_key=SENDGRID_API_KEY, host=providers.sendgrid_url)
        assert sendgrid.send(Mail("shop@example.com", "b@example.com", "Hi", "text")).status_code == 202
        assert len(FakeControl(providers.sendgrid_url).state()["deliveries"]) == 1

        assert providers.stop() == 0
