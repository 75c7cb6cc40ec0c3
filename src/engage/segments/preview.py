"""Previewing a segment file, a draft or an edit, before it goes live: who would be a member now.

The file is checked as `engage check` checks segments/ (it may sit anywhere, e.g. under drafts/), then
the batch evaluator computes its members from the database. Nothing is written: no membership, no
announcement, no definition.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from engage.errors import ConfigError
from engage.segments import batch, store
from engage.segments._parse import parse_segment
from engage.segments.definition import Segment
from engage.segments.loader import check_manual_lists, check_segment_set, read_manual
from engage.workspace.yaml import load_yaml

__all__ = ["Draft", "Preview", "load_draft", "preview"]


@dataclass(frozen=True)
class Draft:
    segment: Segment
    manual: dict[str, frozenset[str]]
    """The user ids of each `manual` CSV it names."""


@dataclass(frozen=True)
class Preview:
    members: dict[str, str | None]
    """profile id -> user id (None for an anonymous profile) of every member now."""
    current: set[str] | None
    """The profile ids recorded as members of the segment of that name, or None when there is none."""


def load_draft(root: Path, path: Path, segments: Collection[str]) -> Draft:
    """Read and check the segment file at `path` against the workspace at `root`, whose segments are
    named `segments`; a ConfigError lists every problem as `file:line: message`."""
    doc, problems = load_yaml(path, _shown(root, path))
    if doc is None:
        raise ConfigError(problems)
    parsed = parse_segment(doc)
    names = {*segments, path.stem}
    problems += parsed.problems + check_manual_lists(root, parsed) + check_segment_set([parsed], names)
    if problems or parsed.segment is None:
        raise ConfigError(problems)
    manual = {file: read_manual(root, file) for file in parsed.segment.manual_files()}
    return Draft(parsed.segment, manual)


def preview(
    connection: Connection,
    draft: Draft,
    now: datetime,
    *,
    email_consent_default: bool,
    existing: bool,
) -> Preview:
    """The draft's members at `now`, by the batch evaluator over every profile and event in the database;
    `in_segment` reads the other segments' current members. `existing`: a segment of the same name is
    live, so its current members are returned too, for comparison."""
    segment = draft.segment
    population = batch.load_population(connection, [segment])
    others = {used: store.current_members(connection, used) for used in segment.segments_used()}
    found = batch.evaluate(
        [segment],
        population,
        now,
        manual=draft.manual,
        email_consent_default=email_consent_default,
        members=others,
    )[segment.name]
    user_ids = {pid: uid for pid, uid in population.profiles["user_id"].items() if isinstance(uid, str)}
    members = {profile_id: user_ids.get(profile_id) for profile_id in found}
    current = store.current_members(connection, segment.name) if existing else None
    return Preview(members, current)


def _shown(root: Path, path: Path) -> str:
    """How problems name the file: relative to the workspace when inside it, else as given."""
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
