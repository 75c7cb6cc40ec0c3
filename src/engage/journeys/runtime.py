"""The workspace's journeys and campaigns at work: the versions, the consumer that events drive, the tick
that runs due steps, and the campaigns' schedule.

    journeys.sync()        # record journeys/*.yml as versions (`engage journeys reload`)
    journeys.tick()        # run every due step now (the worker runs it continuously)
    journeys.stats("abandoned_cart")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import text

from engage.errors import EngageError
from engage.journeys.campaigns import Campaigns
from engage.journeys.consumer import JourneysConsumer
from engage.journeys.definition import Campaign, Journey
from engage.journeys.library import Applied, Library
from engage.journeys.runner import Runner
from engage.journeys.stats import CampaignStats, JourneyStats, campaign_stats, journey_stats
from engage.messaging.service import Messaging
from engage.store.database import Database
from engage.workspace import Workspace

__all__ = ["Journeys", "Listed", "UnknownJourney"]


class UnknownJourney(EngageError):
    """No journey or campaign has that name."""


@dataclass(frozen=True)
class Listed:
    name: str
    kind: str
    version: str
    description: str
    starts: str
    """What starts it: its trigger, or its schedule and audience."""
    active: int
    entered: int
    next_run: datetime | None = None


class Journeys:
    def __init__(
        self, workspace: Workspace, database: Database, messaging: Messaging, clock: Callable[[], datetime]
    ):
        self.database = database
        self.clock = clock
        self.library = Library(workspace.root, database)
        self.runner = Runner(
            database, self.library, messaging, clock, workspace.endpoints.profiles.email_consent_default
        )
        self.consumer = JourneysConsumer(self.library, messaging.records, clock, wake=self.runner.wake)
        self.campaigns = Campaigns(database, self.library, messaging, clock)

    def sync(self) -> list[Applied]:
        """Record the journeys and campaigns of the workspace as they are now (ConfigError if one is not
        valid: then nothing changes). Running instances finish on the version they started on."""
        return self.library.sync(self.clock())

    def sync_only(self, name: str) -> Journey | Campaign:
        """Record only the journey or campaign `name` (a simulation's database runs nothing else)."""
        self.library.sync(self.clock(), only={name})
        return self.definition(name)

    def tick(self) -> int:
        """Run every step that is due now; how many instances ran."""
        return self.runner.run_due()

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set (in the worker)."""
        self.runner.run(stop)

    def schedule(self, scheduler: BaseScheduler) -> None:
        self.campaigns.schedule(scheduler)

    def definition(self, name: str) -> Journey | Campaign:
        self.library.load()
        found = self.library.journeys.get(name) or self.library.campaigns.get(name)
        if found is None:
            known = ", ".join(sorted({*self.library.journeys, *self.library.campaigns})) or "none"
            raise UnknownJourney(f"no journey or campaign named {name!r} (known: {known})")
        return found

    def list(self) -> list[Listed]:
        self.library.load()
        with self.database.read() as connection:
            counts = {
                name: (active, entered)
                for name, active, entered in connection.execute(
                    text(
                        "SELECT journey, sum(CASE WHEN status = 'active' THEN 1 ELSE 0 END), count(*) "
                        "FROM journey_instances GROUP BY journey"
                    )
                )
            }
            runs = dict(
                connection.execute(
                    text(
                        "SELECT campaign, count(*) FROM campaign_runs WHERE status = 'finished' "
                        "GROUP BY campaign"
                    )
                ).all()
            )
        found = []
        for journey in self.library.journeys.values():
            trigger = journey.trigger
            starts = f"entering {trigger.segment}" if trigger.segment else f"{trigger.event}"
            active, entered = counts.get(journey.name, (0, 0))
            found.append(
                Listed(
                    journey.name,
                    "journey",
                    journey.version,
                    journey.description,
                    starts,
                    active or 0,
                    entered,
                )
            )
        now = self.clock()
        for campaign in self.library.campaigns.values():
            starts = f"{campaign.schedule} to {campaign.audience}"
            found.append(
                Listed(
                    campaign.name,
                    "campaign",
                    campaign.version,
                    campaign.description,
                    starts,
                    0,
                    runs.get(campaign.name, 0),
                    self.campaigns.next_run(campaign, now),
                )  # fmt: skip
            )
        return sorted(found, key=lambda item: (item.kind != "journey", item.name))

    def stats(self, name: str) -> JourneyStats | CampaignStats:
        definition = self.definition(name)
        with self.database.read() as connection:
            if isinstance(definition, Journey):
                return journey_stats(connection, definition)
            return campaign_stats(connection, definition, self.campaigns.next_run(definition, self.clock()))
