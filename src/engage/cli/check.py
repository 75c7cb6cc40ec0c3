"""`engage check`: every problem in every workspace file, one `file:line: message` per line."""

from __future__ import annotations

from pathlib import Path

import typer

from engage.cli._options import WorkspaceOption
from engage.errors import WorkspaceError
from engage.workspace import check_workspace, find_workspace

__all__ = ["register", "check"]


def check(workspace: Path | None = WorkspaceOption) -> None:
    """Check endpoints.yml, connectors, segments, journeys, templates and the bot; exit 1 on any problem."""
    root = find_workspace(workspace)
    problems, summary = check_workspace(root)
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        # The list stays on stdout for tools that read it; the run ends with one error line and exit 1.
        files = len({problem.file for problem in problems})
        raise WorkspaceError(f"{_count(len(problems), 'problem')} in {_count(files, 'file')}")
    typer.echo(str(summary))


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
