"""`engage run`: the API and a worker in one process, for the embedded default, with the chatbot (Rasa and
engage's action server) as child processes when Rasa is set up."""

from __future__ import annotations

from pathlib import Path

import typer

from engage.chat.rasa.runner import bot_runner
from engage.cli._context import open_engage, setup_logging
from engage.cli._options import WorkspaceOption
from engage.cli._serving import serve_until_stopped
from engage.cli.serve import HostOption, PortOption


def run(
    workspace: Path | None = WorkspaceOption,
    host: str = HostOption,
    port: int = PortOption,
    no_bot: bool = typer.Option(False, "--no-bot", help="Without the chatbot (Rasa and the action server)."),
) -> None:
    """Serve the HTTP API and process events, until Ctrl-C or SIGTERM. With Rasa set up (`engage bot setup`),
    also train the bot if it changed and run Rasa and the action server where endpoints.yml says."""
    setup_logging()
    engage = open_engage(workspace)
    bot = None if no_bot else bot_runner(engage.workspace)
    serve_until_stopped(engage, host, port, with_worker=True, bot=bot)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
