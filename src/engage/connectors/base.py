"""What every connector is to messaging: it sends rendered emails or SMS and says what became of each, in
engage's own terms. Vendor errors stop here: a connector turns them into `DeliveryError`s that say whether
trying again can help, and whether the provider may have taken the message anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from engage.errors import EngageError

__all__ = [
    "Email",
    "Sms",
    "Accepted",
    "DeliveryError",
    "Outcome",
    "EmailConnector",
    "SmsConnector",
]


@dataclass(frozen=True)
class Email:
    send_id: str
    to: str
    subject: str
    html: str
    text: str
    to_name: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """Per message: List-Unsubscribe and List-Unsubscribe-Post."""


@dataclass(frozen=True)
class Sms:
    send_id: str
    to: str
    """E.164."""
    body: str


@dataclass(frozen=True)
class Accepted:
    """The provider took the message; `provider_id` is its id there (SendGrid's X-Message-Id, Twilio's
    SID, the outbox's file name)."""

    provider_id: str | None


class DeliveryError(EngageError):
    """The provider did not take the message.

    `retryable`: it may take it later (429, 5xx, unreachable) and the send waits. Otherwise the message is
    refused for good (an invalid address, a 4xx) and fails. `unknown`: the request left engage but no
    answer came back (a timeout, a dropped connection): the provider may have taken it, so engage finds
    out (`SmsConnector.find`, the provider's webhooks) before it tries again."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        unknown: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.unknown = unknown
        self.retry_after = retry_after
        """Seconds the provider asked engage to wait (Retry-After)."""
        self.code = code
        """The provider's own error code, when it gave one (Twilio's 21610: the recipient opted out)."""


Outcome = Accepted | DeliveryError


@runtime_checkable
class EmailConnector(Protocol):
    name: str

    def send_emails(self, emails: Sequence[Email]) -> list[Outcome]:
        """Send `emails` (as few requests as the provider allows) and return each one's outcome, in order."""
        ...


@runtime_checkable
class SmsConnector(Protocol):
    name: str

    def send_sms(self, sms: Sms) -> Accepted:
        """Send one SMS; DeliveryError if it was not taken."""
        ...

    def find(self, sms: Sms, since_seconds: float) -> str | None:
        """The provider's id of `sms` if the provider has it (sent within the last `since_seconds`), else
        None; raises DeliveryError (retryable) when it cannot tell now."""
        ...
