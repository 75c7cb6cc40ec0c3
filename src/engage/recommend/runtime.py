"""The workspace's recommender at work: its config, catalog, model versions, consumer and use cases."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from engage.events.ingest import Ingestor
from engage.recommend.catalog import Catalog, load_catalog
from engage.recommend.config import RecommenderConfig, load_recommender_config
from engage.recommend.interactions import RecommendConsumer
from engage.recommend.offers import Offer, load_offers
from engage.recommend.registry import ModelStore, ModelVersion
from engage.recommend.service import Recommender
from engage.recommend.training import train_version
from engage.store.database import Database
from engage.workspace import Workspace

__all__ = ["Recommend"]

log = logging.getLogger(__name__)


class Recommend:
    def __init__(
        self,
        config: RecommenderConfig,
        catalog: Catalog,
        store: ModelStore,
        database: Database,
        clock: Callable[[], datetime],
        ingestor: Ingestor | None = None,
        offers: Sequence[Offer] = (),
    ):
        self.config = config
        self.catalog = catalog
        self.store = store
        self.database = database
        self.clock = clock
        self.consumer = RecommendConsumer(config.interactions)
        record = None
        if ingestor is not None:

            def record(call: dict[str, Any]) -> None:
                result = ingestor.batch({"batch": [call]}, size=0)
                if result.rejected:
                    raise ValueError(f"exposure rejected: {result.rejected}")

        self.recommender = Recommender(database, store, config, catalog, clock, record, offers)

    @classmethod
    def from_workspace(
        cls,
        workspace: Workspace,
        database: Database,
        clock: Callable[[], datetime],
        ingestor: Ingestor | None = None,
    ) -> Recommend:
        catalog = load_catalog(workspace.root)
        return cls(
            load_recommender_config(workspace.root),
            catalog,
            ModelStore(workspace.var_dir / "models"),
            database,
            clock,
            ingestor,
            load_offers(workspace.root, catalog),
        )

    def train(self) -> ModelVersion:
        """A new model version from the interactions so far, served from now on; the oldest versions
        beyond the last few are removed (an EASE version of 10,000 items is 400 MB)."""
        version = train_version(self.database, self.store, self.config, self.catalog, self.clock())
        self.store.prune()
        return version

    def schedule(self, scheduler: BaseScheduler) -> None:
        """Retrain every `training.every` (and once soon after start when no version exists yet). Runs
        missed while engage was down are not made up one by one: one run replaces them (coalesce), since
        a retrain reads everything up to now anyway."""
        every = self.config.training.every
        first = self.clock() + (timedelta(seconds=5) if self.store.current() is None else every)
        scheduler.add_job(
            self._train_logged,
            IntervalTrigger(seconds=every.total_seconds(), start_date=first),
            id="recommend-train",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(every.total_seconds()),
            replace_existing=True,
        )

    def _train_logged(self) -> None:
        version = self.train()
        log.info(
            "recommender: trained %s %s on %d interactions in %.1f s",
            version.manifest["model"], version.version, version.manifest["interactions"],
            version.manifest["fit_seconds"],
        )  # fmt: skip
