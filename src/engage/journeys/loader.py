"""Every `journeys/*.yml` of a workspace, loaded and checked as a set against the rest of the workspace:
templates, segments and events must exist, and a `wait_for` must be able to match.

`load_journeys` raises one ConfigError listing every problem; `engage check` runs the same checks through
`check_journey_file` (each file) and `check_journey_files` (the set).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engage.errors import ConfigError, Problem
from engage.journeys._parse import ParsedFile, parse_file
from engage.journeys.definition import Campaign, EventMatch, Journey
from engage.messaging.templates import Templates
from engage.recommend.config import load_recommender_config
from engage.workspace.check import CheckContext, yaml_validator
from engage.workspace.yaml import YamlFile, load_yaml, parse_yaml

__all__ = [
    "JOURNEYS_DIR",
    "KNOWN_EVENTS",
    "Definitions",
    "load_journeys",
    "parse_source",
    "check_journey_file",
    "check_journey_files",
]

JOURNEYS_DIR = "journeys"
KNOWN_EVENTS = frozenset(
    {
        # the storefront (the Retail Demo Store's and Segment's e-commerce names)
        "UserSignedUp", "UserSignedIn", "ProductSearched", "ProductViewed", "ProductAdded", "ProductRemoved",
        "ProductQuantityUpdated", "CartViewed", "CheckoutStarted", "OrderCompleted", "SmsOptInRequested",
        # what messages and the chat bring back
        "MessageSent", "MessageFailed", "EmailProcessed", "EmailDelivered", "EmailOpened", "EmailClicked",
        "EmailBounced", "EmailDropped", "EmailMarkedAsSpam", "Unsubscribed", "SmsDelivered", "SmsFailed",
        "SmsUndelivered", "SmsReplied", "SmsClicked", "SmsOptedOut", "SmsOptedIn", "ChatMessage",
        "RecommendationShown", "RecommendationClicked",
        # engage's own
        "SegmentEntered", "SegmentExited", "JourneyEntered", "JourneyStepCompleted", "JourneyExited",
        "JourneyConverted",
    }
)  # fmt: skip
"""Events engage knows of; a workspace adds the ones its segments and recommender.yml name."""
_PARSED = "journeys.parsed"


@dataclass(frozen=True)
class Definitions:
    journeys: dict[str, Journey]
    campaigns: dict[str, Campaign]
    sources: dict[str, str]
    """Each file's text, by name: a version is stored with it."""


def parse_source(text: str, file: str) -> ParsedFile:
    """A journey or campaign from its file's text (as stored with a version)."""
    doc, problems = parse_yaml(text, file)
    if doc is None:
        raise ConfigError(problems)
    return parse_file(doc)


def load_journeys(root: Path, known_templates: Iterable[str] | None = None) -> Definitions:
    """Every journey and campaign of the workspace at `root`; ConfigError with every problem."""
    folder = root / JOURNEYS_DIR
    paths = sorted(folder.glob("*.yml")) if folder.is_dir() else []
    problems: list[Problem] = []
    parsed: list[ParsedFile] = []
    sources: dict[str, str] = {}
    for path in paths:
        file = path.relative_to(root).as_posix()
        doc, found = load_yaml(path, file)
        problems += found
        if doc is not None:
            one = parse_file(doc)
            parsed.append(one)
            problems += one.problems
            sources[path.stem] = path.read_text(encoding="utf-8")
    problems += _check_set(root, parsed, known_templates)
    if problems:
        raise ConfigError(problems)
    journeys = {p.definition.name: p.definition for p in parsed if isinstance(p.definition, Journey)}
    campaigns = {p.definition.name: p.definition for p in parsed if isinstance(p.definition, Campaign)}
    return Definitions(journeys, campaigns, sources)


@yaml_validator
def check_journey_file(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    parsed = parse_file(doc)
    ctx.shared.setdefault(_PARSED, []).append(parsed)
    return parsed.problems


def check_journey_files(ctx: CheckContext) -> list[Problem]:
    return _check_set(ctx.root, ctx.shared.get(_PARSED, []), None)


def _check_set(root: Path, parsed: list[ParsedFile], known_templates: Iterable[str] | None) -> list[Problem]:
    templates = set(known_templates) if known_templates is not None else _templates(root)
    segments = {path.stem for path in (root / "segments").glob("*.yml")}
    events = KNOWN_EVENTS | _workspace_events(root)
    problems = []
    for one in parsed:
        for name, path in one.templates:
            if name not in templates:
                problems.append(one.doc.problem(path, f"no template {name} in templates/"))
        for name, path in one.segments:
            if name not in segments:
                known = ", ".join(sorted(segments)) or "none"
                problems.append(one.doc.problem(path, f"no segment '{name}' in segments/ (found: {known})"))
        for name, path in one.events:
            if name not in events:
                message = f"unknown event '{name}': no storefront, channel or segment names it"
                close = difflib.get_close_matches(name, events, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                problems.append(one.doc.problem(path, message))
        definition = one.definition
        if isinstance(definition, Journey):
            for match, path in one.waits_for:
                for leaving in definition.exit_on:
                    if _covers(leaving, match):
                        message = (
                            f"can never match: every {match.event} it waits for ends the journey first "
                            "(exit_on)"
                        )
                        problems.append(one.doc.problem(path, message))
    return problems


def _covers(broad: EventMatch, narrow: EventMatch) -> bool:
    """Whether every event matching `narrow` also matches `broad`."""
    same_event = broad.event == narrow.event
    return same_event and set(broad.where) <= set(narrow.where) and set(broad.match) <= set(narrow.match)


def _templates(root: Path) -> set[str]:
    return set(Templates(root).names())


def _workspace_events(root: Path) -> set[str]:
    """Events the workspace's segments and recommender.yml name (custom events a shop sends)."""
    found: set[str] = set()
    with contextlib.suppress(ConfigError):  # recommender.yml's own check reports it
        found |= set(load_recommender_config(root).interactions)
    for path in (root / "segments").glob("*.yml"):
        doc, _ = load_yaml(path, path.name)
        if doc is None:
            continue
        stack = [doc.data]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                for key in ("performed", "not_performed", "last_performed"):
                    if isinstance(item.get(key), str):
                        found.add(item[key])
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return found
