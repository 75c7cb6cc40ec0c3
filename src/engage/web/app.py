"""The HTTP API: Segment-compatible ingestion, profiles, segments (`engage.web.segments`), journeys
(`engage.web.journeys`) and health. Ingestion takes a write key; reads take an API token or the operator's
session (`engage.web.auth`).

Handlers parse input, call the engine and format the result; nothing else happens here.
"""

from __future__ import annotations

import zlib
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from engage import __version__
from engage.bootstrap import Engage
from engage.events.ingest import IngestResult, PayloadTooLarge
from engage.events.schema import InvalidEvent
from engage.profiles import profile_view
from engage.recommend.service import NoModelError
from engage.web._responses import TEXT, json_errors, read_errors
from engage.web.admin import admin_router
from engage.web.admin.session import Sessions
from engage.web.auth import Readers, WriteKeys
from engage.web.chat import chat_router
from engage.web.hooks import hooks_router
from engage.web.journeys import journeys_router
from engage.web.links import links_router
from engage.web.ratelimit import RateLimitMiddleware, RateLimits
from engage.web.recommendations import recommendations_router
from engage.web.segments import segments_router

__all__ = ["create_app"]

SINGLE_CALLS = ("track", "identify", "page", "screen", "alias", "group")
INGEST_ERRORS = json_errors(400, 401, 413)


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _error(status_code: int, message: str, **extra: Any) -> Response:
    return _json({"success": False, "error": message, **extra}, status_code)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request is {declared} bytes; the limit is {limit} bytes")
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise InvalidEvent("", f"body is not valid gzip: {exc}") from None
    return body


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("", f"body is not valid JSON: {exc}") from None


def _result(result: IngestResult) -> Response:
    content: dict[str, Any] = {"success": True, "accepted": result.accepted, "duplicates": result.duplicates}
    if result.rejected:
        content["rejected"] = [rejection.as_dict() for rejection in result.rejected]
        if not result.accepted and not result.duplicates:
            content["success"] = False
            content["error"] = "every event in the batch was rejected"
            return _json(content, 400)
    return _json(content)


def create_app(engage: Engage) -> FastAPI:
    app = FastAPI(title="engage", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.engage = engage
    endpoints = engage.workspace.endpoints
    write_keys = WriteKeys(endpoints.ingest.write_keys)
    sessions = Sessions(engage.workspace.secret_key())
    readers = Readers(engage.tokens, sessions, write_keys)

    def valid_write_key(scope: Scope) -> str | None:
        key = write_keys.from_request(Request(scope))
        return key if write_keys.valid(key) else None

    # Checked before anything reads the body: a refused request stores nothing. Tests reach the buckets
    # (and their clock) through app.state.rate_limits.
    app.state.rate_limits = RateLimits(endpoints.rate_limits, valid_write_key)
    app.add_middleware(RateLimitMiddleware, limits=app.state.rate_limits)
    ingestor = engage.ingestor
    # On SQLite ingestion runs on one thread per process: appends are serialised anyway, and threads
    # parsing JSON would hold the GIL while the one inside SQLite waits to take it back after every row.
    # PostgreSQL does its work in its own processes, so requests overlap there (and commit as a group).
    ingest_limiter = anyio.CapacityLimiter(1 if engage.database.is_sqlite else 4)

    @app.exception_handler(PayloadTooLarge)
    async def _too_large(_request: Request, exc: PayloadTooLarge) -> Response:
        return _error(413, str(exc))

    @app.exception_handler(InvalidEvent)
    async def _invalid(_request: Request, exc: InvalidEvent) -> Response:
        return _error(400, exc.message, field=exc.field)

    @app.exception_handler(NoModelError)
    async def _no_model(_request: Request, exc: NoModelError) -> Response:
        return _error(503, str(exc))

    @app.exception_handler(StarletteHTTPException)  # also FastAPI's own, e.g. a body that does not parse
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse({"success": False, "error": exc.detail}, exc.status_code, headers=exc.headers)

    @app.post("/v1/batch", responses=INGEST_ERRORS)
    @app.post("/v1/import", responses=INGEST_ERRORS)
    async def batch(request: Request) -> Response:
        # Segment also accepts the write key inside the body, so an unauthorised header is not yet a 401.
        authorized = write_keys.valid(write_keys.from_request(request))
        body = await _read_body(request, ingestor.limits.max_batch_bytes)
        ingestor.check_size(body, batch=True)
        try:
            parsed = _parse(body)
        except InvalidEvent:
            if not authorized:
                write_keys.require(request)
            raise
        if not authorized:
            write_keys.require(request, parsed.get("writeKey") if isinstance(parsed, dict) else None)
        return _result(
            await anyio.to_thread.run_sync(ingestor.batch, parsed, len(body), limiter=ingest_limiter)
        )

    def _single(call_type: str):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> Response:
            write_keys.require(request)
            body = await _read_body(request, ingestor.limits.max_event_bytes)
            ingestor.check_size(body, batch=False)
            return _result(
                await anyio.to_thread.run_sync(
                    ingestor.single, call_type, _parse(body), limiter=ingest_limiter
                )
            )

        endpoint.__name__ = call_type
        return endpoint

    for call_type in SINGLE_CALLS:
        app.add_api_route(f"/v1/{call_type}", _single(call_type), methods=["POST"], responses=INGEST_ERRORS)

    @app.get(
        "/v1/profiles/{identifier}", dependencies=[readers.scope("profiles:read")], responses=read_errors(404)
    )
    async def get_profile(identifier: str = Path(pattern=TEXT)) -> Response:
        def read() -> dict[str, Any] | None:
            with engage.database.read() as connection:
                return profile_view(
                    connection, identifier, email_consent_default=endpoints.profiles.email_consent_default
                )

        view = await run_in_threadpool(read)
        if view is None:
            return _error(404, f"no profile for {identifier!r}")
        return _json(view)

    app.include_router(segments_router(engage, readers))
    app.include_router(journeys_router(engage, readers))
    app.include_router(recommendations_router(engage, readers))
    app.include_router(hooks_router(engage))
    app.include_router(links_router(engage))
    app.include_router(chat_router(engage))
    app.include_router(admin_router(engage, sessions))

    @app.get("/healthz")
    async def healthz() -> Response:
        def probe() -> None:
            with engage.database.read() as connection:
                connection.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(probe)
        except Exception as exc:  # any failure of the probe means unhealthy, with the reason
            return _json({"status": "unavailable", "database": str(exc).splitlines()[0]}, 503)
        return _json({"status": "ok", "version": __version__, "stream": engage.stream.name})

    return app
