"""What a comparison means: one value (a trait or an event property) tested against a `Comparison`.

The real-time engine calls `matches` value by value; the batch evaluator (`engage.segments.batch`)
implements the same rules on whole columns. The rules, so both can keep them:

- A missing key and a JSON null are the same: no value.
- `eq` is Python equality between numbers (`5 == 5.0`; a bool is not a number), between strings, between
  bools, and between timestamps when the expected value is a date or datetime (the value is then read as
  an ISO 8601 string; a date means midnight UTC). Values of different kinds are never equal.
- `ne` is `not eq`, so a missing value is "not equal" to anything.
- `gt`, `gte`, `lt`, `lte` compare numbers with numbers, strings with strings, timestamps with timestamps;
  anything else (including no value) is false.
- `in` is `eq` against any item; `contains` is a substring of a string or an item (`eq`) of a list.
- `exists: true` means a value; `exists: false` means none.
- `within: D` reads the value as a timestamp `t` and is true when `t <= now` and `now - t < D`; on an event
  property, `now` is the event's own timestamp.
- Windows on events (`within` of `performed` and friends) hold an event when `now - timestamp < within`:
  an event exactly `within` old has left the window.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import orjson

from engage.segments.definition import Comparison, Op, PropertyFilter, Scalar

__all__ = ["matches", "compile_test", "compile_filter", "as_timestamp", "as_number", "lookup", "distinct_key"]


def lookup(values: dict[str, Any], name: str) -> Any:
    """`name` in `values`, following dots into nested objects (`product.category`); None when absent."""
    if name in values:
        return values[name]
    if "." not in name:
        return None
    found: Any = values
    for part in name.split("."):
        if not isinstance(found, dict):
            return None
        found = found.get(part)
    return found


def as_number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


@lru_cache(maxsize=1 << 16)  # trait timestamps of many profiles are tested again and again
def _parse_timestamp(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def as_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from a datetime, a date (midnight UTC) or an ISO 8601 string; else None."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    if isinstance(value, str):
        return _parse_timestamp(value)
    return None


def distinct_key(value: Any) -> str:
    """One text per distinct value under Python equality (1, 1.0 and True are one value, "1" another,
    every NaN one), exact for integers of any size; lists and dicts by their JSON text, keys sorted."""
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return str(int(value)) if value.is_integer() else repr(value)
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def _is_time(expected: Any) -> bool:
    return isinstance(expected, date)  # datetime is a date too


def _equal(value: Any, expected: Scalar) -> bool:
    if value is None or expected is None:
        return value is None and expected is None
    if _is_time(expected):
        found = as_timestamp(value) if isinstance(value, str) else None
        return found is not None and found == as_timestamp(expected)
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and value == expected
    if isinstance(expected, int | float):
        number = as_number(value)
        return number is not None and number == expected
    return isinstance(value, str) and value == expected


def _order(value: Any, expected: Scalar) -> tuple[Any, Any] | None:
    """The two sides made comparable, or None when they are of different kinds."""
    if value is None or expected is None:
        return None
    if _is_time(expected):
        found = as_timestamp(value) if isinstance(value, str) else None
        return (found, as_timestamp(expected)) if found is not None else None
    if isinstance(expected, bool) or isinstance(value, bool):
        return None
    if isinstance(expected, int | float):
        number = as_number(value)
        return (number, expected) if number is not None else None
    if isinstance(expected, str) and isinstance(value, str):
        return value, expected
    return None


def matches(value: Any, comparison: Comparison, now: datetime) -> bool:
    """Whether `value` passes `comparison` at `now` (see the module's rules)."""
    op, expected = comparison.op, comparison.value
    if op is Op.EQ:
        return _equal(value, expected)  # type: ignore[arg-type]
    if op is Op.NE:
        return not _equal(value, expected)  # type: ignore[arg-type]
    if op is Op.EXISTS:
        return (value is not None) == bool(expected)
    if op is Op.IN:
        return any(_equal(value, item) for item in expected)  # type: ignore[union-attr]
    if op is Op.CONTAINS:
        if isinstance(value, str):
            return isinstance(expected, str) and expected in value
        if isinstance(value, list):
            return any(_equal(item, expected) for item in value)  # type: ignore[arg-type]
        return False
    if op is Op.WITHIN:
        found = as_timestamp(value) if isinstance(value, str) else None
        assert isinstance(expected, timedelta)
        return found is not None and found <= now and now - found < expected
    pair = _order(value, expected)  # type: ignore[arg-type]
    if pair is None:
        return False
    left, right = pair
    if op is Op.GT:
        return left > right
    if op is Op.GTE:
        return left >= right
    if op is Op.LT:
        return left < right
    return left <= right  # Op.LTE


Test = Callable[[Any, datetime], bool]
_ORDER = {Op.GT: operator.gt, Op.GTE: operator.ge, Op.LT: operator.lt, Op.LTE: operator.le}
_NUMBERS = (int, float)


def compile_test(comparison: Comparison) -> Test:
    """`matches` for one comparison, as a function of (value, now): the common cases (a string or a
    number compared, `in` a list of strings, `exists`) skip the general rules; their result is the same."""
    op, expected = comparison.op, comparison.value
    if op is Op.EXISTS:
        wanted = bool(expected)
        return lambda value, _now: (value is not None) == wanted
    if op is Op.EQ and type(expected) is str:
        return lambda value, _now: type(value) is str and value == expected
    if op is Op.IN and isinstance(expected, tuple) and all(type(item) is str for item in expected):
        choices = frozenset(expected)
        return lambda value, _now: type(value) is str and value in choices
    if op is Op.CONTAINS and type(expected) is str:
        return lambda value, now: expected in value if type(value) is str else matches(value, comparison, now)
    if type(expected) in _NUMBERS and (op is Op.EQ or op is Op.NE or op in _ORDER):
        if op is Op.EQ:
            return lambda value, _now: type(value) in _NUMBERS and value == expected
        if op is Op.NE:
            return lambda value, _now: not (type(value) in _NUMBERS and value == expected)
        compare = _ORDER[op]
        return lambda value, _now: type(value) in _NUMBERS and compare(value, expected)
    return lambda value, now: matches(value, comparison, now)


def compile_filter(where: PropertyFilter) -> Callable[[dict[str, Any], datetime], bool]:
    """A property filter as a function of (properties, event time)."""
    test, name = compile_test(where.test), where.property
    if "." in name:
        return lambda properties, at: test(lookup(properties, name), at)
    return lambda properties, at: test(properties.get(name), at)
