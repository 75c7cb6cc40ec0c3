"""Options shared by several commands."""

from __future__ import annotations

from enum import StrEnum

import typer

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
