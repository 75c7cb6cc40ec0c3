"""The journeys API: the journeys and campaigns engage runs, and how each is doing.

Authenticated like the segments API: a write key as the HTTP Basic user name.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from engage.bootstrap import Engage
from engage.journeys.runtime import UnknownJourney
from engage.web._responses import json_errors
from engage.web.auth import WriteKeys

__all__ = ["journeys_router"]


def journeys_router(engage: Engage, write_keys: WriteKeys) -> APIRouter:
    def authorized(request: Request) -> None:
        write_keys.require(request)

    router = APIRouter(prefix="/v1", dependencies=[Depends(authorized)], responses=json_errors(401))

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
