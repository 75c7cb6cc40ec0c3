"""`engage journeys check|list|stats|simulate|reload` and `engage campaigns run`."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path

import typer

from engage.cli._context import load_workspace, open_engage
from engage.cli._options import WorkspaceOption
from engage.errors import EngageError, WorkspaceError
from engage.journeys.campaigns import EARLIEST_ZONE
from engage.journeys.simulate import read_calls, simulate
from engage.journeys.stats import CampaignStats, Group, JourneyStats
from engage.workspace import check_workspace, find_workspace

__all__ = ["register"]

journeys_app = typer.Typer(help="Journeys and campaigns: what they do and how they do.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Scheduled campaigns.", no_args_is_help=True)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")


@journeys_app.command("check")
def check(workspace: Path | None = WorkspaceOption) -> None:
    """Check the journey and campaign files (and what they refer to); exit 1 on any problem."""
    root = find_workspace(workspace)
    problems, _ = check_workspace(root)
    mine = [problem for problem in problems if problem.file.startswith("journeys/")]
    for problem in mine:
        typer.echo(str(problem))
    if mine:
        files = len({problem.file for problem in mine})
        raise WorkspaceError(
            f"{len(mine)} problem{'s' * (len(mine) != 1)} in {files} file{'s' * (files != 1)}"
        )
    count = len(list((root / "journeys").glob("*.yml")))
    typer.echo(f"journeys OK: {count} file{'s' * (count != 1)}")


@journeys_app.command("list")
def list_journeys(workspace: Path | None = WorkspaceOption, as_json: bool = JsonOption) -> None:
    """Every journey and campaign the database runs: what starts it, how many run it now."""
    with contextlib.closing(open_engage(workspace)) as engage:
        found = engage.journeys.list()
    if as_json:
        rows = [
            {**vars(item), "next_run": item.next_run.isoformat() if item.next_run else None} for item in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not found:
        typer.echo(
            "no journeys yet: the worker records journeys/*.yml when it starts (or `engage journeys reload`)"
        )
        return
    width = max(len(item.name) for item in found)
    starts = max(len(item.starts) for item in found)
    typer.echo(
        f"{'NAME':<{width}}  {'KIND':<8}  {'STARTS':<{starts}}  {'ACTIVE':>6}  {'ENTERED':>7}  VERSION"
    )
    for item in found:
        if item.kind == "campaign":
            counts = f"{'-':>6}  {f'{item.entered} runs':>7}"
        else:
            counts = f"{item.active:>6}  {item.entered:>7}"
        line = f"{item.name:<{width}}  {item.kind:<8}  {item.starts:<{starts}}  {counts}  {item.version[:8]}"
        if item.next_run is not None:
            line += f"  next {_when(item.next_run)}"
        typer.echo(line)


@journeys_app.command("stats")
def stats(
    name: str = typer.Argument(..., help="A journey or a campaign."),
    workspace: Path | None = WorkspaceOption,
    as_json: bool = JsonOption,
) -> None:
    """Entered, waiting per step, exits by reason, sends, and goal conversions against the holdout."""
    with contextlib.closing(open_engage(workspace)) as engage:
        found = engage.journeys.stats(name)
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2, default=str))
    elif isinstance(found, JourneyStats):
        _print_journey(found)
    else:
        _print_campaign(found)


@journeys_app.command("simulate")
def simulate_command(
    name: str = typer.Argument(..., help="The journey."),
    events: Path = typer.Option(
        ...,
        "--events",
        help="Segment calls (identify, track), one JSON object a line, each with its timestamp.",
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """A dry run on a virtual clock: what would be sent when, to whom, and why each instance ended."""
    calls = read_calls(events)
    result = simulate(load_workspace(workspace), name, calls)
    typer.echo(f"{name}: {len(calls)} calls simulated, nothing sent")
    width = max((len(line.user) for line in result.lines), default=4)
    for line in result.lines:
        typer.echo(f"{line.at:%Y-%m-%d %H:%M}  {line.user:<{width}}  {line.what}")
    exits = ", ".join(f"{reason} {count}" for reason, count in sorted(result.exits.items()))
    summary = (
        f"{result.entered} entered, {result.messages} message{'s' * (result.messages != 1)} would be sent"
    )
    summary += f"; ended: {exits}" if exits else ""
    summary += f"; {result.still_running} still running" if result.still_running else ""
    typer.echo(summary)


@journeys_app.command("reload")
def reload(workspace: Path | None = WorkspaceOption) -> None:
    """Record changed journey files as new versions; running workers follow within a second. Instances
    already running finish on the version they started on."""
    with contextlib.closing(open_engage(workspace)) as engage:
        applied = engage.journeys.sync()
    for change in applied:
        if change.action == "removed":
            typer.echo(f"{change.name}: removed (what runs on it finishes)")
        elif change.action != "unchanged":
            typer.echo(f"{change.name}: {change.action} (version {change.version[:8]})")
    unchanged = sum(change.action == "unchanged" for change in applied)
    typer.echo(f"{unchanged} unchanged")


@campaigns_app.command("run")
def run(
    name: str = typer.Argument(..., help="The campaign."),
    now: bool = typer.Option(False, "--now", help="Run it now, whatever its schedule says."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Run a campaign now: its audience gets the message (the holdout nothing), through the policies."""
    if not now:
        raise EngageError("the worker runs campaigns on their schedule; pass --now to run this one now")
    with contextlib.closing(open_engage(workspace)) as engage:
        engage.journeys.sync()
        summary = engage.journeys.campaigns.run(name)
        sent = engage.messaging.dispatch()
    typer.echo(
        f"{name}: {summary.audience} in the audience, {summary.holdout} held out, "
        f"{summary.recorded} messages recorded ({sent} handled now, the rest when due)"
    )


