"""Workspace YAML: every key's line kept, duplicate keys reported, `${VAR}` substituted, pydantic errors
mapped back to `file:line: key.path: what is wrong`.

Files are composed into ruamel.yaml nodes (YAML 1.2, as Rasa reads them) and built into plain Python values
here, so that every problem in a file is found in one pass instead of stopping at the first duplicate key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from engage.errors import ConfigError, Problem

__all__ = [
    "load_file",
    "KeyPath",
    "YamlFile",
    "Substituted",
    "parse_yaml",
    "load_yaml",
    "substitute_env",
    "format_path",
    "validate_model",
    "validation_problems",
]

KeyPath = tuple[Any, ...]
"""Where a value sits in a document, from the root: e.g. ("ingest", "write_keys", 0)."""

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_MERGE_TAG = "tag:yaml.org,2002:merge"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class YamlFile:
    """One parsed YAML document and the line of each of its keys and sequence items."""

    file: str
    """The name shown in problems: relative to the workspace root, with `/`, e.g. `connectors/twilio.yml`."""
    data: Any
    lines: Mapping[KeyPath, int] = field(default_factory=dict)
    """1-based line of every mapping key and sequence item; `()` is the line where the document starts."""

    def line_of(self, path: Sequence[Any]) -> int:
        """The line of `path`, or of its nearest parent that has one; 0 when the document is empty."""
        current = tuple(path)
        while current:
            if current in self.lines:
                return self.lines[current]
            current = current[:-1]
        return self.lines.get((), 0)

    def problem(self, path: Sequence[Any], message: str) -> Problem:
        """A problem at `path`, its message prefixed with the key path when there is one."""
        prefix = format_path(path)
        return Problem(self.file, self.line_of(path), f"{prefix}: {message}" if prefix else message)


def format_path(path: Sequence[Any]) -> str:
    """`("ingest", "write_keys", 0)` → `ingest.write_keys[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


# ---------------------------------------------------------------------------------------------------- parsing


def load_yaml(path: Path, file: str) -> tuple[YamlFile | None, list[Problem]]:
    """Read and parse `path`; `file` is the name to show in problems. None when it cannot be parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(file, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    except OSError as exc:
        return None, [Problem(file, 0, f"cannot read: {exc.strerror or exc}")]
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> tuple[YamlFile | None, list[Problem]]:
    """Parse one YAML document. Syntax errors give None and the line of the error; duplicate keys and
    unsupported tags are problems too, but the rest of the document is still returned."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        return None, [_syntax_problem(file, exc)]
    except ReaderError as exc:  # a control character: it carries a position, not a line
        line = text.count("\n", 0, exc.position) + 1
        what = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [Problem(file, line, f"invalid YAML: character {what} is not allowed in YAML text")]
    except YAMLError as exc:
        return None, [Problem(file, 0, f"invalid YAML: {exc}")]
    if root is None:
        return YamlFile(file, None, {}), []
    builder = _Builder(file, yaml)
    data = builder.build(root, ())
    return YamlFile(file, data, builder.lines), list(dict.fromkeys(builder.problems))


def _syntax_problem(file: str, exc: MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if exc.context == "expected a single document in the stream":
        return Problem(file, mark.line + 1 if mark else 0, "invalid YAML: a second document starts here")
    message = exc.problem or exc.context or "syntax error"
    if exc.problem and exc.context:
        started = exc.context_mark
        other_line = started is not None and (mark is None or started.line != mark.line)
        where = f" on line {started.line + 1}" if started is not None and other_line else ""
        message += f" ({exc.context.removeprefix('while ')}{' started' if where else ''}{where})"
    return Problem(file, mark.line + 1 if mark is not None else 0, f"invalid YAML: {message}")


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, recording lines and problems on the way."""

    def __init__(self, file: str, yaml: YAML):
        self.file = file
        self.constructor = yaml.constructor
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []
        self._open: set[int] = set()  # nodes being built, to stop on a recursive alias

    def build(self, node: Node, path: KeyPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._open:
            self._problem(node, "an alias refers to a node that contains it")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            return self._scalar(node)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if str(key_node.tag) == _MERGE_TAG:
                merged.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, "a key must be a plain value, not a list or a mapping")
                continue
            key = self._scalar(key_node)
            if key in result:
                self._problem(key_node, f"duplicate key '{key}' (first defined on line {first_line[key]})")
                continue
            first_line[key] = key_node.start_mark.line + 1
            self.lines.setdefault((*path, key), key_node.start_mark.line + 1)
            result[key] = self.build(value_node, (*path, key))
        for source in merged:  # YAML merge keys (`<<: *anchor`): explicit keys win
            value = self.build(source, path)
            if not isinstance(value, dict):
                self._problem(source, "'<<' must merge a mapping")
                continue
            for key, item in value.items():
                result.setdefault(key, item)
        return result

    def _scalar(self, node: Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self._problem(node, problem)
            return None

    def _problem(self, node: Node, message: str) -> None:
        self.problems.append(Problem(self.file, node.start_mark.line + 1, message))


# ---------------------------------------------------------------------------------------- ${VAR} substitution


@dataclass(frozen=True)
class Substituted:
    """The result of `substitute_env`."""

    doc: YamlFile
    missing: list[Problem]
    """`environment variable X is not set`, one per use; the scalar keeps its `${X}` text."""
    invalid: list[Problem]
    """`${...}` that is not a plain `${NAME}` (Rasa cannot expand `${X:-default}`, so neither does engage)."""
    unresolved: frozenset[KeyPath]
    """Paths still holding a `${...}`: leave their validation errors out, the variable is the problem."""


def substitute_env(doc: YamlFile, environ: Mapping[str, str] | None = None) -> Substituted:
    """Replace `${NAME}` in every string value (not in keys) from `environ` (default: os.environ).

    A value that is exactly `${NAME}` becomes the variable's text as is, still a string; inside a longer
    string the variable is interpolated.
    """
    env = os.environ if environ is None else environ
    missing: list[Problem] = []
    invalid: list[Problem] = []
    unresolved: set[KeyPath] = set()

    def replace(value: str, path: KeyPath) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if not _NAME.fullmatch(name):
                invalid.append(doc.problem(path, f"'{match.group(0)}' is not supported: write ${{NAME}}"))
                unresolved.add(path)
                return match.group(0)
            if name not in env:
                missing.append(
                    Problem(doc.file, doc.line_of(path), f"environment variable {name} is not set")
                )
                unresolved.add(path)
                return match.group(0)
            return env[name]

        return _VARIABLE.sub(one, value)

    def walk(value: Any, path: KeyPath) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return replace(value, path)
        return value

    data = walk(doc.data, ())
    return Substituted(YamlFile(doc.file, data, doc.lines), missing, invalid, frozenset(unresolved))


# ------------------------------------------------------------------------------------------ pydantic errors


def validate_model(
    model: type[M], doc: YamlFile, data: Any = None, *, skip: Collection[KeyPath] = ()
) -> tuple[M | None, list[Problem]]:
    """Validate `data` (default: the document's data) against `model`; problems point into `doc`."""
    try:
        return model.model_validate(doc.data if data is None else data), []
    except ValidationError as exc:
        return None, validation_problems(exc, doc, model=model, skip=skip)


def validation_problems(
    exc: ValidationError,
    doc: YamlFile,
    *,
    model: type[BaseModel] | None = None,
    prefix: KeyPath = (),
    skip: Collection[KeyPath] = (),
) -> list[Problem]:
    """One problem per pydantic error, at the line of its key (or of the nearest parent that has one).

    `prefix` is where the validated data sits in `doc`; errors at or under a path in `skip` are left out.
    `model` lets an unknown key list the known ones.
    """
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = (*prefix, *loc)
        if any(path[: len(s)] == tuple(s) for s in skip):
            continue
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
            known = _known_keys(model, loc[:-1]) if model is not None else None
            if known:
                message += f"; known keys: {', '.join(known)}"
            problems.append(Problem(doc.file, doc.line_of(path), message))
            continue
        problems.append(doc.problem(path, _message(error)))
    return problems


_ECHO_INPUT = ("_parsing", "_type", "literal_error", "enum")


def _message(error: Any) -> str:
    kind: str = error["type"]
    if kind == "missing":
        return "required but missing"
    message: str = error["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(noise)
    value = error.get("input")
    if kind.endswith(_ECHO_INPUT) and isinstance(value, str | int | float | bool) and len(repr(value)) <= 40:
        message += f" (got {value!r})"
    return message


def _known_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str] | None:
    current: type[BaseModel] | None = model
    for part in loc:
        info = current.model_fields.get(part) if current is not None else None
        current = next(_models_in(info.annotation), None) if info is not None else None
    return list(current.model_fields) if current is not None else None


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


def load_file(
    root: Path, file: str, parse: Callable[[YamlFile], tuple[T | None, list[Problem]]], default: T
) -> T:
    """The workspace file `file` parsed and validated by `parse`, or `default` when the workspace has none;
    a ConfigError lists every problem as file:line."""
    path = root / file
    if not path.is_file():
        return default
    doc, problems = load_yaml(path, file)
    if doc is None:
        raise ConfigError(problems)
    value, problems = parse(doc)
    if value is None or problems:
        raise ConfigError(problems)
    return value
