"""How a journey or a campaign is doing: who entered, who waits where, why they left, what was sent and
who reached the goal, against the holdout when there is one (`engage journeys stats`, the HTTP API)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from engage.journeys.conditions import event_matches
from engage.journeys.definition import (
    Branch,
    Campaign,
    Exit,
    Journey,
    Send,
    Split,
    Step,
    Update,
    Wait,
    WaitFor,
)
from engage.journeys.transitions import HOLDOUT
from engage.segments.durations import format_duration
from engage.store.codec import json_value, list_param, listed, time_param, time_value

__all__ = ["Group", "JourneyStats", "CampaignStats", "journey_stats", "campaign_stats", "describe"]


@dataclass(frozen=True)
class Group:
    """Conversions of one group: an arm of a split, those reached, the holdout."""

    name: str
    size: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.size if self.size else None


@dataclass
class JourneyStats:
    name: str
    version: str
    entered: int
    active: int
    waiting: list[tuple[int, str, int]]
    """(step, what it is, instances there) for active instances."""
    exits: dict[str, int]
    sends: dict[str, dict[str, int]]
    """By template, messages by status."""
    goal: str | None
    converted: int
    groups: list[Group] = field(default_factory=list)
    kind: str = "journey"

    def lift(self) -> float | None:
        return _lift(self.groups)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["waiting"] = [{"step": s, "what": what, "instances": n} for s, what, n in self.waiting]
        data["groups"] = [{**asdict(g), "rate": g.rate} for g in self.groups]
        data["lift"] = self.lift()
        return data


@dataclass
class CampaignStats:
    name: str
    version: str
    schedule: str
    runs: list[dict[str, Any]]
    next_run: datetime | None
    sends: dict[str, dict[str, int]]
    goal: str | None
    groups: list[Group] = field(default_factory=list)
    kind: str = "campaign"

    def lift(self) -> float | None:
        return _lift(self.groups)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["next_run"] = self.next_run.isoformat() if self.next_run else None
        data["groups"] = [{**asdict(g), "rate": g.rate} for g in self.groups]
        data["lift"] = self.lift()
        return data


def _lift(groups: list[Group]) -> float | None:
    """How much better those reached converted than the holdout (0.25: 25% better)."""
    reached = [g for g in groups if g.name != HOLDOUT]
    holdout = next((g for g in groups if g.name == HOLDOUT), None)
    if holdout is None or not holdout.rate or not reached:
        return None
    size = sum(g.size for g in reached)
    if not size:
        return None
    return (sum(g.converted for g in reached) / size) / holdout.rate - 1


def describe(step: Step) -> str:
    """One line for a step, as a marketer wrote it."""
    if isinstance(step, Wait):
        if step.duration is not None:
            return f"wait {format_duration(step.duration)}"
        return f"wait until {step.until:%H:%M}"
    if isinstance(step, WaitFor):
        return f"wait_for {step.match.event} ({format_duration(step.timeout)})"
    if isinstance(step, Branch):
        return f"branch ({len(step.arms)} when)"
    if isinstance(step, Split):
        return "split " + " / ".join(f"{arm.name} {arm.percent:g}%" for arm in step.arms)
    if isinstance(step, Send):
        return f"send {step.template}" + (f" (else {step.fallback})" if step.fallback else "")
    if isinstance(step, Update):
        return "update " + ", ".join(name for name, _ in step.traits)
    assert isinstance(step, Exit)
    return "exit"


def journey_stats(connection: Connection, journey: Journey) -> JourneyStats:
    params = {"name": journey.name}
    by_status = dict(
        connection.execute(
            text("SELECT status, count(*) FROM journey_instances WHERE journey = :name GROUP BY status"),
            params,
        ).all()
    )
    waiting = [
        (step, describe(journey.nodes[step].step) if 0 <= step < len(journey.nodes) else "", count)
        for step, count in connection.execute(
            text(
                "SELECT step, count(*) FROM journey_instances WHERE journey = :name AND status = 'active' "
                "GROUP BY step ORDER BY step"
            ),
            params,
        )
    ]
    exits = dict(
        connection.execute(
            text(
                "SELECT exit_reason, count(*) FROM journey_instances WHERE journey = :name "
                "AND status <> 'active' GROUP BY exit_reason ORDER BY count(*) DESC"
            ),
            params,
        ).all()
    )
    sends = _statuses(
        connection,
        "SELECT m.template, m.status, count(*) FROM journey_steps AS s "
        "JOIN messages AS m ON m.id = s.message_id WHERE s.journey = :name AND s.kind = 'send' "
        "GROUP BY m.template, m.status",
        params,
    )
    rows = connection.execute(
        text(
            "SELECT coalesce(arm, ''), exit_reason = 'holdout', count(*), count(goal_at) "
            "FROM journey_instances WHERE journey = :name GROUP BY coalesce(arm, ''), exit_reason = 'holdout'"
        ),
        params,
    ).all()
    # With a split, only instances that reached it were assigned a group: those that left before it (an
    # order within the first hour) are in neither side of the comparison.
    split = any(isinstance(node.step, Split) for node in journey.nodes)
    groups: dict[str, list[int]] = {}
    for arm, held, size, converted in rows:
        if split and not arm and not held:
            continue
        name = HOLDOUT if held else (arm or "all")
        total = groups.setdefault(name, [0, 0])
        total[0] += size
        total[1] += converted
    return JourneyStats(
        journey.name, journey.version, sum(by_status.values()), by_status.get("active", 0), waiting, exits,
        sends, journey.goal.match.event if journey.goal else None, sum(row[3] for row in rows),
        [Group(name, size, converted) for name, (size, converted) in sorted(groups.items())],
    )  # fmt: skip


def campaign_stats(connection: Connection, campaign: Campaign, next_run: datetime | None) -> CampaignStats:
    sqlite = connection.dialect.name == "sqlite"
    runs = [
        {
            "id": run_id,
            "scheduled_for": time_value(at).isoformat(),
            "status": status,
            "audience": audience,
            "holdout": holdout,
            "recorded": recorded,
            "detail": detail,
        }  # fmt: skip
        for run_id, at, status, audience, holdout, recorded, detail in connection.execute(
            text(
                "SELECT id, scheduled_for, status, audience, holdout, recorded, detail FROM campaign_runs "
                "WHERE campaign = :name ORDER BY scheduled_for DESC"
            ),
            {"name": campaign.name},
        )
    ]
    sends = _statuses(
        connection,
        "SELECT m.template, m.status, count(*) FROM campaign_runs AS r "
        "JOIN campaign_members AS c ON c.run_id = r.id JOIN messages AS m ON m.id = c.message_id "
        "WHERE r.campaign = :name GROUP BY m.template, m.status",
        {"name": campaign.name},
    )
    groups: list[Group] = []
    if campaign.goal is not None:
        sizes = {True: 0, False: 0}
        converted = {True: 0, False: 0}
        for run in runs:
            if run["status"] == "skipped":
                continue
            start = datetime.fromisoformat(run["scheduled_for"])
            members = dict(
                connection.execute(
                    text("SELECT profile_id, holdout FROM campaign_members WHERE run_id = :run"),
                    {"run": run["id"]},
                ).all()
            )
            reached = _converted(
                connection, campaign, set(members), start, start + campaign.goal.within, sqlite
            )
            for profile_id, held in members.items():
                sizes[bool(held)] += 1
                converted[bool(held)] += profile_id in reached
        groups = [
            Group("reached", sizes[False], converted[False]),
            Group(HOLDOUT, sizes[True], converted[True]),
        ]
    return CampaignStats(
        campaign.name, campaign.version, campaign.schedule, runs, next_run, sends,
        campaign.goal.match.event if campaign.goal else None, groups,
    )  # fmt: skip


def _converted(
    connection: Connection,
    campaign: Campaign,
    members: set[str],
    start: datetime,
    end: datetime,
    sqlite: bool,
) -> set[str]:
    assert campaign.goal is not None
    match = campaign.goal.match
    found: set[str] = set()
    ids = sorted(members)
    for first in range(0, len(ids), 1000):
        rows = connection.execute(
            text(
                f"SELECT e.profile_id, e.properties, e.timestamp FROM {listed('ids', sqlite)} "
                "JOIN event_log AS e ON e.profile_id = listed.value WHERE e.event = :event "
                "AND e.timestamp >= :start AND e.timestamp < :end"
            ),
            {
                "ids": list_param(ids[first : first + 1000], sqlite),
                "event": match.event,
                "start": time_param(start, sqlite),
                "end": time_param(end, sqlite),
            },
        )
        found.update(
            profile_id
            for profile_id, properties, at in rows
            if event_matches(match, match.event, json_value(properties), time_value(at), {})
        )
    return found


def _statuses(connection: Connection, sql: str, params: dict[str, Any]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for template, status, count in connection.execute(text(sql), params):
        found.setdefault(template, {})[status] = count
    return found
