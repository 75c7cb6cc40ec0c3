"""Scheduled campaigns: a run per scheduled time, a stable holdout, each customer's local time, a rate
limit, and the runs missed while engage was down."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from engage.journeys.campaigns import EARLIEST_ZONE
from tests.journeys.conftest import Shop, customer

DAILY = """
schedule: "0 9 * * *"
timezone: UTC
audience: email_users
send: {channel: email, template: weekly_picks}
"""


def audience(shop: Shop, count: int, **traits: object) -> list[str]:
    users = [f"c{n:04d}" for n in range(count)]
    shop.send(*[customer(user, **traits) for user in users])  # type: ignore[arg-type]
    return users


def test_the_holdout_is_the_same_customers_every_run(shop: Shop) -> None:
    shop.shipped("weekly_picks")
    audience(shop, 400)
    campaigns = shop.engage.journeys.campaigns
    first = campaigns.run("weekly_picks", datetime(2026, 6, 8, 10, tzinfo=EARLIEST_ZONE))
    second = campaigns.run("weekly_picks", datetime(2026, 6, 15, 10, tzinfo=EARLIEST_ZONE))
    assert (first.audience, second.audience) == (400, 400)
    assert 20 <= first.holdout <= 60 and first.holdout == second.holdout
    assert first.recorded == 400 - first.holdout
    reached = Counter(m.profile_id for m in shop.messages())
    assert len(reached) == 400 - first.holdout and set(reached.values()) == {2}
    again = campaigns.run("weekly_picks", datetime(2026, 6, 15, 10, tzinfo=EARLIEST_ZONE))
    assert again == second and len(shop.messages()) == 2 * (400 - first.holdout)


def test_each_customer_gets_it_at_the_scheduled_time_in_their_own_zone(shop: Shop) -> None:
    shop.shipped("weekly_picks")
    zones = {"ny": "America/New_York", "paris": "Europe/Paris", "tokyo": "Asia/Tokyo"}
    shop.send(*[customer(user, timezone=zone) for user, zone in zones.items()])
    monday = datetime(2026, 6, 8, 10, tzinfo=EARLIEST_ZONE)  # Monday 10:00 comes first at UTC+14
    shop.clock.now = monday.astimezone(UTC)
    shop.engage.journeys.campaigns.run("weekly_picks", monday)
    for user, zone in zones.items():
        found = shop.messages(user=user)
        if not found:
            continue  # held out
        local = found[0].due_at.astimezone(ZoneInfo(zone))
        assert local.strftime("%a %H:%M") == "Mon 10:00", user
    assert shop.messages()  # not everyone held out


def test_a_rate_limit_spreads_the_messages(shop: Shop) -> None:
    shop.journey("daily", DAILY + "rate_limit: 60/m\n")
    audience(shop, 150)
    shop.engage.journeys.campaigns.run("daily", shop.clock.now)
    due = sorted(m.due_at for m in shop.messages())
    assert len(due) == 150
    assert due[0] == shop.clock.now and due[-1] - due[0] == timedelta(seconds=149)
    per_minute = Counter((moment - due[0]) // timedelta(minutes=1) for moment in due)
    assert max(per_minute.values()) == 60


def test_a_missed_run_is_made_up_once_when_recent_and_skipped_when_old(shop: Shop) -> None:
    shop.clock.now = datetime(2026, 6, 1, 6, tzinfo=UTC)
    shop.journey("daily", DAILY)
    audience(shop, 5)
    campaigns = shop.engage.journeys.campaigns
    shop.clock.now = datetime(2026, 6, 3, 11, tzinfo=UTC)  # down since Monday 06:00: three runs missed
    done = campaigns.catch_up()
    assert [(run.scheduled_for, run.status) for run in done] == [
        (datetime(2026, 6, 3, 9, tzinfo=UTC), "finished")
    ]
    assert len(shop.messages()) == 5
    assert campaigns.catch_up() == []  # a restart makes up nothing more
    shop.clock.now = datetime(2026, 6, 4, 16, tzinfo=UTC)  # 7 hours after the run of Thursday 09:00
    (skipped,) = campaigns.catch_up()
    assert skipped.status == "skipped" and "7h late is more than catch_up (6h)" in (skipped.detail or "")
    assert len(shop.messages()) == 5
    runs = shop.engage.journeys.stats("daily").runs
    assert [(run["scheduled_for"][:16], run["status"]) for run in runs] == [
        ("2026-06-04T09:00", "skipped"),
        ("2026-06-03T09:00", "finished"),
    ]


def test_the_scheduler_holds_one_job_per_campaign(shop: Shop) -> None:
    shop.shipped("weekly_picks")
    shop.journey("daily", DAILY)
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        shop.engage.journeys.schedule(scheduler)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert {"campaign:daily", "campaign:weekly_picks"} <= set(jobs)
        assert jobs["campaign:weekly_picks"].trigger.timezone == EARLIEST_ZONE
        (shop.root / "journeys" / "daily.yml").unlink()
        shop.engage.journeys.sync()
        shop.engage.journeys.campaigns.reschedule(scheduler)
        assert "campaign:daily" not in {job.id for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
