"""`engage send`, `engage messages show` and `engage outbox`: send a template to a customer now, follow a
message's status, read what the outbox connector wrote."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from engage.cli._context import load_workspace, open_engage
from engage.cli._options import EventOption, WorkspaceOption, json_option
from engage.connectors.outbox import read_outbox
from engage.errors import EngageError
from engage.workspace.connectors import OutboxConfig

__all__ = ["register"]

messages_app = typer.Typer(help="Messages: what was sent, and where it stands.", no_args_is_help=True)


def send(
    template: str = typer.Argument(..., help="The template: email/NAME or sms/NAME."),
    user: str = typer.Option(..., "--user", help="A user id or anonymous id."),
    key: str | None = typer.Option(
        None, "--key", help="A send key: sending the same key again sends nothing."
    ),
    event: str | None = EventOption,
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Send a template to one customer now, through the channel's connector and the shop's policies."""
    trigger = json_option(event, "--event")
    with contextlib.closing(open_engage(workspace)) as engage:
        record = engage.messaging.send(template, user, key=key, event=trigger)
        engage.messaging.dispatch()
        record = engage.messaging.get(record.id) or record
    detail = f" ({record.error})" if record.error else ""
    typer.echo(f"{record.id}: {record.status}{detail}")


@messages_app.command("show")
def show(message_id: str = typer.Argument(...), workspace: Path | None = WorkspaceOption) -> None:
    """One message: to whom, what, and its status history."""
    with contextlib.closing(open_engage(workspace)) as engage:
        record = engage.messaging.get(message_id)
        if record is None:
            raise EngageError(f"no message {message_id!r}")
        history = engage.messaging.history(message_id)
    typer.echo(
        f"{record.id}  {record.template} to {record.address or '?'} ({record.channel}): {record.status}"
    )
    if record.subject:
        typer.echo(f"subject: {record.subject}")
    for status, at, detail in history:
        typer.echo(f"  {at:%Y-%m-%d %H:%M:%S}  {status:<10} {detail or ''}")


def outbox(
    limit: int = typer.Option(20, "-n", min=1, help="How many, newest first."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """The messages the outbox connector wrote (var/outbox/), newest first."""
    ws = load_workspace(workspace)
    config = ws.connector("outbox")
    if not isinstance(config, OutboxConfig):
        raise EngageError("connectors/outbox.yml is not an outbox connector")
    folder = Path(config.path) if Path(config.path).is_absolute() else ws.root / config.path
    for count, entry in enumerate(read_outbox(folder)):
        if count == limit:
            break
        shown = entry.path.relative_to(ws.root) if entry.path.is_relative_to(ws.root) else entry.path
        summary = " ".join(entry.summary.split())
        summary = summary if len(summary) <= 60 else summary[:59] + "…"
        when = f"{entry.at:%Y-%m-%d %H:%M:%S}"
        typer.echo(f"{when}  {entry.channel:<5}  {entry.to:<32}  {summary:<60}  {shown}")


def register(app: typer.Typer) -> None:
    app.command("send")(send)
    app.command("outbox")(outbox)
    app.add_typer(messages_app, name="messages")