def _print_journey(found: JourneyStats) -> None:
    typer.echo(f"{found.name} (journey, version {found.version[:8]})")
    typer.echo(f"entered {found.entered}, running {found.active}")
    if found.waiting:
        typer.echo("where they are:")
        for step, what, count in found.waiting:
            typer.echo(f"  step {step:<3} {what:<44} {count:>7}")
    if found.exits:
        typer.echo("ended:")
        for reason, count in found.exits.items():
            typer.echo(f"  {reason:<52} {count:>7}")
    _print_sends(found.sends)
    if found.goal:
        typer.echo(f"goal {found.goal}: {found.converted} converted")
        _print_groups(found.groups, found.lift())


def _print_campaign(found: CampaignStats) -> None:
    typer.echo(f"{found.name} (campaign, version {found.version[:8]}): {found.schedule}")
    if found.next_run:
        typer.echo(f"next run: {_when(found.next_run)}")
    for run in found.runs[:10]:
        line = f"  {run['scheduled_for'][:16]}  {run['status']:<8}"
        if run["status"] != "skipped":
            line += (
                f" {run['audience']} in the audience, {run['holdout']} held out, {run['recorded']} recorded"
            )
        if run["detail"]:
            line += f" ({run['detail']})"
        typer.echo(line)
    if not found.runs:
        typer.echo("no runs yet")
    _print_sends(found.sends)
    if found.goal:
        typer.echo(f"goal {found.goal}:")
        _print_groups(found.groups, found.lift())


def _print_sends(sends: dict[str, dict[str, int]]) -> None:
    if sends:
        typer.echo("messages:")
        for template, statuses in sorted(sends.items()):
            counts = ", ".join(f"{status} {count}" for status, count in sorted(statuses.items()))
            typer.echo(f"  {template:<28} {counts}")


def _print_groups(groups: list[Group], lift: float | None) -> None:
    for group in groups:
        rate = f"{group.rate:.1%}" if group.rate is not None else "-"
        typer.echo(f"  {group.name:<12} {group.size:>7} entered {group.converted:>7} converted  {rate:>6}")
    if lift is not None:
        typer.echo(f"  against the holdout: {lift:+.0%}")


def _when(moment: datetime) -> str:
    if moment.tzinfo == EARLIEST_ZONE:
        return f"{moment:%a %Y-%m-%d %H:%M} in each customer's time zone"
    return f"{moment:%a %Y-%m-%d %H:%M %Z}"


def register(app: typer.Typer) -> None:
    app.add_typer(journeys_app, name="journeys")
    app.add_typer(campaigns_app, name="campaigns")
