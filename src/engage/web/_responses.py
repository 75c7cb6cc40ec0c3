"""What the HTTP API answers besides success, for the OpenAPI schema: each route declares its refusals
with `responses=json_errors(...)` (the JSON error body of the API), `read_errors(...)` (the same for the
reads, whose 401 and 403 are about API tokens) or `text_errors(...)` (the webhooks' plain text), so
clients and schemathesis see every status code a route can return.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["ErrorBody", "json_errors", "read_errors", "text_errors", "TEXT", "ID"]

_WHY = {
    400: "Invalid input; `field` names the part of the request at fault when there is one.",
    401: "No valid write key (the HTTP Basic user name).",
    403: "The provider's signature is missing or does not match.",
    404: "Not found.",
    413: "The body is larger than the limit.",
    422: "A parameter is missing or invalid.",
    503: "Not ready: no recommendation model trained yet, or a connector's setting is missing.",
}
_READ_WHY = {
    401: "No valid API token (`Authorization: Bearer engage_…`; unknown, revoked or malformed) and no "
    "operator session. A write key reads nothing.",
    403: "The API token lacks the scope this operation needs; `error` names it.",
}


class ErrorBody(BaseModel):
    """The body of every refusal of the JSON API."""

    success: Literal[False] = False
    error: Any
    """What is wrong, in one line (or FastAPI's list of validation errors)."""
    field: str | None = None


def json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": _WHY[code]} for code in codes}


def read_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """A read's refusals: 401 and 403 (about its API token), and `codes`."""
    refusals = {code: {"model": ErrorBody, "description": why} for code, why in _READ_WHY.items()}
    return refusals | json_errors(*codes)


def text_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    return {code: {"description": _WHY[code], **text} for code in codes}


TEXT = r"^[^\x00]*$"
"""The pattern of a text parameter: anything but NUL, which PostgreSQL can neither store nor compare (it
was a 500 there); a parameter holding one is a 422 naming it."""

ID = r"^\s*[^\x00\s][^\x00]*$"
"""The pattern of an id parameter (a user's, an item's): TEXT with at least one character that is not
blank, as the event schema wants of the ids an answer logs (an id of only whitespace was a 500)."""
