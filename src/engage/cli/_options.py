"""Options shared by several commands."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer

from engage.errors import EngageError

WorkspaceOption = typer.Option(
    None,
    "--workspace",
    "-w",
    envvar="ENGAGE_WORKSPACE",
    help="The workspace folder (the one holding endpoints.yml). Default: found by walking up from here.",
    file_okay=False,
)


class ExportFormat(StrEnum):
    """The file formats of `engage events export` and `engage segments export`."""

    parquet = "parquet"
    csv = "csv"


EventOption = typer.Option(
    None, "--event", help='The triggering event as JSON, e.g. \'{"properties": {"product_id": "x"}}\'.'
)


def json_option(value: str | None, option: str) -> Any:
    """An option's JSON value (None when not given); a one-line error naming the option otherwise."""
    try:
        return json.loads(value) if value else None
    except ValueError as exc:
        raise EngageError(f"{option}: not JSON: {exc}") from None
