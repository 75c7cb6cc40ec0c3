"""The shipped bot's quality, as `engage bot test` measures it with Rasa: intent macro F1 of a 5-fold NLU
cross-validation at least 0.90, and every test story passing. About four minutes: the slowest test."""

from __future__ import annotations

from pathlib import Path

import pytest

from engage.chat.rasa import read_scores
from engage.cli.main import main
from engage.workspace import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_shipped_bot_understands_customers_and_follows_every_test_story(
    bot_workspace: Workspace, bot_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bot", "test", "--workspace", str(bot_workspace.root)])
    out = capsys.readouterr().out
    scores = read_scores(bot_workspace.root / "var" / "bot" / "results")
    assert scores.intent_macro_f1 >= 0.90, out
    assert scores.stories_total >= 12 and scores.stories_passed == scores.stories_total, out
    assert code == 0 and "intents: macro F1" in out
