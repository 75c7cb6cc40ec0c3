"""`engage profiles show USER`."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from engage.cli._context import load_workspace
from engage.cli._options import WorkspaceOption
from engage.errors import EngageError
from engage.profiles import profile_view
from engage.store import Database

profiles_app = typer.Typer(help="Customer profiles.", no_args_is_help=True)


@profiles_app.command("show")
def show(
    user: str = typer.Argument(..., help="A user id or an anonymous id."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole profile as JSON."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Print one profile: traits, consent, identities and its latest events."""
    ws = load_workspace(workspace)
    database = Database(ws.endpoints.database.url)
    try:
        with database.read() as connection:
            view = profile_view(
                connection, user, email_consent_default=ws.endpoints.profiles.email_consent_default
            )
    finally:
        database.dispose()
    if view is None:
        raise EngageError(f"no profile for {user!r}")
    if as_json:
        typer.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())
        return
    console = Console(highlight=False)
    console.print(
        f"[bold]{view['user_id'] or user}[/]  profile {view['profile_id']}  "
        f"{view['event_count']} events, last seen {view['last_seen']}"
    )
    table = Table("trait", "value", title="traits", title_justify="left")
    for key, value in sorted(view["traits"].items()):
        table.add_row(key, str(value))
    console.print(table)
    consent = Table("channel", "subscribed", "source", "since", title="consent", title_justify="left")
    for channel, state in view["consent"].items():
        consent.add_row(
            channel, "yes" if state["subscribed"] else "no", state["source"], state["updated_at"] or ""
        )
    console.print(consent)
    console.print("identities: " + ", ".join(f"{i['type']}:{i['id']}" for i in view["identities"]))
    recent = Table("time", "channel", "event", title="latest events", title_justify="left")
    for event in view["events"][:10]:
        recent.add_row(event["timestamp"], event["channel"], event.get("event") or event["type"])
    console.print(recent)


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")
