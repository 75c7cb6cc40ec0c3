"""Segment membership for a whole population at once: the batch evaluator of backfills.

A backfill decides, at one moment `now`, which profiles belong to each segment, reading up to millions of
events. Walking the condition tree profile by profile with `compare.matches` would spend minutes in the
interpreter, so this module evaluates each node for every profile at once, on columns: events become
numpy arrays grouped by name (profile, time, seq and one column per property the segments read), a
property filter a boolean mask over event rows, a window a comparison of timestamps, a count or an
aggregate a `bincount` or a sort by profile, and every node a boolean Series indexed by profile id,
combined with `&`, `|` and `~`.

The meaning of every comparison is `engage.segments.compare`'s, which the real-time engine applies value
by value; the two must agree on every profile. To compare columns exactly, values are first split by kind
(missing, number, bool, text), as a bool is never a number there and text is read as a timestamp only
against a date. Whatever has no exact column form goes to `compare.matches` one value at a time: lists,
dicts, integers beyond 2**53 (float64 would round them) and other unusual values, and expected values of
those sizes. Float sums carry rounding error: a profile whose sum is within that error of the tested
value is summed again exactly (`math.fsum`).
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from engage.segments.compare import as_number, as_timestamp, distinct_key, lookup, matches
from engage.segments.definition import (
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
from engage.store.codec import json_value

__all__ = ["Population", "population_from_records", "load_population", "evaluate", "property_column"]

PROPERTY_PREFIX = "properties."
_NO_LISTS: Mapping[str, frozenset[str]] = MappingProxyType({})


def property_column(name: str) -> str:
    """The column of `Population.events` holding the event property `name` (a dotted name as written)."""
    return PROPERTY_PREFIX + name


@dataclass
class Population:
    """What the batch evaluator reads: the events, the profiles and their consents."""

    events: pd.DataFrame
    """One row per event: seq (int64), profile_id (str), event (str or missing), timestamp (datetime64,
    UTC), and for each property the segments read a column `property_column(name)` of Python values
    (object dtype; None when the event lacks it)."""
    profiles: pd.DataFrame
    """Index profile_id (the universe: merged-away profiles are absent); columns user_id (may be missing)
    and traits (a dict per row)."""
    consents: pd.DataFrame
    """profile_id, channel ('email' or 'sms'), subscribed (bool)."""


def population_from_records(
    events: Iterable[dict[str, Any]],
    profiles: Iterable[dict[str, Any]],
    consents: Iterable[dict[str, Any]],
    segments: Sequence[Segment],
) -> Population:
    """A population held in memory, from plain records:

    - events: seq, profile_id, event, timestamp (aware datetime), properties (dict);
    - profiles: id, user_id, traits (dict);
    - consents: profile_id, channel, subscribed.

    Only the properties `segments` read are kept, each for the events whose leaves read it."""
    events = list(events)
    profiles = list(profiles)
    consents = list(consents)
    columns: dict[str, Any] = {
        "seq": np.fromiter((e["seq"] for e in events), dtype=np.int64, count=len(events)),
        "profile_id": pd.Series([e["profile_id"] for e in events], dtype="str"),
        "event": pd.Series([e.get("event") for e in events], dtype="str"),
        "timestamp": pd.Series(pd.to_datetime([e["timestamp"] for e in events], utc=True)),
    }
    for name, event_names in _properties_read(segments).items():
        values = (
            lookup(e.get("properties") or {}, name) if e.get("event") in event_names else None for e in events
        )
        columns[property_column(name)] = _object_series(values, len(events))
    profile_frame = pd.DataFrame(
        {
            "user_id": _object_series((p.get("user_id") for p in profiles), len(profiles)),
            "traits": _object_series((p.get("traits") or {} for p in profiles), len(profiles)),
        }
    )
    profile_frame.index = pd.Index([p["id"] for p in profiles], dtype="str", name="profile_id")
    consent_frame = pd.DataFrame(
        {
            "profile_id": pd.Series([c["profile_id"] for c in consents], dtype="str"),
            "channel": pd.Series([str(c["channel"]) for c in consents], dtype="str"),
            "subscribed": pd.Series([bool(c["subscribed"]) for c in consents], dtype=bool),
        }
    )
    return Population(pd.DataFrame(columns), profile_frame, consent_frame)


def evaluate(
    segments: Sequence[Segment],
    population: Population,
    now: datetime,
    *,
    manual: Mapping[str, frozenset[str]] = _NO_LISTS,
    email_consent_default: bool = True,
    members: Mapping[str, set[str]] | None = None,
) -> dict[str, set[str]]:
    """Segment name -> the ids of the profiles that are members at `now`.

    `segments` come in dependency order (any order works); an `in_segment` of a segment not among them
    reads `members`, the current memberships of other segments. `manual` maps a `manual` leaf's CSV path
    to its user ids (`engage.segments.read_manual`)."""
    evaluation = _Evaluation(segments, population, now, manual, email_consent_default, members)
    return {segment.name: evaluation.members(segment.name) for segment in segments}


# ------------------------------------------------------------------------------------ what segments read


def _event_leaves(
    segments: Sequence[Segment],
) -> Iterable[Performed | NotPerformed | LastPerformed | Aggregate]:
    for segment in segments:
        for node in segment.walk():
            if isinstance(node, Performed | NotPerformed | LastPerformed | Aggregate):
                yield node


def _event_names(segments: Sequence[Segment]) -> set[str]:
    return {leaf.event for leaf in _event_leaves(segments)}


def _properties_read(segments: Sequence[Segment]) -> dict[str, set[str]]:
    """Property name -> the names of the events whose leaves filter on it or aggregate it."""
    found: dict[str, set[str]] = defaultdict(set)
    for leaf in _event_leaves(segments):
        for where in leaf.where:
            found[where.property].add(leaf.event)
        if isinstance(leaf, Aggregate):
            found[leaf.property].add(leaf.event)
    return dict(found)


def _object_series(values: Iterable[Any], count: int) -> pd.Series:
    """Python values kept as they are: object dtype, so pandas neither infers `str` nor turns None into
    NaN, and a list stays one value."""
    return pd.Series(np.fromiter(values, dtype=object, count=count), dtype=object)


# --------------------------------------------------------------------------------------------- time


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
NO_TIME = np.iinfo(np.int64).min
"""In a column of microseconds: not a timestamp."""


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (an aware datetime)."""
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


