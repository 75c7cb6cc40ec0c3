"""`engage run`: the API and a worker in one process, for the embedded default."""

from __future__ import annotations

from pathlib import Path

import typer

from engage.cli._context import open_engage, setup_logging
from engage.cli._options import WorkspaceOption
from engage.cli._serving import serve_until_stopped
from engage.cli.serve import HostOption, PortOption


def run(
    workspace: Path | None = WorkspaceOption,
    host: str = HostOption,
    port: int = PortOption,
) -> None:
    """Serve the HTTP API and process events, until Ctrl-C or SIGTERM."""
    setup_logging()
    serve_until_stopped(open_engage(workspace), host, port, with_worker=True)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
