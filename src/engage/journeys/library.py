"""The journeys and campaigns engage runs, as versions in the database.

`sync` reads the workspace's `journeys/*.yml` and records each changed file as a new version (its
content hash) with its text; the version it replaces is retired: no instance starts on it any more, and
those running finish on it. Workers read the versions from the database, not the files, and notice a
sync made by another process (`engage journeys reload`) within a second, so a change needs no restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, text

from engage.events.log import MERGE_EVENT
from engage.journeys.definition import Campaign, Journey, WaitFor
from engage.journeys.loader import load_journeys, parse_source
from engage.segments.store import SEGMENT_ENTERED
from engage.store.codec import time_param
from engage.store.database import Database

__all__ = ["Library", "Applied", "Index"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    name: str
    kind: Literal["journey", "campaign"]
    action: Literal["added", "changed", "unchanged", "removed"]
    version: str


@dataclass
class Index:
    """Which journeys an event concerns, so the consumer passes over the others in one lookup."""

    triggers: dict[str, list[Journey]] = field(default_factory=dict)
    """Current journeys by the event that starts them (SegmentEntered for a segment trigger)."""
    concerned: dict[str, set[str]] = field(default_factory=dict)
    """Journeys (any running version) by an event that may end, resume or convert their instances."""

    def journeys_for(self, event: str | None) -> set[str]:
        if event == MERGE_EVENT:
            return {name for names in self.concerned.values() for name in names} | {
                journey.name for journeys in self.triggers.values() for journey in journeys
            }
        names = set(self.concerned.get(event or "", ()))
        names.update(journey.name for journey in self.triggers.get(event or "", ()))
        return names


class Library:
    def __init__(self, root: Path | None, database: Database):
        self.root = root
        self.database = database
        self.journeys: dict[str, Journey] = {}
        """The current version of each journey: new instances start on it."""
        self.campaigns: dict[str, Campaign] = {}
        self.index = Index()
        self._sources: dict[tuple[str, str], tuple[str, str]] = {}
        self._parsed: dict[tuple[str, str], Journey | Campaign] = {}
        self._generation: tuple[object, ...] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.check_every = 1.0
        """Seconds between two looks for versions another process recorded."""

    # -- recording the workspace's files -----------------------------------------------------------

    def sync(self, now: datetime, only: Collection[str] | None = None) -> list[Applied]:
        """Record the workspace's journeys and campaigns as they are now (ConfigError if any is invalid:
        then nothing changes); with `only`, those named and no others (a simulation's)."""
        if self.root is None:
            raise ValueError("a library without a workspace has no files to sync")
        definitions = load_journeys(self.root)
        found: dict[str, Journey | Campaign] = {**definitions.journeys, **definitions.campaigns}
        if only is not None:
            found = {name: found[name] for name in only if name in found}
        applied: list[Applied] = []
        with self.database.write() as connection:
            sqlite = connection.dialect.name == "sqlite"
            current = dict(
                connection.execute(
                    text("SELECT journey, version FROM journey_versions WHERE retired_at IS NULL")
                ).all()
            )
            retire, add = [], []
            for name, definition in sorted(found.items()):
                kind: Literal["journey", "campaign"] = (
                    "journey" if isinstance(definition, Journey) else "campaign"
                )
                if current.get(name) == definition.version:
                    applied.append(Applied(name, kind, "unchanged", definition.version))
                    continue
                if name in current:
                    retire.append(name)
                add.append((definition, definitions.sources[name]))
                applied.append(
                    Applied(name, kind, "changed" if name in current else "added", definition.version)
                )
            for name in sorted(set(current) - set(found)):
                retire.append(name)
                applied.append(Applied(name, "journey", "removed", current[name]))
            when = time_param(now, sqlite)
            if retire:
                connection.execute(
                    text(
                        "UPDATE journey_versions SET retired_at = :now "
                        "WHERE journey = :name AND retired_at IS NULL"
                    ),
                    [{"now": when, "name": name} for name in retire],
                )
            if add:
                connection.execute(
                    text(
                        "INSERT INTO journey_versions (journey, version, file, source, loaded_at) "
                        "VALUES (:name, :version, :file, :source, :now)"
                    ),
                    [
                        {"name": d.name, "version": d.version, "file": d.file, "source": source, "now": when}
                        for d, source in add
                    ],
                )
            self.refresh(connection, force=True)
        return applied

    # -- reading the versions ----------------------------------------------------------------------

    def refresh(self, connection: Connection, *, force: bool = False) -> None:
        """Reload the versions if another process recorded new ones (looked for once a second)."""
        if not force and time.monotonic() - self._checked < self.check_every:
            return
        generation = tuple(
            connection.execute(
                text("SELECT count(*), max(id), count(retired_at) FROM journey_versions")
            ).one()
        )
        self._checked = time.monotonic()
        if generation == self._generation and not force:
            return
        with self._lock:
            rows = connection.execute(
                text("SELECT journey, version, file, source, retired_at FROM journey_versions ORDER BY id")
            ).all()
            running = set(
                connection.execute(
                    text("SELECT DISTINCT journey, version FROM journey_instances WHERE status = 'active'")
                ).all()
            )
            self._sources = {(name, version): (file, source) for name, version, file, source, _ in rows}
            current = {(name, version) for name, version, _, _, retired in rows if retired is None}
            journeys: dict[str, Journey] = {}
            campaigns: dict[str, Campaign] = {}
            for name, version in current:
                definition = self._definition(name, version)
                if isinstance(definition, Journey):
                    journeys[name] = definition
                elif isinstance(definition, Campaign):
                    campaigns[name] = definition
            live = [self._definition(*key) for key in current | {tuple(k) for k in running}]
            self.index = _index(journeys.values(), [d for d in live if isinstance(d, Journey)])
            self.journeys, self.campaigns = journeys, campaigns
            self._generation = generation

    def load(self) -> None:
        with self.database.read() as connection:
            self.refresh(connection, force=True)

    def journey(self, name: str, version: str) -> Journey | None:
        """The journey `name` as it was at `version` (the one its running instances follow)."""
        definition = self._definition(name, version)
        return definition if isinstance(definition, Journey) else None

    def source(self, name: str, version: str) -> tuple[str, str] | None:
        """The file and text of a version."""
        return self._sources.get((name, version))

    def _definition(self, name: str, version: str) -> Journey | Campaign | None:
        key = (name, version)
        if key not in self._parsed:
            stored = self._sources.get(key)
            if stored is None:
                return None
            file, source = stored
            parsed = parse_source(source, file)
            if parsed.definition is None:  # it was valid when recorded; a newer parser may disagree
                log.error("%s version %s no longer parses: %s", name, version, parsed.problems)
                return None
            self._parsed[key] = parsed.definition
        return self._parsed[key]


def _index(current: Iterable[Journey], live: Iterable[Journey]) -> Index:
    index = Index()
    for journey in current:
        event = journey.trigger.event or SEGMENT_ENTERED
        index.triggers.setdefault(event, []).append(journey)
    for journey in live:
        names = [match.event for match in journey.exit_on]
        names += [node.step.match.event for node in journey.nodes if isinstance(node.step, WaitFor)]
        if journey.goal is not None:
            names.append(journey.goal.match.event)
        for name in names:
            index.concerned.setdefault(name, set()).add(journey.name)
    return index