def _micros_column(timestamps: pd.Series) -> np.ndarray:
    """A datetime column (naive means UTC) as int64 microseconds since the epoch."""
    utc = pd.to_datetime(timestamps, utc=True).dt.tz_convert(None)
    return utc.to_numpy("datetime64[us]").view(np.int64)


# ----------------------------------------------------------------------------------- values by kind

MISSING, NUMBER, BOOL, TEXT, OTHER = range(5)
_KIND_OF_TYPE: defaultdict[type, int] = defaultdict(
    lambda: OTHER, {type(None): MISSING, int: NUMBER, float: NUMBER, bool: BOOL, str: TEXT}
)
FLOAT_EXACT = 2**53
"""Integers below this in size are float64 values exactly."""
_ORDER: dict[Op, Callable[[Any, Any], Any]] = {
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}


def _exact_float(value: int | float) -> float | None:
    """`value` as a float64 that compares with every float as `value` does, or None."""
    if isinstance(value, float):
        return value
    return float(value) if abs(value) < FLOAT_EXACT else None


@dataclass
class _Values:
    """One Python value per row (a trait, or an event property), split into numpy columns by kind.

    Rows of kind OTHER (lists, dicts, integers beyond 2**53, subclasses of the JSON types, anything
    else) have no column form: every comparison hands them to `compare.matches`."""

    raw: np.ndarray
    kind: np.ndarray
    number: np.ndarray
    """float64, for NUMBER rows; NaN elsewhere."""
    flag: np.ndarray
    """bool, for BOOL rows; False elsewhere."""
    text: np.ndarray
    """object, the str of TEXT rows; None elsewhere."""
    _times: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of(cls, raw: np.ndarray) -> _Values:
        size = len(raw)
        kind = np.fromiter(map(_KIND_OF_TYPE.__getitem__, map(type, raw)), dtype=np.int8, count=size)
        number = np.full(size, np.nan)
        numeric = np.flatnonzero(kind == NUMBER)
        number[numeric] = _floats(raw[numeric])
        large = numeric[np.abs(number[numeric]) >= FLOAT_EXACT]
        kind[[row for row in large if isinstance(raw[row], int)]] = OTHER
        flag = np.zeros(size, dtype=bool)
        flags = kind == BOOL
        flag[flags] = raw[flags].astype(bool)
        return cls(raw, kind, number, flag, np.where(kind == TEXT, raw, None))

    def take(self, rows: np.ndarray) -> _Values:
        times = self._times[rows] if self._times is not None else None
        return _Values(
            self.raw[rows], self.kind[rows], self.number[rows], self.flag[rows], self.text[rows], times
        )

    def __len__(self) -> int:
        return len(self.raw)

    def times(self) -> np.ndarray:
        """Text read as a timestamp (`compare.as_timestamp`), in microseconds; NO_TIME elsewhere."""
        if self._times is None:
            self._times = np.full(len(self), NO_TIME, dtype=np.int64)
            self._times[self.kind == TEXT] = self._each_text(_text_micros, np.int64)
        return self._times

    def _each_text(self, function: Callable[[str], Any], dtype: type) -> np.ndarray:
        """`function` of the text of every TEXT row, called once per distinct text."""
        codes, distinct = pd.factorize(self.text[self.kind == TEXT])
        return np.array([function(one) for one in distinct], dtype=dtype).reshape(-1)[codes]

    def _text_test(self, test: Callable[[str], bool]) -> np.ndarray:
        found = np.zeros(len(self), dtype=bool)
        found[self.kind == TEXT] = self._each_text(test, bool)
        return found

    def matches(self, comparison: Comparison, now: int | np.ndarray) -> np.ndarray:
        """`compare.matches` of every row; `now` in microseconds, one for all rows or one per row."""
        op, expected = comparison.op, comparison.value
        if op is Op.EXISTS:
            return (self.kind != MISSING) == bool(expected)
        if op is Op.NE:
            return ~self.matches(Comparison(Op.EQ, expected), now)
        found = self._by_column(op, expected, now)
        if found is None:  # an expected value without an exact column form: every row one by one
            return self._one_by_one(comparison, now, np.arange(len(self)))
        others = np.flatnonzero(self.kind == OTHER)
        found[others] = self._one_by_one(comparison, now, others)
        return found

    def _one_by_one(self, comparison: Comparison, now: int | np.ndarray, rows: np.ndarray) -> np.ndarray:
        def moment(row: int) -> datetime:
            return _moment(now[row] if isinstance(now, np.ndarray) else now)

        return np.array([matches(self.raw[row], comparison, moment(row)) for row in rows], dtype=bool)

    def _by_column(self, op: Op, expected: Any, now: int | np.ndarray) -> np.ndarray | None:
        if op is Op.EQ:
            return self._equal(expected)
        if op is Op.IN:
            return self._equal_any(expected)
        if op is Op.CONTAINS:  # text holding a substring; lists are OTHER rows
            if isinstance(expected, str):
                return self._text_test(lambda value: expected in value)
            return np.zeros(len(self), dtype=bool)
        if op is Op.WITHIN:
            times = self.times()
            valid = times != NO_TIME
            age = now - np.where(valid, times, now)
            return valid & (age >= 0) & (age < expected // _MICROSECOND)
        return self._ordered(op, expected)

    def _equal(self, expected: Any) -> np.ndarray | None:
        if expected is None:
            return self.kind == MISSING
        if isinstance(expected, date):  # a date or datetime: text read as a timestamp
            return self.times() == _micros(as_timestamp(expected))  # type: ignore[arg-type]
        if isinstance(expected, bool):
            return (self.kind == BOOL) & (self.flag == expected)
        if isinstance(expected, int | float):
            number = _exact_float(expected)
            return None if number is None else (self.kind == NUMBER) & (self.number == number)
        if isinstance(expected, str):
            return (self.kind == TEXT) & (self.text == expected)
        return None

    def _equal_any(self, items: tuple[Any, ...]) -> np.ndarray | None:
        texts = {item for item in items if isinstance(item, str)}
        found = self._text_test(texts.__contains__) if texts else np.zeros(len(self), dtype=bool)
        for item in items:
            if not isinstance(item, str):
                equal = self._equal(item)
                if equal is None:
                    return None
                found |= equal
        return found

    def _ordered(self, op: Op, expected: Any) -> np.ndarray | None:
        compare = _ORDER[op]
        if expected is None or isinstance(expected, bool):
            return np.zeros(len(self), dtype=bool)
        if isinstance(expected, date):
            times = self.times()
            return (times != NO_TIME) & compare(times, _micros(as_timestamp(expected)))  # type: ignore[arg-type]
        if isinstance(expected, int | float):
            number = _exact_float(expected)
            return None if number is None else (self.kind == NUMBER) & compare(self.number, number)
        if isinstance(expected, str):
            found = np.zeros(len(self), dtype=bool)
            rows = self.kind == TEXT
            found[rows] = compare(self.text[rows], expected).astype(bool)  # Python's str ordering
            return found
        return None


def _text_micros(value: str) -> int:
    moment = as_timestamp(value)
    return NO_TIME if moment is None else _micros(moment)


def _floats(numbers: np.ndarray) -> np.ndarray:
    try:
        return numbers.astype(np.float64)
    except OverflowError:  # an integer beyond float64: infinite here, compared exactly as an OTHER row
        return np.array([_float_or_infinite(number) for number in numbers], dtype=np.float64)


def _float_or_infinite(number: int | float) -> float:
    try:
        return float(number)
    except OverflowError:
        return math.copysign(math.inf, number)


def _object_values(column: pd.Series) -> np.ndarray:
    """A column's values as Python objects; in a typed column (a str column, say) NA means missing."""
    if column.dtype == object:
        return column.to_numpy()
    return column.astype(object).where(column.notna(), None).to_numpy()


# ------------------------------------------------------------------------------------ event columns


@dataclass(frozen=True)
class _EventRows:
    """The events of one name whose profiles are in the universe, in `seq` order, as aligned arrays."""

    frame_rows: np.ndarray
    """Positions in `Population.events`."""
    profile: np.ndarray
    """Positions of the profiles in the universe."""
    timestamp: np.ndarray
    """Microseconds since the epoch."""
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_rows)

    def take(self, rows: np.ndarray) -> _EventRows:
        return _EventRows(self.frame_rows[rows], self.profile[rows], self.timestamp[rows], self.seq[rows])


