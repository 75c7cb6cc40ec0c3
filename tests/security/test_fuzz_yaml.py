"""Fuzzing the workspace YAML loaders: whatever a marketer writes, `engage check` answers with
`file:line: message` problems (or nothing), never a traceback.

Each property writes one generated file into a copy of the shipped example workspace and runs
`check_workspace` (what `engage check` runs) with only that kind of file registered, so an example takes
milliseconds. Documents are random structures whose keys come from the kind's real vocabulary, or the
shipped example files mutated: a value replaced by a wrong type, a key dropped or added, huge numbers, odd
unicode, anchors and aliases, duplicated or re-indented lines, tabs, raw text.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from engage.errors import Problem
from engage.workspace import check as check_module
from engage.workspace import init_workspace
from engage.workspace.check import check_workspace
from engage.workspace.yaml import parse_yaml

EXAMPLE = Path(check_module.__file__).resolve().parents[1] / "example"
ENV = {"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "token", "SENDGRID_API_KEY": "SG.key"}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same documents on every run: CI goes red on a change, not on luck
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------------------------------ the workspace


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="engage-fuzz-"))
    root = folder / "workspace"
    init_workspace(root)
    yield root
    shutil.rmtree(folder, ignore_errors=True)


KINDS = {
    "segments": ("segments/*.yml", "segments/fuzzed.yml"),
    "journeys": ("journeys/*.yml", "journeys/fuzzed.yml"),
    "connectors": ("connectors/*.yml", "connectors/outbox.yml"),
    "endpoints": (None, "endpoints.yml"),
}


@contextmanager
def written(root: Path, file: str, text: str) -> Iterator[None]:
    path = root / file
    original = path.read_bytes() if path.exists() else None
    path.write_text(text, encoding="utf-8")
    try:
        yield
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_bytes(original)


def check(root: Path, kind: str, text: str) -> list[Problem]:
    """What `engage check` reports for `text` as a file of `kind`, the other kinds left out."""
    glob, file = KINDS[kind]
    kinds = {g: k for g, k in check_module._KINDS.items() if g == glob}
    with written(root, file, text), mock.patch.dict(check_module._KINDS, kinds, clear=True):
        problems, _ = check_workspace(root, ENV)
    assert_clean(problems, file, text)
    return problems


def assert_clean(problems: list[Problem], file: str, text: str) -> None:
    """Each problem names a file of the workspace, a line within it and says what is wrong."""
    lines = text.count("\n") + 1
    for problem in problems:
        assert isinstance(problem, Problem), problem
        assert isinstance(problem.message, str) and problem.message.strip(), problem
        assert "Traceback" not in problem.message, problem
        assert isinstance(problem.line, int) and problem.line >= 0, problem
        if problem.file == file:
            assert problem.line <= lines + 1, (problem, lines)
            if text.strip() and problem.line == 0:
                raise AssertionError(f"no line for a problem in a non-empty file: {problem}")


# ----------------------------------------------------------------------------------------- vocabularies


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str) and len(value) < 40:
        yield value


def _example_texts(kind: str) -> list[str]:
    if kind == "endpoints":
        return [(EXAMPLE / "endpoints.yml").read_text(encoding="utf-8")]
    return [path.read_text(encoding="utf-8") for path in sorted((EXAMPLE / kind).glob("*.yml"))]


def renamed(text: str, kind: str) -> str:
    """A segment's or journey's text named after the file it is checked as."""
    return _NAME.sub("name: fuzzed", text, count=1) if kind in ("segments", "journeys") else text


_NAME = re.compile(r"^name: .*$", re.MULTILINE)
EXAMPLES = {kind: _example_texts(kind) for kind in KINDS}
_DATA = {kind: [parse_yaml(text, "x.yml")[0].data for text in texts] for kind, texts in EXAMPLES.items()}
EXTRA_KEYS = {
    "segments": ["any", "none", "not", "in_segment", "manual", "trait", "count", "at_least", "last_performed",
                 "equals", "in", "gt", "lt", "between", "contains", "exists", "since"],
    "journeys": ["schedule", "cron", "audience", "at", "every", "timezone", "send_at", "quiet_hours", "exit",
                 "goto", "version", "frequency_cap", "policy", "where", "match", "percent", "holdout"],
    "connectors": ["type", "api_key", "from_email", "from_name", "account_sid", "auth_token", "from_number",
                   "messaging_service_sid", "base_url", "folder", "timeout", "webhook_secret"],
    "endpoints": ["action_endpoint", "tracker_store", "lock_store", "models", "nlg", "nlu"],
}  # fmt: skip
VOCABULARY = {
    kind: sorted({*(k for data in _DATA[kind] for k in _keys(data)), *EXTRA_KEYS[kind]}) for kind in KINDS
}
WORDS = {kind: sorted({s for data in _DATA[kind] for s in _strings(data)}) for kind in KINDS}

# ----------------------------------------------------------------------------------------------- values

ODD_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=10**18, max_value=10**40),
    st.integers(max_value=-(10**18)),
    st.floats(allow_nan=True, allow_infinity=True),
)
ODD_STRINGS = st.sampled_from(
    ["", " ", "1d", "-1h", "0s", "99999999999999999999d", "1e400", "${", "${X", "${ENV:-x}", "${MISSING}",
     "%", "{{ x }}", "\u202e", "\ufeff", "e\u0301", "💥", "null", "~", "yes", "NaN", ".inf", "2024-02-30",
     "25:00", "+1", "sqlite://", "http://", "*", "[", "\t", "a" * 300]
)  # fmt: skip


def scalars(kind: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(), NUMBERS, ODD_TEXT, ODD_STRINGS, st.sampled_from(WORDS[kind] or ["x"])
    )


def keys(kind: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(VOCABULARY[kind]), st.sampled_from(VOCABULARY[kind]), ODD_TEXT, st.integers(0, 3)
    )


def structures(kind: str) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(kind),
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys(kind), children, max_size=6)
        ),
        max_leaves=25,
    )


def documents(kind: str) -> st.SearchStrategy[Any]:
    """Random mappings with the kind's keys at the top, often with a `name` that fits the file."""
    top = st.dictionaries(keys(kind), structures(kind), max_size=8)
    return st.one_of(top, top.map(lambda d: {"name": "fuzzed", **d}), structures(kind))


