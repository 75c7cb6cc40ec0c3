"""Memberships kept current as events arrive and as windows run out, on SQLite and PostgreSQL.

Events go in through the ingestor, the stream delivers them to the real consumers, and the clock is a
test clock moved by hand: nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from engage.bootstrap import Engage, bootstrap
from engage.events.consumers import deliver
from engage.segments import store
from tests.conftest import MakeWorkspace
from tests.helpers import Clock, identify, send, track, write_segments

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


Open = Callable[..., Engage]


@pytest.fixture
def open_engage(make_workspace: MakeWorkspace, database_url: str, clock: Clock) -> Iterator[Open]:
    """Bootstrap a workspace whose segments/ holds exactly `segments` (name -> YAML), synced."""
    opened: list[Engage] = []
    workspace = make_workspace(database_url=database_url)

    def open_(segments: dict[str, str], files: dict[str, str] | None = None) -> Engage:
        write_segments(workspace.root, segments)
        for path, content in (files or {}).items():
            (workspace.root / path).parent.mkdir(parents=True, exist_ok=True)
            (workspace.root / path).write_text(content)
        while opened:
            opened.pop().close()
        engage = bootstrap(workspace, clock=clock)
        opened.append(engage)
        engage.segments.sync()
        return engage

    yield open_
    for engage in opened:
        engage.close()


def ago(clock: Clock, **delta: float) -> str:
    return (clock.now - timedelta(**delta)).isoformat()


def members(engage: Engage, segment: str) -> set[str]:
    """The user ids of the segment's current members."""
    with engage.database.read() as connection:
        rows = connection.execute(
            text(
                "SELECT p.user_id FROM segment_memberships m JOIN profiles p ON p.id = m.profile_id "
                "WHERE m.segment = :segment AND m.exited_at IS NULL"
            ),
            {"segment": segment},
        )
        return {user_id for (user_id,) in rows}


def announced(engage: Engage) -> list[tuple[str, str, str, str]]:
    """(event, segment, user id, cause) of every SegmentEntered / SegmentExited in the log, in order."""
    found = []
    for event in engage.log.read(0, limit=100_000):
        if event.event in (store.SEGMENT_ENTERED, store.SEGMENT_EXITED):
            assert event.channel == "system"
            cause = event.context["cause"].split(":")[0]
            found.append((event.event, event.properties["segment"], event.user_id or "", cause))
    return found


def test_events_move_profiles_in_and_out_and_each_change_is_announced(
    open_engage: Open, clock: Clock
) -> None:
    engage = open_engage(
        {
            "buyers": "condition: {performed: OrderCompleted, where: {currency: USD}, at_least: 2}\n",
            "no_returns": "condition: {not_performed: OrderReturned}\n",
            "loyal": "condition: {all: [{in_segment: buyers}, {in_segment: no_returns}]}\n",
        }
    )
    send(engage, track("u1", "OrderCompleted", ago(clock, hours=2), currency="USD"))
    assert members(engage, "buyers") == set() and members(engage, "no_returns") == {"u1"}
    send(
        engage,
        track("u1", "OrderCompleted", ago(clock, hours=1), currency="EUR"),
        track("u2", "OrderCompleted", ago(clock, hours=1), currency="USD"),
    )
    assert members(engage, "buyers") == set()
    send(engage, track("u1", "OrderCompleted", ago(clock, minutes=5), currency="USD"))
    assert members(engage, "buyers") == {"u1"} and members(engage, "loyal") == {"u1"}
    send(engage, track("u1", "OrderReturned", ago(clock, minutes=1)))
    assert members(engage, "loyal") == set() and members(engage, "no_returns") == {"u2"}
    assert [change[:3] for change in announced(engage)] == [
        ("SegmentEntered", "no_returns", "u1"),
        ("SegmentEntered", "no_returns", "u2"),
        ("SegmentEntered", "buyers", "u1"),
        ("SegmentEntered", "loyal", "u1"),
        ("SegmentExited", "no_returns", "u1"),
        ("SegmentExited", "loyal", "u1"),
    ]
    history = memberships(engage, "no_returns")
    assert [(user, exited is not None) for user, _, exited in history] == [("u1", True), ("u2", False)]


