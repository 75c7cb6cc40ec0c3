"""The operator's login: one password from `ENGAGE_ADMIN_PASSWORD`, and a signed session cookie.

The cookie holds its expiry and an HMAC-SHA256 of it, keyed by a secret derived from the password and the
workspace's secret key: changing the password logs every session out, and a cookie says nothing that
would help guess the password. Without the variable the dashboard stays closed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["PASSWORD_VARIABLE", "COOKIE", "LIFETIME_SECONDS", "Sessions", "safe_next"]

PASSWORD_VARIABLE = "ENGAGE_ADMIN_PASSWORD"
COOKIE = "engage_admin"
LIFETIME_SECONDS = 12 * 3600
HOME = "/admin"


class Sessions:
    """Checks the password and makes and reads session cookies. The password is read from the
    environment at each request, so setting or changing it needs no restart."""

    def __init__(self, workspace_secret: bytes, clock: Callable[[], float] = time.time):
        self._workspace_secret = workspace_secret
        self._clock = clock

    @staticmethod
    def password() -> str | None:
        return os.environ.get(PASSWORD_VARIABLE) or None

    def configured(self) -> bool:
        return self.password() is not None

    def password_matches(self, given: str) -> bool:
        expected = self.password()
        if expected is None:
            return False
        # Digests of equal length, so the comparison's time says nothing about the password's length.
        return hmac.compare_digest(_digest(given), _digest(expected))

    def issue(self) -> str:
        """A new session's cookie value."""
        expires = int(self._clock()) + LIFETIME_SECONDS
        return f"{expires}.{self._sign(expires)}"

    def valid(self, cookie: str | None) -> bool:
        if not cookie or self.password() is None:
            return False
        expires, _, signature = cookie.partition(".")
        if not expires.isdigit() or int(expires) <= self._clock():
            return False
        return hmac.compare_digest(signature, self._sign(int(expires)))

    def _sign(self, expires: int) -> str:
        password = self.password() or ""
        key = hmac.new(self._workspace_secret, b"engage admin session\0" + password.encode(), "sha256")
        return hmac.new(key.digest(), str(expires).encode(), "sha256").hexdigest()


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of the dashboard, never another site (an open redirect)."""
    if not target or any(ord(char) < 0x21 or char == "\\" for char in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return HOME
    if parts.path != HOME and not parts.path.startswith(HOME + "/"):
        return HOME
    return target
