"""Scoped API tokens: what reads the HTTP API (`/v1` profiles, segments, journeys, recommendations).

Ingestion takes a write key (Segment's way); a write key is handed to storefronts and browsers, so it
reads nothing. A reader holds a token made by `engage tokens create NAME --scope ...`, shown once:

    engage_<id>_<secret>

`engage_` makes a leaked token easy to find (grep, secret scanners); `id` (12 hex digits) is public and
finds the token's row; `secret` (32 bytes from `secrets`, 64 hex digits) is checked against the SHA-256
kept in `api_tokens`, with `hmac.compare_digest`. The secret itself is stored nowhere. A fast hash is the
right one here: the secret is 256 random bits, not a password a person chose, so there is no dictionary
to try and nothing for a slow hash (bcrypt, scrypt) to protect, while it would cost every request.

A token's scopes say what it reads (`SCOPES`); `admin` reads everything. A revoked token stops working
at once, in every process: each request looks its token up.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from engage.errors import EngageError
from engage.store import Database, utcnow
from engage.store.codec import time_value
from engage.store.models import ApiTokenRecord

__all__ = ["ADMIN", "SCOPES", "PREFIX", "TOUCH_INTERVAL", "ApiToken", "ApiTokens", "NewToken", "TokenError"]

ADMIN = "admin"
SCOPES = {
    "profiles:read": "GET /v1/profiles/{id}",
    "segments:read": "GET /v1/segments, /v1/segments/{name}/members, /v1/profiles/{id}/segments",
    "journeys:read": "GET /v1/journeys, /v1/journeys/{name}/stats",
    "recommendations:read": "GET /v1/recommendations/{user_id}, /v1/related/{item_id}, POST /v1/rank",
    ADMIN: "everything any other scope reads",
}
"""Every scope, and what it lets a token read."""
PREFIX = "engage_"
TOUCH_INTERVAL = timedelta(minutes=1)
"""`last_used_at` moves on at most this often: a read does not cost a write each time."""

_ID_HEX = 12
_SECRET_BYTES = 32
_TOKEN = re.compile(rf"{PREFIX}([0-9a-f]{{{_ID_HEX}}})_([0-9a-f]{{{2 * _SECRET_BYTES}}})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_tokens = ApiTokenRecord.__table__
log = logging.getLogger(__name__)


class TokenError(EngageError):
    """A token cannot be made or revoked as asked (an unknown scope, a name in use, no such token)."""


@dataclass(frozen=True)
class ApiToken:
    """A token as `engage tokens list` shows it: never its secret, nor the secret's hash."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    value: str
    """The whole token, `engage_<id>_<secret>`: shown once, then known only to whoever holds it."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes in `SCOPES` order, each once; a `TokenError` naming any unknown one."""
    given = list(scopes)
    unknown = [scope for scope in given if scope not in SCOPES]
    if unknown:
        raise TokenError(f"unknown scope {unknown[0]!r}; the scopes are: {', '.join(SCOPES)}")
    if not given:
        raise TokenError(f"a token needs at least one scope; the scopes are: {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in given)


class ApiTokens:
    """Making, listing, revoking and checking tokens. `clock` is a parameter, as everywhere in engage."""

    def __init__(self, database: Database, clock: Callable[[], datetime] = utcnow):
        self.database = database
        self.clock = clock
        self._touched: dict[str, datetime] = {}
        """When this process last wrote each token's `last_used_at`."""
        self._touch_lock = threading.Lock()

    def create(self, name: str, scopes: Iterable[str]) -> NewToken:
        if not _NAME.fullmatch(name):
            raise TokenError(
                f"token name {name!r}: up to 100 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit"
            )
        granted = _check_scopes(scopes)
        token_id, secret = secrets.token_hex(_ID_HEX // 2), secrets.token_hex(_SECRET_BYTES)
        now = self.clock()
        try:
            with self.database.write() as connection:
                if self._live(connection, name) is not None:
                    raise _taken(name)
                connection.execute(
                    insert(_tokens).values(
                        id=token_id,
                        name=name,
                        scopes=" ".join(granted),
                        secret_hash=_hash(secret),
                        created_at=now,
                        last_used_at=None,
                        revoked_at=None,
                    )
                )
        except IntegrityError:  # another process made one by that name in between
            raise _taken(name) from None
        token = ApiToken(token_id, name, granted, now, None, None)
        return NewToken(token, f"{PREFIX}{token_id}_{secret}")

    def list(self) -> list[ApiToken]:
        """Every token, revoked ones included, the oldest first."""
        with self.database.read() as connection:
            rows = connection.execute(select(_tokens).order_by(_tokens.c.created_at, _tokens.c.id)).all()
        return [_token(row) for row in rows]

    def revoke(self, name_or_id: str) -> ApiToken:
        """Revoke the live token of that name, or of that id (the id is what a leaked token shows)."""
        now = self.clock()
        with self.database.write() as connection:
            row = self._live(connection, name_or_id)
            if row is None:
                row = connection.execute(
                    select(_tokens).where(_tokens.c.id == name_or_id, _tokens.c.revoked_at.is_(None))
                ).first()
            if row is None:
                raise TokenError(f"no live token is named {name_or_id!r} or has that id (engage tokens list)")
            connection.execute(update(_tokens).where(_tokens.c.id == row.id).values(revoked_at=now))
        return _token(row, revoked_at=now)

    def authenticate(self, presented: str) -> ApiToken | None:
        """`verify`, then `note_use`: the live token `presented` is, or None."""
        token = self.verify(presented)
        if token is not None:
            self.note_use(token)
        return token

    def verify(self, presented: str) -> ApiToken | None:
        """The live token `presented` is, or None (malformed, unknown, wrong secret or revoked): one read
        of one row by its primary key, no write."""
        parsed = _TOKEN.fullmatch(presented)
        if parsed is None:
            return None
        token_id, secret = parsed.groups()
        rows = self.database.fetch(
            "SELECT name, scopes, secret_hash, created_at, last_used_at, revoked_at FROM api_tokens "
            "WHERE id = :id",
            {"id": token_id},
        )
        if not rows:
            return None
        name, scopes, secret_hash, created_at, last_used_at, revoked_at = rows[0]
        if not hmac.compare_digest(_hash(secret).encode(), secret_hash.encode()) or revoked_at is not None:
            return None
        last_used = time_value(last_used_at) if last_used_at is not None else None
        return ApiToken(token_id, name, tuple(scopes.split()), time_value(created_at), last_used, None)

    def due(self, token: ApiToken) -> bool:
        """Whether `note_use` would write: nobody noted a use of `token` in the last `TOUCH_INTERVAL`."""
        cutoff = self.clock() - TOUCH_INTERVAL
        if token.last_used_at is not None and token.last_used_at > cutoff:
            return False
        return self._touched.get(token.id, cutoff) <= cutoff

    def note_use(self, token: ApiToken) -> None:
        """Set `last_used_at` to now, unless this process or another did less than `TOUCH_INTERVAL` ago."""
        if not self.due(token):
            return
        now = self.clock()
        cutoff = now - TOUCH_INTERVAL
        with self._touch_lock:
            if self._touched.get(token.id, cutoff) > cutoff:
                return
            self._touched[token.id] = now
        stale = or_(_tokens.c.last_used_at.is_(None), _tokens.c.last_used_at <= cutoff)
        try:
            with self.database.write() as connection:
                # `stale` keeps processes that read the same old time from each writing a new one.
                connection.execute(
                    update(_tokens).where(_tokens.c.id == token.id, stale).values(last_used_at=now)
                )
        except SQLAlchemyError as exc:  # a read is not refused for want of a note; the next one retries
            log.warning("could not note when API token %s was last used: %s", token.id, exc)
            with self._touch_lock:
                self._touched.pop(token.id, None)

    @staticmethod
    def _live(connection: Connection, name: str) -> Row[Any] | None:
        return connection.execute(
            select(_tokens).where(_tokens.c.name == name, _tokens.c.revoked_at.is_(None))
        ).first()


def _taken(name: str) -> TokenError:
    return TokenError(f"a token named {name!r} exists; revoke it first or choose another name")


def _token(row: Row[Any], revoked_at: datetime | None = None) -> ApiToken:
    values = row._mapping
    revoked = revoked_at or values["revoked_at"]
    return ApiToken(
        values["id"],
        values["name"],
        tuple(values["scopes"].split()),
        time_value(values["created_at"]),
        time_value(values["last_used_at"]) if values["last_used_at"] is not None else None,
        time_value(revoked) if revoked is not None else None,
    )
