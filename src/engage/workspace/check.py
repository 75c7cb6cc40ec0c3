"""`check_workspace`: every problem in every file of a workspace, in one pass.

Each kind of file is a glob and a validator in a registry. A later schema plugs in with `register_kind`,
which replaces the validator of a glob already known (one schema per file kind) or adds a new kind:

    @yaml_validator
    def check_segment(doc: YamlFile, ctx: CheckContext) -> list[Problem]: ...

    register_kind("segments/*.yml", check_segment)

A kind whose files must also be checked together (e.g. references between them) passes `finish`: it runs
once after the kind's files, reading what its validator left in `ctx.shared`. A later stage of engage plugs
in without `engage.workspace` importing it at import time through `_lazy("module:function")`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from engage.errors import Problem
from engage.workspace.connectors import CONNECTOR_TYPES, CONNECTORS_DIR, ParsedConnector, parse_connector
from engage.workspace.endpoints import (
    ENDPOINTS_FILE,
    ChannelsConfig,
    Endpoints,
    endpoints_file,
    read_endpoints,
)
from engage.workspace.yaml import YamlFile, load_yaml

__all__ = [
    "CheckContext",
    "CheckSummary",
    "FileKind",
    "Validator",
    "YamlValidator",
    "SetValidator",
    "check_workspace",
    "register_kind",
    "registered_kinds",
    "yaml_validator",
    "check_named_mapping",
]


@dataclass
class CheckContext:
    """What validators may look at and report to while a workspace is checked."""

    root: Path
    environ: Mapping[str, str]
    endpoints: Endpoints | None
    """None when endpoints.yml has problems."""
    used_connectors: frozenset[str]
    """Connector names that `channels` sends through (their defaults when endpoints.yml is broken)."""
    warnings: list[Problem] = field(default_factory=list)
    connectors: dict[str, ParsedConnector] = field(default_factory=dict)
    """Connector files checked so far, by name."""
    shared: dict[str, Any] = field(default_factory=dict)
    """What a kind's validator keeps for its `finish` (e.g. parsed files), under a key of its choosing."""

    def warn(self, problem: Problem) -> None:
        """Report something worth fixing that does not make the workspace invalid."""
        self.warnings.append(problem)

    def name_of(self, path: Path) -> str:
        """`path` as shown in problems: relative to the workspace root, with `/`."""
        return path.relative_to(self.root).as_posix()


Validator = Callable[[Path, CheckContext], list[Problem]]
"""Checks one file (given by its absolute path) and returns its problems."""
YamlValidator = Callable[[YamlFile, CheckContext], list[Problem]]
"""Checks one file that parsed as YAML."""
SetValidator = Callable[[CheckContext], list[Problem]]
"""Checks the files of a kind together, once they were each checked."""


@dataclass(frozen=True)
class FileKind:
    glob: str
    """Relative to the workspace root, e.g. `segments/*.yml`; hidden folders and __pycache__ are skipped."""
    validate: Validator
    describe: Callable[[int], str]
    """How the summary counts files of this kind: `3 -> "3 connectors"`."""
    finish: SetValidator | None = None


_KINDS: dict[str, FileKind] = {}


def register_kind(
    glob: str,
    validator: Validator,
    *,
    describe: Callable[[int], str] | None = None,
    finish: SetValidator | None = None,
) -> None:
    """Check every file matching `glob` with `validator`, then all of them with `finish`; replaces the
    validators of a known glob."""
    previous = _KINDS.get(glob)
    if describe is None:
        describe = (
            previous.describe if previous is not None else _counter(glob.split("/")[0].removesuffix("s"))
        )
    _KINDS[glob] = FileKind(glob, validator, describe, finish)


def registered_kinds() -> list[FileKind]:
    return list(_KINDS.values())


def yaml_validator(check: YamlValidator) -> Validator:
    """Make a file validator from one that takes parsed YAML: syntax errors and duplicate keys are reported
    for it, and `check` runs whenever the file could be parsed."""

    def validate(path: Path, ctx: CheckContext) -> list[Problem]:
        doc, problems = load_yaml(path, ctx.name_of(path))
        return problems if doc is None else problems + check(doc, ctx)

    validate.__name__ = getattr(check, "__name__", "validate")
    validate.__doc__ = check.__doc__
    return validate