_NO_ROWS = _EventRows(*(np.zeros(0, dtype=np.int64) for _ in range(4)))


def _rows_by_event(events: pd.DataFrame, universe: pd.Index, names: set[str]) -> dict[str, _EventRows]:
    """The events the segments read, by name; events of profiles outside the universe are left out."""
    selected = np.flatnonzero(events["event"].isin(sorted(names)).to_numpy(dtype=bool))
    profile = _positions(events["profile_id"].iloc[selected], universe)
    selected, profile = selected[profile >= 0], profile[profile >= 0]
    codes, found = pd.factorize(events["event"].iloc[selected])
    seq = events["seq"].to_numpy(dtype=np.int64)[selected]
    order = np.lexsort((seq, codes))
    timestamp = _micros_column(events["timestamp"].iloc[selected[order]])
    every = _EventRows(selected[order], profile[order], timestamp, seq[order])
    bounds = np.searchsorted(codes[order], np.arange(len(found) + 1))
    return {
        str(name): every.take(np.arange(bounds[code], bounds[code + 1])) for code, name in enumerate(found)
    }


def _positions(ids: pd.Series, universe: pd.Index) -> np.ndarray:
    """Each id's position in `universe`, -1 for none (pyarrow's hash lookup: pandas' is slower)."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    found = pc.index_in(pa.array(ids, type=pa.string()), value_set=pa.array(universe, type=pa.string()))
    return found.fill_null(-1).to_numpy().astype(np.int64)


# ---------------------------------------------------------------------------------------- evaluation


class _Evaluation:
    """One evaluation at `now`: the condition trees over the population, with what they share cached."""

    def __init__(
        self,
        segments: Sequence[Segment],
        population: Population,
        now: datetime,
        manual: Mapping[str, frozenset[str]],
        email_consent_default: bool,
        members: Mapping[str, set[str]] | None,
    ):
        self.population = population
        self.universe = pd.Index(population.profiles.index, dtype="str")
        self.now = as_timestamp(now)
        assert self.now is not None
        self.now_us = _micros(self.now)
        self.manual = manual
        self.email_consent_default = email_consent_default
        self.other_members = members
        self.definitions = {segment.name: segment for segment in segments}
        self.memberships: dict[str, pd.Series] = {}
        self._evaluating: set[str] = set()
        self.rows = _rows_by_event(population.events, self.universe, _event_names(segments))
        self._columns: dict[str, np.ndarray] = {}
        self._values: dict[tuple[str, str], _Values] = {}
        self._filters: dict[tuple[str, PropertyFilter], np.ndarray] = {}
        self._traits: dict[str, _Values] = {}

    @property
    def size(self) -> int:
        return len(self.universe)

    def members(self, name: str) -> set[str]:
        membership = self.segment(name)
        return set(self.universe[membership.to_numpy()])

    def segment(self, name: str) -> pd.Series:
        """Who is in segment `name`: evaluated here once, or read from the memberships given."""
        if name in self.memberships:
            return self.memberships[name]
        if name in self.definitions:
            if name in self._evaluating:
                raise ValueError(f"in_segment cycle through '{name}'")
            self._evaluating.add(name)
            self.memberships[name] = self.condition(self.definitions[name].condition)
            self._evaluating.discard(name)
            return self.memberships[name]
        if self.other_members is not None and name in self.other_members:
            return self._series(self.universe.isin(list(self.other_members[name])))
        raise ValueError(f"in_segment '{name}': not evaluated here and not in `members`")

    def condition(self, node: Condition) -> pd.Series:
        match node:
            case All(conditions=conditions):
                return reduce(operator.and_, map(self.condition, conditions), self._constant(True))
            case AnyOf(conditions=conditions):
                return reduce(operator.or_, map(self.condition, conditions), self._constant(False))
            case Not(condition=condition):
                return ~self.condition(condition)
            case Trait():
                return self._series(self.trait(node.name).matches(node.test, self.now_us))
            case Performed():
                return self._series(self.performed(node))
            case NotPerformed():
                return self._series(self.counts(node.event, node.where, node.within) == 0)
            case Aggregate():
                return self._series(self.aggregate(node))
            case LastPerformed():
                return self._series(self.last_performed(node))
            case InSegment(segment=segment):
                return self.segment(segment)
            case Consent():
                return self._series(self.consent(node.channel) == node.subscribed)
            case RandomBucket():
                return self._series(self.random_bucket(node))
            case Manual(path=path):
                return self._series(self.manual_list(path))
        raise TypeError(f"not a condition: {node!r}")

    def _series(self, mask: np.ndarray) -> pd.Series:
        return pd.Series(mask, index=self.universe, dtype=bool)

    def _constant(self, value: bool) -> pd.Series:
        return self._series(np.full(self.size, value, dtype=bool))

    # -- events

    def events(self, name: str) -> _EventRows:
        return self.rows.get(name, _NO_ROWS)

    def in_window(self, name: str, within: timedelta | None) -> np.ndarray:
        """Events inside `within` before now (`now - timestamp < within`): future events are inside."""
        timestamps = self.events(name).timestamp
        if within is None:
            return np.ones(len(timestamps), dtype=bool)
        return timestamps > self.now_us - within // _MICROSECOND

    def passing(self, name: str, where: tuple[PropertyFilter, ...]) -> np.ndarray:
        """The events of `name` whose properties pass every filter."""
        passed = np.ones(len(self.events(name)), dtype=bool)
        for one in where:
            if (name, one) not in self._filters:
                # A property's `within` is measured from the event's own time.
                values = self.property_values(name, one.property)
                self._filters[name, one] = values.matches(one.test, self.events(name).timestamp)
            passed &= self._filters[name, one]
        return passed

    def property_values(self, name: str, prop: str) -> _Values:
        if (name, prop) not in self._values:
            column = property_column(prop)
            if column not in self._columns:
                if column not in self.population.events:
                    raise ValueError(
                        f"Population.events has no column '{column}': build the population for these segments"
                    )
                self._columns[column] = _object_values(self.population.events[column])
            self._values[name, prop] = _Values.of(self._columns[column][self.events(name).frame_rows])
        return self._values[name, prop]

    def counts(self, name: str, where: tuple[PropertyFilter, ...], within: timedelta | None) -> np.ndarray:
        """Per profile, how many events of `name` in the window pass the filters."""
        chosen = self.in_window(name, within) & self.passing(name, where)
        return np.bincount(self.events(name).profile[chosen], minlength=self.size)

    def performed(self, leaf: Performed) -> np.ndarray:
        counts = self.counts(leaf.event, leaf.where, leaf.within)
        if leaf.count_op is CountOp.AT_LEAST:
            return counts >= leaf.count
        if leaf.count_op is CountOp.AT_MOST:
            return counts <= leaf.count
        return counts == leaf.count

    def aggregate(self, leaf: Aggregate) -> np.ndarray:
        chosen = np.flatnonzero(
            self.in_window(leaf.event, leaf.within) & self.passing(leaf.event, leaf.where)
        )
        profile = self.events(leaf.event).profile[chosen]
        values = self.property_values(leaf.event, leaf.property).take(chosen)
        test = _AGGREGATE_TESTS[leaf.function]
        return test(profile, values, self.size, leaf.test, self.now)

    def last_performed(self, leaf: LastPerformed) -> np.ndarray:
        """Each profile's latest event of the name by (timestamp, seq), whatever its properties, tested
        against the filters."""
        events = self.events(leaf.event)
        order = np.lexsort((events.seq, events.timestamp, events.profile))
        profile = events.profile[order]
        last = order[np.append(profile[1:] != profile[:-1], True)] if len(order) else order
        found = np.zeros(self.size, dtype=bool)
        found[events.profile[last]] = self.passing(leaf.event, leaf.where)[last]
        return found

    # -- profiles

    def traits(self) -> np.ndarray:
        return _object_values(self.population.profiles["traits"])

    def trait(self, name: str) -> _Values:
        if name not in self._traits:
            values = (lookup(traits, name) if isinstance(traits, dict) else None for traits in self.traits())
            self._traits[name] = _Values.of(np.fromiter(values, dtype=object, count=self.size))
        return self._traits[name]

    def user_ids(self) -> np.ndarray:
        """None where a profile has no user id (whatever marks it missing in the column)."""
        column = self.population.profiles["user_id"]
        return column.astype(object).where(column.notna(), None).to_numpy()

    def consent(self, channel: Channel) -> np.ndarray:
        """Whether each profile is subscribed to `channel`: its consent row, else the default
        (`engage.profiles.consent.default_consent`)."""
        if channel is Channel.EMAIL and self.email_consent_default:
            subscribed = np.fromiter(
                (isinstance(t, dict) and bool(t.get("email")) for t in self.traits()),
                dtype=bool,
                count=self.size,
            )
        else:
            subscribed = np.zeros(self.size, dtype=bool)
        consents = self.population.consents
        stated = consents[(consents["channel"] == channel.value).to_numpy(dtype=bool)]
        stated = stated.drop_duplicates("profile_id", keep="last")
        position = _positions(stated["profile_id"], self.universe)
        known = position >= 0
        subscribed[position[known]] = stated["subscribed"].to_numpy(dtype=bool)[known]
        return subscribed

    def random_bucket(self, leaf: RandomBucket) -> np.ndarray:
        ids = zip(self.user_ids(), self.universe, strict=True)
        return np.fromiter((leaf.contains(user_id or profile_id) for user_id, profile_id in ids), dtype=bool)

    def manual_list(self, path: str) -> np.ndarray:
        if path not in self.manual:
            raise ValueError(f"manual list '{path}' not given: pass its user ids in `manual`")
        listed = self.manual[path]
        return np.fromiter((user_id in listed for user_id in self.user_ids()), dtype=bool, count=self.size)


# -------------------------------------------------------------------------------------------- aggregates
#
# What each aggregate is, value by value in Python (`_sum_of`, `_max_of`, `_distinct_count_of`), and how
# it is tested for every profile at once (`_sum_passes`, …): from the chosen events' profile positions and
# property values, in seq order, whether each profile's aggregate passes `test`. The column paths hand
# back to the Python meaning every profile where float64 could disagree with it.


def _numbers(raw: Iterable[Any]) -> list[int | float]:
    """The numbers among `raw` (a bool is not a number)."""
    return [number for number in map(as_number, raw) if number is not None]


def _sum_of(raw: list[Any]) -> int | float:
    """Exact for integers; otherwise the correctly rounded sum (`math.fsum`), whatever the events' order."""
    numbers = _numbers(raw)
    if all(isinstance(number, int) for number in numbers):
        return sum(numbers)
    try:
        return math.fsum(numbers)
    except (OverflowError, ValueError):  # inf - inf, or an overflow on the way: what plain addition gives
        return sum(numbers)


