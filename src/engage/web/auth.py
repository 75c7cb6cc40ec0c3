"""Who may call the HTTP API.

- **Ingestion** (`/v1/track` … `/v1/batch`): a write key, Segment's way: the HTTP Basic user name (password
  empty), or `writeKey` in a batch body (`WriteKeys`). Storefronts and browsers hold it, so it reads
  nothing.
- **Reads** (`/v1` profiles, segments, journeys, recommendations): an API token with the operation's scope
  as `Authorization: Bearer engage_…` (`engage.tokens`), or the operator's dashboard session (`Readers`).
  No token, or one that is unknown, revoked or malformed: 401 with `WWW-Authenticate: Bearer`; a token
  without the scope: 403 naming it.

Every secret is compared in constant time: write keys with `hmac.compare_digest`, tokens by their hash
(`engage.tokens`), sessions by their signature (`engage.web.admin.session`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from starlette.concurrency import run_in_threadpool

from engage.tokens import SCOPES, ApiTokens
from engage.web.admin.session import COOKIE, Sessions

__all__ = ["WriteKeys", "Readers", "API_TOKEN", "OPERATOR_SESSION"]


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


# The OpenAPI schema's two ways to read; neither refuses by itself (`Readers` decides, and says why).
API_TOKEN = HTTPBearer(
    auto_error=False,
    scheme_name="APIToken",
    description="An API token, `engage_<id>_<secret>`, made by `engage tokens create NAME --scope SCOPE`. "
    "Scopes: " + "; ".join(f"`{scope}`: {what}" for scope, what in SCOPES.items()) + ".",
)
OPERATOR_SESSION = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    scheme_name="OperatorSession",
    description="The dashboard's session cookie, set by logging in at `/admin/login`: it reads everything.",
)


_NEEDED = "an API token with its scope (Authorization: Bearer engage_…, from `engage tokens create`)"


def _refuse(status: int, message: str, challenge: str = "") -> HTTPException:
    return HTTPException(status, message, headers={"WWW-Authenticate": f'Bearer realm="engage"{challenge}'})


class Readers:
    """The dependency of every `/v1` read: `dependencies=[readers.scope("segments:read")]` lets a request
    through with a live token holding that scope (or `admin`), or with the operator's session. A bearer
    token, when given, decides alone: a wrong one is refused even beside a session."""

    def __init__(self, tokens: ApiTokens, sessions: Sessions, write_keys: WriteKeys):
        # On SQLite a token is one row by primary key from a local file, read on the event loop: the hop to
        # a thread costs more than the read (measured through `engage serve` against the session cookie,
        # which needs no read: +0.4 ms a request at p50 on a thread, +0.1 ms on the loop). PostgreSQL's
        # read is a network round trip, which the loop must not wait for.
        lookup_on_loop = tokens.database.is_sqlite

        async def authorize(
            security: SecurityScopes,
            request: Request,
            bearer: HTTPAuthorizationCredentials | None = Security(API_TOKEN),
            session: str | None = Depends(OPERATOR_SESSION),
        ) -> None:
            if bearer is None:
                if sessions.valid(session):
                    return
                if write_keys.valid(write_keys.from_request(request)):
                    raise _refuse(401, f"a write key only sends events; reading needs {_NEEDED}")
                raise _refuse(401, f"reading needs {_NEEDED}")
            if lookup_on_loop:
                token = tokens.verify(bearer.credentials)
            else:
                token = await run_in_threadpool(tokens.verify, bearer.credentials)
            if token is not None and tokens.due(token):  # at most once a minute: a write, on a thread
                await run_in_threadpool(tokens.note_use, token)
            if token is None:
                raise _refuse(
                    401, "the API token is not valid: unknown, revoked or mistyped", ', error="invalid_token"'
                )
            (scope,) = security.scopes
            if not token.allows(scope):
                held = " ".join(token.scopes)
                message = f"the API token {token.name!r} lacks the scope {scope!r} (it has: {held})"
                raise _refuse(403, message, f', error="insufficient_scope", scope="{scope}"')

        self._authorize = authorize

    def scope(self, scope: str) -> Any:
        """The dependency requiring `scope`; the schema lists it on the operation's security."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        return Security(self._authorize, scopes=[scope])
