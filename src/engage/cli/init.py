"""`engage init DIR`: a new workspace made from the example."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from engage.workspace import init_workspace

__all__ = ["register", "init"]


def init(
    directory: Path = typer.Argument(..., help="The folder to create; it must not exist or be empty."),
) -> None:
    """Create a workspace from the example: endpoints.yml, connectors, segments, journeys, templates, bot."""
    init_workspace(directory)
    typer.echo(f"created a workspace in {directory}: {', '.join(_contents(directory))}")
    typer.echo(f"next: cd {shlex.quote(str(directory))} && engage check")


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def _contents(root: Path) -> list[str]:
    entries = []
    for path in sorted(root.iterdir()):
        if path.is_dir():
            files = sum(1 for item in path.rglob("*") if item.is_file())
            entries.append(f"{path.name}/ ({files} file{'' if files == 1 else 's'})")
        else:
            entries.append(path.name)
    return entries
