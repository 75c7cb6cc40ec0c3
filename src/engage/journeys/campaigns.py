"""Scheduled campaigns: at each time of its cron schedule, a campaign's message goes to its audience.

A run is recorded once per campaign and scheduled time (`campaign_runs`), so two workers' schedulers, a
restart or `engage campaigns run` never run it twice: the worker that records it runs it, batch after
batch, each batch's members and messages in one transaction, keeping a heartbeat. A run whose heartbeat
stopped (its worker died) is finished by the next worker that looks; its messages' send keys keep those
already recorded from being recorded again.

- `holdout`: a stable share of the audience (by customer, the same every run) gets nothing and is
  counted, so the campaign's goal can be measured against it.
- `timezone: user`: the run is prepared when the scheduled time comes in the earliest time zone (UTC+14);
  each customer's message waits until that local time in theirs.
- `rate_limit`: messages are spread, a minute's share at a time, from the run's start.
- Runs missed while engage was down: when a worker starts, the latest missed time of each campaign is run
  at once if it is no older than the campaign's `catch_up` (6 hours unless set), and recorded as skipped
  otherwise; older missed times are not made up (one weekly mail late, never four at once).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Connection, text

from engage.errors import EngageError
from engage.journeys.conditions import bucket
from engage.journeys.definition import Campaign
from engage.journeys.library import Library
from engage.messaging.service import Messaging, Request
from engage.segments.store import current_members
from engage.store.codec import time_param, time_value
from engage.store.database import Database

__all__ = ["Campaigns", "RunSummary", "EARLIEST_ZONE", "STALE"]

log = logging.getLogger(__name__)
EARLIEST_ZONE = ZoneInfo("Etc/GMT-14")
"""UTC+14: where a scheduled local time comes first."""
STALE = timedelta(minutes=5)
"""A running run whose heartbeat is older than this was left by a worker that died."""
BATCH = 1000
BY_HAND = "run by hand"
_JOB_PREFIX = "campaign:"


@dataclass(frozen=True)
class RunSummary:
    campaign: str
    scheduled_for: datetime
    status: str
    audience: int
    holdout: int
    recorded: int
    detail: str | None = None


class Campaigns:
    def __init__(
        self, database: Database, library: Library, messaging: Messaging, clock: Callable[[], datetime]
    ):
        self.database = database
        self.library = library
        self.messaging = messaging
        self.clock = clock
        self._scheduled: dict[str, str] = {}

    # -- when -------------------------------------------------------------------------------------

    def trigger(self, campaign: Campaign) -> CronTrigger:
        if campaign.timezone == "user":
            zone = EARLIEST_ZONE
        else:
            zone = ZoneInfo(campaign.timezone or self.messaging.config.timezone)
        return CronTrigger.from_crontab(campaign.schedule, timezone=zone)

    def next_run(self, campaign: Campaign, after: datetime) -> datetime | None:
        return self.trigger(campaign).get_next_fire_time(None, after)

    def schedule(self, scheduler: BaseScheduler) -> None:
        """Keep one job per campaign in `scheduler`, following reloads, and make up missed runs at once in
        a thread of their own: a worker starts without waiting for a large audience. (Not as a one-shot
        job: APScheduler 3 raises JobLookupError in its thread when it shuts down while removing one.)"""
        threading.Thread(target=self._catch_up_logged, name="campaigns-catch-up", daemon=True).start()
        self.reschedule(scheduler)
        scheduler.add_job(
            self.reschedule, "interval", args=[scheduler], seconds=5, id="campaigns:reload", coalesce=True,
            max_instances=1,
        )  # fmt: skip

    def reschedule(self, scheduler: BaseScheduler) -> None:
        """One job per current campaign: added, replaced when its version changed, removed with it."""
        self.library.load()
        wanted = {name: campaign.version for name, campaign in self.library.campaigns.items()}
        for name in set(self._scheduled) - set(wanted):
            scheduler.remove_job(_JOB_PREFIX + name)
            del self._scheduled[name]
        for name, version in wanted.items():
            if self._scheduled.get(name) == version:
                continue
            campaign = self.library.campaigns[name]
            grace = int(campaign.catch_up.total_seconds()) or 1
            scheduler.add_job(
                self._fire, self.trigger(campaign), args=[name], id=_JOB_PREFIX + name, replace_existing=True,
                coalesce=True, misfire_grace_time=grace, max_instances=1,
            )  # fmt: skip
            self._scheduled[name] = version

    def _fire(self, name: str) -> None:
        campaign = self.library.campaigns.get(name)
        if campaign is None:
            return
        # The run is known by its scheduled time, not by the moment the job got to run.
        now = self.clock()
        times = _between(self.trigger(campaign), now - campaign.catch_up - timedelta(minutes=1), now, 10_000)
        self.run(name, times[-1] if times else now)

    # -- missed runs ------------------------------------------------------------------------------

    def _catch_up_logged(self) -> None:
        try:
            self.catch_up()
        except Exception:  # a thread's error would otherwise vanish; the scheduled runs go on regardless
            log.exception("campaigns: making up missed runs failed")

    def catch_up(self) -> list[RunSummary]:
        """Finish runs left unfinished, and make up (or skip) each campaign's missed runs (the module's
        policy)."""
        self.library.load()
        now = self.clock()
        done = []
        with self.database.read() as connection:
            unfinished = connection.execute(
                text("SELECT campaign, scheduled_for FROM campaign_runs WHERE status = 'running'")
            ).all()
            known = _known_since(connection)
            last_runs = dict(
                connection.execute(
                    text("SELECT campaign, max(scheduled_for) FROM campaign_runs GROUP BY campaign")
                ).all()
            )
        for name, scheduled_for in unfinished:
            if name in self.library.campaigns:
                done.append(self.run(name, time_value(scheduled_for)))
        for name, campaign in self.library.campaigns.items():
            since = last_runs.get(name) or known.get(name)
            if since is None:
                continue
            trigger = self.trigger(campaign)
            missed = _between(trigger, time_value(since), now)
            if not missed:
                continue
            latest = missed[-1]
            if len(missed) > 1:
                log.warning(
                    "campaign %s: %d runs missed while engage was down; only the latest counts",
                    name,
                    len(missed),
                )
            if now - latest <= campaign.catch_up:
                log.warning("campaign %s: making up the run of %s", name, latest.isoformat())
                done.append(self.run(name, latest))
            else:
                reason = (
                    f"missed while engage was down; {_age(now - latest)} late is more than catch_up "
                    f"({_age(campaign.catch_up)})"
                )
                log.warning("campaign %s: skipping the run of %s: %s", name, latest.isoformat(), reason)
                done.append(self._skip(campaign, latest, reason))
        return done

    def _skip(self, campaign: Campaign, scheduled_for: datetime, reason: str) -> RunSummary:
        now = self.clock()
        with self.database.write() as connection:
            self._record_run(connection, campaign, scheduled_for, now, "skipped", reason)
        return RunSummary(campaign.name, scheduled_for, "skipped", 0, 0, 0, reason)

    # -- a run ------------------------------------------------------------------------------------

    def run(self, name: str, scheduled_for: datetime | None = None) -> RunSummary:
        """Run campaign `name` for its time `scheduled_for` (now when None: `engage campaigns run --now`),
        or finish that run; a run already finished, or running in a live worker, is left alone."""
        self.library.load()
        campaign = self.library.campaigns.get(name)
        if campaign is None:
            known = ", ".join(sorted(self.library.campaigns)) or "none"
            raise EngageError(f"no campaign named {name!r} (campaigns: {known})")
        now = self.clock()
        by_hand = scheduled_for is None
        scheduled_for = (scheduled_for or now).replace(microsecond=0)
        with self.database.write() as connection:
            run = self._claim(connection, campaign, scheduled_for, now, BY_HAND if by_hand else None)
        if run is None:
            return self._summary(name, scheduled_for)
        run_id, started, detail = run
        local = campaign.timezone == "user" and detail != BY_HAND
        audience = sorted(self._audience(campaign))
        zones: dict[str, ZoneInfo] = {}
        for start in range(0, len(audience), BATCH):
            chunk = audience[start : start + BATCH]
            with self.database.write() as connection:
                self._send(connection, campaign, run_id, scheduled_for, started, chunk, start, local, zones)
                connection.execute(
                    text("UPDATE campaign_runs SET heartbeat_at = :now WHERE id = :id"),
                    {"now": time_param(self.clock(), connection.dialect.name == "sqlite"), "id": run_id},
                )
            self.messaging.wake()
        with self.database.write() as connection:
            sqlite = connection.dialect.name == "sqlite"
            connection.execute(
                text(
                    "UPDATE campaign_runs SET status = 'finished', finished_at = :now, "
                    "audience = (SELECT count(*) FROM campaign_members WHERE run_id = :id), "
                    "holdout = (SELECT count(*) FROM campaign_members WHERE run_id = :id AND holdout), "
                    "recorded = (SELECT count(message_id) FROM campaign_members WHERE run_id = :id) "
                    "WHERE id = :id"
                ),
                {"now": time_param(self.clock(), sqlite), "id": run_id},
            )
        summary = self._summary(name, scheduled_for)
        log.info(
            "campaign %s (%s): %d in the audience, %d held out, %d messages recorded",
            name, scheduled_for.isoformat(), summary.audience, summary.holdout, summary.recorded,
        )  # fmt: skip
        return summary

    def _claim(
        self,
        connection: Connection,
        campaign: Campaign,
        scheduled_for: datetime,
        now: datetime,
        detail: str | None,
    ) -> tuple[str, datetime, str | None] | None:
        """The run's id, start and detail if this worker is to run it: it recorded it now, or took over a
        run whose worker died."""
        sqlite = connection.dialect.name == "sqlite"
        created = self._record_run(connection, campaign, scheduled_for, now, "running", detail)
        if created is not None:
            return created, now, detail
        taken = connection.execute(
            text(
                "UPDATE campaign_runs SET heartbeat_at = :now WHERE campaign = :name AND scheduled_for = :at "
                "AND status = 'running' AND heartbeat_at < :stale RETURNING id, started_at, detail"
            ),
            {
                "now": time_param(now, sqlite),
                "name": campaign.name,
                "at": time_param(scheduled_for, sqlite),
                "stale": time_param(now - STALE, sqlite),
            },
        ).first()
        return (taken[0], time_value(taken[1]), taken[2]) if taken is not None else None

    def _record_run(
        self,
        connection: Connection,
        campaign: Campaign,
        scheduled_for: datetime,
        now: datetime,
        status: str,
        detail: str | None,
    ) -> str | None:
        """Record the run; its id, or None when it was already recorded."""
        sqlite = connection.dialect.name == "sqlite"
        run_id = uuid.uuid4().hex
        finished = time_param(now, sqlite) if status == "skipped" else None
        inserted = connection.execute(
            text(
                "INSERT INTO campaign_runs (id, campaign, version, scheduled_for, status, detail, "
                "started_at, heartbeat_at, finished_at, audience, holdout, recorded) VALUES (:id, :name, "
                ":version, :at, :status, :detail, :now, :now, :finished, 0, 0, 0) "
                "ON CONFLICT (campaign, scheduled_for) DO NOTHING"
            ),
            {
                "id": run_id, "name": campaign.name, "version": campaign.version,
                "at": time_param(scheduled_for, sqlite), "status": status, "detail": detail,
                "now": time_param(now, sqlite), "finished": finished,
            },
        ).rowcount  # fmt: skip
        return run_id if inserted else None

    def _audience(self, campaign: Campaign) -> set[str]:
        with self.database.read() as connection:
            return current_members(connection, campaign.audience)

    def _send(
        self,
        connection: Connection,
        campaign: Campaign,
        run_id: str,
        scheduled_for: datetime,
        started: datetime,
        profile_ids: list[str],
        position: int,
        local: bool,
        zones: dict[str, ZoneInfo],
    ) -> None:
        """One batch of the audience: its members, and the messages of those not held out."""
        customers = self.messaging.customers(connection, profile_ids)
        held, requests = [], []
        for offset, profile_id in enumerate(profile_ids):
            customer = customers.get(profile_id)
            who = customer.recipient.identity if customer and customer.recipient.is_user_id else profile_id
            if campaign.holdout and bucket(f"campaign:{campaign.name}:holdout", who) < campaign.holdout:
                held.append(profile_id)
                continue
            not_before = scheduled_for
            if local:
                timezone = customer.recipient.traits.get("timezone") if customer else None
                zone = zones.setdefault(str(timezone), self.messaging.policy.zone(timezone))
                local = scheduled_for.astimezone(EARLIEST_ZONE).replace(tzinfo=zone)
                not_before = local.astimezone(scheduled_for.tzinfo)
            if campaign.rate_limit:
                not_before = max(
                    not_before, started + timedelta(minutes=(position + offset) / campaign.rate_limit)
                )
            key = f"campaign:{campaign.name}:{scheduled_for.isoformat()}:{profile_id}"
            data = {"campaign": campaign.name, "run": run_id}
            requests.append(
                Request(
                    campaign.send.template, profile_id, key, None, data, not_before, campaign.send.fallback
                )
            )
        planned = self.messaging.plan(connection, requests)
        stored = self.messaging.store(connection, planned)
        members = [{"run": run_id, "profile": p, "holdout": True, "message": None} for p in held]
        members += [
            {"run": run_id, "profile": r.profile_id, "holdout": False, "message": stored[r.send_key].id}
            for r in planned.records
        ]
        connection.execute(
            text(
                "INSERT INTO campaign_members (run_id, profile_id, holdout, message_id) "
                "VALUES (:run, :profile, :holdout, :message) ON CONFLICT (run_id, profile_id) DO NOTHING"
            ),
            members,
        )

    def _summary(self, name: str, scheduled_for: datetime) -> RunSummary:
        with self.database.read() as connection:
            sqlite = connection.dialect.name == "sqlite"
            row = connection.execute(
                text(
                    "SELECT status, audience, holdout, recorded, detail FROM campaign_runs "
                    "WHERE campaign = :name AND scheduled_for = :at"
                ),
                {"name": name, "at": time_param(scheduled_for, sqlite)},
            ).one()
        return RunSummary(name, scheduled_for, *row)


def _known_since(connection: Connection) -> dict[str, datetime]:
    """When engage first knew of each campaign (a campaign has no missed runs before it existed)."""
    rows = connection.execute(text("SELECT journey, min(loaded_at) FROM journey_versions GROUP BY journey"))
    return {name: time_value(at) for name, at in rows}


def _between(trigger: CronTrigger, since: datetime, until: datetime, limit: int = 100_000) -> list[datetime]:
    """The trigger's times after `since`, up to `until`."""
    found: list[datetime] = []
    moment = trigger.get_next_fire_time(None, since + timedelta(seconds=1))
    while moment is not None and moment <= until and len(found) < limit:
        found.append(moment)
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    return found


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f}h" if hours >= 1 else f"{delta.total_seconds() / 60:.0f}m"
