"""Segment YAML → typed conditions, and every mistake reported at the line of its key."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from textwrap import dedent

import pytest

import engage.segments
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
    Manual,
    Not,
    NotPerformed,
    Op,
    ParsedSegment,
    Performed,
    PropertyFilter,
    RandomBucket,
    Segment,
    Trait,
    parse_segment,
)
from engage.workspace.yaml import parse_yaml


def parse(text: str, file: str = "segments/s.yml") -> ParsedSegment:
    doc, problems = parse_yaml(dedent(text), file)
    assert doc is not None and problems == []
    return parse_segment(doc)


def segment(condition: str) -> Segment:
    parsed = parse(
        "name: s\ncondition:\n" + "\n".join("  " + line for line in dedent(condition).splitlines())
    )
    assert parsed.problems == [], [str(p) for p in parsed.problems]
    assert parsed.segment is not None
    return parsed.segment


def problems(condition: str) -> list[str]:
    parsed = parse(
        "name: s\ncondition:\n" + "\n".join("  " + line for line in dedent(condition).splitlines())
    )
    assert parsed.segment is None
    return [str(p) for p in parsed.problems]


def test_the_documented_example_parses_into_the_tree() -> None:
    text = (engage.segments.__doc__ or "").split("```yaml")[1].split("```")[0]
    parsed = parse(text, "segments/high_value.yml")
    assert parsed.problems == [] and parsed.segment is not None
    s = parsed.segment
    assert s.name == "high_value" and s.file == "segments/high_value.yml"
    assert s.description == "Customers with at least $500 of orders in the last 90 days."
    assert isinstance(s.condition, All)
    first, second, aggregate, performed, not_performed, last, either, holdout, blocked = (
        s.condition.conditions
    )
    assert first == Trait("email", Comparison(Op.EXISTS, True))
    assert second == Trait("created_at", Comparison(Op.WITHIN, timedelta(days=365)))
    assert aggregate == Aggregate(
        "OrderCompleted",
        AggregateFunction.SUM,
        "revenue",
        Comparison(Op.GTE, 500),
        where=(
            PropertyFilter("currency", Comparison(Op.EQ, "USD")),
            PropertyFilter("coupon", Comparison(Op.EXISTS, False)),
        ),
        within=timedelta(days=90),
    )
    assert performed == Performed("ProductViewed", (), CountOp.AT_LEAST, 2, timedelta(days=30))
    assert not_performed == NotPerformed("Unsubscribed", (), timedelta(days=30))
    assert last == LastPerformed("CheckoutStarted", (PropertyFilter("step", Comparison(Op.GTE, 2)),))
    assert either == AnyOf((InSegment("email_users"), Consent(Channel.SMS, True)))
    assert holdout == Not(RandomBucket("holdout-2024", 10.0))
    assert blocked == Not(Manual("lists/blocked.csv"))
    assert s.events_used() == {"OrderCompleted", "ProductViewed", "Unsubscribed", "CheckoutStarted"}
    assert s.traits_used() == {"email", "created_at"}
    assert s.segments_used() == {"email_users"}
    assert s.channels_used() == {Channel.SMS}
    assert s.windows() == (timedelta(days=30), timedelta(days=90), timedelta(days=365))
    assert s.manual_files() == ("lists/blocked.csv",)
    assert len(list(s.walk())) == 14
    assert parsed.references == [("email_users", ("condition", "all", 6, "any", 0, "in_segment"))]


def test_definitions_are_immutable_and_hashable() -> None:
    s = segment("performed: OrderCompleted\nwithin: 30d\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"  # type: ignore[misc]
    assert hash(s) == hash(segment("performed: OrderCompleted\nwithin: 30d\n"))


def test_performed_counts_one_event_by_default_and_any_count_test() -> None:
    assert segment("performed: OrderCompleted\n").condition == Performed("OrderCompleted")
    for op in ("at_least", "at_most", "exactly"):
        s = segment(f"performed: ProductViewed\n{op}: 3\nwithin: 2w\n")
        assert s.condition == Performed("ProductViewed", (), CountOp(op), 3, timedelta(weeks=2))


def test_filters_take_a_value_or_one_operator() -> None:
    s = segment(
        """\
        performed: ProductViewed
        where:
          category: {in: [books, toys]}
          price: {lt: 20.5}
          name: {contains: lamp}
          viewed_at: {within: 1d12h}
          launched: {gte: 2024-01-31}
        """
    )
    assert isinstance(s.condition, Performed)
    assert s.condition.where == (
        PropertyFilter("category", Comparison(Op.IN, ("books", "toys"))),
        PropertyFilter("price", Comparison(Op.LT, 20.5)),
        PropertyFilter("name", Comparison(Op.CONTAINS, "lamp")),
        PropertyFilter("viewed_at", Comparison(Op.WITHIN, timedelta(days=1, hours=12))),
        PropertyFilter("launched", Comparison(Op.GTE, date(2024, 1, 31))),
    )
    assert s.windows() == ()  # a property's `within` is measured from the event's time: it never expires


def test_count_and_max_aggregates() -> None:
    s = segment("performed: ProductViewed\nwithin: 14d\ncount: product_id\ngte: 3\n")
    assert s.condition == Aggregate(
        "ProductViewed", AggregateFunction.COUNT, "product_id", Comparison(Op.GTE, 3), (), timedelta(days=14)
    )
    s = segment("performed: OrderCompleted\nmax: revenue\ngt: 99.5\n")
    assert s.condition == Aggregate(
        "OrderCompleted", AggregateFunction.MAX, "revenue", Comparison(Op.GT, 99.5)
    )


def test_consent_defaults_to_subscribed() -> None:
    assert segment("consent: email\n").condition == Consent(Channel.EMAIL, True)
    assert segment("consent: sms\nsubscribed: false\n").condition == Consent(Channel.SMS, False)


def test_random_bucket_is_stable_and_splits_by_percentage() -> None:
    bucket = RandomBucket("holdout-1", 10)
    users = [f"user-{i}" for i in range(4000)]
    inside = [u for u in users if bucket.contains(u)]
    assert 300 < len(inside) < 500
    assert inside == [u for u in users if RandomBucket("holdout-1", 10).contains(u)]
    assert inside != [u for u in users if RandomBucket("holdout-2", 10).contains(u)]
    assert all(0 <= bucket.bucket(u) < 100 for u in users[:100])
    assert not any(RandomBucket("x", 0).contains(u) for u in users)
    assert all(RandomBucket("x", 100).contains(u) for u in users)


def test_file_level_problems() -> None:
    assert [str(p) for p in parse("- a\n").problems] == [
        "segments/s.yml:1: expected a mapping with `name: s` and a `condition`, found a list"
    ]
    parsed = parse("name: other\ndescriptin: x\n")
    assert [str(p) for p in parsed.problems] == [
        "segments/s.yml:2: unknown key 'descriptin'; known keys: name, description, condition",
        "segments/s.yml:1: name: 'other' must be the file's name without .yml: 's'",
        "segments/s.yml:1: condition: required but missing",
    ]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            "trait: email\nequals: x\n",
            ["4: unknown operator 'equals'; known operators: eq, ne, gt, gte, lt,"],
        ),
        ("trait: email\n", ["3: condition.trait: needs one operator: eq, ne, gt"]),
        ("trait: age\ngt: 1\nlt: 9\n", ["5: condition.lt: one operator only, found gt and lt"]),
        ("trait: age\ngt: old\n", ["4: condition.gt: expected a number or a date, got 'old'"]),
        ("trait: age\ngt: true\n", ["4: condition.gt: expected a number or a date, got True"]),
        ("trait: email\nexists: yes\n", ["4: condition.exists: expected true or false, got 'yes'"]),
        ("trait: country\nin: US\n", ["4: condition.in: expected a list of values, e.g. [US, CA]"]),
        ("trait: created_at\nwithin: 7 days\n", ["4: condition.within: cannot read duration '7 days'"]),
        ("performed: X\nwithin: 30days\n", ["4: condition.within: unknown unit 'days' in duration '30days'"]),
        ("performed: X\nwindow: 3d\n", ["4: unknown key 'window'; known keys: performed, where, at_least,"]),
        (
            "performed: X\nat_least: -1\n",
            ["4: condition.at_least: expected a whole number of events, got -1"],
        ),
        ("performed: X\nat_least: 1\nexactly: 2\n", ["5: condition.exactly: use one of at_least,"]),
        ("performed: X\ngte: 3\n", ["4: condition.gte: 'gte' compares an aggregate: add sum, count or max"]),
        ("performed: X\nsum: v\n", ["4: condition.sum: needs one operator: eq, ne, gt, gte, lt, lte"]),
        ("performed: X\nsum: v\ngte: lots\n", ["5: condition.gte: expected a number, got 'lots'"]),
        ("performed: X\nsum: v\nat_least: 2\ngt: 1\n", ["5: condition.at_least: 'at_least' counts events"]),
        ("performed: X\nsum: v\ncontains: 1\n", ["5: unknown key 'contains'; known keys: performed,"]),
        ("performed: X\nwhere: {a: {like: b}}\n", ["4: unknown operator 'like'; known operators: eq, ne,"]),
        (
            "performed: X\nwhere: {a: [b, c]}\n",
            ["4: condition.where.a: to match one of several values write"],
        ),
        ("performed: X\nwhere: [a]\n", ["4: condition.where: expected property filters"]),
        ("performed: 3\n", ["3: condition.performed: expected an event name, e.g. OrderCompleted, got 3"]),
        ("last_performed: X\n", ["3: condition.last_performed: add `where:` to test the latest event's"]),
        (
            "not_performed: X\nat_least: 2\n",
            ["4: unknown key 'at_least'; known keys: not_performed, where, within"],
        ),
        ("consent: push\n", ["3: condition.consent: expected a channel: email or sms, got 'push'"]),
        ("consent: sms\nsubscribed: 1\n", ["4: condition.subscribed: expected true or false, got 1"]),
        (
            "random_bucket: {salt: a, below: 101}\n",
            ["3: condition.random_bucket.below: expected a percentage"],
        ),
        ("random_bucket: {salt: a, below: 5, seed: 1}\n", ["3: unknown key 'seed'; known keys: salt, below"]),
        ("manual: users.txt\n", ["3: condition.manual: expected a .csv file relative to the workspace"]),
        ("manual: ../users.csv\n", ["3: condition.manual: '../users.csv' must be inside the workspace"]),
        ("in_segment: ''\n", ["3: condition.in_segment: expected the name of another segment, got ''"]),
        ("in_segment: a\nwithin: 1d\n", ["4: unknown key 'within'; known keys: in_segment"]),
        (
            "unknown: 1\n",
            ["3: unknown condition 'unknown'; known conditions: all, any, not, trait, performed,"],
        ),
        ("trait: a\nperformed: X\n", ["4: condition.performed: 'trait' and 'performed' cannot share one"]),
        ("all: []\n", ["3: condition.all: expected a list of conditions under `all`"]),
        (
            "all:\n  - consent: sms\n  - 7\n",
            ["5: condition.all[1]: expected a condition: a mapping with one of"],
        ),
        ("not:\n  trait: a\n  eq: 1\n  any: []\n", ["6: condition.not.any: 'trait' and 'any' cannot share"]),
        ("any:\n  - consent: sms\nextra: 1\n", ["5: unknown key 'extra'; known keys: any"]),
    ],
)
def test_each_mistake_is_reported_at_its_line(condition: str, expected: list[str]) -> None:
    found = problems(condition)
    assert len(found) == len(expected), found
    for line, prefix in zip(found, expected, strict=True):
        assert line.startswith(f"segments/s.yml:{prefix}"), line


def test_every_mistake_of_a_file_is_reported() -> None:
    found = problems(
        """\
        all:
          - trait: email
            equals: x
          - performed: OrderCompleted
            within: 30 days
          - consent: fax
        """
    )
    assert [line.split(":")[1] for line in found] == ["5", "7", "8"]