def _max_of(raw: list[Any]) -> int | float | None:
    """The largest number, None without any."""
    numbers = _numbers(raw)
    return max(numbers) if numbers else None


def _distinct_count_of(raw: list[Any]) -> int:
    """How many different values: Python's equality (1, 1.0 and True are one; "1" is another), NaN one
    value, lists and dicts by their JSON text (keys sorted, as PostgreSQL's jsonb keeps them)."""
    return len({distinct_key(value) for value in raw if value is not None})


_ValueOf = Callable[[list[Any]], Any]


def _sum_passes(
    profile: np.ndarray, values: _Values, size: int, test: Comparison, now: datetime
) -> np.ndarray:
    """The float64 sum decides every profile whose sum is clearly away from the tested value; the others
    are summed again exactly."""
    if test.op not in _ORDER:
        return _passes_one_by_one(profile, values, size, _sum_of, test, now)
    if as_number(test.value) is None:  # a sum is a number: which one cannot matter
        return np.full(size, matches(0, test, now))
    numeric = values.kind == NUMBER
    owner, number = profile[numeric], values.number[numeric]
    total = np.bincount(owner, weights=number, minlength=size)
    count = np.bincount(owner, minlength=size)
    magnitude = np.bincount(owner, weights=np.abs(number), minlength=size)
    expected = _float_or_infinite(test.value)  # type: ignore[arg-type]
    with np.errstate(invalid="ignore", over="ignore"):
        # Twice the bound on the rounding errors of a sequential sum and of the expected value as a float;
        # NaN and infinities are never decided here.
        margin = (count + 2) * 2.0**-52 * magnitude + 2.0**-52 * abs(expected)
        decided = (np.abs(total - expected) > margin) | (count == 0)
        found = _ORDER[test.op](total, expected)
    found[count == 0] = matches(0, test, now)
    undecided = np.concatenate([np.flatnonzero(~decided), profile[values.kind == OTHER]])
    _recheck(found, profile, values, undecided, _sum_of, test, now)
    return found


