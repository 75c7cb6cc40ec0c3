"""Loading every segment of a workspace, and the checks that need them all: references, cycles, CSVs."""

from __future__ import annotations

from pathlib import Path

import pytest

from engage.errors import ConfigError
from engage.segments import InSegment, Manual, Not, load_segments, read_manual

REPO = Path(__file__).resolve().parents[2]


def write(root: Path, name: str, condition: str) -> Path:
    path = root / "segments" / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"name: {name}\ncondition:\n{condition}")
    return path


def errors(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_segments(root)
    return [str(p) for p in caught.value.problems]


def test_the_shipped_segments_load_with_dependencies_first() -> None:
    segments = load_segments(REPO)
    assert len(segments) == 12
    assert {"email_users", "sms_opted_in", "users_with_cart", "cart_abandoners", "recent_purchasers"} <= set(
        segments
    )
    assert {name for name in segments if name.startswith("affinity_")} == {
        "affinity_apparel", "affinity_books", "affinity_electronics", "affinity_outdoors"
    }  # fmt: skip
    assert segments["high_value"].events_used() == {"OrderCompleted"}
    assert all(segment.file == f"segments/{name}.yml" for name, segment in segments.items())


def test_references_come_after_what_they_refer_to(tmp_path: Path) -> None:
    write(tmp_path, "a", "  in_segment: c\n")
    write(tmp_path, "b", "  consent: sms\n")
    write(tmp_path, "c", "  in_segment: b\n")
    segments = load_segments(tmp_path)
    assert list(segments) == ["b", "c", "a"]
    assert segments["a"].condition == InSegment("c")


def test_no_segments_folder_is_no_segments(tmp_path: Path) -> None:
    assert load_segments(tmp_path) == {}


def test_a_cycle_is_reported_once_with_its_path(tmp_path: Path) -> None:
    write(tmp_path, "a", "  all:\n    - consent: sms\n    - in_segment: b\n")
    write(tmp_path, "b", "  in_segment: c\n")
    write(tmp_path, "c", "  not:\n    in_segment: a\n")
    write(tmp_path, "d", "  in_segment: d\n")
    assert errors(tmp_path) == [
        "segments/a.yml:5: condition.all[1].in_segment: cycle: a -> b -> c -> a",
        "segments/d.yml:3: condition.in_segment: cycle: d -> d",
    ]


def test_an_unknown_segment_lists_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, "a", "  in_segment: vip\n")
    write(tmp_path, "b", "  consent: sms\n")
    assert errors(tmp_path) == [
        "segments/a.yml:3: condition.in_segment: unknown segment 'vip'; known segments: a, b"
    ]


def test_a_broken_file_is_still_a_known_segment(tmp_path: Path) -> None:
    write(tmp_path, "a", "  in_segment: b\n")
    (tmp_path / "segments" / "b.yml").write_text("name: b\ncondition: [\n")
    found = errors(tmp_path)
    assert len(found) == 1 and found[0].startswith("segments/b.yml:3: invalid YAML")


def test_every_problem_of_every_file_in_one_error(tmp_path: Path) -> None:
    write(tmp_path, "a", "  trait: email\n  equals: x\n")
    write(tmp_path, "b", "  performed: X\n  within: soon\n")
    found = errors(tmp_path)
    assert [line.split(":", 2)[:2] for line in found] == [["segments/a.yml", "4"], ["segments/b.yml", "4"]]


def test_manual_lists_are_read_from_the_workspace(tmp_path: Path) -> None:
    write(tmp_path, "vip", "  not:\n    manual: lists/vip.csv\n")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "vip.csv").write_text("user_id\nu1\n\n u2 \nu1\n")
    segments = load_segments(tmp_path)
    assert segments["vip"].condition == Not(Manual("lists/vip.csv"))
    assert read_manual(tmp_path, "lists/vip.csv") == {"u1", "u2"}


def test_manual_list_problems(tmp_path: Path) -> None:
    write(tmp_path, "gone", "  manual: lists/gone.csv\n")
    write(tmp_path, "bad", "  manual: lists/bad.csv\n")
    write(tmp_path, "headless", "  manual: lists/headless.csv\n")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "bad.csv").write_text("user_id\nu1\nu2,extra\n")
    (tmp_path / "lists" / "headless.csv").write_text("u1\nu2\n")
    assert errors(tmp_path) == [
        "lists/bad.csv:3: expected one user id, found 2 columns",
        "lists/headless.csv:1: expected a header row `user_id` (one user id per row)",
        "segments/gone.yml:3: condition.manual: file 'lists/gone.csv' not found in the workspace",
    ]
    with pytest.raises(ConfigError, match="lists/bad.csv:3: expected one user id"):
        read_manual(tmp_path, "lists/bad.csv")
    with pytest.raises(ConfigError, match="lists/gone.csv: cannot read"):
        read_manual(tmp_path, "lists/gone.csv")
