"""Durations as marketers write them: `45s`, `90m`, `1h`, `30d`, `2w`, or combined from the largest unit
down, e.g. `1d12h` or `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DurationError", "parse_duration", "format_duration", "UNITS"]

UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_PART = re.compile(r"(\d+)([a-z]+)")
_HINT = "write a number and a unit (w, d, h, m, s), e.g. 30d, 1h, 1d12h"


class DurationError(ValueError):
    """A duration that cannot be read; its message says why and how to write one."""


def parse_duration(text: object) -> timedelta:
    """`"1d12h"` → `timedelta(days=1, hours=12)`. Units are w, d, h, m, s, each at most once, largest first;
    the total must be above zero."""
    if not isinstance(text, str):
        raise DurationError(f"expected a duration such as 30d, got {text!r}: {_HINT}")
    stripped = text.strip()
    if not stripped:
        raise DurationError(f"empty duration: {_HINT}")
    total = timedelta()
    position = 0
    order = list(UNITS)
    last = -1
    for match in _PART.finditer(stripped):
        if match.start() != position:
            break
        number, unit = match.groups()
        if unit not in UNITS:
            raise DurationError(f"unknown unit '{unit}' in duration {text!r}: {_HINT}")
        rank = order.index(unit)
        if rank <= last:
            raise DurationError(f"duration {text!r}: write each unit once, largest first (e.g. 1d12h)")
        last = rank
        total += int(number) * UNITS[unit]
        position = match.end()
    if position != len(stripped) or position == 0:
        raise DurationError(f"cannot read duration {text!r}: {_HINT}")
    if total <= timedelta():
        raise DurationError(f"duration {text!r} must be longer than zero")
    return total


def format_duration(value: timedelta) -> str:
    """The shortest text `parse_duration` reads back as `value`: `timedelta(hours=36)` → `1d12h`."""
    seconds = int(value.total_seconds())
    if seconds <= 0 or value != timedelta(seconds=seconds):
        raise ValueError(f"not a whole positive number of seconds: {value!r}")
    parts = []
    for unit, size in UNITS.items():
        count, seconds = divmod(seconds, int(size.total_seconds()))
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