@dataclass(frozen=True)
class CheckSummary:
    """What `check_workspace` looked at, and its warnings."""

    counts: dict[str, int]
    """Files checked per kind, by glob."""
    parts: list[str]
    """`["endpoints.yml", "3 connectors", ...]`, in the order kinds were registered."""
    warnings: list[Problem]

    def __str__(self) -> str:
        return f"workspace OK: {', '.join(self.parts)}"


def check_workspace(
    root: Path, environ: Mapping[str, str] | None = None
) -> tuple[list[Problem], CheckSummary]:
    """Check every file of the workspace at `root`: returns its problems, sorted by file and line, and a
    summary holding the warnings (missing secrets of connectors no channel uses, ignored files)."""
    root = root.resolve()
    env: Mapping[str, str] = os.environ if environ is None else environ
    name = endpoints_file(env)
    endpoints_doc, endpoints, problems = read_endpoints(root, env)
    if endpoints_doc is None and not (root / name).is_file():
        where = "at its root" if name == ENDPOINTS_FILE else "(ENGAGE_ENDPOINTS names it)"
        problems = [Problem(name, 0, f"missing: a workspace holds {name} {where}")]
    ctx = CheckContext(root, env, endpoints, _used_connectors(endpoints, endpoints_doc))
    counts: dict[str, int] = {}
    parts = [name]
    for kind in registered_kinds():
        paths = _files(root, kind.glob)
        counts[kind.glob] = len(paths)
        parts.append(kind.describe(len(paths)))
        for path in paths:
            problems += kind.validate(path, ctx)
        if kind.finish is not None:
            problems += kind.finish(ctx)
    if endpoints is not None and endpoints_doc is not None:
        problems += _check_channels(endpoints.channels, endpoints_doc, ctx)
    for folder in (CONNECTORS_DIR, "segments", "journeys"):
        for path in sorted((root / folder).glob("*.yaml")):
            ctx.warn(Problem(ctx.name_of(path), 0, f"ignored: name it {path.stem}.yml"))
    return sorted(set(problems)), CheckSummary(counts, parts, sorted(set(ctx.warnings)))


def _files(root: Path, glob: str) -> list[Path]:
    return sorted(
        path
        for path in root.glob(glob)
        if path.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(root).parts)
    )


def _counter(noun: str) -> Callable[[int], str]:
    return lambda n: f"{n} {noun}{'' if n == 1 else 's'}"


def _used_connectors(endpoints: Endpoints | None, doc: YamlFile | None) -> frozenset[str]:
    if endpoints is not None:
        return frozenset({endpoints.channels.email, endpoints.channels.sms})
    declared: Any = doc.data.get("channels") if doc is not None and isinstance(doc.data, dict) else None
    defaults = ChannelsConfig()
    names = {"email": defaults.email, "sms": defaults.sms}
    if isinstance(declared, dict):
        names |= {k: v for k, v in declared.items() if k in names and isinstance(v, str)}
    return frozenset(names.values())


