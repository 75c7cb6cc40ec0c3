"""`recommender.yml`: defaults, the shipped file, and file:line problems through `engage check`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engage.errors import ConfigError
from engage.recommend.config import DEFAULT_WEIGHTS, load_recommender_config
from engage.workspace import example_workspace
from engage.workspace.check import check_workspace


def test_no_file_means_the_defaults_and_the_shipped_file_spells_them_out(tmp_path: Path) -> None:
    defaults = load_recommender_config(tmp_path)
    assert defaults.interactions == DEFAULT_WEIGHTS and defaults.training.model == "auto"
    assert load_recommender_config(example_workspace()) == defaults


def test_problems_name_the_line_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "recommender.yml").write_text(
        "interactions:\n  ProductViewed: 0\ntraining:\n  every: 2h\n  model: deep\nserving: {histroy: 5}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_recommender_config(tmp_path)
    assert str(raised.value).splitlines() == [
        "recommender.yml:2: interactions.ProductViewed: Input should be greater than 0",
        "recommender.yml:5: training.model: Input should be 'auto', 'popularity', 'itemknn', 'ease', 'als' "
        "or 'bpr' (got 'deep')",
        "recommender.yml:6: unknown key 'histroy'; known keys: history, exploration, offers",
    ]
    (tmp_path / "recommender.yml").write_text("training:\n  every: 2h\n")
    assert load_recommender_config(tmp_path).training.every == timedelta(hours=2)


@pytest.mark.parametrize(("value", "served"), [("auto", "auto"), ("none", None), ("5", 5.0), ("2.5", 2.5)])
def test_the_half_life_is_auto_none_or_a_number_of_items(tmp_path: Path, value: str, served: object) -> None:
    (tmp_path / "recommender.yml").write_text(f"training:\n  half_life: {value}\n")
    assert load_recommender_config(tmp_path).training.fixed_half_life == served


def test_a_half_life_that_is_not_one_says_so(tmp_path: Path) -> None:
    (tmp_path / "recommender.yml").write_text("training:\n  model: als\n  half_life: 0\n")
    with pytest.raises(ConfigError) as raised:
        load_recommender_config(tmp_path)
    (line,) = str(raised.value).splitlines()
    assert line.startswith("recommender.yml:3: training.half_life: ")


def test_engage_check_reports_them_with_the_other_files(tmp_path: Path) -> None:
    (tmp_path / "endpoints.yml").write_text((example_workspace() / "endpoints.yml").read_text())
    (tmp_path / "recommender.yml").write_text("training:\n  every: soon\n")
    problems, _ = check_workspace(tmp_path, environ={})
    assert [str(p) for p in problems if p.file == "recommender.yml"] == [
        "recommender.yml:2: training.every: cannot read duration 'soon': write a number and a unit (w, d, h, "
        "m, s), e.g. 30d, 1h, 1d12h"
    ]
