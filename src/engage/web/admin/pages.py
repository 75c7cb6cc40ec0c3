"""The dashboard's pages: each handler reads its input, asks the engine or `queries`, and renders.

/admin                               events per minute, running journeys, today's messages
/admin/segments[/{name}]             sizes, size over time, members, the definition
/admin/journeys[/{name}]             the steps as a funnel, exits, sends, conversions against holdout
/admin/messages[/{id}]               the log, searchable; a message's statuses and what it said
/admin/recommendations               offline evaluations, the model served, click-through
/admin/conversations[/{profile_id}]  the bot's conversations, turn by turn
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response

from engage.bootstrap import Engage
from engage.journeys.definition import Journey
from engage.journeys.runtime import UnknownJourney
from engage.journeys.stats import describe
from engage.messaging.records import RANK
from engage.segments import queries as segment_queries
from engage.web.admin import charts, conversations, queries
from engage.web.admin.evaluations import CHART_METRICS, COLUMNS, LABELS, stored_evaluations
from engage.web.admin.render import render

__all__ = ["pages_router"]

PAGE_SIZE = 50
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
Guard = Callable[[Callable[..., Response]], Callable[..., Response]]


def _not_found(what: str) -> Response:
    return render("not_found.html.j2", 404, section="", what=what)


def _page_links(path: str, page: int, shown: int, total: int, **query: str) -> dict[str, str | None]:
    """The previous and next pages' URLs (None at either end), keeping the other query parameters."""
    kept = {key: value for key, value in query.items() if value}

    def url(number: int) -> str:
        return f"{path}?{urlencode({**kept, 'page': number})}"

    return {
        "previous": url(page - 1) if page > 1 else None,
        "next": url(page + 1) if (page - 1) * PAGE_SIZE + shown < total else None,
    }


def _framed(html: str) -> str:
    """An email's HTML for a sandboxed frame, its links aimed at new windows, which the sandbox refuses to
    open: viewing a message neither follows its tracked links nor (the policy loads nothing) counts as an
    open."""
    base = '<base target="_blank">'
    framed, found = _HEAD.subn(lambda match: match.group(0) + base, html, count=1)
    return framed if found else base + html