def _max_passes(
    profile: np.ndarray, values: _Values, size: int, test: Comparison, now: datetime
) -> np.ndarray:
    """A profile without numbers has no maximum: every comparison fails."""
    if test.op not in _ORDER:
        return _passes_one_by_one(profile, values, size, _max_of, test, now)
    numeric = values.kind == NUMBER
    owner, number = profile[numeric], values.number[numeric]
    has_number = np.bincount(owner, minlength=size) > 0
    awkward = [profile[values.kind == OTHER]]  # OTHER values may be numbers float64 cannot hold
    expected = _exact_float(test.value) if as_number(test.value) is not None else None  # type: ignore[arg-type]
    if as_number(test.value) is None:  # a maximum is a number: which one cannot matter
        found = has_number & matches(0, test, now)
    elif expected is None:  # a tested value float64 cannot hold: every profile in Python
        found = np.zeros(size, dtype=bool)
        awkward.append(np.flatnonzero(has_number))
    else:
        maximum = np.full(size, -np.inf)
        np.maximum.at(maximum, owner, number)
        found = has_number & _ORDER[test.op](maximum, expected)
        awkward.append(owner[np.isnan(number)])  # with NaN, Python's max depends on the order
    _recheck(found, profile, values, np.concatenate(awkward), _max_of, test, now)
    return found