def dump(data: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


# -------------------------------------------------------------------------------------------- mutations


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*path, i))


def _replace(value: Any, path: tuple[Any, ...], new: Any, *, delete: bool = False) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if delete and not rest:
            copy.pop(head, None)
        elif not rest:
            copy[head] = new
        else:
            copy[head] = _replace(copy[head], rest, new, delete=delete)
        return copy
    copy_list = list(value)
    if delete and not rest:
        del copy_list[head]
    else:
        copy_list[head] = _replace(copy_list[head], rest, new, delete=delete)
    return copy_list


@st.composite
def data_mutations(draw: st.DrawFn, kind: str) -> str:
    """A shipped example with a few values replaced, keys dropped or unknown keys added."""
    data = draw(st.sampled_from(_DATA[kind]))
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        path = draw(st.sampled_from(paths[1:] or paths))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and path:
            data = _replace(data, path, None, delete=True)
        elif action == "add":
            parent = path[:-1]
            target: Any = data
            for part in parent:
                target = target[part]
            if isinstance(target, dict):
                data = _replace(data, (*parent, draw(keys(kind))), draw(structures(kind)))
        else:
            data = _replace(data, path, draw(structures(kind)))
    if isinstance(data, dict) and kind in ("segments", "journeys") and "name" in data:
        data["name"] = "fuzzed"
    return dump(data)


RAW_SNIPPETS = [
    "\t", "  ", "- ", ": ", "&a ", "*a", "<<: *a", "&a [*a]", "!!python/object:os.system ", "!!binary ",
    "!custom ", "{", "}", "[", "]", "'", '"', "#", "---\n", "...\n", "%YAML 1.1\n", "? ", "|", ">", "@",
    "`", "\ufeff", "\u2028", "\x85", "\x1b", "💥", "\\", "?\n", "key: value", "name: fuzzed",
    "1e999999", "0x1F", "0o17", "-.inf", "2001-12-14t21:59:43.10-05:00", "18446744073709551617",
]  # fmt: skip


