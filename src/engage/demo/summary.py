"""What a demo run did, read back from engage's database only: the summary table and the report show
what engage recorded, never the simulator's own counts."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from engage.bootstrap import Engage
from engage.journeys.stats import JourneyStats
from engage.journeys.transitions import HOLDOUT
from engage.messaging.records import ACTIVE
from engage.segments.queries import segment_sizes
from engage.store.codec import json_value
from engage.store.models import EventRecord, Message, MessageStatus, Profile
from engage.workspace.connectors import OutboxConfig

__all__ = ["Summary", "JourneyLine", "ClickThrough", "combined", "summarise", "MESSAGE_STEPS"]

MESSAGE_STEPS = ("sent", "delivered", "opened", "clicked")
"""A message counts at each step it reached: a clicked email was sent, delivered (if the provider said so)
and opened too."""


@dataclass
class JourneyLine:
    name: str
    kind: str
    entered: int
    active: int
    exits: dict[str, int]
    converted: int
    reached_rate: float | None
    holdout_rate: float | None
    sent: int


@dataclass
class ClickThrough:
    """Lists of recommendations shown and clicked, on one channel, by one model version."""

    shown: int = 0
    clicked: int = 0
    items: int = 0
    persona_items: int = 0
    """Items shown that are in the shopper's favourite categories (their `persona` trait)."""

    @property
    def rate(self) -> float:
        return self.clicked / self.shown if self.shown else 0.0

    @property
    def persona_share(self) -> float:
        return self.persona_items / self.items if self.items else 0.0


@dataclass
class Summary:
    events: int = 0
    events_by_channel: dict[str, int] = field(default_factory=dict)
    events_by_name: dict[str, int] = field(default_factory=dict)
    events_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    """Day -> channel -> events."""
    profiles: int = 0
    customers: int = 0
    segments: dict[str, int] = field(default_factory=dict)
    journeys: list[JourneyLine] = field(default_factory=list)
    messages: dict[str, dict[str, int]] = field(default_factory=dict)
    """Channel -> step (MESSAGE_STEPS) -> messages that reached it."""
    unreported: dict[str, set[str]] = field(default_factory=dict)
    """Channel -> the steps nobody can report on it: an SMS is never seen opening, the outbox delivers
    nothing."""
    messages_by_template: dict[str, int] = field(default_factory=dict)
    chat_turns: dict[str, int] = field(default_factory=dict)
    """ChatMessage events (the customers' turns) by the channel the bot was reached on."""
    intents: dict[str, int] = field(default_factory=dict)
    opt_outs: dict[str, int] = field(default_factory=dict)
    click_through: dict[str, dict[tuple[str, str], ClickThrough]] = field(default_factory=dict)
    """Period ("before" / "after" retraining) -> (channel, use case) -> click-through."""
    persona_click_through: dict[str, ClickThrough] = field(default_factory=dict)
    """Period -> the personalized lists (`for_you`) shown to shoppers with a persona, on every channel: the
    figure the loop has to raise."""
    models: dict[str, str] = field(default_factory=dict)
    """Period -> model version."""


def summarise(engage: Engage, before: str, after: str | None) -> Summary:
    """The numbers of a run whose recommender served model `before` until it retrained into `after`."""
    summary = Summary()
    events, messages, statuses, profiles = (
        EventRecord.__table__, Message.__table__, MessageStatus.__table__, Profile.__table__
    )  # fmt: skip
    with engage.database.read() as connection:
        summary.events = connection.execute(select(func.count()).select_from(events)).scalar_one()
        summary.events_by_channel = dict(
            connection.execute(select(events.c.channel, func.count()).group_by(events.c.channel)).all()
        )
        summary.events_by_name = dict(
            connection.execute(
                select(events.c.event, func.count())
                .where(events.c.event.is_not(None))
                .group_by(events.c.event)
            ).all()
        )
        day = func.substr(func.cast(events.c.timestamp, events.c.event.type), 1, 10)
        by_day: dict[str, dict[str, int]] = defaultdict(dict)
        for when, channel, count in connection.execute(
            select(day, events.c.channel, func.count()).group_by(day, events.c.channel)
        ):
            by_day[when][channel] = count
        summary.events_by_day = dict(sorted(by_day.items()))
        summary.profiles = connection.execute(select(func.count()).select_from(profiles)).scalar_one()
        summary.customers = connection.execute(
            select(func.count()).select_from(profiles).where(profiles.c.user_id.is_not(None))
        ).scalar_one()
        summary.segments = dict(sorted(segment_sizes(connection).items()))

        steps: dict[str, Counter[str]] = defaultdict(Counter)
        reached = (
            select(messages.c.channel, statuses.c.status, func.count(func.distinct(messages.c.id)))
            .join(statuses, statuses.c.message_id == messages.c.id)
            .where(statuses.c.status.in_(MESSAGE_STEPS[1:]))
            .group_by(messages.c.channel, statuses.c.status)
        )
        for channel, status, count in connection.execute(reached):
            steps[channel][status] = count
        for channel, count in connection.execute(
            select(messages.c.channel, func.count())
            .where(messages.c.status.in_(ACTIVE))
            .group_by(messages.c.channel)
        ):
            steps[channel]["sent"] = count
        summary.messages = {
            channel: {step: steps[channel].get(step, 0) for step in MESSAGE_STEPS}
            for channel in sorted(steps)
        }
        summary.unreported = {channel: _unreported(engage, channel) for channel in summary.messages}
        summary.messages_by_template = dict(
            connection.execute(
                select(messages.c.template, func.count())
                .where(messages.c.status.in_(ACTIVE))
                .group_by(messages.c.template)
                .order_by(messages.c.template)
            ).all()
        )

        turns = select(events.c.channel, events.c.properties).where(events.c.event == "ChatMessage")
        for channel, properties in connection.execute(turns):
            summary.chat_turns[channel] = summary.chat_turns.get(channel, 0) + 1
            intent = (json_value(properties) or {}).get("intent") or "?"
            summary.intents[intent] = summary.intents.get(intent, 0) + 1
        summary.opt_outs = {
            name: summary.events_by_name.get(name, 0)
            for name in ("Unsubscribed", "SmsOptedOut", "SmsOptedIn")
        }
        personas = {
            profile: set((json_value(traits) or {}).get("persona", "").split("_"))
            for profile, traits in connection.execute(select(profiles.c.id, profiles.c.traits))
        }
        summary.click_through, summary.persona_click_through = _click_through(
            connection, personas, engage, before, after
        )
    summary.models = {"before": before, **({"after": after} if after else {})}
    summary.journeys = _journeys(engage)
    return summary