def _distinct_passes(
    profile: np.ndarray, values: _Values, size: int, test: Comparison, now: datetime
) -> np.ndarray:
    """Numbers and bools counted by their float value (NaNs together), texts by factorizing; OTHER values
    are left to Python's equality."""
    if test.op not in _ORDER:
        return _passes_one_by_one(profile, values, size, _distinct_count_of, test, now)
    if as_number(test.value) is None:  # a count is a number: which one cannot matter
        return np.full(size, matches(0, test, now))
    scalar = (values.kind == NUMBER) | (values.kind == BOOL)
    as_float = np.where(values.kind == BOOL, values.flag, values.number)[scalar]
    _, float_codes = np.unique(as_float, return_inverse=True, equal_nan=True)
    texts = values.kind == TEXT
    text_codes, _ = pd.factorize(values.text[texts])
    count = _distinct_pairs(profile[scalar], float_codes, size) + _distinct_pairs(
        profile[texts], text_codes, size
    )
    found = _ORDER[test.op](count, _float_or_infinite(test.value))  # type: ignore[arg-type]
    _recheck(found, profile, values, profile[values.kind == OTHER], _distinct_count_of, test, now)
    return found


def _distinct_pairs(profile: np.ndarray, codes: np.ndarray, size: int) -> np.ndarray:
    """Per profile, how many different codes."""
    if len(codes) == 0:
        return np.zeros(size, dtype=np.int64)
    base = int(codes.max()) + 1
    pairs = np.unique(profile.astype(np.int64) * base + codes)
    return np.bincount(pairs // base, minlength=size)


def _passes_one_by_one(
    profile: np.ndarray, values: _Values, size: int, value_of: _ValueOf, test: Comparison, now: datetime
) -> np.ndarray:
    """For operators no column path handles: the aggregate of every profile in Python."""
    empty = value_of([])
    found = np.full(size, empty is not None and matches(empty, test, now))
    _recheck(found, profile, values, profile, value_of, test, now)
    return found


def _recheck(
    found: np.ndarray,
    profile: np.ndarray,
    values: _Values,
    profiles: np.ndarray,
    value_of: _ValueOf,
    test: Comparison,
    now: datetime,
) -> None:
    """Set `found` for each of `profiles` from its aggregate computed in Python (no value: false)."""
    if not len(profiles):
        return
    raw: dict[int, list[Any]] = {int(position): [] for position in np.unique(profiles)}
    for row in np.flatnonzero(np.isin(profile, profiles)):
        raw[int(profile[row])].append(values.raw[row])
    for position, its_values in raw.items():
        value = value_of(its_values)
        found[position] = value is not None and matches(value, test, now)


_AGGREGATE_TESTS = {
    AggregateFunction.SUM: _sum_passes,
    AggregateFunction.MAX: _max_passes,
    AggregateFunction.COUNT: _distinct_passes,
}


# ------------------------------------------------------------------------------------- from the database


def load_population(connection: Connection, segments: Sequence[Segment]) -> Population:
    """The population in the database (SQLite or PostgreSQL): the events whose names `segments` use with
    the properties they read (extracted in SQL as JSON, so types survive), all profiles, all consents."""
    sqlite = connection.dialect.name == "sqlite"
    return Population(
        _read_events(connection, segments, sqlite),
        _read_profiles(connection, sqlite),
        _read_consents(connection),
    )


def _read_events(connection: Connection, segments: Sequence[Segment], sqlite: bool) -> pd.DataFrame:
    names = sorted(_event_names(segments))
    params: dict[str, Any] = {}
    timestamp = "timestamp" if sqlite else "CAST(EXTRACT(EPOCH FROM timestamp) * 1000000 AS BIGINT)"
    selected = ["seq", "profile_id", "event", timestamp]
    in_sql: list[str] = []
    in_python: dict[str, set[str]] = {}  # properties SQLite's JSON paths cannot name
    for number, (name, event_names) in enumerate(sorted(_properties_read(segments).items())):
        expression = _json_at(name, f"p{number}", params, sqlite)
        if expression is None:
            in_python[name] = event_names
            continue
        if set(names) - event_names:  # read for some events only
            events_reading = _bind(f"p{number}_event", event_names, params)
            expression = f"CASE WHEN event IN ({events_reading}) THEN {expression} END"
        in_sql.append(name)
        selected.append(expression)
    if in_python:
        selected.append("properties")
    columns: list[list[Any]] = [[] for _ in selected]
    if names:
        where = f"event IN ({_bind('event', names, params)})"
        for chunk in _column_chunks(connection, selected, where, params, sqlite):
            for column, values in zip(columns, chunk, strict=True):
                column.extend(values)
    seq, profile_id, event, timestamps, *extracted = columns
    documents = extracted.pop() if in_python else []
    frame: dict[str, Any] = {
        "seq": np.asarray(seq, dtype=np.int64),
        "profile_id": pd.Series(profile_id, dtype="str"),
        "event": pd.Series(event, dtype="str"),
        "timestamp": _timestamps(timestamps, sqlite),
    }
    for name, values in zip(in_sql, extracted, strict=True):
        frame[property_column(name)] = _object_series(values, len(values))
    for name, event_names in in_python.items():
        values = (
            lookup(document, name) if its_event in event_names else None
            for document, its_event in zip(documents, event, strict=True)
        )
        frame[property_column(name)] = _object_series(values, len(event))
    return pd.DataFrame(frame)


EVENTS_PER_QUERY = 500_000
_JSON_COLUMNS_FROM = 4
"""In `_read_events`' columns, those after seq, profile_id, event and timestamp hold JSON."""


def _column_chunks(
    connection: Connection, selected: list[str], where: str, params: dict[str, Any], sqlite: bool
) -> Iterable[list[list[Any]]]:
    """The selected columns of the rows matching `where`, in seq order, a chunk of rows at a time.

    Each column of a chunk comes as one JSON array built by the database and decoded by orjson: far
    faster than a Python tuple per row, and JSON values arrive decoded with their types."""
    inner = ", ".join(f"{expression} AS c{number}" for number, expression in enumerate(selected))
    arrays = ", ".join(
        _json_array(f"c{number}", number >= _JSON_COLUMNS_FROM, sqlite) for number in range(len(selected))
    )
    query = text(
        f"SELECT count(*), max(c0), {arrays} FROM "
        f"(SELECT {inner} FROM event_log WHERE {where} AND seq > :after ORDER BY seq LIMIT :limit) AS chunk"
    )
    after = -1
    while True:
        count, last, *arrays_text = connection.execute(
            query, {**params, "after": after, "limit": EVENTS_PER_QUERY}
        ).one()
        if count:
            yield [orjson.loads(one) for one in arrays_text]
        if count < EVENTS_PER_QUERY:
            return
        after = last


def _json_array(column: str, holds_json: bool, sqlite: bool) -> str:
    """SQL aggregating `column` into the text of a JSON array (a JSON value embedded, not quoted)."""
    if sqlite:  # SQLite embeds text as JSON only when it comes straight from a JSON function
        return f"json_group_array(json({column}))" if holds_json else f"json_group_array({column})"
    return f"CAST(json_agg({column}) AS text)"


def _bind(prefix: str, values: Iterable[str], params: dict[str, Any]) -> str:
    """Placeholders for `values`, one each, added to `params`."""
    names = []
    for number, value in enumerate(sorted(values)):
        params[f"{prefix}_{number}"] = value
        names.append(f":{prefix}_{number}")
    return ", ".join(names)


def _json_at(name: str, key: str, params: dict[str, Any], sqlite: bool) -> str | None:
    """SQL for the JSON value of `compare.lookup(properties, name)`, NULL when absent: the key `name` as
    written if the properties hold it (even as null), else the dotted path through nested objects. None
    when SQLite's JSON paths cannot name a key (quotes, backslashes, control characters)."""
    parts = name.split(".")
    if sqlite:
        if any(_unnameable_in_sqlite(part) for part in [name, *parts]):
            return None
        params[key] = f'$."{name}"'
        if len(parts) == 1:
            return f"properties -> :{key}"
        params[f"{key}_path"] = "$" + "".join(f'."{part}"' for part in parts)
        return f"COALESCE(properties -> :{key}, properties -> :{key}_path)"
    params[key] = name
    literal = f"properties -> CAST(:{key} AS text)"
    if len(parts) == 1:
        return literal
    # `#>` would read a number in the path as an index into a list; lookup() only walks objects.
    guards = []
    for depth in range(1, len(parts)):
        params[f"{key}_{depth}"] = parts[:depth]
        guards.append(f"jsonb_typeof(properties #> CAST(:{key}_{depth} AS text[])) = 'object'")
    params[f"{key}_path"] = parts
    nested = f"CASE WHEN {' AND '.join(guards)} THEN properties #> CAST(:{key}_path AS text[]) END"
    return f"COALESCE({literal}, {nested})"


def _unnameable_in_sqlite(key: str) -> bool:
    return any(character in '"\\' or ord(character) < 0x20 for character in key)


def _timestamps(column: Sequence[Any], sqlite: bool) -> pd.Series:
    """SQLite keeps naive UTC text; the PostgreSQL query returns microseconds since the epoch."""
    if sqlite:
        return pd.Series(pd.to_datetime(pd.Series(column, dtype="str"), format="ISO8601", utc=True))
    return pd.Series(pd.to_datetime(np.asarray(column, dtype=np.int64), unit="us", utc=True))


def _read_profiles(connection: Connection, sqlite: bool) -> pd.DataFrame:
    traits = "traits" if sqlite else "CAST(traits AS text)"
    rows = connection.execute(text(f"SELECT id, user_id, {traits} FROM profiles")).all()
    frame = pd.DataFrame(
        {
            "user_id": _object_series((row[1] for row in rows), len(rows)),
            "traits": _object_series((json_value(row[2]) for row in rows), len(rows)),
        }
    )
    frame.index = pd.Index([row[0] for row in rows], dtype="str", name="profile_id")
    return frame


def _read_consents(connection: Connection) -> pd.DataFrame:
    rows = connection.execute(text("SELECT profile_id, channel, subscribed FROM consents")).all()
    return pd.DataFrame(
        {
            "profile_id": pd.Series([row[0] for row in rows], dtype="str"),
            "channel": pd.Series([row[1] for row in rows], dtype="str"),
            "subscribed": pd.Series([bool(row[2]) for row in rows], dtype=bool),
        }
    )
