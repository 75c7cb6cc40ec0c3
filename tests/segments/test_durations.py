from __future__ import annotations

from datetime import timedelta

import pytest

from engage.segments.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("1h", timedelta(hours=1)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_durations_are_read(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "cannot read duration '30'"),
        ("d", "cannot read duration 'd'"),
        ("30days", "unknown unit 'days' in duration '30days'"),
        ("3y", "unknown unit 'y'"),
        ("1.5h", "cannot read duration '1.5h'"),
        ("-1d", "cannot read duration '-1d'"),
        ("12h1d", "write each unit once, largest first"),
        ("1h1h", "write each unit once, largest first"),
        ("0d", "must be longer than zero"),
        ("", "empty duration"),
        (30, "expected a duration such as 30d, got 30"),
        (None, "expected a duration such as 30d, got None"),
    ],
)
def test_bad_durations_say_why_and_how(text: object, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert message in str(caught.value)
    if isinstance(text, str) and text:
        assert (
            "e.g." in str(caught.value) or "largest first" in str(caught.value) or "zero" in str(caught.value)
        )


@pytest.mark.parametrize("text", ["45s", "90m", "1h30m", "1d12h", "2w", "3w6d23h59m59s"])
def test_format_reads_back(text: str) -> None:
    assert format_duration(parse_duration(text)) == text.replace("90m", "1h30m")


def test_format_refuses_what_cannot_be_written() -> None:
    for value in (timedelta(0), timedelta(milliseconds=1500), timedelta(seconds=-5)):
        with pytest.raises(ValueError):
            format_duration(value)
