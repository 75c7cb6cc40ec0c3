"""Write keys: Segment's HTTP API takes the key as the Basic-auth user name (password empty)."""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import HTTPException, Request

__all__ = ["WriteKeys"]


class WriteKeys:
    def __init__(self, keys: list[str]):
        self._keys = [key.encode() for key in keys if key]

    def valid(self, candidate: str | None) -> bool:
        if not candidate:
            return False
        given = candidate.encode()
        # Compare with every key, whatever matches, so timing tells nothing about which prefix is right.
        results = [hmac.compare_digest(given, key) for key in self._keys]
        return any(results)

    def from_request(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None
        try:
            user, _, _password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user

    def require(self, request: Request, body_key: str | None = None) -> None:
        """401 unless the request carries a valid write key (header, or `writeKey` in the body)."""
        if self.valid(self.from_request(request)) or self.valid(body_key):
            return
        raise HTTPException(
            status_code=401,
            detail="a valid write key is required (HTTP Basic user name)",
            headers={"WWW-Authenticate": 'Basic realm="engage"'},
        )
