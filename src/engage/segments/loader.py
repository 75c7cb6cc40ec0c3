"""Every `segments/*.yml` of a workspace, loaded into `Segment`s and checked as a set: `in_segment` must
name an existing segment and never loop back, a `manual` CSV must exist with a `user_id` header.

`load_segments` raises one `ConfigError` listing every problem; `engage check` runs the same checks
through `check_segment_file` (each file) and `check_segment_files` (the set), registered for
`segments/*.yml` by `engage.workspace.check`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Sequence
from pathlib import Path, PurePosixPath

from engage.errors import ConfigError, Problem
from engage.segments._parse import ParsedSegment, parse_segment
from engage.segments.definition import Segment
from engage.workspace.check import CheckContext, yaml_validator
from engage.workspace.yaml import KeyPath, YamlFile, load_yaml

__all__ = [
    "SEGMENTS_DIR",
    "load_segments",
    "read_manual",
    "check_segment_set",
    "check_manual_lists",
    "check_segment_file",
    "check_segment_files",
]

SEGMENTS_DIR = "segments"
MANUAL_HEADER = "user_id"
_PARSED = "segments.parsed"  # where check_segment_file leaves its results in CheckContext.shared


def load_segments(root: Path) -> dict[str, Segment]:
    """Every segment of the workspace at `root`, by name, each after the segments it refers to.

    Raises ConfigError with every problem of every file."""
    paths = _segment_files(root)
    problems: list[Problem] = []
    parsed: list[ParsedSegment] = []
    for path in paths:
        doc, found = load_yaml(path, path.relative_to(root).as_posix())
        problems += found
        if doc is not None:
            one = parse_segment(doc)
            parsed.append(one)
            problems += one.problems + check_manual_lists(root, one)
    problems += check_segment_set(parsed, [path.stem for path in paths])
    if problems:
        raise ConfigError(problems)
    segments = {p.doc.file: p.segment for p in parsed if p.segment is not None}
    by_name = {segment.name: segment for segment in segments.values()}
    return {name: by_name[name] for name in _dependencies_first(by_name)}


def read_manual(root: Path, file: str) -> frozenset[str]:
    """The user ids of a `manual` CSV (relative to `root`); ConfigError when it is missing or malformed."""
    ids, problems = _read_csv(root, file)
    if problems or ids is None:
        raise ConfigError(problems or [Problem(file, 0, "cannot read")])
    return ids


def check_segment_set(parsed: Sequence[ParsedSegment], names: Collection[str]) -> list[Problem]:
    """Problems of the segments together: unknown `in_segment` targets (`names` are all segment files,
    including those that do not parse) and `in_segment` cycles, each reported once."""
    problems: list[Problem] = []
    graph: dict[str, list[tuple[str, KeyPath]]] = {}
    docs: dict[str, YamlFile] = {}
    for one in parsed:
        name = PurePosixPath(one.doc.file).stem
        docs[name] = one.doc
        graph[name] = []
        for target, path in one.references:
            if target in names:
                graph[name].append((target, path))
            else:
                known = ", ".join(sorted(names))
                problems.append(one.doc.problem(path, f"unknown segment '{target}'; known segments: {known}"))
    for cycle in _cycles(graph):
        start, following = cycle[0], cycle[1]
        path = next(p for target, p in graph[start] if target == following)
        problems.append(docs[start].problem(path, f"cycle: {' -> '.join(cycle)}"))
    return problems


def check_manual_lists(root: Path, parsed: ParsedSegment) -> list[Problem]:
    """Problems of the `manual` CSVs one segment file names: missing, unreadable or malformed."""
    problems: list[Problem] = []
    for file, path in parsed.manual:
        if not (root / file).is_file():
            problems.append(parsed.doc.problem(path, f"file '{file}' not found in the workspace"))
        else:
            problems += _read_csv(root, file)[1]
    return problems


# ------------------------------------------------------------------------------------------ engage check


@yaml_validator
def check_segment_file(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    """One segment file; kept in `ctx.shared` for `check_segment_files`."""
    parsed = parse_segment(doc)
    ctx.shared.setdefault(_PARSED, []).append(parsed)
    return parsed.problems + check_manual_lists(ctx.root, parsed)


def check_segment_files(ctx: CheckContext) -> list[Problem]:
    """The segments checked by `check_segment_file`, as a set."""
    names = [path.stem for path in _segment_files(ctx.root)]
    return check_segment_set(ctx.shared.get(_PARSED, []), names)


# -------------------------------------------------------------------------------------------- internals


def _segment_files(root: Path) -> list[Path]:
    return sorted(path for path in (root / SEGMENTS_DIR).glob("*.yml") if path.is_file())


def _read_csv(root: Path, file: str) -> tuple[frozenset[str] | None, list[Problem]]:
    try:
        text = (root / file).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [Problem(file, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    except OSError as exc:
        return None, [Problem(file, 0, f"cannot read: {exc.strerror or exc}")]
    rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text)), start=1) if row]
    if not rows or [cell.strip() for cell in rows[0][1]] != [MANUAL_HEADER]:
        line = rows[0][0] if rows else 0
        return None, [Problem(file, line, f"expected a header row `{MANUAL_HEADER}` (one user id per row)")]
    ids: set[str] = set()
    problems: list[Problem] = []
    for number, row in rows[1:]:
        if len(row) != 1 or not row[0].strip():
            problems.append(Problem(file, number, f"expected one user id, found {len(row)} columns"))
        else:
            ids.add(row[0].strip())
    return (frozenset(ids) if not problems else None), problems


def _cycles(graph: dict[str, list[tuple[str, KeyPath]]]) -> list[list[str]]:
    """Each cycle once, as `[a, b, …, a]` starting from its smallest name; found by depth-first search."""
    found: dict[tuple[str, ...], list[str]] = {}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        stack.append(name)
        for target, _ in graph.get(name, []):
            if target in stack:
                loop = stack[stack.index(target) :]
                first = loop.index(min(loop))
                ordered = loop[first:] + loop[:first]
                found.setdefault(tuple(ordered), [*ordered, ordered[0]])
            elif target not in done:
                visit(target, stack)
        stack.pop()
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [])
    return [found[key] for key in sorted(found)]


def _dependencies_first(segments: dict[str, Segment]) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dependency in sorted(segments[name].segments_used()):
            visit(dependency)
        order.append(name)

    for name in sorted(segments):
        visit(name)
    return order