@st.composite
def text_mutations(draw: st.DrawFn, kind: str) -> str:
    """A shipped example's text with lines duplicated, dropped, re-indented, cut or with raw text in."""
    lines = renamed(draw(st.sampled_from(EXAMPLES[kind])), kind).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = ["\n"]
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["duplicate", "drop", "indent", "dedent", "tab", "insert", "cut"]))
        if action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "drop":
            del lines[i]
        elif action == "indent":
            lines[i] = " " * draw(st.integers(1, 5)) + lines[i]
        elif action == "dedent":
            lines[i] = lines[i].lstrip(" ")
        elif action == "tab":
            lines[i] = lines[i].replace("  ", "\t", 1)
        elif action == "insert":
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            snippet = draw(st.one_of(st.sampled_from(RAW_SNIPPETS), ODD_TEXT))
            lines[i] = line[:at] + snippet + line[at:]
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "".join(lines)


def any_document(kind: str) -> st.SearchStrategy[str]:
    return st.one_of(documents(kind).map(dump), data_mutations(kind), text_mutations(kind))


# ------------------------------------------------------------------------------------------- properties


# Found by fuzzing: a control character gave `invalid YAML: ... position 30` without a line.
CONTROL_CHARACTER = "name: fuzzed\ncondition:\n  performed: \x1f\n"
# Found by fuzzing: keys of two types in one mapping, or a date as a key, crashed the journey's version hash
# (json.dumps with sort_keys).
MIXED_KEYS = "name: fuzzed\ntrigger: {event: ProductAdded}\nsteps: [{wait: 1h}]\n1: one\n"
DATE_KEY = "name: fuzzed\ntrigger: {event: ProductAdded, where: {2024-01-01: x}}\nsteps: [{wait: 1h}]\n"


@FUZZ
@given(text=any_document("segments"))
@example(text=CONTROL_CHARACTER)
def test_segments_never_crash(workspace: Path, text: str) -> None:
    check(workspace, "segments", text)


@FUZZ
@given(text=any_document("journeys"))
@example(text=MIXED_KEYS)
@example(text=DATE_KEY)
@example(text=CONTROL_CHARACTER)
def test_journeys_never_crash(workspace: Path, text: str) -> None:
    check(workspace, "journeys", text)


@FUZZ
@given(text=any_document("connectors"))
def test_connectors_never_crash(workspace: Path, text: str) -> None:
    check(workspace, "connectors", text)


@FUZZ
@given(text=any_document("endpoints"))
@example(text="database:\n  url: sqlite:///var/\x1f.db\n")
def test_endpoints_never_crash(workspace: Path, text: str) -> None:
    check(workspace, "endpoints", text)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_shipped_examples_are_clean(workspace: Path, kind: str) -> None:
    """The baseline every mutation starts from has no problems."""
    assert check(workspace, kind, renamed(EXAMPLES[kind][0], kind)) == []


def test_control_character_has_its_line(workspace: Path) -> None:
    problems = check(workspace, "segments", CONTROL_CHARACTER)
    assert [str(p) for p in problems] == [
        "segments/fuzzed.yml:3: invalid YAML: character U+001F is not allowed in YAML text"
    ]


def test_journey_with_keys_of_several_types_is_a_problem(workspace: Path) -> None:
    problems = check(workspace, "journeys", MIXED_KEYS)
    assert [(p.file, p.line) for p in problems] == [("journeys/fuzzed.yml", 4)], problems
    assert "unknown key '1'" in problems[0].message


def test_journey_filtering_on_a_date_named_property_loads(workspace: Path) -> None:
    """`where` names properties as text, so a key YAML reads as a date is the property `2024-01-01`."""
    assert check(workspace, "journeys", DATE_KEY) == []
