"""The segments API: the segments with their sizes, a segment's members page by page, a profile's segments.

Read with an API token holding `segments:read` (or the operator's session; `engage.web.auth`). The
segments are those this process's engine evaluates (the workspace's files when it started).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query

from engage.bootstrap import Engage
from engage.profiles import find_profile_id
from engage.segments import queries
from engage.web._responses import TEXT, json_errors, read_errors
from engage.web.auth import Readers

__all__ = ["segments_router"]

MAX_PAGE = 1000


def segments_router(engage: Engage, readers: Readers) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[readers.scope("segments:read")], responses=read_errors())
    defined = engage.segments.engine.segments

    @router.get("/segments")
    def list_segments() -> dict[str, Any]:
        with engage.database.read() as connection:
            sizes = queries.segment_sizes(connection)
        return {
            "segments": [
                {
                    "name": segment.name,
                    "description": segment.description,
                    "size": sizes.get(segment.name, 0),
                    "file": segment.file,
                }
                for segment in sorted(defined.values(), key=lambda segment: segment.name)
            ]
        }

    @router.get("/segments/{name}/members", responses=json_errors(404))
    def segment_members(
        name: str,
        limit: int = Query(100, ge=1, le=MAX_PAGE, description="Members per page."),
        after: str | None = Query(None, pattern=TEXT, description="The `next` cursor of the previous page."),
    ) -> dict[str, Any]:
        """Current members in profile id order; `next` is the cursor of the following page (null on the
        last). Members who enter or exit between requests never shift the others between pages."""
        if name not in defined:
            raise HTTPException(404, f"unknown segment {name!r}")
        with engage.database.read() as connection:
            page = queries.member_page(connection, name, limit=limit + 1, after=after)
        more, page = len(page) > limit, page[:limit]
        return {
            "members": [
                {"profile_id": m.profile_id, "user_id": m.user_id, "entered_at": m.entered_at.isoformat()}
                for m in page
            ],
            "next": page[-1].profile_id if more else None,
        }

    @router.get("/profiles/{identifier}/segments", responses=json_errors(404))
    def profile_segments(identifier: str = Path(pattern=TEXT)) -> dict[str, Any]:
        """The segments a user id or anonymous id is in now, and every stay (current ones included),
        the latest entered first."""
        with engage.database.read() as connection:
            profile_id = find_profile_id(connection, identifier)
            stays = queries.profile_stays(connection, profile_id) if profile_id is not None else []
        if profile_id is None:
            raise HTTPException(404, f"no profile for {identifier!r}")
        return {
            "profile_id": profile_id,
            "current": [
                {"segment": stay.segment, "entered_at": stay.entered_at.isoformat()}
                for stay in stays
                if stay.exited_at is None
            ],
            "history": [
                {
                    "segment": stay.segment,
                    "entered_at": stay.entered_at.isoformat(),
                    "exited_at": stay.exited_at.isoformat() if stay.exited_at is not None else None,
                }
                for stay in stays
            ],
        }

    return router
