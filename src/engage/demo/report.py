"""The demo's HTML report: one self-contained file (charts as inline SVG drawn by matplotlib, no script
and nothing fetched), from the same `Summary` the terminal table shows."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here; must come before pyplot

import matplotlib.pyplot as plt  # noqa: E402
from jinja2 import Environment, select_autoescape  # noqa: E402
from markupsafe import Markup  # noqa: E402

from engage.demo.summary import MESSAGE_STEPS, Summary, combined  # noqa: E402

__all__ = ["write_report"]

CHANNEL_COLOURS = {
    "web": "#4e79a7",
    "email": "#f28e2b",
    "sms": "#59a14f",
    "chat": "#b07aa1",
    "system": "#bab0ac",
}

TEMPLATE = Path(__file__).with_name("report.html.j2")


def _svg(figure: Any) -> Markup:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])  # noqa: S704 - matplotlib's own SVG, no user input


def _events_chart(summary: Summary) -> Markup:
    days = list(summary.events_by_day)
    channels = sorted({channel for counts in summary.events_by_day.values() for channel in counts})
    figure, axes = plt.subplots(figsize=(10, 3.2))
    bottom = [0] * len(days)
    for channel in channels:
        values = [summary.events_by_day[day].get(channel, 0) for day in days]
        axes.bar(range(len(days)), values, bottom=bottom, label=channel, color=CHANNEL_COLOURS.get(channel))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ticks = list(range(0, len(days), max(1, len(days) // 12)))
    axes.set_xticks(ticks, [days[i][5:] for i in ticks])
    axes.set_ylabel("events per day")
    axes.legend(ncols=len(channels), fontsize=8)
    return _svg(figure)


def _messages_chart(summary: Summary) -> Markup:
    figure, axes = plt.subplots(figsize=(7, 3))
    channels = list(summary.messages)
    width = 0.8 / max(1, len(channels))
    for index, channel in enumerate(channels):
        values = [summary.messages[channel][step] for step in MESSAGE_STEPS]
        axes.bar([x + index * width for x in range(len(MESSAGE_STEPS))], values, width, label=channel,
                 color=CHANNEL_COLOURS.get(channel))  # fmt: skip
    axes.set_xticks([x + width * (len(channels) - 1) / 2 for x in range(len(MESSAGE_STEPS))], MESSAGE_STEPS)
    axes.legend(fontsize=8)
    axes.set_ylabel("messages")
    return _svg(figure)


def _click_chart(summary: Summary) -> Markup:
    periods = list(summary.click_through)
    channels = sorted({channel for table in summary.click_through.values() for channel, _ in table})
    figure, axes = plt.subplots(figsize=(7, 3))
    width = 0.8 / max(1, len(periods))
    for index, period in enumerate(periods):
        table = summary.click_through[period]
        rates = [combined(line for key, line in table.items() if key[0] == c).rate * 100 for c in channels]
        axes.bar(
            [x + index * width for x in range(len(channels))], rates, width, label=f"{period} retraining"
        )
    axes.set_xticks([x + width * (len(periods) - 1) / 2 for x in range(len(channels))], channels)
    axes.set_ylabel("click-through, %")
    axes.legend(fontsize=8)
    return _svg(figure)


def _segments_chart(summary: Summary) -> Markup:
    names = list(summary.segments)
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(names) + 0.8))
    axes.barh(names, [summary.segments[name] for name in names], color="#4e79a7")
    axes.invert_yaxis()
    axes.set_xlabel("members now")
    return _svg(figure)


def write_report(
    summary: Summary, path: Path, options: Any, live_start: datetime, live_end: datetime
) -> Path:
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    environment.filters["thousands"] = lambda n: f"{n:,}"
    environment.filters["percent"] = lambda r: "–" if r is None else f"{r:.1%}"
    click_rows = [
        {"channel": f"{key[0]}, {key[1]}", "period": f"{period} retraining", "shown": line.shown,
         "clicked": line.clicked, "rate": f"{line.rate:.1%}", "persona": f"{line.persona_share:.0%}"}
        for key in sorted({key for table in summary.click_through.values() for key in table})
        for period, table in summary.click_through.items() if key in table
        for line in [table[key]]
    ]  # fmt: skip
    charts = {
        "events": _events_chart(summary),
        "messages": _messages_chart(summary),
        "click_through": _click_chart(summary),
        "segments": _segments_chart(summary),
    }
    html = environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        summary=summary, charts=charts, click_rows=click_rows, steps=MESSAGE_STEPS,
        intents=sorted(summary.intents.items(), key=lambda item: -item[1]),
        users=options.users, days=options.days, live_days=options.live_days, seed=options.seed,
        live_start=live_start.strftime("%Y-%m-%d"), live_end=live_end.strftime("%Y-%m-%d"),
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