def _check_channels(channels: ChannelsConfig, doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    problems: list[Problem] = []
    for channel in ("email", "sms"):
        name: str = getattr(channels, channel)
        parsed = ctx.connectors.get(name)
        if not (ctx.root / CONNECTORS_DIR / f"{name}.yml").is_file():
            found = ", ".join(sorted(ctx.connectors)) or "none"
            message = f"no connector file {CONNECTORS_DIR}/{name}.yml (found: {found})"
            problems.append(doc.problem(("channels", channel), message))
        elif (
            parsed is not None
            and parsed.type is not None
            and channel not in CONNECTOR_TYPES[parsed.type].channels
        ):
            message = f"connector '{name}' (type {parsed.type}) cannot send {channel}"
            problems.append(doc.problem(("channels", channel), message))
    return problems


# ----------------------------------------------------------------------------------------- built-in kinds


@yaml_validator
def check_connector(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    """A connector's schema. A missing `${VAR}` is an error only for a connector that a channel uses."""
    name = PurePosixPath(doc.file).stem
    parsed = parse_connector(doc, name, ctx.environ)
    ctx.connectors[name] = parsed
    if name in ctx.used_connectors:
        return parsed.errors + parsed.missing
    for problem in parsed.missing:
        ctx.warn(
            Problem(problem.file, problem.line, f"{problem.message} (needed once a channel uses '{name}')")
        )
    return parsed.errors


@yaml_validator
def check_named_mapping(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    """A mapping whose `name` is the file's name without `.yml`."""
    stem = PurePosixPath(doc.file).stem
    if not isinstance(doc.data, dict):
        what = "an empty file" if doc.data is None else f"a {type(doc.data).__name__}"
        return [doc.problem((), f"expected a mapping with `name: {stem}`, found {what}")]
    if "name" not in doc.data:
        return [doc.problem((), f"name: required but missing (write `name: {stem}`)")]
    name = doc.data["name"]
    if name != stem:
        return [doc.problem(("name",), f"{name!r} must be the file's name without .yml: '{stem}'")]
    return []


@yaml_validator
def check_yaml_only(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    """Valid YAML without duplicate keys; the rest is Rasa's to check."""
    return []


def check_template(path: Path, ctx: CheckContext) -> list[Problem]:
    """A Jinja2 template that parses."""
    file = ctx.name_of(path)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [Problem(file, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    except OSError as exc:
        return [Problem(file, 0, f"cannot read: {exc.strerror or exc}")]
    try:
        _JINJA.parse(source, name=file)
    except jinja2.TemplateSyntaxError as exc:
        return [Problem(file, exc.lineno, f"template syntax: {exc.message}")]
    return []


_JINJA = jinja2.Environment()


def _lazy(target: str) -> Any:
    """A validator `module:function` imported on its first call, so that a later stage (segments/,
    journeys/) plugs in without engage.workspace importing it when engage.workspace is imported."""
    module, _, name = target.partition(":")

    def call(*args: Any) -> list[Problem]:
        check: Callable[..., list[Problem]] = getattr(importlib.import_module(module), name)
        return check(*args)

    call.__name__ = name
    return call


register_kind(f"{CONNECTORS_DIR}/*.yml", check_connector)
register_kind(
    "segments/*.yml",
    _lazy("engage.segments.loader:check_segment_file"),
    finish=_lazy("engage.segments.loader:check_segment_files"),
)
register_kind(
    "journeys/*.yml",
    _lazy("engage.journeys.loader:check_journey_file"),
    finish=_lazy("engage.journeys.loader:check_journey_files"),
)
register_kind(
    "templates/**/*.j2",
    check_template,
    describe=lambda n: f"{n} template file{'' if n == 1 else 's'}",
    finish=_lazy("engage.messaging.samples:check_rendered_templates"),
)
register_kind(
    "templates/templates.yml",
    _lazy("engage.messaging.config:check_templates_file"),
    describe=lambda n: "templates.yml" if n else "template defaults",
)
register_kind(
    "messaging.yml",
    _lazy("engage.messaging.config:check_messaging_file"),
    describe=lambda n: "messaging.yml" if n else "messaging defaults",
)
register_kind("bot/**/*.yml", check_yaml_only, describe=lambda n: f"bot ({n} file{'' if n == 1 else 's'})")
register_kind(
    "catalog/products.csv",
    _lazy("engage.recommend.catalog:check_catalog_file"),
    describe=lambda n: "catalog/products.csv" if n else "no catalog",
)
register_kind(
    "offers.yml",
    _lazy("engage.recommend.offers:check_offers_file"),
    describe=lambda n: "offers.yml" if n else "no offers",
)
register_kind(
    "recommender.yml",
    _lazy("engage.recommend.config:check_recommender_file"),
    describe=lambda n: "recommender.yml" if n else "recommender defaults",
)
