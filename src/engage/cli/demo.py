"""`engage demo`: the main job, on the embedded default, with nothing to configure."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from engage.demo.run import run_demo


def demo(
    directory: Path = typer.Option(Path("var/demo"), "--dir", help="Where to create the demo workspace."),
    users: int = typer.Option(500, "--users", min=1, help="Simulated shoppers."),
    days: int = typer.Option(30, "--days", min=1, help="Days of storefront history."),
    seed: int = typer.Option(7, "--seed", help="Same seed, same run."),
) -> None:
    """Run a simulated shop's storefront traffic through engage and report what engage made of it."""
    console = Console(highlight=False)
    console.print(f"[bold]engage demo[/]: {users} shoppers, {days} days of storefront traffic, seed {seed}")
    report = run_demo(directory.resolve(), users=users, days=days, seed=seed, console=console)

    table = Table(title="ingestion (Segment-compatible /v1/batch, over HTTP)", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("calls sent (with client retries and bad events)", f"{report.calls_sent:,}")
    table.add_row("events stored", f"{report.accepted:,}")
    table.add_row("retried events stored once (same messageId)", f"{report.duplicates:,}")
    table.add_row("bad events rejected, rest of batch kept", f"{report.rejected:,}")
    table.add_row(
        "events/s, HTTP to profiles updated (one client, batches of 20)",
        f"{report.accepted / report.seconds:,.0f}",
    )
    console.print(table)
    for example in report.rejection_examples:
        console.print(f"  rejected: {example}")

    people = Table(title="profiles", title_justify="left")
    people.add_column("what")
    people.add_column("count", justify="right")
    people.add_row("profiles", f"{report.profiles:,}")
    people.add_row("known customers", f"{report.known_profiles:,}")
    people.add_row("anonymous visitors", f"{report.anonymous_profiles:,}")
    people.add_row(
        "customers whose anonymous browsing followed them into their account", f"{report.carried_over:,}"
    )
    people.add_row("profiles merged (same customer on a second device)", f"{report.merges:,}")
    for label, count in sorted(report.consent.items()):
        people.add_row(f"consent: {label}", f"{count:,}")
    console.print(people)

    segments = Table(title="segments (members now, kept current as events arrive)", title_justify="left")
    segments.add_column("segment")
    segments.add_column("members", justify="right")
    for name, size in report.segments.items():
        segments.add_row(name, f"{size:,}")
    console.print(segments)

    journeys = Table(title="journeys (started by the traffic, on the real clock)", title_justify="left")
    for column in ("journey", "entered", "still running", "messages sent"):
        journeys.add_column(column, justify="left" if column == "journey" else "right")
    for name, entered, running, sent in report.journeys:
        journeys.add_row(name, f"{entered:,}", f"{running:,}", f"{sent:,}")
    console.print(journeys)
    console.print(f"messages written to the outbox (var/outbox/): {report.outbox:,}")

    top = ", ".join(f"{name} {count:,}" for name, count in report.events_by_name.most_common(6) if name)
    console.print(f"events by name: {top}")
    console.print(f"workspace: {directory}")
    console.print(f"  try: engage profiles show {report.example_user} -w {directory}")
    console.print(f"       engage segments show recent_purchasers -w {directory}")
    console.print(f"       engage journeys stats abandoned_cart -w {directory}")
    console.print(f"       engage outbox -w {directory}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
