"""One segment file's YAML → a `Segment`, every problem reported at the line of its key.

Written by hand rather than with pydantic: a condition is told apart by which key it holds (`trait`,
`performed`, …), and a marketer's mistake deserves a message about that key, not a union's ten errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import Any

from engage.errors import Problem
from engage.segments.definition import (
    AGGREGATE_OPS,
    ORDERED_OPS,
    Aggregate,
    AggregateFunction,
    All,
    AnyOf,
    Channel,
    Comparison,
    Condition,
    Consent,
    CountOp,
    InSegment,
    LastPerformed,
    Manual,
    Not,
    NotPerformed,
    Op,
    Performed,
    PropertyFilter,
    RandomBucket,
    Segment,
    Trait,
)
from engage.segments.durations import DurationError, parse_duration
from engage.workspace.yaml import KeyPath, YamlFile

__all__ = ["ParsedSegment", "parse_segment", "SegmentParser", "COMBINATORS"]

TOP_KEYS = ("name", "description", "condition")
COMBINATORS = ("all", "any", "not")
LEAVES = (
    "trait", "performed", "not_performed", "last_performed",
    "in_segment", "consent", "random_bucket", "manual",
)  # fmt: skip
_COUNTS = tuple(c.value for c in CountOp)
_AGGREGATES = tuple(f.value for f in AggregateFunction)
_OPS = tuple(o.value for o in Op)
_AGGREGATE_OPS = tuple(o.value for o in AGGREGATE_OPS)
_EVENT_KEYS = {
    "performed": ("performed", "where", *_COUNTS, "within", *_AGGREGATES, *_AGGREGATE_OPS),
    "not_performed": ("not_performed", "where", "within"),
    "last_performed": ("last_performed", "where"),
}
_SCALARS = (str, int, float, bool, date, datetime, type(None))


@dataclass(frozen=True)
class ParsedSegment:
    """A file's segment (None when it has problems) and where its references sit, for the set's checks."""

    doc: YamlFile
    segment: Segment | None
    problems: list[Problem]
    references: list[tuple[str, KeyPath]] = field(default_factory=list)
    """(segment name, path of its `in_segment` key) for every `in_segment` leaf."""
    manual: list[tuple[str, KeyPath]] = field(default_factory=list)
    """(CSV path, path of its `manual` key) for every `manual` leaf."""


def parse_segment(doc: YamlFile) -> ParsedSegment:
    """Read `doc` as a segment whose `name` must be the file's name without `.yml`."""
    parser = SegmentParser(doc)
    segment = parser.segment()
    problems = parser.problems
    return ParsedSegment(doc, segment if not problems else None, problems, parser.references, parser.manual)


