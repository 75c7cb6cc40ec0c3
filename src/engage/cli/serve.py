"""`engage serve`: the HTTP API (ingestion, profiles, health)."""

from __future__ import annotations

from pathlib import Path

import typer

from engage.cli._context import open_engage, setup_logging
from engage.cli._options import WorkspaceOption
from engage.cli._serving import serve_until_stopped

HostOption = typer.Option("127.0.0.1", "--host", help="Address to bind.")
PortOption = typer.Option(8000, "--port", help="Port to listen on.")


def serve(
    workspace: Path | None = WorkspaceOption,
    host: str = HostOption,
    port: int = PortOption,
) -> None:
    """Serve the HTTP API. Events are stored; `engage worker` (or `engage run`) processes them."""
    setup_logging()
    serve_until_stopped(open_engage(workspace), host, port, with_worker=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
