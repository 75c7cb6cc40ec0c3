"""Logging in and out of the dashboard, and the guard every other page goes through."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from engage.web.admin.render import HEADERS, render
from engage.web.admin.session import COOKIE, LIFETIME_SECONDS, PASSWORD_VARIABLE, Sessions, safe_next

__all__ = ["login_router", "guarded", "FAILED_LOGIN_DELAY"]

FAILED_LOGIN_DELAY = 0.5
"""Seconds a wrong password waits, one at a time: a few guesses a second at most, for the whole server."""
_MAX_FORM_BYTES = 4096


def closed() -> Response:
    return render("closed.html.j2", 503, variable=PASSWORD_VARIABLE)


def guarded(sessions: Sessions) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A page handler (taking `request`) run only for a logged-in operator: otherwise a redirect to the
    login form that comes back here, or, while no password is set, the page saying to set one."""

    def decorate(handler: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(handler)
        def page(**values: Any) -> Response:
            request: Request = values["request"]
            if not sessions.configured():
                return closed()
            if not sessions.valid(request.cookies.get(COOKIE)):
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/admin/login?next={quote(here, safe='')}", 303, headers=HEADERS)
            return handler(**values)

        return page

    return decorate


def login_router(sessions: Sessions) -> APIRouter:
    router = APIRouter(prefix="/admin", include_in_schema=False)
    one_failure_at_a_time = anyio.Lock()

    @router.get("/login")
    def login_form(request: Request, after_login: str | None = Query(None, alias="next")) -> Response:
        if not sessions.configured():
            return closed()
        target = safe_next(after_login)
        if sessions.valid(request.cookies.get(COOKIE)):
            return RedirectResponse(target, 303, headers=HEADERS)
        return render("login.html.j2", next=target, error=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not sessions.configured():
            return closed()
        body = await request.body()
        form = parse_qs(body[:_MAX_FORM_BYTES].decode("utf-8", "replace"))
        password = (form.get("password") or [""])[0]
        target = safe_next((form.get("next") or [None])[0])
        if not sessions.password_matches(password):
            async with one_failure_at_a_time:
                await anyio.sleep(FAILED_LOGIN_DELAY)
            return render("login.html.j2", 401, next=target, error="That password is not right.")
        response = RedirectResponse(target, 303, headers=HEADERS)
        # Path `/`: the session also reads the `/v1` API (`engage.web.auth`). SameSite=Lax: other sites'
        # forms, frames and scripts never send it, and no other site can read an answer (no CORS).
        response.set_cookie(
            COOKIE, sessions.issue(), max_age=LIFETIME_SECONDS, path="/", httponly=True,
            samesite="lax", secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    @router.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/admin/login", 303, headers=HEADERS)
        for path in ("/", "/admin"):  # `/admin`: the sessions issued before the cookie covered the API
            response.delete_cookie(COOKIE, path=path, httponly=True, samesite="lax")
        return response

    return router
