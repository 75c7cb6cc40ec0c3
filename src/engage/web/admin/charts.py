"""Charts drawn as inline SVG on the server: nothing is fetched from anywhere, and no script runs.

Each function returns markup ready for a template. Values are read on hover from each mark's <title>.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

__all__ = ["bar_chart", "line_chart", "funnel_chart", "grouped_bar_chart", "PALETTE"]

PALETTE = ("#3b6fb6", "#e08a2c", "#3f9b5b", "#b5485d", "#7a5fb0", "#8c8c8c")
WIDTH = 760
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 26
_AXIS = "#c9ccd1"
_TEXT = "#555b63"


def bar_chart(
    values: Sequence[float], labels: Sequence[str], *, label_every: int = 10, title: str, height: int = 180
) -> Markup:
    """One bar per value; every `label_every`th label written under the axis."""
    top = _nice_top(max(values, default=0))
    plot_width, plot_height = WIDTH - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    slot = plot_width / max(len(values), 1)
    parts = _y_axis(top, plot_height)
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        bar = plot_height * value / top
        x = _LEFT + index * slot
        parts.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{_TOP + plot_height - bar:.1f}" width="{slot * 0.8:.1f}" '
            f'height="{bar:.1f}" fill="{PALETTE[0]}"><title>{escape(label)}: {_number(value)}</title></rect>'
        )
        if index % label_every == 0 or index == len(values) - 1:
            parts.append(_text(x + slot / 2, height - 8, label, anchor="middle"))
    return _svg(parts, height, title)


def line_chart(points: Sequence[tuple[datetime, float]], *, title: str, height: int = 200) -> Markup:
    """A step line: the value holds from one point until the next (a segment's size between changes)."""
    if not points:
        return _svg([_text(WIDTH / 2, height / 2, "no data yet", anchor="middle")], height, title)
    top = _nice_top(max(value for _, value in points))
    plot_width, plot_height = WIDTH - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    start, end = points[0][0], points[-1][0]
    span = (end - start).total_seconds() or 1.0

    def x_of(moment: datetime) -> float:
        return _LEFT + plot_width * (moment - start).total_seconds() / span

    def y_of(value: float) -> float:
        return _TOP + plot_height - plot_height * value / top

    path = [f"M{x_of(points[0][0]):.1f},{y_of(points[0][1]):.1f}"]
    for (_, previous), (moment, value) in zip(points, points[1:], strict=False):
        path.append(f"H{x_of(moment):.1f}V{y_of(value):.1f}" if value != previous else f"H{x_of(moment):.1f}")
    parts = _y_axis(top, plot_height)
    parts.append(f'<path d="{"".join(path)}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    for moment, value in points:
        parts.append(
            f'<circle cx="{x_of(moment):.1f}" cy="{y_of(value):.1f}" r="6" fill="transparent">'
            f"<title>{moment:%Y-%m-%d %H:%M} UTC: {_number(value)}</title></circle>"
        )
    shape = "%H:%M:%S" if span < 3600 else "%m-%d %H:%M" if span < 3 * 86400 else "%Y-%m-%d"
    for moment, anchor in ((start, "start"), (start + (end - start) / 2, "middle"), (end, "end")):
        parts.append(_text(x_of(moment), height - 8, moment.strftime(shape), anchor=anchor))
    return _svg(parts, height, title)


def funnel_chart(rows: Sequence[tuple[str, float]], *, title: str) -> Markup:
    """Horizontal bars, one per row (a journey's steps), as long as their share of the widest."""
    label_width, row_height = 260, 26
    height = max(len(rows), 1) * row_height + 8
    top = max((value for _, value in rows), default=0) or 1
    bar_room = WIDTH - label_width - 70
    parts = []
    for index, (label, value) in enumerate(rows):
        y = 4 + index * row_height
        length = bar_room * value / top
        parts.append(_text(label_width - 8, y + 17, _clip(label, 40), anchor="end"))
        parts.append(
            f'<rect x="{label_width}" y="{y + 4}" width="{max(length, 1):.1f}" height="{row_height - 8}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {_number(value)}</title></rect>'
        )
        parts.append(_text(label_width + length + 6, y + 17, _number(value)))
    return _svg(parts, height, title)


def grouped_bar_chart(
    groups: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, title: str, height: int = 240
) -> Markup:
    """Bars grouped by `groups` (models), one colour per series (metrics), with a legend."""
    top = _nice_top(max((value for _, values in series for value in values), default=0))
    plot_width, plot_height = WIDTH - _LEFT - _RIGHT, height - _TOP - _BOTTOM - 20
    slot = plot_width / max(len(groups), 1)
    bar = slot * 0.8 / max(len(series), 1)
    parts = _y_axis(top, plot_height)
    for number, (name, values) in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        for index, value in enumerate(values):
            length = plot_height * value / top
            x = _LEFT + index * slot + slot * 0.1 + number * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{_TOP + plot_height - length:.1f}" width="{bar:.1f}" '
                f'height="{length:.1f}" fill="{colour}"><title>{escape(groups[index])}, {escape(name)}: '
                f"{value:.4f}</title></rect>"
            )
        legend_x = _LEFT + number * 150
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(legend_x + 14, height - 5, name))
    for index, group in enumerate(groups):
        parts.append(_text(_LEFT + index * slot + slot / 2, height - 28, _clip(group, 18), anchor="middle"))
    return _svg(parts, height, title)


def _y_axis(top: float, plot_height: float) -> list[str]:
    """Grid lines and labels at a quarter, half, three quarters and all of `top`, and the baseline."""
    parts = []
    for quarter in range(5):
        value = top * quarter / 4
        y = _TOP + plot_height - plot_height * quarter / 4
        colour = _AXIS if quarter else "#8a9099"
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}" stroke="{colour}"/>'
        )
        parts.append(_text(_LEFT - 6, y + 4, _number(value), anchor="end"))
    return parts


def _nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above `value`, so the axis reads in round numbers."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"


def _text(x: float, y: float, content: str, *, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" fill="{_TEXT}">'
        f"{escape(content)}</text>"
    )


def _clip(label: str, length: int) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"


def _svg(parts: list[str], height: float, title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(parts)
        + "</svg>"
    )
