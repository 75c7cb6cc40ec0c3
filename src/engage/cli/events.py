"""`engage events tail` and `engage events export`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from engage.cli._context import load_workspace
from engage.cli._options import ExportFormat, WorkspaceOption
from engage.errors import EngageError
from engage.events.export import export_events
from engage.events.log import EventLog, LoggedEvent
from engage.store import Database

events_app = typer.Typer(help="The event log.", no_args_is_help=True)
_CHANNEL_COLOURS = {"web": "cyan", "email": "magenta", "sms": "green", "chat": "yellow", "system": "blue"}


def _line(event: LoggedEvent) -> str:
    colour = _CHANNEL_COLOURS.get(event.channel, "white")
    who = event.user_id or f"anon:{event.anonymous_id}"
    name = event.event or event.type
    payload = event.properties or event.traits
    details = escape(orjson.dumps(payload).decode()) if payload else ""
    when = event.timestamp.strftime("%Y-%m-%d %H:%M:%S")
    return f"{event.seq:>8} {when} [{colour}]{event.channel:<6}[/] {escape(name):<24} {escape(who)} {details}"


@events_app.command("tail")
def tail(
    workspace: Path | None = WorkspaceOption,
    last: int = typer.Option(10, "--last", "-n", help="Show this many past events first."),
    follow: bool = typer.Option(True, "--follow/--no-follow", help="Keep printing events as they arrive."),
    interval: float = typer.Option(0.5, "--interval", help="Seconds between polls of the log."),
) -> None:
    """Print events as they arrive."""
    database = Database(load_workspace(workspace).endpoints.database.url)
    log = EventLog(database)
    console = Console(highlight=False)
    after = max(log.last_seq() - last, 0)
    try:
        while True:
            events = log.read(after_seq=after, limit=1000)
            for event in events:
                console.print(_line(event), soft_wrap=True)
            if events:
                after = events[-1].seq
                continue
            if not follow:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        database.dispose()


def _parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EngageError(f"--since: not a date or time: {value!r} (use e.g. 2026-11-01)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@events_app.command("export")
def export(
    since: str = typer.Option(
        ..., "--since", help="Export events that happened at or after this date (UTC)."
    ),
    format: ExportFormat = typer.Option(ExportFormat.parquet, "--format", help="parquet or csv."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default under var/exports)."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Write the event log since a date to Parquet or CSV, for analysis with pandas or a warehouse."""
    ws = load_workspace(workspace)
    start = _parse_since(since)
    if output is None:
        output = ws.var_dir / "exports" / f"events-since-{start:%Y%m%d}.{format.value}"
    database = Database(ws.endpoints.database.url)
    try:
        count = export_events(EventLog(database), start, output, format.value)
    finally:
        database.dispose()
    typer.echo(f"wrote {count} events to {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")
