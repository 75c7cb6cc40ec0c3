"""`engage demo`: the main job, on the embedded default, with nothing to configure."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from engage.demo.run import DemoOptions, DemoResult, run_demo
from engage.demo.summary import MESSAGE_STEPS, ClickThrough, combined


def demo(
    directory: Path = typer.Option(Path("var/demo"), "--dir", help="Where to create the demo workspace."),
    users: int = typer.Option(600, "--users", min=10, help="Simulated shoppers."),
    days: int = typer.Option(90, "--days", min=1, help="Days of storefront history before the live period."),
    live_days: int = typer.Option(14, "--live-days", min=2, help="Days the live period lasts."),
    seed: int = typer.Option(7, "--seed", help="Same seed, same run."),
    speed: float = typer.Option(
        0,
        "--speed",
        min=0,
        help="Run the live clock at most this many times faster than real time (0: flat out).",
    ),
    bot: bool = typer.Option(True, "--bot/--no-bot", help="Chat with the real Rasa bot (needs .venv-rasa)."),
    bot_cache: Path | None = typer.Option(
        None, "--bot-cache", help="Folder of trained bot models kept between runs (default: beside --dir)."
    ),
) -> None:
    """Run a simulated shop through the whole loop and report what engage made of it."""
    console = Console(highlight=False)
    console.width = max(console.width, 120)
    console.print(
        f"[bold]engage demo[/]: {users} shoppers, {days} days of history, {live_days} live days, seed {seed}"
    )
    options = DemoOptions(directory.resolve(), users, days, live_days, seed, speed, bot, bot_cache)
    # SIGTERM unwinds like Ctrl-C, so the Rasa server and the action server it started stop with it.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        result = run_demo(options, console)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_summary(console, result)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def print_summary(console: Console, result: DemoResult) -> None:
    summary = result.summary
    tally = result.ingest
    ingest = _table("live storefront traffic (Segment /v1/batch over HTTP)", "what", "calls")
    ingest.add_row("calls sent (client retries and broken calls included)", f"{tally.sent:,}")
    ingest.add_row("stored", f"{tally.accepted:,}")
    ingest.add_row("retries stored once (same messageId)", f"{tally.duplicates:,}")
    ingest.add_row("broken calls rejected by field, the rest of their batch kept", f"{tally.rejected:,}")

    events = _table("events", "channel", "events")
    for channel, count in sorted(summary.events_by_channel.items()):
        events.add_row(channel, f"{count:,}")
    events.add_row("[bold]all[/]", f"[bold]{summary.events:,}[/]")

    segments = _table("segments (members now)", "segment", "members")
    for name, size in summary.segments.items():
        segments.add_row(name, f"{size:,}")

    journeys = _table(
        "journeys and campaigns", "name", "entered", "running", "exits by reason", "converted", "reached",
        "holdout", "sent",
    )  # fmt: skip
    for line in summary.journeys:
        exits = ", ".join(f"{reason} {n:,}" for reason, n in sorted(line.exits.items())) or "-"
        journeys.add_row(
            line.name, f"{line.entered:,}", f"{line.active:,}", exits, f"{line.converted:,}",
            _percent(line.reached_rate), _percent(line.holdout_rate), f"{line.sent:,}",
        )  # fmt: skip

    messages = _table("messages", "channel", *MESSAGE_STEPS)
    for channel, counts in summary.messages.items():
        unreported = summary.unreported.get(channel, set())
        messages.add_row(
            channel,
            *(
                "-" if step in unreported and not counts[step] else f"{counts[step]:,}"
                for step in MESSAGE_STEPS
            ),
        )
    if any(summary.unreported.values()):
        messages.caption = "-: nothing reports it (an SMS has no opens; the outbox reports no deliveries)"
        messages.caption_justify = "left"

    chat = _table("chat", "what", "count")
    for channel, count in sorted(summary.chat_turns.items()):
        chat.add_row(f"customer turns ({channel})", f"{count:,}")
    for name, count in summary.opt_outs.items():
        chat.add_row(name, f"{count:,}")

    loop = _table(
        "the loop: recommendations shown and clicked, before and after retraining on the clicks",
        "channel", "use case", "lists before", "clicked before", "lists after", "clicked after",
    )  # fmt: skip
    before, after = summary.click_through.get("before", {}), summary.click_through.get("after", {})
    for key in sorted({*before, *after}):
        loop.add_row(*key, *_shown(before.get(key)), *_shown(after.get(key)))
    for label, pick in (("personalized, every channel", lambda key: key[1] == "for_you"), ("all", None)):
        b = combined(line for key, line in before.items() if pick is None or pick(key))
        a = combined(line for key, line in after.items() if pick is None or pick(key))
        loop.add_row(f"[bold]{label}[/]", "", *_shown(b, bold=True), *_shown(a, bold=True))

    for table in (ingest, events, segments, journeys, messages, chat, loop):
        console.print(table)
    for example in tally.examples:
        console.print(f"  rejected: {example}")
    persona = summary.persona_click_through
    if "after" in persona:
        before_rate, after_rate = persona["before"].rate, persona["after"].rate
        console.print(
            "[bold]the loop[/]: personalized recommendations clicked by shoppers with a persona, "
            "every channel: "
            f"[bold]{before_rate:.1%}[/] before retraining on the channels' clicks, "
            f"[bold]{after_rate:.1%}[/] after ({(after_rate - before_rate) * 100:+.1f} points)",
            soft_wrap=True,
        )
    console.print(
        f"models: {summary.models.get('before')} before, {summary.models.get('after', '-')} after "
        f"(retrained {result.retrained_at:%a %d %b %H:%M} UTC)"
        if result.retrained_at
        else ""
    )
    console.print(f"report: {result.report}")
    console.print(f"workspace: {result.workspace} (finished in {result.seconds:.0f} s)")
    console.print(f"  dashboard: ENGAGE_ADMIN_PASSWORD=... engage serve -w {result.workspace}, then /admin")


def _shown(line: ClickThrough | None, bold: bool = False) -> tuple[str, str]:
    if line is None or not line.shown:
        return "-", "-"
    rate = f"{line.rate:.1%}"
    return f"{line.shown:,}", f"[bold]{rate}[/]" if bold else rate


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
