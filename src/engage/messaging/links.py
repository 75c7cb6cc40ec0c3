"""Tracked links, open pixels and unsubscribe links: short signed tokens that name a message and a slot.

A token never carries a URL: it names the send (16 bytes), what it is for and which of the message's links
it is (1 byte each), signed with keyed BLAKE2b under the workspace's secret key (a 10-byte MAC). The
destination is the one the message recorded when it was rendered, so a token cannot be bent into an open
redirect, and an altered or forged one matches no signature (2⁻⁸⁰). 38 characters keep an SMS link short:
a 60-character tracked URL instead of the 200 a signed payload with the URL would take.

Expiry is the message's age (`links.expire`), checked where the token is used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from enum import IntEnum

from engage.errors import EngageError

__all__ = ["LinkKind", "LinkToken", "LinkSigner", "InvalidLink"]

_MAC_BYTES = 10
_TOKEN_BYTES = 16 + 2 + _MAC_BYTES


class InvalidLink(EngageError):
    """A token that engage did not sign, or that was altered."""


class LinkKind(IntEnum):
    CLICK = 1
    OPEN = 2
    UNSUBSCRIBE = 3
    RECOMMENDATION = 4
    """An item of a list the bot showed: the 16 bytes name the recommendation, the index the item."""


@dataclass(frozen=True)
class LinkToken:
    send_id: str
    """The message's id (32 hex digits)."""
    kind: LinkKind
    index: int
    """Which of the message's links (clicks only)."""


class LinkSigner:
    def __init__(self, secret: bytes, base_url: str):
        self._key = hashlib.sha256(b"engage links\0" + secret).digest()  # a key of its own for links
        self.base_url = base_url.rstrip("/")

    def token(self, send_id: str, kind: LinkKind, index: int = 0) -> str:
        payload = bytes.fromhex(send_id) + bytes((kind, index))
        raw = payload + self._mac(payload)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def click_url(self, send_id: str, index: int) -> str:
        return f"{self.base_url}/c/{self.token(send_id, LinkKind.CLICK, index)}"

    def open_url(self, send_id: str) -> str:
        return f"{self.base_url}/o/{self.token(send_id, LinkKind.OPEN)}.gif"

    def unsubscribe_url(self, send_id: str) -> str:
        return f"{self.base_url}/u/{self.token(send_id, LinkKind.UNSUBSCRIBE)}"

    def recommendation_url(self, recommendation_id: str, index: int) -> str:
        return f"{self.base_url}/r/{self.token(recommendation_id, LinkKind.RECOMMENDATION, index)}"

    def read(self, token: str, kind: LinkKind) -> LinkToken:
        """The token's send and slot; InvalidLink unless engage signed it for `kind`."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidLink("not a link token") from None
        if len(raw) != _TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            raise InvalidLink("not a link token")  # one spelling only: unused padding bits are not free
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidLink("the link's signature does not match")
        if payload[16] != kind:
            raise InvalidLink("the link is not for this")
        return LinkToken(payload[:16].hex(), LinkKind(payload[16]), payload[17])

    def _mac(self, payload: bytes) -> bytes:
        # BLAKE2b's keyed mode is a MAC by design, one call (an email signs a dozen links).
        return hashlib.blake2b(payload, key=self._key, digest_size=_MAC_BYTES).digest()
