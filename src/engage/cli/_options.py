"""Options shared by several commands."""

from __future__ import annotations

import typer

WorkspaceOption = typer.Option(
    None,
    "--workspace",
    "-w",
    envvar="ENGAGE_WORKSPACE",
    help="The workspace folder (the one holding endpoints.yml). Default: found by walking up from here.",
    file_okay=False,
)