def memberships(engage: Engage, segment: str) -> list[tuple[str, datetime, datetime | None]]:
    """(user id, entered_at, exited_at) of every stay in the segment, oldest first."""
    with engage.database.read() as connection:
        rows = connection.execute(
            text(
                "SELECT p.user_id, m.entered_at, m.exited_at FROM segment_memberships m "
                "JOIN profiles p ON p.id = m.profile_id WHERE m.segment = :segment ORDER BY m.id"
            ),
            {"segment": segment},
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_every_leaf_kind_in_real_time(open_engage: Open, clock: Clock) -> None:
    engage = open_engage(
        {
            "vip_trait": "condition: {trait: tier, in: [gold, platinum]}\n",
            "big_spenders": "condition: {performed: OrderCompleted, within: 90d, sum: revenue, gte: 500}\n",
            "big_basket": "condition: {performed: OrderCompleted, max: items, gt: 3}\n",
            "browsers": "condition: {performed: ProductViewed, within: 14d, count: product_id, gte: 2}\n",
            "left_at_payment": "condition: {last_performed: CheckoutStarted, where: {step: payment}}\n",
            "texters": "condition: {consent: sms}\n",
            "emailable": "condition: {all: [{trait: email, exists: true}, {consent: email}]}\n",
            "half": "condition: {random_bucket: {salt: test, below: 50}}\n",
            "listed": "condition: {manual: lists/vips.csv}\n",
        },
        files={"lists/vips.csv": "user_id\nu2\n"},
    )
    now = ago(clock, minutes=1)
    send(
        engage,
        identify("u1", now, tier="gold", email="u1@shop.example"),
        identify("u2", now, tier="silver"),
        track("u1", "OrderCompleted", ago(clock, days=100), revenue=400, items=5),
        track("u1", "OrderCompleted", ago(clock, days=10), revenue=300, items=1),
        track("u2", "OrderCompleted", ago(clock, days=1), revenue=500, items=2),
        track("u1", "ProductViewed", now, product_id="a"),
        track("u1", "ProductViewed", now, product_id="a"),
        track("u2", "ProductViewed", now, product_id="a"),
        track("u2", "ProductViewed", now, product_id="b"),
        track("u1", "CheckoutStarted", ago(clock, minutes=3), step="payment"),
        track("u1", "CheckoutStarted", now, step="address"),
        track("u2", "CheckoutStarted", now, step="payment"),
        track("u2", "SmsOptedIn", now),
    )
    assert members(engage, "vip_trait") == {"u1"}
    assert members(engage, "big_spenders") == {"u2"}  # u1's 400 is older than 90 days
    assert members(engage, "big_basket") == {"u1"}
    assert members(engage, "browsers") == {"u2"}  # u1 viewed one product twice
    assert members(engage, "left_at_payment") == {"u2"}
    assert members(engage, "texters") == {"u2"}
    assert members(engage, "emailable") == {"u1"}
    half = {u for u in ("u1", "u2") if _bucket("test", u) < 50}
    assert members(engage, "half") == half
    assert members(engage, "listed") == {"u2"}
    send(
        engage,
        identify("u1", now, tier=None),
        track("u1", "Unsubscribed", now),
        track("u2", "CheckoutStarted", ago(clock, seconds=1), step="review"),
    )
    assert members(engage, "vip_trait") == set()
    assert members(engage, "emailable") == set()
    assert members(engage, "left_at_payment") == set()


def _bucket(salt: str, user: str) -> float:
    from engage.segments import RandomBucket

    return RandomBucket(salt, 50).bucket(user)


def test_a_window_running_out_moves_the_profile_without_any_event(open_engage: Open, clock: Clock) -> None:
    engage = open_engage(
        {
            "active": "condition: {performed: ProductViewed, within: 30d}\n",
            "lapsed": "condition: {all: [{performed: OrderCompleted},"
            " {not_performed: OrderCompleted, within: 60d}]}\n",
            "new_signups": "condition: {trait: created_at, within: 7d}\n",
        }
    )
    send(
        engage,
        track("u1", "ProductViewed", ago(clock, hours=1)),
        track("u1", "OrderCompleted", ago(clock, days=50)),
        identify("u1", ago(clock, hours=1), createdAt=ago(clock, days=6)),
    )
    assert members(engage, "active") == {"u1"} and members(engage, "new_signups") == {"u1"}
    assert members(engage, "lapsed") == set()
    clock.advance(days=1)
    assert engage.segments.timer.tick() == 1  # created 7 days ago to the microsecond: no longer new
    assert members(engage, "new_signups") == set()
    clock.advance(days=9, hours=1)  # 60 days since the order: lapsed
    assert engage.segments.timer.tick() == 1
    assert members(engage, "lapsed") == {"u1"}
    clock.advance(days=19, hours=21, minutes=59)
    assert engage.segments.timer.tick() == 0  # a minute before the view is 30 days old
    assert members(engage, "active") == {"u1"}
    clock.advance(minutes=1)
    assert engage.segments.timer.tick() == 1
    assert members(engage, "active") == set()
    exits = [change for change in announced(engage) if change[0] == "SegmentExited"]
    assert {(segment, cause) for _, segment, _, cause in exits} == {
        ("new_signups", "clock"),
        ("active", "clock"),
    }
    clock.advance(days=400)
    assert engage.segments.timer.tick() == 0  # nothing left that time can change


def test_an_event_after_a_window_ran_out_but_before_the_clock_came_moves_the_profile(
    open_engage: Open, clock: Clock
) -> None:
    engage = open_engage(
        {
            "active": "condition: {performed: ProductViewed, within: 30d}\n",
            "buyers": "condition: {performed: OrderCompleted}\n",
        }
    )
    send(engage, track("u1", "ProductViewed", ago(clock, hours=1)))
    assert members(engage, "active") == {"u1"}
    clock.advance(days=31)  # the view has left the window; the segment clock has not ticked yet
    send(engage, track("u1", "OrderCompleted", ago(clock, minutes=1)))
    assert members(engage, "buyers") == {"u1"}
    assert members(engage, "active") == set()  # not dropped unnoticed while settling the new event
    assert engage.segments.timer.tick() == 0


def test_redelivered_events_change_nothing(open_engage: Open, clock: Clock) -> None:
    engage = open_engage({"buyers": "condition: {performed: OrderCompleted}\n"})
    send(engage, track("u1", "OrderCompleted", ago(clock, hours=1)))
    # As after a crash between handling and acknowledging: the stream delivers the same events again.
    deliver(engage.database, engage.segments.consumer, 0, engage.log.read(0))
    assert announced(engage)[0][:3] == ("SegmentEntered", "buyers", "u1")
    assert len(announced(engage)) == 1


def stored_states(engage: Engage) -> dict[str, tuple[str, int | None]]:
    with engage.database.read() as connection:
        rows = connection.execute(text("SELECT profile_id, state, due_at FROM segment_states"))
        return {profile_id: (state, due_at) for profile_id, state, due_at in rows}


def test_an_event_older_than_every_window_changes_nothing(open_engage: Open, clock: Clock) -> None:
    engage = open_engage({"active": "condition: {performed: ProductViewed, within: 30d}\n"})
    send(engage, track("u1", "ProductViewed", ago(clock, days=2)))
    before = stored_states(engage)
    send(engage, track("u1", "ProductViewed", ago(clock, days=45)))  # a late import of old history
    assert stored_states(engage) == before
    assert members(engage, "active") == {"u1"}
    clock.advance(days=28)
    assert engage.segments.timer.tick() == 1  # the old view never counted: out 30 days after the new one
    assert members(engage, "active") == set()


def test_an_anonymous_visitor_brings_their_history_when_they_sign_in(open_engage: Open, clock: Clock) -> None:
    engage = open_engage({"browsers": "condition: {performed: ProductViewed, at_least: 3}\n"})
    now = ago(clock, minutes=1)
    anonymous = {"type": "track", "anonymousId": "a1", "event": "ProductViewed", "timestamp": now}
    send(engage, track("u1", "ProductViewed", now), track("u1", "ProductViewed", now))
    send(engage, {**anonymous, "messageId": "m1"}, {**anonymous, "messageId": "m2"})
    assert members(engage, "browsers") == set()
    send(engage, {"type": "identify", "userId": "u1", "anonymousId": "a1", "timestamp": now})
    assert members(engage, "browsers") == {"u1"}


def test_new_edited_and_removed_definitions_are_backfilled(open_engage: Open, clock: Clock) -> None:
    engage = open_engage({"buyers": "condition: {performed: OrderCompleted}\n"})
    send(
        engage,
        track("u1", "OrderCompleted", ago(clock, days=3), revenue=100),
        track("u1", "OrderCompleted", ago(clock, days=2), revenue=300),
        track("u2", "OrderCompleted", ago(clock, days=1), revenue=200),
    )
    spenders = "condition: {performed: OrderCompleted, within: 30d, sum: revenue, gte: 300}\n"
    engage = open_engage({"buyers": "condition: {performed: OrderCompleted}\n", "spenders": spenders})
    assert members(engage, "spenders") == {"u1"}
    entered = [c for c in announced(engage) if c[1] == "spenders"]
    assert entered == [("SegmentEntered", "spenders", "u1", "backfill")]
    send(engage, track("u2", "OrderCompleted", ago(clock, hours=1), revenue=100))  # real time carries on
    assert members(engage, "spenders") == {"u1", "u2"}
    clock.advance(days=28, hours=1)  # both of u1's orders are now older than 30 days
    engage.segments.timer.tick()
    assert members(engage, "spenders") == {"u2"}
    engage = open_engage({"spenders": spenders.replace("300", "250")})  # edited; buyers removed
    assert members(engage, "buyers") == set()
    assert members(engage, "spenders") == {"u2"}
    assert ("SegmentExited", "buyers", "u1", "backfill") in announced(engage)
    engage = open_engage({"spenders": spenders.replace("300", "250")})
    assert engage.segments.sync() == []  # nothing changed since


def test_a_new_segment_picks_up_history_then_counts_on_in_real_time(open_engage: Open, clock: Clock) -> None:
    engage = open_engage({"buyers": "condition: {performed: OrderCompleted}\n"})
    send(
        engage,
        track("u1", "ProductViewed", ago(clock, days=1), category="books"),
        track("u1", "ProductViewed", ago(clock, days=40), category="books"),  # outside the window
        track("u1", "ProductViewed", ago(clock, hours=1), category="toys"),
        track("u2", "ProductViewed", ago(clock, hours=2), category="books"),
        track("u2", "ProductViewed", ago(clock, hours=1), category="books"),
    )
    bookworms = "condition: {performed: ProductViewed, where: {category: books}, within: 30d, at_least: 2}\n"
    engage = open_engage({"buyers": "condition: {performed: OrderCompleted}\n", "bookworms": bookworms})
    assert members(engage, "bookworms") == {"u2"}
    send(engage, track("u1", "ProductViewed", ago(clock, minutes=1), category="toys"))
    assert members(engage, "bookworms") == {"u2"}
    send(engage, track("u1", "ProductViewed", ago(clock, minutes=1), category="books"))
    assert members(engage, "bookworms") == {"u1", "u2"}  # the rebuilt count went on from one


def test_a_profile_is_evaluated_on_its_first_event_even_one_no_segment_counts(
    open_engage: Open, clock: Clock
) -> None:
    engage = open_engage({"never_bought": "condition: {not_performed: OrderCompleted}\n"})
    send(engage, track("u1", "CartViewed", ago(clock, minutes=1)))
    assert members(engage, "never_bought") == {"u1"}
    send(engage, track("u1", "CartViewed", ago(clock, seconds=30)))  # known now: nothing to redo
    send(engage, track("u1", "OrderCompleted", ago(clock, seconds=10)))
    assert members(engage, "never_bought") == set()
