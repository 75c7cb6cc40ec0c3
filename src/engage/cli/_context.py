"""Finding the workspace and building the engine, shared by the commands."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from engage import logmask
from engage.bootstrap import Engage, bootstrap
from engage.workspace import Workspace, find_workspace

__all__ = ["load_workspace", "open_engage", "setup_logging"]


def load_workspace(explicit: Path | None) -> Workspace:
    return Workspace.load(find_workspace(explicit))


def open_engage(explicit: Path | None, *, migrate: bool = True) -> Engage:
    return bootstrap(load_workspace(explicit), migrate=migrate)


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else getattr(logging, os.environ.get("ENGAGE_LOG_LEVEL", "INFO").upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pika", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Customers' addresses and phone numbers are masked in every line (uvicorn's loggers included).
    logmask.install()
