"""`engage tokens create|list|revoke`: the API tokens that read the HTTP API (`engage.tokens`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import typer

from engage.cli._context import load_workspace
from engage.cli._options import WorkspaceOption
from engage.store import Database, upgrade
from engage.tokens import SCOPES, ApiToken, ApiTokens

__all__ = ["register"]

tokens_app = typer.Typer(
    help="API tokens: what reads the HTTP API (profiles, segments, journeys, recommendations).",
    no_args_is_help=True,
)
_SCOPE_HELP = "What the token may read (repeatable): " + ", ".join(SCOPES) + "; admin reads everything."


@contextlib.contextmanager
def _tokens(workspace: Path | None) -> Iterator[ApiTokens]:
    """The workspace's tokens: only the database is opened, migrated first (api_tokens may be new to it)."""
    database = Database(load_workspace(workspace).endpoints.database.url)
    try:
        upgrade(database)
        yield ApiTokens(database)
    finally:
        database.dispose()


@tokens_app.command("create")
def create(
    name: str = typer.Argument(..., help="A name for who or what holds it, unique among live tokens."),
    scopes: list[str] = typer.Option([], "--scope", "-s", help=_SCOPE_HELP),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Make a token and print it, once: engage keeps only its hash."""
    with _tokens(workspace) as tokens:
        made = tokens.create(name, scopes)
    # The token alone on stdout, so `TOKEN=$(engage tokens create ...)` captures just it.
    typer.echo(made.value)
    typer.echo(
        f"token {name!r} ({made.token.id}) with scopes: {' '.join(made.token.scopes)}. Store it now: it will "
        "not be shown again (engage keeps only its hash). Use it as `Authorization: Bearer <token>`.",
        err=True,
    )


@tokens_app.command("list")
def list_tokens(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Every token, revoked ones included: name, id, scopes and dates (never a secret, nor its hash)."""
    with _tokens(workspace) as tokens:
        found = tokens.list()
    if as_json:
        typer.echo(json.dumps([_row(token) for token in found], indent=2))
        return
    if not found:
        typer.echo("no API tokens yet: engage tokens create NAME --scope SCOPE")
        return
    # Plain columns, as `engage journeys list` prints them: an id never wraps, and grep finds a line.
    rows = [
        (token.name, token.id, " ".join(token.scopes), _when(token.created_at), _when(token.last_used_at),
         _when(token.revoked_at))
        for token in found
    ]  # fmt: skip
    header = ("NAME", "ID", "SCOPES", "CREATED (UTC)", "LAST USED", "REVOKED")
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    for row in [header, *rows]:
        typer.echo(
            "  ".join(value.ljust(width) for value, width in zip(row, [*widths, 0], strict=True)).rstrip()
        )


@tokens_app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The live token's name, or its id (the part after engage_)."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Revoke a token: every request carrying it is refused from now on (401)."""
    with _tokens(workspace) as tokens:
        token = tokens.revoke(name)
    typer.echo(f"revoked token {token.name!r} ({token.id})")


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment is not None else "-"


def _row(token: ApiToken) -> dict[str, object]:
    return {
        "name": token.name,
        "id": token.id,
        "scopes": list(token.scopes),
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="tokens")
