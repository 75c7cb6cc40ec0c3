from __future__ import annotations

from pathlib import Path

import pytest

from engage.errors import Problem
from engage.workspace import check as check_module
from engage.workspace import check_workspace, init_workspace, register_kind, yaml_validator
from engage.workspace.check import CheckContext
from engage.workspace.yaml import YamlFile

SECRETS = {"SENDGRID_API_KEY": "SG.x", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    init_workspace(tmp_path / "ws")
    return tmp_path / "ws"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(check_module, "_KINDS", dict(check_module._KINDS))


def test_the_copy_is_clean_and_counted(ws: Path) -> None:
    problems, summary = check_workspace(ws, environ=SECRETS)
    assert problems == [] and summary.warnings == []
    assert summary.counts["segments/*.yml"] == 12 and summary.counts["bot/**/*.yml"] == 8
    assert str(summary) == (
        "workspace OK: endpoints.yml, 3 connectors, 12 segments, 7 journeys, 32 template files, "
        "templates.yml, messaging.yml, bot (8 files), catalog/products.csv, offers.yml, recommender.yml"
    )


def test_files_named_yaml_are_ignored_with_a_warning(ws: Path) -> None:
    (ws / "segments" / "vip.yaml").write_text("name: vip\n")
    problems, summary = check_workspace(ws, environ=SECRETS)
    assert problems == []
    assert summary.warnings == [Problem("segments/vip.yaml", 0, "ignored: name it vip.yml")]


def test_hidden_folders_are_not_checked(ws: Path) -> None:
    (ws / "bot" / ".rasa").mkdir()
    (ws / "bot" / ".rasa" / "broken.yml").write_text("a: [\n")
    problems, summary = check_workspace(ws, environ=SECRETS)
    assert problems == [] and summary.counts["bot/**/*.yml"] == 8


@pytest.mark.usefixtures("registry")
def test_a_registered_validator_replaces_the_one_of_its_glob(ws: Path) -> None:
    @yaml_validator
    def no_conditions_yet(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
        return [doc.problem(("condition", "all"), "not supported yet")]

    register_kind("segments/*.yml", no_conditions_yet)
    problems, summary = check_workspace(ws, environ=SECRETS)
    shown = [str(p) for p in problems]
    assert len(shown) == 12
    assert "segments/email_users.yml:5: condition.all: not supported yet" in shown
    assert "segments/users_with_cart.yml:6: condition.all: not supported yet" in shown
    assert "12 segments" in summary.parts


@pytest.mark.usefixtures("registry")
def test_a_new_kind_is_checked_and_counted_after_the_others(ws: Path) -> None:
    (ws / "campaigns").mkdir()
    (ws / "campaigns" / "weekly.yml").write_text("name: weekly\nname: again\n")
    register_kind("campaigns/*.yml", check_module.check_named_mapping)
    problems, summary = check_workspace(ws, environ=SECRETS)
    assert problems == [Problem("campaigns/weekly.yml", 2, "duplicate key 'name' (first defined on line 1)")]
    assert summary.parts[-1] == "1 campaign"


def test_a_missing_endpoints_file_is_a_problem(tmp_path: Path) -> None:
    problems, _ = check_workspace(tmp_path, environ={})
    assert problems == [Problem("endpoints.yml", 0, "missing: a workspace holds endpoints.yml at its root")]


def test_broken_endpoints_still_check_the_other_files(ws: Path) -> None:
    endpoints = ws / "endpoints.yml"
    endpoints.write_text(endpoints.read_text().replace("pool_size: 5", "pool_size: lots"))
    (ws / "journeys" / "signup_welcome.yml").write_text("- not a mapping\n")
    problems, summary = check_workspace(ws, environ={})
    assert [p.file for p in problems] == ["endpoints.yml", "journeys/signup_welcome.yml"]
    assert problems[1].message == (
        "expected a journey (trigger, steps) or a campaign (schedule, audience, send), found a list"
    )
    assert len(summary.warnings) == 3  # channels fall back to their defaults: outbox needs no secret
