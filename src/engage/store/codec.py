"""Values on the hot paths, passed to and from the driver without SQLAlchemy's per-value processing.

Statements built with `text()` carry no column types, so SQLAlchemy hands values straight through. These
helpers do the little conversion the two drivers need: SQLite stores JSON and times as text, psycopg
takes JSON text and returns dicts and aware datetimes itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["json_param", "time_param", "json_value", "time_value", "any_of", "listed", "list_param"]


def json_param(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def time_param(value: datetime, sqlite: bool) -> datetime | str:
    """SQLite: the text form SQLAlchemy's DateTime type writes and reads (naive UTC)."""
    if sqlite:
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def json_value(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value if value is not None else {}


def time_value(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def any_of(column: str, param: str, sqlite: bool) -> str:
    """SQL testing `column` against a list bound as one parameter (`list_param`), not one placeholder
    per value, which SQLAlchemy would render anew on every call."""
    if sqlite:
        return f"{column} IN (SELECT value FROM json_each(:{param}))"
    return f"{column} = ANY(CAST(:{param} AS text[]))"


def listed(param: str, sqlite: bool) -> str:
    """The list bound as `param` as a one-column table, `listed(value)`, to join on an indexed column.
    Looking rows up by id, the join is faster than `any_of` on SQLite, which first copies the list into a
    temporary index (0.6 ms less for 480 ids of 100,000)."""
    if sqlite:
        return f"json_each(:{param}) AS listed"
    return f"unnest(CAST(:{param} AS text[])) AS listed(value)"


def list_param(values: Any, sqlite: bool) -> Any:
    return orjson.dumps(list(values)).decode() if sqlite else list(values)
