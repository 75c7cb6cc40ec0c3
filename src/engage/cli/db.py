"""`engage db upgrade` and `engage db current`."""

from __future__ import annotations

from pathlib import Path

import typer

from engage.cli._context import load_workspace
from engage.cli._options import WorkspaceOption
from engage.store import Database, current_revision, head_revision, upgrade

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


def _database(workspace: Path | None) -> Database:
    endpoints = load_workspace(workspace).endpoints
    return Database(endpoints.database.url)


@db_app.command("upgrade")
def upgrade_command(workspace: Path | None = WorkspaceOption) -> None:
    """Apply every pending migration (also done automatically on start)."""
    database = _database(workspace)
    before = current_revision(database)
    upgrade(database)
    after = current_revision(database)
    where = database.url.render_as_string(hide_password=True)
    if before == after:
        typer.echo(f"{where}: already at revision {after}")
    else:
        typer.echo(f"{where}: upgraded from {before or 'empty'} to {after}")
    database.dispose()


@db_app.command("current")
def current_command(workspace: Path | None = WorkspaceOption) -> None:
    """Show the schema revision of the database and the newest one engage knows."""
    database = _database(workspace)
    typer.echo(f"current: {current_revision(database) or 'empty'}  head: {head_revision()}")
    database.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
