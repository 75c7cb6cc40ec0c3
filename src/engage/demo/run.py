"""`engage demo` at this stage of the project: a simulated storefront through ingestion, profiles,
segments and journeys.

What it shows: Segment calls over HTTP with a write key, duplicates (client retries) stored once, bad
events rejected by field while the rest of their batch is kept, anonymous browsing carried into the
account at signup, consent per channel, the worker bringing profiles up to date, the shipped segments'
members kept current as the traffic arrives, and the shipped journeys starting for the customers the
traffic brings (welcome emails and post-purchase thanks go out at once, through the outbox; carts and
browsing wait their hour or day). The simulated days end today, so windows such as "purchased in the last
30 days" have members.
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select

from engage.bootstrap import Engage, bootstrap
from engage.connectors.outbox import read_outbox
from engage.demo.server import LocalServer
from engage.demo.shoppers import simulate
from engage.errors import WorkspaceError
from engage.events.consumers import offset_of
from engage.journeys.store import next_due
from engage.messaging.records import ACTIVE
from engage.segments.queries import segment_sizes
from engage.store import Database
from engage.store.models import Consent, EventRecord, Identity, Message, Profile, ProfileMerge
from engage.workspace import Workspace, init_workspace

__all__ = ["DemoReport", "run_demo", "prepare_workspace"]

MARKER = ".engage-demo"
BATCH = 20


@dataclass
class DemoReport:
    calls_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejection_examples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    events_by_name: Counter[str] = field(default_factory=Counter)
    profiles: int = 0
    known_profiles: int = 0
    anonymous_profiles: int = 0
    carried_over: int = 0
    merges: int = 0
    consent: dict[str, int] = field(default_factory=dict)
    example_user: str | None = None
    segments: dict[str, int] = field(default_factory=dict)
    """Current members of each segment, by name."""
    journeys: list[tuple[str, int, int, int]] = field(default_factory=list)
    """Each journey: entered, still running, messages sent."""
    outbox: int = 0


def prepare_workspace(directory: Path) -> Workspace:
    """A fresh copy of the example workspace; only a folder made by a previous demo is ever replaced."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise WorkspaceError(
                f"{directory}: exists and was not made by `engage demo`; choose another --dir"
            )
        shutil.rmtree(directory)
    init_workspace(directory)
    (directory / MARKER).write_text("made by engage demo; deleted by the next run\n")
    return Workspace.load(directory)


def _corrupt(rng: random.Random, call: dict[str, Any]) -> dict[str, Any]:
    """A storefront bug: what a broken client might send."""
    broken = dict(call)
    choice = rng.randrange(3)
    if choice == 0:
        broken.pop("event", None)
        broken["type"] = "track"
    elif choice == 1:
        broken["type"] = "identify"
        broken["traits"] = {"email": "not-an-email"}
    else:
        broken["timestamp"] = "yesterday"
    broken["messageId"] = f"broken-{call['messageId']}"
    return broken