class SegmentParser:
    """Reads conditions (and a segment file) at the lines of their keys; a subclass allows other leaves
    (`leaves`, each read by its `leaf_NAME` method), as journeys' branch conditions do."""

    leaves: tuple[str, ...] = LEAVES

    def __init__(self, doc: YamlFile):
        self.doc = doc
        self.problems: list[Problem] = []
        self.references: list[tuple[str, KeyPath]] = []
        self.manual: list[tuple[str, KeyPath]] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def unknown(self, path: KeyPath, keys: Any, known: tuple[str, ...], what: str = "key") -> bool:
        """Report every key not in `known`; True if there was one."""
        found = False
        for key in keys:
            if key not in known:
                message = f"unknown {what} '{key}'; known {what}s: {', '.join(known)}"
                self.problems.append(Problem(self.doc.file, self.doc.line_of((*path, key)), message))
                found = True
        return found

    # ------------------------------------------------------------------------------------------- the file

    def segment(self) -> Segment | None:
        data, stem = self.doc.data, PurePosixPath(self.doc.file).stem
        if not isinstance(data, dict):
            what = "an empty file" if data is None else f"a {type(data).__name__}"
            self.error((), f"expected a mapping with `name: {stem}` and a `condition`, found {what}")
            return None
        self.unknown((), data, TOP_KEYS)
        name = data.get("name")
        if "name" not in data:
            self.error((), f"name: required but missing (write `name: {stem}`)")
        elif name != stem:
            self.error(("name",), f"{name!r} must be the file's name without .yml: '{stem}'")
        description = data.get("description", "")
        if description is None:
            description = ""
        if not isinstance(description, str):
            self.error(("description",), "expected text")
        if "condition" not in data:
            self.error((), "condition: required but missing")
            return None
        condition = self.condition(data["condition"], ("condition",))
        if condition is None or not isinstance(description, str):
            return None
        return Segment(stem, condition, description.strip(), self.doc.file)

    # ---------------------------------------------------------------------------------------- conditions

    def condition(self, data: Any, path: KeyPath) -> Condition | None:
        if not isinstance(data, dict) or not data:
            self.error(
                path, f"expected a condition: a mapping with one of {', '.join(COMBINATORS + self.leaves)}"
            )
            return None
        kinds = [key for key in data if key in COMBINATORS or key in self.leaves]
        if not kinds:
            self.unknown(path, data, COMBINATORS + self.leaves, "condition")
            return None
        if len(kinds) > 1:
            listed = " and ".join(f"'{k}'" for k in kinds)
            message = f"{listed} cannot share one condition: put each under `all` or `any`"
            self.error((*path, kinds[1]), message)
            return None
        kind = kinds[0]
        if kind in COMBINATORS:
            self.unknown(path, data, (kind,))
            return self.combinator(kind, data[kind], (*path, kind))
        method = getattr(self, f"leaf_{kind}")
        result: Condition | None = method(data, path)
        return result

    def combinator(self, kind: str, data: Any, path: KeyPath) -> Condition | None:
        if kind == "not":
            inner = self.condition(data, path)
            return Not(inner) if inner is not None else None
        if not isinstance(data, list) or not data:
            self.error(path, f"expected a list of conditions under `{kind}`")
            return None
        parts = [self.condition(item, (*path, i)) for i, item in enumerate(data)]
        if any(part is None for part in parts):
            return None
        conditions = tuple(part for part in parts if part is not None)
        return All(conditions) if kind == "all" else AnyOf(conditions)

    def leaf_trait(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        name = self.name(data, path, "trait", "a trait name, e.g. email")
        unknown = self.unknown(path, [key for key in data if key != "trait"], _OPS, "operator")
        test = self.one_comparison(data, path, (*path, "trait"), _OPS, quiet=unknown)
        return Trait(name, test) if name is not None and test is not None else None

    def leaf_performed(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        event, where, within = self.event_parts(data, path, "performed")
        counts = [key for key in _COUNTS if key in data]
        aggregates = [key for key in _AGGREGATES if key in data]
        ops = [key for key in data if key in _AGGREGATE_OPS]
        if len(counts) > 1:
            self.error((*path, counts[1]), f"use one of {', '.join(_COUNTS)}, not {' and '.join(counts)}")
        if aggregates:
            return self.aggregate(data, path, event, where, within, aggregates, counts)
        if ops:
            self.error(
                (*path, ops[0]),
                f"'{ops[0]}' compares an aggregate: add sum, count or max of a property, "
                "or count events with at_least, at_most or exactly",
            )
        count_op, count = CountOp.AT_LEAST, 1
        if counts:
            count_op, count = CountOp(counts[0]), data[counts[0]]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                self.error((*path, counts[0]), f"expected a whole number of events, got {count!r}")
        if event is None or where is None or within is False or self.problems:
            return None
        return Performed(event, where, count_op, count, within)

    def aggregate(
        self, data: dict[str, Any], path: KeyPath, event: Any, where: Any, within: Any, found: list[str],
        counts: list[str],
    ) -> Condition | None:  # fmt: skip
        if len(found) > 1:
            self.error((*path, found[1]), f"use one of sum, count, max, not {' and '.join(found)}")
        if counts:
            self.error((*path, counts[0]), f"'{counts[0]}' counts events: it cannot go with '{found[0]}'")
        prop = data[found[0]]
        if not isinstance(prop, str) or not prop:
            self.error((*path, found[0]), f"expected the name of an event property, got {prop!r}")
        unknown = any(key not in _EVENT_KEYS["performed"] for key in data)
        test = self.one_comparison(data, path, (*path, found[0]), _AGGREGATE_OPS, quiet=unknown, numeric=True)
        if event is None or where is None or within is False or test is None or self.problems:
            return None
        return Aggregate(event, AggregateFunction(found[0]), prop, test, where, within)

    def leaf_not_performed(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        event, where, within = self.event_parts(data, path, "not_performed")
        if event is None or where is None or within is False:
            return None
        return NotPerformed(event, where, within)

    def leaf_last_performed(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        event, where, _ = self.event_parts(data, path, "last_performed")
        if "where" not in data:
            self.error((*path, "last_performed"), "add `where:` to test the latest event's properties")
            return None
        return LastPerformed(event, where) if event is not None and where is not None else None

    def leaf_in_segment(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        self.unknown(path, data, ("in_segment",))
        name = self.name(data, path, "in_segment", "the name of another segment")
        if name is None:
            return None
        self.references.append((name, (*path, "in_segment")))
        return InSegment(name)

    def leaf_consent(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        self.unknown(path, data, ("consent", "subscribed"))
        channel, subscribed = data["consent"], data.get("subscribed", True)
        channels = tuple(c.value for c in Channel)
        if channel not in channels:
            self.error((*path, "consent"), f"expected a channel: {' or '.join(channels)}, got {channel!r}")
            return None
        if not isinstance(subscribed, bool):
            self.error((*path, "subscribed"), f"expected true or false, got {subscribed!r}")
            return None
        return Consent(Channel(channel), subscribed)

    def leaf_random_bucket(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        self.unknown(path, data, ("random_bucket",))
        spec, here = data["random_bucket"], (*path, "random_bucket")
        if not isinstance(spec, dict):
            self.error(here, "expected `{salt: some-text, below: PERCENT}`")
            return None
        self.unknown(here, spec, ("salt", "below"))
        salt, below = spec.get("salt"), spec.get("below")
        if not isinstance(salt, str) or not salt:
            self.error((*here, "salt"), "required: a text that names this split, e.g. holdout-2024")
        if isinstance(below, bool) or not isinstance(below, int | float) or not 0 <= below <= 100:
            self.error((*here, "below"), f"expected a percentage from 0 to 100, got {below!r}")
            return None
        return RandomBucket(salt, float(below)) if isinstance(salt, str) and salt else None

    def leaf_manual(self, data: dict[str, Any], path: KeyPath) -> Condition | None:
        self.unknown(path, data, ("manual",))
        file = data["manual"]
        if not isinstance(file, str) or not file.endswith(".csv"):
            self.error((*path, "manual"), f"expected a .csv file relative to the workspace, got {file!r}")
            return None
        if PurePosixPath(file).is_absolute() or ".." in PurePosixPath(file).parts:
            self.error((*path, "manual"), f"{file!r} must be inside the workspace: write a relative path")
            return None
        self.manual.append((file, (*path, "manual")))
        return Manual(file)

    # ------------------------------------------------------------------------------------------- pieces

    def name(self, data: dict[str, Any], path: KeyPath, key: str, what: str) -> str | None:
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            self.error((*path, key), f"expected {what}, got {value!r}")
            return None
        return value.strip()

    def event_parts(self, data: dict[str, Any], path: KeyPath, key: str) -> tuple[Any, Any, Any]:
        """(event name | None, filters | None, window | None when absent | False when invalid)."""
        self.unknown(path, data, _EVENT_KEYS[key])
        event = self.name(data, path, key, "an event name, e.g. OrderCompleted")
        where = self.where(data.get("where", {}), (*path, "where"))
        within = self.duration(data["within"], (*path, "within")) if "within" in data else None
        return event, where, within

    def where(self, data: Any, path: KeyPath) -> tuple[PropertyFilter, ...] | None:
        if not isinstance(data, dict):
            self.error(path, "expected property filters: `property: value` or `property: {operator: value}`")
            return None
        filters = []
        for prop, spec in data.items():
            here = (*path, prop)
            if isinstance(spec, dict):
                unknown = self.unknown(here, spec, _OPS, "operator")
                test = self.one_comparison(spec, here, here, _OPS, quiet=unknown)
            elif isinstance(spec, list):
                self.error(here, f"to match one of several values write `{prop}: {{in: [...]}}`")
                test = None
            else:
                test = self.comparison(Op.EQ, spec, here)
            if test is not None:
                filters.append(PropertyFilter(str(prop), test))
        return tuple(filters) if len(filters) == len(data) else None

    def one_comparison(
        self, data: dict[str, Any], path: KeyPath, at: KeyPath, allowed: tuple[str, ...], quiet: bool,
        numeric: bool = False,
    ) -> Comparison | None:  # fmt: skip
        """The one operator in `data` (at `path`; the key at `at` needs it) and its value. `quiet`: say
        nothing when there is none, as an unknown operator was already reported."""
        ops = [key for key in data if key in allowed]
        if len(ops) > 1:
            self.error((*path, ops[1]), f"one operator only, found {' and '.join(ops)}")
            return None
        if not ops:
            if not quiet:
                self.error(at, f"needs one operator: {', '.join(allowed)}")
            return None
        return self.comparison(Op(ops[0]), data[ops[0]], (*path, ops[0]), numeric)

    def comparison(self, op: Op, value: Any, path: KeyPath, numeric: bool = False) -> Comparison | None:
        if op is Op.WITHIN:
            window = self.duration(value, path)
            return Comparison(op, window) if window is not False else None
        if op is Op.EXISTS:
            if not isinstance(value, bool):
                self.error(path, f"expected true or false, got {value!r}")
                return None
            return Comparison(op, value)
        if op is Op.IN:
            if not isinstance(value, list) or not value or not all(isinstance(v, _SCALARS) for v in value):
                self.error(path, "expected a list of values, e.g. [US, CA]")
                return None
            return Comparison(op, tuple(value))
        if numeric or op in ORDERED_OPS:
            kinds = (int, float) if numeric else (int, float, date, datetime)
            if isinstance(value, bool) or not isinstance(value, kinds):
                expected = "a number" if numeric else "a number or a date"
                self.error(path, f"expected {expected}, got {value!r}")
                return None
        elif not isinstance(value, _SCALARS):
            self.error(path, f"expected a single value, got {value!r}")
            return None
        return Comparison(op, value)

    def duration(self, value: Any, path: KeyPath) -> Any:
        try:
            return parse_duration(value)
        except DurationError as exc:
            self.error(path, str(exc))
            return False