def _unreported(engage: Engage, channel: str) -> set[str]:
    steps = {"opened"} if channel == "sms" else set()
    if isinstance(engage.messaging.connectors.configs.get(channel), OutboxConfig):
        steps.add("delivered")
    return steps


def _click_through(
    connection: Any, personas: dict[str, set[str]], engage: Engage, before: str, after: str | None
) -> tuple[dict[str, dict[tuple[str, str], ClickThrough]], dict[str, ClickThrough]]:
    """By period: the click-through of each (channel, use case), and that of the personalized lists shown
    to shoppers with a persona."""
    events = EventRecord.__table__
    periods = {before: "before", **({after: "after"} if after else {})}
    catalog = engage.recommend.catalog
    clicked = {
        (json_value(properties) or {}).get("recommendation_id")
        for (properties,) in connection.execute(
            select(events.c.properties).where(events.c.event == "RecommendationClicked")
        )
    }
    table: dict[str, dict[tuple[str, str], ClickThrough]] = {period: {} for period in periods.values()}
    persona = {period: ClickThrough() for period in periods.values()}
    shown = select(events.c.properties, events.c.channel, events.c.profile_id).where(
        events.c.event == "RecommendationShown"
    )
    for properties, channel, profile in connection.execute(shown):
        properties = json_value(properties) or {}
        period = periods.get(properties.get("model_version"))
        if period is None:
            continue
        use_case = properties.get("use_case") or "?"
        favourites = personas.get(profile, set()) - {""}
        lines = [table[period].setdefault((channel, use_case), ClickThrough())]
        if use_case == "for_you" and favourites:
            lines.append(persona[period])
        was_clicked = properties.get("recommendation_id") in clicked
        items = properties.get("items") or []
        in_favourites = sum(item in catalog and catalog[item].category in favourites for item in items)
        for line in lines:
            line.shown += 1
            line.clicked += was_clicked
            line.items += len(items)
            line.persona_items += in_favourites
    return table, persona


def _journeys(engage: Engage) -> list[JourneyLine]:
    lines = []
    for listed in engage.journeys.list():
        stats = engage.journeys.stats(listed.name)
        holdout = next((group for group in stats.groups if group.name == HOLDOUT), None)
        reached = [group for group in stats.groups if group.name != HOLDOUT]
        reached_size = sum(group.size for group in reached)
        converted = sum(group.converted for group in stats.groups)
        sent = sum(
            n for by_status in stats.sends.values() for status, n in by_status.items() if status in ACTIVE
        )
        if isinstance(stats, JourneyStats):
            entered, exits, converted = stats.entered, dict(stats.exits), stats.converted
        else:
            entered, exits = sum(run.get("audience") or 0 for run in stats.runs), {}
        lines.append(
            JourneyLine(
                name=listed.name,
                kind=listed.kind,
                entered=entered,
                active=listed.active,
                exits=exits,
                converted=converted,
                reached_rate=sum(g.converted for g in reached) / reached_size if reached_size else None,
                holdout_rate=holdout.rate if holdout is not None else None,
                sent=sent,
            )
        )
    return lines


def combined(lines: Any) -> ClickThrough:
    total = ClickThrough()
    for line in lines:
        total.shown += line.shown
        total.clicked += line.clicked
        total.items += line.items
        total.persona_items += line.persona_items
    return total