def run_demo(directory: Path, *, users: int, days: int, seed: int, console: Console) -> DemoReport:
    workspace = prepare_workspace(directory)
    engage = bootstrap(workspace)
    rng = random.Random(seed + 1)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days)
    calls = list(simulate(users, days, seed, start))
    write_key = workspace.endpoints.ingest.write_keys[0]
    report = DemoReport()
    began = time.perf_counter()
    with LocalServer(engage) as server, requests.Session() as http:
        http.auth = (write_key, "")
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("storefront traffic", total=len(calls))
            for offset in range(0, len(calls), BATCH):
                batch = calls[offset : offset + BATCH]
                if rng.random() < 0.15:
                    batch = [*batch, _corrupt(rng, rng.choice(batch))]
                retries = 2 if rng.random() < 0.1 else 1  # a client that timed out and sent again
                for _ in range(retries):
                    response = http.post(f"{server.url}/v1/batch", json={"batch": batch}, timeout=30)
                    body = response.json()
                    report.calls_sent += len(batch)
                    report.accepted += body.get("accepted", 0)
                    report.duplicates += body.get("duplicates", 0)
                    for rejection in body.get("rejected", []):
                        report.rejected += 1
                        example = f"{rejection['field']}: {rejection['message']}"
                        if len(report.rejection_examples) < 3 and example not in report.rejection_examples:
                            report.rejection_examples.append(example)
                progress.advance(task, len(batch))
            progress.add_task("profiles and segments catching up", total=None)
            _wait_for_consumers(engage)
        report.seconds = time.perf_counter() - began
        _wait_for_journeys(engage)
    _summarise(engage.database, report)
    for journey in engage.journeys.list():
        if journey.kind == "journey":
            sends = engage.journeys.stats(journey.name).sends
            sent = sum(n for statuses in sends.values() for status, n in statuses.items() if status in ACTIVE)
            report.journeys.append((journey.name, journey.entered, journey.active, sent))
    report.outbox = sum(1 for _ in read_outbox(workspace.var_dir / "outbox"))
    with engage.database.read() as connection:
        sizes = segment_sizes(connection)
    report.segments = {name: sizes.get(name, 0) for name in engage.segments.engine.segments}
    engage.close()
    return report


def _wait_for_consumers(engage: Engage) -> None:
    """Until every consumer has handled the whole log, including what the segments consumer announces."""
    while any(offset_of(engage.database, name) < engage.log.last_seq() for name in engage.consumers.names()):
        time.sleep(0.05)


def _wait_for_journeys(engage: Engage, timeout: float = 60.0) -> None:
    """Until the steps due now ran and their messages went out (the rest wait their hour or day)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _wait_for_consumers(engage)
        now = engage.journeys.clock()
        with engage.database.read() as connection:
            due = next_due(connection)
            queued = connection.execute(
                select(func.count())
                .select_from(Message.__table__)
                .where(
                    Message.__table__.c.status.in_(("queued", "sending")), Message.__table__.c.due_at <= now
                )
            ).scalar_one()
        if (due is None or due > now) and not queued:
            return
        time.sleep(0.1)


def _summarise(database: Database, report: DemoReport) -> None:
    events, profiles, identities = EventRecord.__table__, Profile.__table__, Identity.__table__
    with database.read() as connection:
        report.events_by_name = Counter(
            {
                name: count
                for name, count in connection.execute(
                    select(events.c.event, func.count())
                    .where(events.c.channel != "system")
                    .group_by(events.c.event)
                )
            }
        )
        report.profiles = connection.execute(select(func.count()).select_from(profiles)).scalar_one()
        report.known_profiles = connection.execute(
            select(func.count()).select_from(profiles).where(profiles.c.user_id.is_not(None))
        ).scalar_one()
        report.anonymous_profiles = report.profiles - report.known_profiles
        # Accounts whose pre-signup browsing (events without a user id) now belongs to them.
        report.carried_over = connection.execute(
            select(func.count(func.distinct(events.c.profile_id))).where(
                events.c.user_id.is_(None),
                events.c.profile_id.in_(select(identities.c.profile_id).where(identities.c.kind == "user")),
            )
        ).scalar_one()
        report.merges = connection.execute(
            select(func.count()).select_from(ProfileMerge.__table__)
        ).scalar_one()
        consents = Consent.__table__
        report.consent = {
            f"{channel} {'opted in' if subscribed else 'opted out'}": count
            for channel, subscribed, count in connection.execute(
                select(consents.c.channel, consents.c.subscribed, func.count()).group_by(
                    consents.c.channel, consents.c.subscribed
                )
            )
        }
        report.example_user = connection.execute(
            select(identities.c.value)
            .where(identities.c.kind == "user")
            .order_by(identities.c.value)
            .limit(1)
        ).scalar_one_or_none()