def pages_router(engage: Engage, guard: Guard) -> APIRouter:
    router = APIRouter(prefix="/admin", include_in_schema=False)
    clock = engage.ingestor.clock
    shop_zone = ZoneInfo(engage.messaging.config.timezone)

    # -- overview -----------------------------------------------------------------------------------

    @router.get("")
    @guard
    def overview(request: Request) -> Response:
        now = clock()
        today = datetime.combine(now.astimezone(shop_zone).date(), datetime.min.time(), shop_zone)
        with engage.database.read() as connection:
            per_minute = queries.events_per_minute(connection, now)
            total = queries.event_total(connection)
            sent_today = queries.messages_by_channel_and_status(connection, today)
        last_minute = now.replace(second=0, microsecond=0)
        labels = [
            f"{last_minute - timedelta(minutes=len(per_minute) - 1 - n):%H:%M}"
            for n in range(len(per_minute))
        ]
        statuses = sorted(
            {status for _, status in sent_today}, key=lambda status: (RANK.get(status, 9), status)
        )
        channel_totals: dict[str, int] = {}
        for (channel, _), count in sent_today.items():
            channel_totals[channel] = channel_totals.get(channel, 0) + count
        return render(
            "overview.html.j2",
            section="overview",
            chart=charts.bar_chart(per_minute, labels, title="Events received per minute (UTC)"),
            events_total=total,
            events_last_hour=sum(per_minute),
            journeys=[item for item in engage.journeys.list() if item.kind == "journey"],
            statuses=statuses,
            channels=sorted(channel_totals),
            channel_totals=channel_totals,
            sent_today=sent_today,
            sent_today_total=sum(sent_today.values()),
            today=today,
        )

    # -- segments -----------------------------------------------------------------------------------

    defined = engage.segments.engine.segments

    @router.get("/segments")
    @guard
    def segments(request: Request) -> Response:
        with engage.database.read() as connection:
            sizes = segment_queries.segment_sizes(connection)
        listed = sorted(defined.values(), key=lambda segment: segment.name)
        return render("segments.html.j2", section="segments", segments=listed, sizes=sizes)

    @router.get("/segments/{name}")
    @guard
    def segment(request: Request, name: str, after: str | None = None) -> Response:
        found = defined.get(name)
        if found is None:
            return _not_found(f"No segment is named {name!r}.")
        with engage.database.read() as connection:
            size = segment_queries.segment_sizes(connection, [name]).get(name, 0)
            history = queries.segment_size_history(connection, name, clock())
            members = segment_queries.member_page(connection, name, limit=PAGE_SIZE + 1, after=after)
            changes = segment_queries.recent_changes(connection, name)
        more, members = len(members) > PAGE_SIZE, members[:PAGE_SIZE]
        try:
            source = (engage.workspace.root / found.file).read_text(encoding="utf-8")
        except OSError as exc:
            source = f"({found.file} cannot be read: {exc.strerror})"
        return render(
            "segment.html.j2",
            section="segments",
            segment=found,
            size=size,
            chart=charts.line_chart(history, title=f"Members of {name} over time"),
            members=members,
            after=after,
            next_after=members[-1].profile_id if more else None,
            changes=changes,
            source=source,
        )

    # -- journeys -----------------------------------------------------------------------------------

    @router.get("/journeys")
    @guard
    def journeys(request: Request) -> Response:
        return render("journeys.html.j2", section="journeys", journeys=engage.journeys.list())

    @router.get("/journeys/{name}")
    @guard
    def journey(request: Request, name: str) -> Response:
        try:
            definition = engage.journeys.definition(name)
            stats = engage.journeys.stats(name)
        except UnknownJourney:
            return _not_found(f"No journey or campaign is named {name!r}.")
        values: dict[str, Any] = {"section": "journeys", "definition": definition, "stats": stats}
        if isinstance(definition, Journey):
            with engage.database.read() as connection:
                entered, reached = queries.journey_funnel(connection, name, definition.version)
            steps = [
                (number, describe(node.step), reached.get(number, 0))
                for number, node in enumerate(definition.nodes)
            ]
            rows = [("entered", entered)] + [(f"{number}. {what}", count) for number, what, count in steps]
            values |= {
                "funnel": steps,
                "funnel_entered": entered,
                "funnel_chart": charts.funnel_chart(rows, title=f"{name}: instances reaching each step"),
            }
        found = engage.journeys.library.source(name, definition.version)
        values["source"] = found[1] if found else ""
        return render("journey.html.j2", **values)

    # -- messages -----------------------------------------------------------------------------------

    @router.get("/messages")
    @guard
    def messages(
        request: Request,
        recipient: str = "",
        template: str = "",
        channel: str = "",
        status: str = "",
        journey: str = "",
        page: int = Query(1, ge=1),
    ) -> Response:
        where = queries.MessageFilter(recipient.strip(), template, channel, status, journey)
        with engage.database.read() as connection:
            rows, total = queries.search_messages(
                connection, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
            templates, statuses = queries.message_choices(connection)
        return render(
            "messages.html.j2",
            section="messages",
            rows=rows,
            total=total,
            first=(page - 1) * PAGE_SIZE + 1,
            where=where,
            templates=templates,
            statuses=statuses,
            journeys=[item.name for item in engage.journeys.list()],
            pages=_page_links(
                "/admin/messages",
                page,
                len(rows),
                total,
                recipient=recipient,
                template=template,
                channel=channel,
                status=status,
                journey=journey,
            ),  # fmt: skip
        )

    @router.get("/messages/{message_id}")
    @guard
    def message(request: Request, message_id: str) -> Response:
        record = engage.messaging.get(message_id)
        if record is None:
            return _not_found(f"No message has the id {message_id!r}.")
        with engage.database.read() as connection:
            user_id = queries.user_id_of(connection, record.profile_id)
        return render(
            "message.html.j2",
            section="messages",
            message=record,
            user_id=user_id,
            history=engage.messaging.history(message_id),
            frame=_framed(record.body) if record.channel == "email" and record.body else None,
        )

    # -- recommendations ----------------------------------------------------------------------------

    @router.get("/recommendations")
    @guard
    def recommendations(request: Request) -> Response:
        evaluations, problems = stored_evaluations(engage.workspace.var_dir / "evaluations")
        evaluation_charts = {
            evaluation.name: charts.grouped_bar_chart(
                [result["model"] for result in evaluation.results],
                [
                    (LABELS[metric], [result["metrics"].get(metric, 0.0) for result in evaluation.results])
                    for metric in CHART_METRICS
                ],
                title=f"{evaluation.name}: {', '.join(LABELS[metric] for metric in CHART_METRICS)} by model",
            )
            for evaluation in evaluations
        }
        versions = engage.recommend.store.manifests()[::-1]
        with engage.database.read() as connection:
            click_through = queries.click_through(connection)
        return render(
            "recommendations.html.j2",
            section="recommendations",
            evaluations=evaluations,
            evaluation_charts=evaluation_charts,
            problems=problems,
            columns=COLUMNS,
            labels=LABELS,
            served=versions[0] if versions else None,
            versions=versions[:10],
            click_through=click_through,
        )

    # -- conversations ------------------------------------------------------------------------------

    @router.get("/conversations")
    @guard
    def conversation_list(request: Request, page: int = Query(1, ge=1)) -> Response:
        with engage.database.read() as connection:
            rows, total = conversations.conversations(
                connection, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
        return render(
            "conversations.html.j2",
            section="conversations",
            rows=rows,
            total=total,
            pages=_page_links("/admin/conversations", page, len(rows), total),
        )

    @router.get("/conversations/{profile_id}")
    @guard
    def conversation(request: Request, profile_id: str) -> Response:
        with engage.database.read() as connection:
            turns = conversations.transcript(connection, profile_id)
            user_id = queries.user_id_of(connection, profile_id)
        if not turns:
            return _not_found(f"No conversation with the bot for the profile {profile_id!r}.")
        catalog = engage.recommend.catalog
        names = {
            item: product.name
            for turn in turns
            for item in [*(turn.properties.get("items") or []), turn.properties.get("product_id")]
            if isinstance(item, str) and (product := catalog.get(item)) is not None
        }
        return render(
            "conversation.html.j2",
            section="conversations",
            profile_id=profile_id,
            user_id=user_id,
            turns=turns,
            names=names,
        )

    return router
