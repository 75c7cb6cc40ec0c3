"""The batch evaluator: every leaf and operator on small in-memory populations, then `load_population` on
SQLite and PostgreSQL after real ingestion.

Expected members are written out by hand; `now` is fixed, so nothing sleeps.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engage.bootstrap import bootstrap
from engage.segments import (
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
from engage.segments.batch import (
    Population,
    evaluate,
    load_population,
    population_from_records,
    property_column,
)
from tests.conftest import MakeWorkspace

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
PROFILES = ("p1", "p2", "p3", "p4")
_seq = itertools.count(1)


def ago(**duration: float) -> datetime:
    return NOW - timedelta(**duration)


def event(
    profile: str, name: str | None, at: datetime = NOW, seq: int | None = None, **properties: Any
) -> dict:
    return {
        "seq": seq if seq is not None else next(_seq),
        "profile_id": profile,
        "event": name,
        "timestamp": at,
        "properties": properties,
    }


def profile(profile_id: str, user_id: str | None = None, **traits: Any) -> dict:
    return {"id": profile_id, "user_id": user_id, "traits": traits}


def members(
    condition: Condition,
    events: Iterable[dict] = (),
    profiles: Sequence[dict] = tuple(profile(p) for p in PROFILES),
    consents: Iterable[dict] = (),
    **options: Any,
) -> set[str]:
    """Who is in a segment of `condition` at NOW."""
    segment = Segment("s", condition)
    population = population_from_records(events, profiles, consents, [segment])
    return evaluate([segment], population, NOW, **options)["s"]


def where(prop: str, op: Op, value: Any) -> tuple[PropertyFilter, ...]:
    return (PropertyFilter(prop, Comparison(op, value)),)


def viewed_where(prop: str, op: Op, value: Any) -> Performed:
    return Performed("Viewed", where(prop, op, value))


# ---------------------------------------------------------------------------------------- performed


def test_performed_counts_events_of_that_name_whatever_the_call() -> None:
    events = [
        event("p1", "Viewed"),
        event("p2", "Viewed"),
        event("p2", "Viewed"),
        event("p3", "Other"),
        event("p4", None),  # an identify or page call: no name
    ]
    assert members(Performed("Viewed"), events) == {"p1", "p2"}
    assert members(Performed("Viewed", count=2), events) == {"p2"}
    assert members(Performed("Viewed", count_op=CountOp.EXACTLY, count=1), events) == {"p1"}
    # no matching event counts 0, so at_most holds for the profiles without any
    assert members(Performed("Viewed", count_op=CountOp.AT_MOST, count=1), events) == {"p1", "p3", "p4"}
    assert members(Performed("Viewed", count_op=CountOp.EXACTLY, count=0), events) == {"p3", "p4"}


def test_a_window_holds_events_younger_than_within_and_future_ones() -> None:
    day = timedelta(days=1)
    events = [
        event("p1", "Viewed", ago(days=1)),  # exactly `within` old: out
        event("p2", "Viewed", ago(days=1) + timedelta(microseconds=1)),
        event("p3", "Viewed", NOW + timedelta(hours=5)),  # in the future: in
        event("p4", "Viewed", ago(days=400)),
    ]
    assert members(Performed("Viewed", within=day), events) == {"p2", "p3"}
    assert members(Performed("Viewed"), events) == set(PROFILES)  # no window: ever
    assert members(NotPerformed("Viewed", within=day), events) == {"p1", "p4"}
    assert members(NotPerformed("Viewed"), events) == set()


def test_events_of_profiles_outside_the_universe_are_ignored() -> None:
    events = [event("merged-away", "Viewed"), event("p1", "Viewed")]
    assert members(Performed("Viewed"), events) == {"p1"}
    assert members(NotPerformed("Viewed"), events) == {"p2", "p3", "p4"}


def test_not_performed_applies_filters_and_window() -> None:
    events = [
        event("p1", "Ordered", ago(hours=1), coupon="X"),
        event("p2", "Ordered", ago(days=3), coupon="X"),
        event("p3", "Ordered", ago(hours=1), coupon="Y"),
    ]
    leaf = NotPerformed("Ordered", where("coupon", Op.EQ, "X"), within=timedelta(days=1))
    assert members(leaf, events) == {"p2", "p3", "p4"}


# ------------------------------------------------------------------------------------ property filters


def test_eq_compares_numbers_as_numbers_and_never_a_bool_with_a_number() -> None:
    events = [
        event("p1", "Viewed", n=5),
        event("p2", "Viewed", n=5.0),
        event("p3", "Viewed", n=True),
        event("p4", "Viewed", n="5"),
    ]
    assert members(viewed_where("n", Op.EQ, 5), events) == {"p1", "p2"}
    assert members(viewed_where("n", Op.EQ, 1), [event("p1", "Viewed", n=True)]) == set()
    assert members(viewed_where("n", Op.EQ, True), events) == {"p3"}
    assert members(viewed_where("n", Op.EQ, "5"), events) == {"p4"}


def test_ne_holds_for_a_missing_value() -> None:
    events = [
        event("p1", "Viewed", color="red"),
        event("p2", "Viewed", color="blue"),
        event("p3", "Viewed"),
        event("p4", "Viewed", color=None),
    ]
    assert members(viewed_where("color", Op.NE, "red"), events) == {"p2", "p3", "p4"}
    assert members(viewed_where("color", Op.EQ, None), events) == {"p3", "p4"}


def test_ordering_compares_numbers_with_numbers_and_strings_with_strings() -> None:
    events = [
        event("p1", "Viewed", v=3),
        event("p2", "Viewed", v=2.5),
        event("p3", "Viewed", v="3"),
        event("p4", "Viewed", v=False),
    ]
    assert members(viewed_where("v", Op.GT, 2.5), events) == {"p1"}
    assert members(viewed_where("v", Op.GTE, 2.5), events) == {"p1", "p2"}
    assert members(viewed_where("v", Op.LT, 3), events) == {"p2"}  # neither "3" nor False is a number
    assert members(viewed_where("v", Op.LTE, 3), events) == {"p1", "p2"}
    texts = [event("p1", "Viewed", v="apple"), event("p2", "Viewed", v="banana"), event("p3", "Viewed", v=1)]
    assert members(viewed_where("v", Op.LT, "b"), texts) == {"p1"}
    assert members(viewed_where("v", Op.GTE, "b"), texts) == {"p2"}


def test_in_contains_and_exists() -> None:
    events = [
        event("p1", "Viewed", tag="sale", tags=["a", "b"]),
        event("p2", "Viewed", tag="wholesale", tags=[1, 2.0]),
        event("p3", "Viewed", tag=2, tags="a,b"),
        event("p4", "Viewed", tag=None),
    ]
    assert members(viewed_where("tag", Op.IN, ("sale", 2.0, None)), events) == {"p1", "p3", "p4"}
    assert members(viewed_where("tag", Op.CONTAINS, "sale"), events) == {"p1", "p2"}
    assert members(viewed_where("tags", Op.CONTAINS, "a"), events) == {"p1", "p3"}
    assert members(viewed_where("tags", Op.CONTAINS, 2), events) == {"p2"}  # an item of a list
    assert members(viewed_where("tag", Op.EXISTS, True), events) == {"p1", "p2", "p3"}
    assert members(viewed_where("tag", Op.EXISTS, False), events) == {"p4"}  # null is no value


def test_dotted_names_reach_into_nested_objects_unless_the_key_itself_has_the_dot() -> None:
    events = [
        event("p1", "Viewed", product={"category": "books"}),
        event("p2", "Viewed", **{"product.category": "books"}),
        event("p3", "Viewed", product={"category": "toys"}),
        event("p4", "Viewed", **{"product.category": None}, product={"category": "books"}),
        event("p4", "Viewed", product=["books"]),
    ]
    assert members(viewed_where("product.category", Op.EQ, "books"), events) == {"p1", "p2"}


def test_timestamps_in_text_compare_with_dates_and_datetimes() -> None:
    events = [
        event("p1", "Viewed", launched="2024-01-31T00:00:00Z"),
        event("p2", "Viewed", launched="2024-02-01T01:00:00+02:00"),  # 2024-01-31 23:00 UTC
        event("p3", "Viewed", launched="not a date"),
        event("p4", "Viewed", launched=20240131),
    ]
    assert members(viewed_where("launched", Op.EQ, date(2024, 1, 31)), events) == {"p1"}
    assert members(viewed_where("launched", Op.GT, date(2024, 1, 31)), events) == {"p2"}
    later = datetime(2024, 1, 31, 23, 0, tzinfo=UTC)
    assert members(viewed_where("launched", Op.GTE, later), events) == {"p2"}
    assert members(viewed_where("launched", Op.LT, later), events) == {"p1"}


def test_within_on_a_property_is_measured_from_the_events_own_time() -> None:
    viewed_at = ago(days=30)
    events = [
        event("p1", "Viewed", viewed_at, added=(viewed_at - timedelta(hours=1)).isoformat()),
        event("p2", "Viewed", viewed_at, added=(viewed_at - timedelta(hours=2)).isoformat()),  # exactly: out
        event("p3", "Viewed", viewed_at, added=(viewed_at + timedelta(hours=1)).isoformat()),  # after: out
        event("p4", "Viewed", viewed_at, added=viewed_at.isoformat()),
    ]
    assert members(viewed_where("added", Op.WITHIN, timedelta(hours=2)), events) == {"p1", "p4"}


def test_integers_beyond_float_precision_compare_exactly() -> None:
    big = 2**53 + 1
    events = [
        event("p1", "Viewed", n=big),
        event("p2", "Viewed", n=float(2**53)),
        event("p3", "Viewed", n=2**64),
    ]
    assert members(viewed_where("n", Op.EQ, big), events) == {"p1"}
    assert members(viewed_where("n", Op.GT, 2**53), events) == {"p1", "p3"}
    assert members(viewed_where("n", Op.IN, (2**64, 7)), events) == {"p3"}


# ----------------------------------------------------------------------------------------- aggregates


def aggregate(function: AggregateFunction, op: Op, value: Any, **options: Any) -> Aggregate:
    return Aggregate("Ordered", function, "revenue", Comparison(op, value), **options)


def test_sum_adds_numbers_only_and_is_zero_without_any() -> None:
    events = [
        event("p1", "Ordered", revenue=300),
        event("p1", "Ordered", revenue=200.5),
        event("p2", "Ordered", revenue=True),
        event("p2", "Ordered", revenue="900"),
        event("p3", "Ordered", ago(days=100), revenue=900),
    ]
    assert members(aggregate(AggregateFunction.SUM, Op.GTE, 500), events) == {"p1", "p3"}
    assert members(aggregate(AggregateFunction.SUM, Op.GTE, 500, within=timedelta(days=90)), events) == {"p1"}
    assert members(aggregate(AggregateFunction.SUM, Op.EQ, 0, within=timedelta(days=90)), events) == {
        "p2", "p3", "p4"
    }  # fmt: skip


def test_sum_is_exact_whatever_the_order_of_the_events() -> None:
    events = [
        event("p1", "Ordered", revenue=1e16),
        event("p1", "Ordered", revenue=1.0),
        event("p1", "Ordered", revenue=-1e16),
        event("p2", "Ordered", revenue=0.1),
        event("p2", "Ordered", revenue=0.2),
    ]
    assert members(aggregate(AggregateFunction.SUM, Op.EQ, 1), events) == {"p1"}
    # math.fsum(0.1, 0.2) is the float nearest to their exact sum: 0.30000000000000004
    assert members(aggregate(AggregateFunction.SUM, Op.GT, 0.3), events) == {"p1", "p2"}
    assert members(aggregate(AggregateFunction.SUM, Op.EQ, 0.30000000000000004), events) == {"p2"}


def test_max_without_numbers_has_no_value_and_fails_every_comparison() -> None:
    events = [
        event("p1", "Ordered", revenue=10),
        event("p1", "Ordered", revenue=40.5),
        event("p2", "Ordered", revenue=True),
        event("p3", "Ordered", revenue=-3),
    ]
    assert members(aggregate(AggregateFunction.MAX, Op.GT, 40), events) == {"p1"}
    assert members(aggregate(AggregateFunction.MAX, Op.NE, 40), events) == {"p1", "p3"}
    assert members(aggregate(AggregateFunction.MAX, Op.LT, 0), events) == {"p3"}
    assert members(aggregate(AggregateFunction.MAX, Op.EQ, 40.5), events) == {"p1"}


def test_count_counts_distinct_values() -> None:
    count = Aggregate("Viewed", AggregateFunction.COUNT, "sku", Comparison(Op.EQ, 2))
    events = [
        event("p1", "Viewed", sku=1),
        event("p1", "Viewed", sku=1.0),  # equal to 1
        event("p1", "Viewed", sku="1"),  # a string is another value
        event("p2", "Viewed", sku=["a", 1]),
        event("p2", "Viewed", sku=["a", 1]),
        event("p2", "Viewed", sku={"x": 1, "y": 2}),
        event("p2", "Viewed", sku={"y": 2, "x": 1}),  # the same object
        event("p3", "Viewed", sku="a"),
        event("p3", "Viewed"),  # missing values do not count
        event("p3", "Viewed", sku=None),
        event("p4", "Viewed", sku=True),
        event("p4", "Viewed", sku=1),  # True == 1 in Python
        event("p4", "Viewed", sku=float("nan")),
        event("p4", "Viewed", sku=float("nan")),  # NaN is one value: p4 has two
    ]
    assert members(count, events) == {"p1", "p2", "p4"}
    none = Aggregate("Viewed", AggregateFunction.COUNT, "sku", Comparison(Op.LT, 1))
    assert members(none, events[:7]) == {"p3", "p4"}
    one = Aggregate("Viewed", AggregateFunction.COUNT, "sku", Comparison(Op.EQ, 1))
    assert members(one, events) == {"p3"}


def test_aggregates_apply_filters_and_window() -> None:
    affinity = Aggregate(
        "Viewed",
        AggregateFunction.COUNT,
        "product_id",
        Comparison(Op.GTE, 2),
        where("category", Op.EQ, "books"),
        within=timedelta(days=14),
    )
    events = [
        event("p1", "Viewed", ago(days=1), category="books", product_id="b1"),
        event("p1", "Viewed", ago(days=2), category="books", product_id="b2"),
        event("p2", "Viewed", ago(days=1), category="books", product_id="b1"),
        event("p2", "Viewed", ago(days=20), category="books", product_id="b2"),
        event("p3", "Viewed", ago(days=1), category="books", product_id="b1"),
        event("p3", "Viewed", ago(days=1), category="toys", product_id="t1"),
    ]
    assert members(affinity, events) == {"p1"}


# ------------------------------------------------------------------------------------ last_performed


def test_last_performed_tests_the_latest_event_by_time_then_seq() -> None:
    step_two = LastPerformed("Checkout", where("step", Op.GTE, 2))
    events = [
        event("p1", "Checkout", ago(hours=2), step=1),
        event("p1", "Checkout", ago(hours=1), step=2),
        event("p2", "Checkout", ago(hours=1), step=3),
        event("p2", "Checkout", ago(hours=2), step=1),  # logged later, happened earlier
        event("p3", "Checkout", ago(hours=1), seq=10_501, step=2),
        event("p3", "Checkout", ago(hours=1), seq=10_500, step=1),  # same time: the higher seq is the latest
        event("p4", "Checkout", ago(hours=1), seq=10_601, step=1),
        event("p4", "Checkout", ago(hours=1), seq=10_600, step=2),
    ]
    assert members(step_two, events) == {"p1", "p2", "p3"}


def test_last_performed_chooses_ignoring_the_filters_and_is_false_without_events() -> None:
    events = [
        event("p1", "Checkout", ago(hours=2), step=3),
        event("p1", "Checkout", ago(hours=1)),  # the latest, without a step
        event("p2", "Checkout", NOW + timedelta(days=1), step=3),  # future events count
        event("p2", "Checkout", ago(hours=1), step=1),
    ]
    assert members(LastPerformed("Checkout", where("step", Op.GTE, 2)), events) == {"p2"}
    assert members(LastPerformed("Checkout", where("step", Op.EXISTS, False)), events) == {"p1"}
    assert members(LastPerformed("Checkout", ()), events) == {"p1", "p2"}


# -------------------------------------------------------------------------------------------- traits


def test_traits_are_compared_at_now() -> None:
    profiles = [
        profile("p1", email="a@shop.example", created_at=ago(days=2).isoformat(), address={"city": "Lyon"}),
        profile("p2", email="", created_at=ago(days=7).isoformat(), address={"city": "Paris"}),
        profile("p3", created_at=(NOW + timedelta(days=1)).isoformat(), vip=True),
        profile("p4", address="Lyon"),
    ]

    def of(condition: Condition) -> set[str]:
        return members(condition, profiles=profiles)

    assert of(Trait("email", Comparison(Op.EXISTS, True))) == {"p1", "p2"}
    assert of(Trait("created_at", Comparison(Op.WITHIN, timedelta(days=7)))) == {"p1"}  # future: not within
    assert of(Trait("address.city", Comparison(Op.EQ, "Lyon"))) == {"p1"}
    assert of(Trait("vip", Comparison(Op.NE, True))) == {"p1", "p2", "p4"}
    assert of(Trait("created_at", Comparison(Op.LT, NOW))) == {"p1", "p2"}


# ------------------------------------------------------------------------------------------- consent


def test_consent_row_else_the_default() -> None:
    profiles = [
        profile("p1", email="a@shop.example"),
        profile("p2", email="b@shop.example"),
        profile("p3"),
        profile("p4", email=""),
    ]
    consents = [
        {"profile_id": "p2", "channel": "email", "subscribed": False},
        {"profile_id": "p3", "channel": "email", "subscribed": True},
        {"profile_id": "p4", "channel": "sms", "subscribed": True},
        {"profile_id": "gone", "channel": "sms", "subscribed": True},
    ]

    def of(condition: Condition, **options: Any) -> set[str]:
        return members(condition, profiles=profiles, consents=consents, **options)

    assert of(Consent(Channel.EMAIL)) == {"p1", "p3"}  # the default: subscribed with an address
    assert of(Consent(Channel.EMAIL), email_consent_default=False) == {"p3"}
    assert of(Consent(Channel.EMAIL, subscribed=False)) == {"p2", "p4"}
    assert of(Consent(Channel.SMS)) == {"p4"}  # sms needs an opt-in
    assert of(Consent(Channel.SMS, subscribed=False)) == {"p1", "p2", "p3"}


# ------------------------------------------------------------------------------- buckets and lists


def test_random_bucket_hashes_the_user_id_or_else_the_profile_id() -> None:
    profiles = [profile(f"p{i}", user_id=f"u{i}" if i % 2 else None) for i in range(200)]
    bucket = RandomBucket("holdout", 30)
    expected = {p["id"] for p in profiles if bucket.contains(p["user_id"] or p["id"])}
    assert 30 < len(expected) < 100
    assert members(bucket, profiles=profiles) == expected
    assert members(RandomBucket("holdout", 0), profiles=profiles) == set()
    assert len(members(RandomBucket("holdout", 100), profiles=profiles)) == 200


def test_manual_lists_match_user_ids() -> None:
    profiles = [profile("p1", "u1"), profile("p2", "u2"), profile("p3")]
    lists = {"lists/blocked.csv": frozenset({"u2", "u9"})}
    assert members(Manual("lists/blocked.csv"), profiles=profiles, manual=lists) == {"p2"}
    assert members(Not(Manual("lists/blocked.csv")), profiles=profiles, manual=lists) == {"p1", "p3"}
    with pytest.raises(ValueError, match="lists/blocked.csv"):
        members(Manual("lists/blocked.csv"), profiles=profiles)


# --------------------------------------------------------------------------------------- combinators


def test_all_any_not_and_their_empty_forms() -> None:
    events = [event("p1", "A"), event("p2", "B"), event("p3", "A"), event("p3", "B")]
    assert members(All((Performed("A"), Performed("B"))), events) == {"p3"}
    assert members(AnyOf((Performed("A"), Performed("B"))), events) == {"p1", "p2", "p3"}
    assert members(Not(AnyOf((Performed("A"), Performed("B")))), events) == {"p4"}
    assert members(All(()), events) == set(PROFILES)
    assert members(AnyOf(()), events) == set()


def test_in_segment_reads_segments_evaluated_before_or_given() -> None:
    events = [event("p1", "Ordered"), event("p2", "Ordered"), event("p2", "Viewed")]
    buyers = Segment("buyers", Performed("Ordered"))
    browsing_buyers = Segment("browsing_buyers", All((InSegment("buyers"), Performed("Viewed"))))
    others = Segment("others", All((Not(InSegment("browsing_buyers")), InSegment("vips"))))
    segments = [buyers, browsing_buyers, others]
    population = population_from_records(events, [profile(p) for p in PROFILES], [], segments)
    found = evaluate(segments, population, NOW, members={"vips": {"p2", "p3", "unknown"}})
    assert found == {"buyers": {"p1", "p2"}, "browsing_buyers": {"p2"}, "others": {"p3"}}
    # in any order, a segment among those evaluated is evaluated first when referred to
    backwards = evaluate(segments[::-1], population, NOW, members={"vips": {"p2", "p3"}})
    assert backwards == found
    with pytest.raises(ValueError, match="vips"):
        evaluate(segments, population, NOW)


# ------------------------------------------------------------------------------------------ population


def test_population_from_records_keeps_only_the_properties_read() -> None:
    segment = Segment("s", Performed("Viewed", where("product.category", Op.EQ, "books")))
    population = population_from_records(
        [event("p1", "Viewed", product={"category": "books"}, sku="s1"), event("p1", "Other", product={})],
        [profile("p1", "u1", email="a@shop.example")],
        [],
        [segment],
    )
    assert list(population.events.columns) == [
        "seq", "profile_id", "event", "timestamp", property_column("product.category")
    ]  # fmt: skip
    assert population.events[property_column("product.category")].tolist() == ["books", None]
    assert population.profiles.loc["p1", "traits"] == {"email": "a@shop.example"}


def test_rows_are_read_in_seq_order_whatever_the_tables_order_and_index() -> None:
    segments = [
        Segment("last_step_two", LastPerformed("Checkout", where("step", Op.EQ, 2))),
        Segment("two_steps", Aggregate("Checkout", AggregateFunction.COUNT, "step", Comparison(Op.EQ, 2))),
    ]
    events = [
        event("p1", "Checkout", ago(hours=1), seq=20_001, step=1),
        event("p1", "Checkout", ago(hours=1), seq=20_002, step=2),
        event("p2", "Other", ago(hours=1), seq=20_003),
        event("p2", "Checkout", ago(hours=1), seq=20_004, step=2),
    ]
    population = population_from_records(events, [profile(p) for p in PROFILES], [], segments)
    reversed_rows = population.events.iloc[::-1]
    filtered = population.events[population.events["event"] == "Checkout"]  # an index with gaps
    expected = {"last_step_two": {"p1", "p2"}, "two_steps": {"p1"}}
    for frame in (population.events, reversed_rows, filtered):
        assert (
            evaluate(segments, Population(frame, population.profiles, population.consents), NOW) == expected
        )


def test_a_population_without_a_property_the_segments_read_is_refused() -> None:
    population = population_from_records([event("p1", "Viewed", color="red")], [profile("p1")], [], [])
    with pytest.raises(ValueError, match=property_column("color")):
        evaluate([Segment("s", viewed_where("color", Op.EQ, "red"))], population, NOW)


def test_an_empty_population_has_no_members() -> None:
    segments = [Segment("s", Performed("Viewed")), Segment("t", Not(Performed("Viewed")))]
    population = population_from_records([], [], [], segments)
    assert evaluate(segments, population, NOW) == {"s": set(), "t": set()}


# ------------------------------------------------------------------------------------ from the database

T0 = datetime(2024, 5, 31, 12, 0, tzinfo=UTC)


def call(kind: str, at: datetime = T0, **fields: Any) -> dict:
    return {"type": kind, "timestamp": at.isoformat(), **fields}


def track(user: str, name: str, at: datetime = T0, **properties: Any) -> dict:
    return call("track", at, userId=user, event=name, properties=properties)


def identify(user: str, anonymousId: str | None = None, **traits: Any) -> dict:
    return call(
        "identify", userId=user, traits=traits, **({"anonymousId": anonymousId} if anonymousId else {})
    )


def ingest(engage: Any, *calls: dict) -> None:
    result = engage.ingestor.batch({"batch": list(calls)}, size=0)
    assert not result.rejected, result.rejected


DATABASE_SEGMENTS = [
    Segment(
        "apparel_fans",
        Aggregate(
            "ProductViewed",
            AggregateFunction.COUNT,
            "product_id",
            Comparison(Op.GTE, 2),
            where("product.category", Op.EQ, "apparel"),
            within=timedelta(days=14),
        ),
    ),
    Segment(
        "high_value",
        Aggregate(
            "OrderCompleted",
            AggregateFunction.SUM,
            "revenue",
            Comparison(Op.GTE, 500),
            within=timedelta(days=90),
        ),
    ),
    Segment(
        "big_order", Aggregate("OrderCompleted", AggregateFunction.MAX, "revenue", Comparison(Op.GT, 250))
    ),
    Segment("checkout_step_two", LastPerformed("CheckoutStarted", where("step", Op.GTE, 2))),
    Segment("tagged", Performed("ProductViewed", where("tags", Op.CONTAINS, "new") + where("a.b", Op.EQ, 1))),
    Segment("email_users", All((Trait("email", Comparison(Op.EXISTS, True)), Consent(Channel.EMAIL)))),
    Segment("sms_opted_in", Consent(Channel.SMS)),
    Segment("new_signups", Trait("created_at", Comparison(Op.WITHIN, timedelta(days=7)))),
    Segment("never_ordered", NotPerformed("OrderCompleted")),
    Segment("valuable_browsers", All((InSegment("apparel_fans"), Not(InSegment("never_ordered"))))),
]


def test_load_population_reads_what_ingestion_wrote(make_workspace: MakeWorkspace, database_url: str) -> None:
    engage = bootstrap(make_workspace(database_url=database_url))
    day, hour = timedelta(days=1), timedelta(hours=1)
    try:
        ingest(
            engage,
            identify(
                "u1", anonymousId="laptop", email="u1@shop.example", createdAt=(T0 - 2 * day).isoformat()
            ),
            identify("u2", email="u2@shop.example", createdAt=(T0 - 30 * day).isoformat()),
            identify("u3", email="u3@shop.example"),
            {
                **identify("u4", phone="+14155552671"),
                "context": {"consent": {"categoryPreferences": {"sms": True}}},
            },
        )
        # An anonymous visitor browses on a phone, logged under a profile of its own ...
        viewed = {"product": {"category": "apparel"}, "tags": ["new"], "a.b": 1}
        ingest(
            engage,
            *(
                call(
                    "track",
                    T0 - days * day,
                    anonymousId="phone",
                    event="ProductViewed",
                    properties=properties,
                )
                for days, properties in (
                    (1, {**viewed, "product_id": "p1"}),
                    (2, {**viewed, "product_id": "p2"}),
                    (3, {**viewed, "product_id": "p2"}),
                )
            ),
        )
        # ... then signs in as u1: the phone's profile merges into u1's, its events with it.
        ingest(
            engage,
            {**track("u1", "OrderCompleted", revenue=120), "anonymousId": "phone"},
            track("u2", "OrderCompleted", revenue=300),
            track("u2", "OrderCompleted", T0 - day, revenue=200.5),
            track("u2", "OrderCompleted", revenue=True),
            track("u3", "OrderCompleted", T0 - 100 * day, revenue=900),
            track("u3", "Unsubscribed"),
            track("u2", "CheckoutStarted", T0 - 2 * hour, step=1),
            track("u2", "CheckoutStarted", T0 - hour, step=2),
            track("u3", "CheckoutStarted", T0 - hour, step=1),
            track("u3", "CheckoutStarted", T0 - 2 * hour, step=3),
            call("page", userId="u4", name="Home"),
        )
        engage.stream.drain(engage.consumers)
        with engage.database.read() as connection:
            population = load_population(connection, DATABASE_SEGMENTS)
    finally:
        engage.close()

    found = evaluate(DATABASE_SEGMENTS, population, T0)
    user_of = population.profiles["user_id"].to_dict()
    assert sorted(user_of.values()) == ["u1", "u2", "u3", "u4"]  # the phone's profile was merged away
    assert {name: {user_of[p] for p in ids} for name, ids in found.items()} == {
        "apparel_fans": {"u1"},
        "high_value": {"u2"},
        "big_order": {"u2", "u3"},
        "checkout_step_two": {"u2"},
        "tagged": {"u1"},
        "email_users": {"u1", "u2"},
        "sms_opted_in": {"u4"},
        "new_signups": {"u1"},
        "never_ordered": {"u4"},
        "valuable_browsers": {"u1"},
    }
    revenue = population.events[property_column("revenue")].dropna().tolist()
    assert sorted(map(repr, revenue)) == ["120", "200.5", "300", "900", "True"]  # JSON types survive
    assert set(population.events["event"]) == {"ProductViewed", "OrderCompleted", "CheckoutStarted"}
