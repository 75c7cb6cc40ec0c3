"""The operator dashboard at `/admin`: server-rendered pages behind a password (`ENGAGE_ADMIN_PASSWORD`),
showing what engage is doing: events, segments, journeys, messages, recommendations, conversations.

Nothing on its pages comes from anywhere but this server: charts are inline SVG drawn in Python, and no
script runs.
"""

from __future__ import annotations

from fastapi import APIRouter

from engage.bootstrap import Engage
from engage.web.admin.login import guarded, login_router
from engage.web.admin.pages import pages_router
from engage.web.admin.session import PASSWORD_VARIABLE, Sessions

__all__ = ["admin_router", "PASSWORD_VARIABLE"]


def admin_router(engage: Engage, sessions: Sessions) -> APIRouter:
    """The dashboard's pages behind `sessions`, which also let the operator read the `/v1` API."""
    router = APIRouter()
    router.include_router(login_router(sessions))
    router.include_router(pages_router(engage, guarded(sessions)))
    return router
