"""`engage worker`: deliver the stream to the consumers (profiles, and the stages later issues add)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import typer

from engage.cli._context import open_engage, setup_logging
from engage.cli._options import WorkspaceOption
from engage.cli._serving import stop_on_signals, tune_process

log = logging.getLogger("engage.worker")


def worker(workspace: Path | None = WorkspaceOption) -> None:
    """Process events until stopped (SIGTERM or Ctrl-C)."""
    setup_logging()
    engage = open_engage(workspace)
    stop = threading.Event()
    stop_on_signals(stop)
    tune_process()
    log.info(
        "worker started: stream %s, consumers %s", engage.stream.name, ", ".join(engage.consumers.names())
    )
    try:
        engage.work(stop)
    finally:
        engage.close()


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
