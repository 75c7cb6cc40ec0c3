"""Signed link tokens: short, naming a message and a slot, refused when forged, altered or used for
another purpose."""

from __future__ import annotations

import base64
import uuid

import pytest

from engage.messaging.links import InvalidLink, LinkKind, LinkSigner

SEND = uuid.uuid4().hex


def test_a_token_names_its_message_and_slot_and_stays_short() -> None:
    signer = LinkSigner(b"secret", "https://e.example.com/")
    url = signer.click_url(SEND, 7)
    assert url.startswith("https://e.example.com/c/") and len(url) == len("https://e.example.com/c/") + 38
    token = signer.read(url.rsplit("/", 1)[1], LinkKind.CLICK)
    assert (token.send_id, token.kind, token.index) == (SEND, LinkKind.CLICK, 7)
    assert signer.open_url(SEND).endswith(".gif") and "/o/" in signer.open_url(SEND)
    assert "/u/" in signer.unsubscribe_url(SEND)


def test_forged_altered_and_misused_tokens_are_refused() -> None:
    signer = LinkSigner(b"secret", "https://e.example.com")
    token = signer.token(SEND, LinkKind.CLICK, 1)
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    raw[17] ^= 1  # another slot, same signature
    altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    other_key = LinkSigner(b"another secret", "https://e.example.com").token(SEND, LinkKind.CLICK, 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spelled_otherwise = token[:-1] + alphabet[alphabet.index(token[-1]) + 1]  # the same bytes, spare bits set
    assert base64.urlsafe_b64decode(spelled_otherwise + "==") == base64.urlsafe_b64decode(token + "==")
    for bad in (altered, other_key, token[:-2], "not-a-token", "", token + "A", spelled_otherwise):
        with pytest.raises(InvalidLink):
            signer.read(bad, LinkKind.CLICK)
    with pytest.raises(InvalidLink, match="not for this"):
        signer.read(token, LinkKind.UNSUBSCRIBE)  # a click link cannot unsubscribe
