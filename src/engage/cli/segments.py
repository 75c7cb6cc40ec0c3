"""`engage segments list|show|preview|export`: the workspace's segments and their members."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from engage.bootstrap import Engage
from engage.cli._context import open_engage
from engage.cli._options import ExportFormat, WorkspaceOption
from engage.errors import EngageError
from engage.segments import queries
from engage.segments.backfill import fingerprint
from engage.segments.definition import Segment
from engage.segments.export import export_members
from engage.segments.preview import load_draft, preview
from engage.segments.queries import AppliedDefinition

__all__ = ["register"]

segments_app = typer.Typer(help="Segments: who is in each audience.", no_args_is_help=True)
SAMPLE = 10
RECENT = 20
NOT_APPLIED = "the worker applies segment files when it starts; until then sizes and members are the old ones"


@dataclass(frozen=True)
class _Known:
    """One segment as the workspace defines it and as the database last applied it (either may be None)."""

    name: str
    segment: Segment | None
    applied: AppliedDefinition | None
    status: str
    """active, new, edited, file removed (the last three not applied yet) or retired DATE."""

    @property
    def description(self) -> str:
        if self.segment is not None:
            return self.segment.description
        return self.applied.description if self.applied is not None else ""

    @property
    def pending(self) -> bool:
        return self.status in ("new", "edited", "file removed")


def _known(engage: Engage) -> dict[str, _Known]:
    """Every segment of the workspace's files and of the database, by name."""
    engine = engage.segments.engine
    with engage.database.read() as connection:
        applied = queries.applied_definitions(connection)
    known = {}
    for name in sorted({*engine.segments, *applied}):
        segment, stored = engine.segments.get(name), applied.get(name)
        if segment is None:
            retired = stored.retired_at if stored is not None else None
            status = f"retired {retired:%Y-%m-%d}" if retired is not None else "file removed"
        elif stored is None or stored.retired_at is not None:
            status = "new"
        elif stored.fingerprint != fingerprint(segment, engine.manual):
            status = "edited"
        else:
            status = "active"
        known[name] = _Known(name, segment, stored, status)
    return known


def _one(known: dict[str, _Known], name: str) -> _Known:
    if name not in known:
        names = ", ".join(known) or "none"
        raise EngageError(f"unknown segment {name!r}; known segments: {names}")
    return known[name]


@segments_app.command("list")
def list_segments(workspace: Path | None = WorkspaceOption) -> None:
    """Every segment with its current size, and the retired ones."""
    with contextlib.closing(open_engage(workspace)) as engage:
        known = _known(engage)
        with engage.database.read() as connection:
            sizes = queries.segment_sizes(connection)
    table = Table("name", "size", "status", "description", title="segments", title_justify="left")
    table.columns[1].justify = "right"
    for name, one in known.items():
        table.add_row(name, str(sizes.get(name, 0)), one.status, one.description)
    console = Console(highlight=False)
    console.print(table)
    if any(one.pending for one in known.values()):
        console.print(f"new, edited, file removed: {NOT_APPLIED}", markup=False, soft_wrap=True)


@segments_app.command("show")
def show(
    name: str = typer.Argument(..., help="The segment's name (its file's name without .yml)."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """A segment's definition, size and latest entries and exits."""
    with contextlib.closing(open_engage(workspace)) as engage:
        one = _one(_known(engage), name)
        with engage.database.read() as connection:
            size = queries.segment_sizes(connection, [name]).get(name, 0)
            changes = queries.recent_changes(connection, name, RECENT)
        root = engage.workspace.root
    typer.echo(f"{name}: {_members(size)}, {one.status}")
    if one.pending:
        typer.echo(f"({NOT_APPLIED})")
    if one.segment is not None:
        typer.echo(f"\n{one.segment.file}:")
        typer.echo((root / one.segment.file).read_text(encoding="utf-8").rstrip())
    elif one.applied is not None:
        typer.echo(f"\nits file {one.applied.file} is gone; it was: {one.description}")
    typer.echo(f"\nlatest entries and exits (UTC, {RECENT} at most):" if changes else "\nno entries yet")
    width = max((len(change.user_id or "") for change in changes), default=0)
    for change in changes:
        verb = "entered" if change.entered else "exited"
        user = change.user_id or "-"
        typer.echo(f"  {change.at:%Y-%m-%d %H:%M:%S}  {verb:<7}  {user:<{width}}  {change.profile_id}")


@segments_app.command("preview")
def preview_command(
    file: Path = typer.Argument(..., help="A segment file, in segments/ or anywhere else (a draft)."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Check a segment file and count who would be a member now; saves nothing."""
    with contextlib.closing(open_engage(workspace)) as engage:
        live = engage.segments.engine
        draft = load_draft(engage.workspace.root, file, live.segments)
        name = draft.segment.name
        with engage.database.read() as connection:
            result = preview(
                connection,
                draft,
                engage.segments.clock(),
                email_consent_default=live.email_consent_default,
                existing=name in live.segments,
            )
    members = result.members
    typer.echo(f"{draft.segment.file}: {_members(len(members))} now (nothing saved)")
    if result.current is not None:
        entering, exiting = members.keys() - result.current, result.current - members.keys()
        typer.echo(
            f"live segment {name}: {_members(len(result.current))}; with this file "
            f"{len(entering)} would enter and {len(exiting)} would exit"
        )
    sample = sorted(members.items(), key=lambda item: (item[1] is None, item[1] or "", item[0]))[:SAMPLE]
    if sample:
        typer.echo(f"{'sample' if len(members) > SAMPLE else 'members'} (user id, profile id):")
    width = max((len(user_id or "") for _, user_id in sample), default=0)
    for profile_id, user_id in sample:
        typer.echo(f"  {user_id or '-':<{width}}  {profile_id}")


@segments_app.command("export")
def export(
    name: str = typer.Argument(..., help="The segment's name."),
    format: ExportFormat = typer.Option(ExportFormat.csv, "--format", help="csv or parquet."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default NAME.csv or NAME.parquet here)."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Write a segment's current members (profile id, user id, entered at, email, phone) to a file."""
    with contextlib.closing(open_engage(workspace)) as engage:
        _one(_known(engage), name)
        output = output or Path.cwd() / f"{name}.{format.value}"
        with engage.database.read() as connection:
            count = export_members(connection, name, output, format.value)
    typer.echo(f"wrote {_members(count)} of {name} to {output}")


def _members(count: int) -> str:
    return f"{count} member{'' if count == 1 else 's'}"


def register(app: typer.Typer) -> None:
    app.add_typer(segments_app, name="segments")
