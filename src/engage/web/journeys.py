"""The journeys API: the journeys and campaigns engage runs, and how each is doing.

Read with an API token holding `journeys:read` (or the operator's session; `engage.web.auth`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from engage.bootstrap import Engage
from engage.journeys.runtime import UnknownJourney
from engage.web._responses import json_errors, read_errors
from engage.web.auth import Readers

__all__ = ["journeys_router"]


def journeys_router(engage: Engage, readers: Readers) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[readers.scope("journeys:read")], responses=read_errors())

    @router.get("/journeys")
    def list_journeys() -> dict[str, Any]:
        """Every journey and campaign, current version: what starts it, how many run it now."""
        return {
            "journeys": [
                {
                    "name": item.name,
                    "kind": item.kind,
                    "version": item.version,
                    "description": item.description,
                    "starts": item.starts,
                    "active": item.active,
                    "entered" if item.kind == "journey" else "runs": item.entered,
                    "next_run": item.next_run.isoformat() if item.next_run else None,
                }  # fmt: skip
                for item in engage.journeys.list()
            ]
        }

    @router.get("/journeys/{name}/stats", responses=json_errors(404))
    def journey_stats(name: str) -> dict[str, Any]:
        """Entered, where they wait, exits by reason, sends by status, goal conversions and the holdout."""
        try:
            return engage.journeys.stats(name).as_dict()
        except UnknownJourney as exc:
            raise HTTPException(404, str(exc)) from None

    return router
