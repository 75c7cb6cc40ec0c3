from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from engage.errors import Problem
from engage.workspace.yaml import (
    YamlFile,
    format_path,
    load_yaml,
    parse_yaml,
    substitute_env,
    validate_model,
)


def parse(text: str, file: str = "f.yml") -> YamlFile:
    doc, problems = parse_yaml(text, file)
    assert problems == []
    assert doc is not None
    return doc


def test_every_key_and_item_has_its_line() -> None:
    doc = parse("# comment\na: 1\nb:\n  c:\n    - x\n    - y: 2\n")
    assert doc.data == {"a": 1, "b": {"c": ["x", {"y": 2}]}}
    assert doc.line_of(("a",)) == 2
    assert doc.line_of(("b", "c")) == 4
    assert doc.line_of(("b", "c", 1)) == 6
    assert doc.line_of(("b", "c", 1, "y")) == 6


def test_line_of_falls_back_to_the_nearest_parent() -> None:
    doc = parse("a:\n  b: 1\n")
    assert doc.line_of(("a", "missing", "deeper")) == 1
    assert doc.line_of(("nowhere",)) == 1


def test_yaml_12_like_rasa() -> None:
    doc = parse("on: yes\nversion: 3.1\nquoted: '8'\n")
    assert doc.data == {"on": "yes", "version": 3.1, "quoted": "8"}


def test_empty_document_is_none_without_problems() -> None:
    doc, problems = parse_yaml("# only a comment\n", "f.yml")
    assert problems == []
    assert doc is not None and doc.data is None


def test_duplicate_keys_are_reported_at_the_second_occurrence_and_the_rest_is_kept() -> None:
    doc, problems = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\nd: 4\n", "f.yml")
    assert problems == [
        Problem("f.yml", 4, "duplicate key 'c' (first defined on line 3)"),
        Problem("f.yml", 5, "duplicate key 'a' (first defined on line 1)"),
    ]
    assert doc is not None
    assert doc.data == {"a": 1, "b": {"c": 1}, "d": 4}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a: [1, 2\nb: 3\n", 2, "expected ',' or ']'"),
        ("a: 1\n  b: 2\n", 2, "mapping values are not allowed"),
        ("a: 'open\n", 2, "unexpected end of stream"),
        ("a: 1\n---\nb: 2\n", 2, "a second document starts here"),
        ("x: 1\n- a\n", 2, "expected <block end>"),
    ],
)
def test_syntax_errors_give_the_line_of_the_mark(text: str, line: int, words: str) -> None:
    doc, problems = parse_yaml(text, "bad.yml")
    assert doc is None
    assert len(problems) == 1
    assert problems[0].file == "bad.yml"
    assert problems[0].line == line
    assert problems[0].message.startswith("invalid YAML: ")
    assert words in problems[0].message


def test_unknown_tag_is_a_problem_at_its_line() -> None:
    doc, problems = parse_yaml("a: 1\nb: !include other.yml\n", "f.yml")
    assert [(p.line, "!include" in p.message) for p in problems] == [(2, True)]
    assert doc is not None and doc.data == {"a": 1, "b": None}


def test_merge_keys_keep_explicit_values() -> None:
    doc = parse("base: &base\n  x: 1\n  y: 2\nother:\n  <<: *base\n  y: 3\n")
    assert doc.data["other"] == {"x": 1, "y": 3}
    assert doc.line_of(("other", "y")) == 6


def test_load_yaml_reports_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.yml").write_bytes(b"a: caf\xe9\n")
    doc, problems = load_yaml(tmp_path / "latin1.yml", "latin1.yml")
    assert doc is None
    assert problems[0].file == "latin1.yml" and "not UTF-8" in problems[0].message
    doc, problems = load_yaml(tmp_path / "absent.yml", "absent.yml")
    assert doc is None and "cannot read" in problems[0].message


def test_substitution_exact_interpolated_and_keys_untouched() -> None:
    doc = parse("n: ${PORT}\nurl: http://${HOST}:${PORT}/x\n${KEY}: 1\nother: 5\nlist:\n  - ${HOST}\n")
    result = substitute_env(doc, {"PORT": "8", "HOST": "example.org", "KEY": "k"})
    assert result.missing == [] and result.invalid == []
    assert result.doc.data == {
        "n": "8",
        "url": "http://example.org:8/x",
        "${KEY}": 1,
        "other": 5,
        "list": ["example.org"],
    }
    assert isinstance(result.doc.data["n"], str)
    assert result.doc.lines == doc.lines
    assert doc.data["n"] == "${PORT}"  # the parsed document is left as it was


def test_missing_variable_names_it_with_the_line() -> None:
    doc = parse("a: 1\nsecret: ${API_KEY}\nboth: ${SET}-${UNSET}\n", "connectors/x.yml")
    result = substitute_env(doc, {"SET": "s"})
    assert result.missing == [
        Problem("connectors/x.yml", 2, "environment variable API_KEY is not set"),
        Problem("connectors/x.yml", 3, "environment variable UNSET is not set"),
    ]
    assert result.doc.data["secret"] == "${API_KEY}"
    assert result.doc.data["both"] == "s-${UNSET}"
    assert result.unresolved == {("secret",), ("both",)}


def test_only_plain_variables_are_supported() -> None:
    doc = parse("a: ${NAME:-default}\nb: ${}\n")
    result = substitute_env(doc, {"NAME": "x"})
    assert [p.line for p in result.invalid] == [1, 2]
    assert "'${NAME:-default}' is not supported" in result.invalid[0].message
    assert result.invalid[0].message.startswith("a: ")


def test_substitution_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_TEST_VALUE", "from-env")
    result = substitute_env(parse("a: ${ENGAGE_TEST_VALUE}\n"))
    assert result.doc.data == {"a": "from-env"}


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = 1
    name: str


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: Inner
    items: list[int] = []


def test_validation_errors_point_at_the_key_with_its_path() -> None:
    doc = parse("inner:\n  size: many\n  name: x\nitems:\n  - 1\n  - two\n", "k.yml")
    model, problems = validate_model(Outer, doc)
    assert model is None
    assert problems == [
        Problem(
            "k.yml",
            2,
            "inner.size: Input should be a valid integer, unable to parse string as an integer (got 'many')",
        ),
        Problem(
            "k.yml",
            6,
            "items[1]: Input should be a valid integer, unable to parse string as an integer (got 'two')",
        ),
    ]


def test_missing_field_falls_back_to_its_parent_line_and_unknown_keys_list_the_known_ones() -> None:
    doc = parse("# header\ninner:\n  size: 2\n  colour: red\n", "k.yml")
    _, problems = validate_model(Outer, doc)
    assert sorted(problems) == [
        Problem("k.yml", 2, "inner.name: required but missing"),
        Problem("k.yml", 4, "unknown key 'colour'; known keys: size, name"),
    ]


def test_errors_under_unresolved_variables_are_left_out() -> None:
    doc = parse("inner:\n  size: ${SIZE}\n  name: x\n")
    result = substitute_env(doc, {})
    model, problems = validate_model(Outer, result.doc, skip=result.unresolved)
    assert model is None and problems == []
    assert len(result.missing) == 1


def test_format_path() -> None:
    assert format_path(("ingest", "write_keys", 0, "x")) == "ingest.write_keys[0].x"
    assert format_path(()) == ""
