"""The real-time engine and the batch evaluator agree, on random segments and random histories.

Hypothesis draws a few segments over a small vocabulary (so that conditions often hold), profiles with
traits and consents, and events arriving over time, some late and out of order. The real-time engine
takes the events one arrival at a time, as the consumer does (observe, re-evaluate what they affect,
prune), then the clock's final re-evaluation; the batch evaluator sees the whole history at once.
Their memberships must be equal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engage.segments import (
    Aggregate,
    AggregateFunction,
    All,
    AnyOf,
    Channel,
    Comparison,
    Consent,
    CountOp,
    InSegment,
    LastPerformed,
    Not,
    NotPerformed,
    Op,
    Performed,
    PropertyFilter,
    RandomBucket,
    Segment,
    Trait,
)
from engage.segments.batch import evaluate, population_from_records
from engage.segments.engine import ProfileFacts, ProfileState, SegmentEngine
from engage.segments.trackers import micros

START = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = ("Viewed", "Bought")
WINDOWS = (None, timedelta(days=1), timedelta(days=3), timedelta(days=10))

windows = st.sampled_from(WINDOWS)


def _test(ops: list[Op], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Comparison]:
    return st.builds(Comparison, st.sampled_from(ops), values)


a_filter = st.one_of(
    st.builds(PropertyFilter, st.just("color"), _test([Op.EQ], st.sampled_from(["red", "blue"]))),
    st.builds(PropertyFilter, st.just("size"), _test([Op.GT, Op.LTE, Op.NE], st.integers(0, 3))),
    st.builds(PropertyFilter, st.just("size"), _test([Op.EXISTS], st.booleans())),
)
filters = st.lists(a_filter, max_size=1).map(tuple)
events = st.sampled_from(EVENTS)

leaves = st.one_of(
    st.builds(Performed, events, filters, st.sampled_from(list(CountOp)), st.integers(0, 3), windows),
    st.builds(NotPerformed, events, filters, windows),
    st.builds(LastPerformed, events, st.lists(a_filter, min_size=1, max_size=1).map(tuple)),
    st.builds(
        Aggregate,
        events,
        st.sampled_from(list(AggregateFunction)),
        st.sampled_from(["size", "price", "color"]),
        _test([Op.GTE, Op.LT, Op.EQ], st.integers(0, 6)),
        filters,
        windows,
    ),
    st.builds(Trait, st.just("tier"), _test([Op.EQ, Op.NE], st.sampled_from(["gold", "silver"]))),
    st.builds(Trait, st.just("score"), _test([Op.GT, Op.LT], st.integers(0, 5))),
    st.builds(Trait, st.just("created_at"), _test([Op.WITHIN], st.sampled_from(WINDOWS[1:]))),
    st.builds(Consent, st.sampled_from(list(Channel)), st.booleans()),
    st.builds(RandomBucket, st.just("salt"), st.just(50.0)),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda c: All(tuple(c))),
        st.lists(inner, min_size=1, max_size=3).map(lambda c: AnyOf(tuple(c))),
        inner.map(Not),
    ),
    max_leaves=4,
)


@st.composite
def segment_sets(draw: st.DrawFn) -> list[Segment]:
    segments: list[Segment] = []
    for index in range(draw(st.integers(1, 3))):
        condition = draw(conditions)
        if segments and draw(st.booleans()):  # refer to an earlier one, so there are no cycles
            condition = All((condition, InSegment(draw(st.sampled_from(segments)).name)))
        segments.append(Segment(f"s{index}", condition))
    return segments


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    profiles = []
    consents = []
    for index in range(draw(st.integers(1, 4))):
        traits: dict[str, Any] = {}
        if draw(st.booleans()):
            traits["tier"] = draw(st.sampled_from(["gold", "silver", 1]))
        if draw(st.booleans()):
            traits["score"] = draw(st.integers(0, 5))
        if draw(st.booleans()):
            traits["email"] = f"p{index}@shop.example"
        if draw(st.booleans()):
            traits["created_at"] = (START + timedelta(hours=draw(st.integers(0, 24 * 20)))).isoformat()
        profiles.append(
            {"id": f"p{index}", "user_id": f"u{index}" if draw(st.booleans()) else None, "traits": traits}
        )
        for channel in draw(st.sets(st.sampled_from(["email", "sms"]))):
            consents.append(
                {"profile_id": f"p{index}", "channel": channel, "subscribed": draw(st.booleans())}
            )
    arrivals = []
    arrived = START
    for seq in range(1, draw(st.integers(0, 25)) + 1):
        arrived += timedelta(hours=draw(st.integers(0, 30)))
        properties: dict[str, Any] = {}
        if draw(st.booleans()):
            properties["size"] = draw(st.one_of(st.integers(0, 3), st.just(True), st.just("2")))
        if draw(st.booleans()):
            properties["color"] = draw(st.sampled_from(["red", "blue"]))
        if draw(st.booleans()):
            properties["price"] = draw(st.integers(1, 4))
        lag = timedelta(hours=draw(st.sampled_from([0, 0, 1, 30, 24 * 4])))
        arrivals.append(
            {
                "seq": seq,
                "profile_id": draw(st.sampled_from(profiles))["id"],
                "event": draw(st.sampled_from(EVENTS)),
                "timestamp": arrived - lag,
                "arrived": arrived,
                "properties": properties,
            }
        )
    end = arrived + timedelta(hours=draw(st.sampled_from([0, 1, 24, 24 * 5, 24 * 30])))
    return {"profiles": profiles, "consents": consents, "events": arrivals, "end": end}


def _facts(history: dict[str, Any]) -> dict[str, ProfileFacts]:
    facts = {p["id"]: ProfileFacts(p["user_id"], p["traits"]) for p in history["profiles"]}
    for consent in history["consents"]:
        facts[consent["profile_id"]].consents[consent["channel"]] = consent["subscribed"]
    return facts


def real_time(segments: list[Segment], history: dict[str, Any]) -> dict[str, set[str]]:
    """The consumer's way: each arrival observed, affected segments re-evaluated, state pruned; then
    every profile re-evaluated at the end, as the clock would when a window runs out."""
    engine = SegmentEngine(segments)
    facts = _facts(history)
    states = {profile_id: ProfileState() for profile_id in facts}
    for profile_id, state in states.items():  # a profile's first event evaluates every segment
        engine.evaluate(profile_id, state, facts[profile_id], START)
    for arrival in history["events"]:
        profile_id, name, now = arrival["profile_id"], arrival["event"], arrival["arrived"]
        state = states[profile_id]
        took = engine.observe(
            state, name, arrival["timestamp"], arrival["seq"], arrival["properties"], now_us=micros(now)
        )
        engine.evaluate(profile_id, state, facts[profile_id], now, engine.affected_by_trackers(took))
        engine.settle(state, facts[profile_id], now)
    members: dict[str, set[str]] = {segment.name: set() for segment in segments}
    for profile_id, state in states.items():
        engine.evaluate(profile_id, state, facts[profile_id], history["end"])
        for name in state.members:
            members[name].add(profile_id)
    return members


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segment_sets(), histories())
def test_real_time_and_batch_agree(segments: list[Segment], history: dict[str, Any]) -> None:
    population = population_from_records(
        history["events"], history["profiles"], history["consents"], segments
    )
    batch = evaluate(segments, population, history["end"])
    event("some members" if any(batch.values()) else "no members")
    event(
        "some non-members"
        if any(len(v) < len(history["profiles"]) for v in batch.values())
        else "all members"
    )
    assert real_time(segments, history) == batch
