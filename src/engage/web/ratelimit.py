"""Rate limits on the public endpoints: a token bucket per client, refused requests get a 429.

An ASGI middleware looks at the path before anything reads the body, so a refused request costs a dict
lookup and stores nothing. Each API process keeps its own buckets (in memory): with N processes behind a
balancer a client gets up to N times the configured rate.

Who the client is: for ingestion, the write key of the HTTP Basic header when it is a valid one (a
storefront's servers share a key and may come from many addresses); otherwise, and for every other group,
the client's IP address (uvicorn takes it from `X-Forwarded-For` when the proxy is on 127.0.0.1).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from engage.workspace.endpoints import RateLimit, RateLimitsConfig

__all__ = ["INGEST_PATHS", "RateLimitMiddleware", "RateLimits", "TokenBuckets"]

INGEST_PATHS = frozenset(
    f"/v1/{call}" for call in ("track", "identify", "page", "screen", "alias", "group", "batch", "import")
)
_LINK_PREFIXES = ("/c/", "/o/", "/u/", "/r/")
_SWEEP_AT = 10_000


class TokenBuckets:
    """One token bucket per key: `rate` tokens a second, holding at most `capacity`; a request takes one.
    `clock` returns seconds (monotonic); buckets that have refilled are forgotten once there are many."""

    def __init__(self, rate: float, capacity: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._sweep_at = _SWEEP_AT

    def take(self, key: str) -> float:
        """0.0 when `key` may go ahead (one token taken), else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > self._sweep_at:
                self._sweep(now)
            return 0.0

    def _sweep(self, now: float) -> None:
        full = now - self.capacity / self.rate
        self._buckets = {key: value for key, value in self._buckets.items() if value[1] > full}
        self._sweep_at = max(_SWEEP_AT, 2 * len(self._buckets))


@dataclass(frozen=True)
class _Group:
    name: str
    limit: RateLimit
    buckets: TokenBuckets


class RateLimits:
    """The groups of public endpoints and their buckets; `check(scope)` says how long a request must wait.
    `clock` is a parameter so tests move time instead of sleeping."""

    def __init__(
        self,
        config: RateLimitsConfig,
        valid_write_key: Callable[[Scope], str | None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.enabled = config.enabled
        self._valid_write_key = valid_write_key
        self.groups = {
            name: _Group(name, limit, TokenBuckets(limit.per_second, limit.capacity, clock))
            for name, limit in (
                ("ingest", config.ingest),
                ("webhooks", config.webhooks),
                ("links", config.links),
                ("chat", config.chat),
                ("login", config.login),
            )
        }

    def set_clock(self, clock: Callable[[], float]) -> None:
        for group in self.groups.values():
            group.buckets.clock = clock

    def check(self, scope: Scope) -> tuple[_Group, int] | None:
        """None when the request may go ahead, else its group and the whole seconds to wait (at least 1)."""
        group = self._group(scope["path"], scope["method"]) if self.enabled else None
        if group is None:
            return None
        client = scope.get("client")
        key = f"ip:{client[0] if client else '-'}"
        if group.name == "ingest":
            write_key = self._valid_write_key(scope)
            if write_key is not None:
                key = f"key:{write_key}"
        wait = group.buckets.take(key)
        return (group, max(1, math.ceil(wait))) if wait else None

    def _group(self, path: str, method: str) -> _Group | None:
        if path in INGEST_PATHS:
            return self.groups["ingest"]
        if path.startswith("/hooks/"):
            return self.groups["webhooks"]
        if path.startswith(_LINK_PREFIXES):
            return self.groups["links"]
        if path == "/chat" or path.startswith("/chat/"):
            return self.groups["chat"]
        if path == "/admin/login" and method == "POST":
            return self.groups["login"]
        return None


class RateLimitMiddleware:
    """Pure ASGI (nothing is built for the requests that pass): a request without a token gets a 429 with
    `Retry-After`, JSON under /v1 (`{"success": false, "error": ...}`), plain text elsewhere."""

    def __init__(self, app: ASGIApp, limits: RateLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = self.limits.check(scope) if scope["type"] == "http" else None
        if refused is None:
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, *refused)

    async def _refuse(self, scope: Scope, send: Send, group: _Group, retry_after: int) -> None:
        per = "write key" if group.name == "ingest" else "IP address"
        message = f"too many requests: at most {group.limit.rate} per {per}; retry in {retry_after} s"
        if scope["path"].startswith("/v1/"):
            body = orjson.dumps({"success": False, "error": message})
            media_type = b"application/json"
        else:
            body = (message + "\n").encode()
            media_type = b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", media_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
