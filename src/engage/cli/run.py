"""`engage run`: the API and a worker in one process, for the embedded default."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import typer
import uvicorn

from engage.cli._context import open_engage, setup_logging
from engage.cli._options import WorkspaceOption
from engage.cli.serve import HostOption, PortOption
from engage.web import create_app

log = logging.getLogger("engage.run")


def run(
    workspace: Path | None = WorkspaceOption,
    host: str = HostOption,
    port: int = PortOption,
) -> None:
    """Serve the HTTP API and process events, until Ctrl-C or SIGTERM."""
    setup_logging()
    engage = open_engage(workspace)
    stop = threading.Event()
    worker = threading.Thread(target=engage.stream.run, args=(engage.consumers, stop), name="worker", daemon=True)
    worker.start()
    log.info("engage running on http://%s:%d (stream %s)", host, port, engage.stream.name)
    try:
        uvicorn.run(create_app(engage), host=host, port=port, log_level="warning", access_log=False)
    finally:
        stop.set()
        engage.stream.notify()
        worker.join(timeout=10)
        engage.close()


def register(app: typer.Typer) -> None:
    app.command("run")(run)
