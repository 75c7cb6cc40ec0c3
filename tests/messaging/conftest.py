"""A shop that sends through the real `sendgrid` and `twilio` libraries to local fake providers, with a
trained recommender, a clock the tests move, and its HTTP API in process."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from engage.bootstrap import Engage, bootstrap
from engage.testing.providers import FakeSendGrid, FakeTwilio, SendGridSigner
from engage.web import create_app
from engage.workspace import Workspace
from tests.conftest import MakeWorkspace
from tests.helpers import Clock, identify, send, track

NOON_IN_NEW_YORK = datetime(2026, 6, 1, 16, tzinfo=UTC)
PUBLIC_URL = "https://engage.example.com"
SENDGRID_KEY = "SG.test-key"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-token"
CUSTOMERS = 12


@dataclass
class Shop:
    engage: Engage
    clock: Clock
    sendgrid: FakeSendGrid
    twilio: FakeTwilio
    signer: SendGridSigner
    http: TestClient

    def drain(self) -> None:
        """Deliver what the log holds to the consumers (profiles, consent, segments, interactions)."""
        send(self.engage)

    def events(self, name: str) -> list:
        self.drain()
        return [event for event in self.engage.log.read(0, limit=100_000) if event.event == name]


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON_IN_NEW_YORK)


@pytest.fixture
def providers() -> Iterator[tuple[FakeSendGrid, FakeTwilio]]:
    with (
        FakeSendGrid(SENDGRID_KEY) as sendgrid,
        FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN) as twilio,
    ):
        yield sendgrid, twilio


def configure(
    workspace: Workspace, sendgrid: FakeSendGrid, twilio: FakeTwilio, signer: SendGridSigner
) -> None:
    """Send email through SendGrid and SMS through Twilio (the fakes), as a shop would in production."""
    root = workspace.root
    (root / "connectors" / "sendgrid.yml").write_text(
        "api_key: ${SENDGRID_API_KEY}\nfrom_email: shop@example.com\nfrom_name: Retail Demo Store\n"
        f"reply_to: support@example.com\nwebhook_verification_key: {signer.public_key_base64}\n"
        f"base_url: {sendgrid.url}\n"
    )
    (root / "connectors" / "twilio.yml").write_text(
        "account_sid: ${TWILIO_ACCOUNT_SID}\nauth_token: ${TWILIO_AUTH_TOKEN}\n"
        f'messaging_service_sid: "MG{"2" * 32}"\nbase_url: {twilio.url}\n'
    )
    endpoints = root / "endpoints.yml"
    text = (
        endpoints.read_text()
        .replace("email: outbox", "email: sendgrid")
        .replace("sms: outbox", "sms: twilio")
    )
    endpoints.write_text(text.replace("public_url: http://127.0.0.1:8000", f"public_url: {PUBLIC_URL}"))
    config = root / "recommender.yml"
    config.write_text(config.read_text().replace("model: auto", "model: itemknn"))


def customers(engage: Engage, count: int = CUSTOMERS) -> None:
    """`count` customers with an email address and a phone (even ones opted in to SMS), each browsing."""
    rng = random.Random(3)
    products = [product.id for product in engage.recommend.catalog][:200]
    calls = []
    for n in range(count):
        traits = {"email": f"c{n}@example.com", "phone": f"+1415555{n:04d}", "first_name": f"Cus{n}"}
        traits["timezone"] = "America/New_York"
        call = identify(f"c{n}", **traits)
        if n % 2 == 0:
            call["context"] = {"consent": {"categoryPreferences": {"sms": True}, "source": "checkout form"}}
        calls.append(call)
        calls += [track(f"c{n}", "ProductViewed", product_id=rng.choice(products)) for _ in range(20)]
    send(engage, *calls)


@pytest.fixture
def shop(
    make_workspace: MakeWorkspace,
    database_url: str,
    clock: Clock,
    providers: tuple[FakeSendGrid, FakeTwilio],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Shop]:
    sendgrid, twilio = providers
    signer = SendGridSigner()
    monkeypatch.setenv("SENDGRID_API_KEY", SENDGRID_KEY)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", TWILIO_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    workspace = make_workspace(database_url=database_url)
    configure(workspace, sendgrid, twilio, signer)
    engage = bootstrap(Workspace.load(workspace.root), clock=clock)
    customers(engage)
    engage.recommend.train()
    with TestClient(create_app(engage), base_url=PUBLIC_URL) as http:
        yield Shop(engage, clock, sendgrid, twilio, signer, http)
    engage.close()
