"""`engage bot test`: Rasa's own evaluations of the bot, and the scores engage holds it to.

`rasa test nlu --cross-validation --folds 5` on the NLU data (with the product lookup table) and
`rasa test core` on `bot/tests/test_stories.yml` write Rasa's reports under `var/bot/results/{nlu,core}/`;
the scores are read back from those reports: intent F1 (macro and weighted) from `intent_report.json`,
entity F1 from each extractor's `<Extractor>_report.json`, passed stories from `story_report.json`.
The bot passes with an intent macro F1 of at least 0.90 and every test story passed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engage.chat.rasa._process import run_logged
from engage.chat.rasa.environment import RasaEnvironment, rasa_environment
from engage.chat.rasa.training import LOOKUP_FILE, last_error, write_lookup
from engage.errors import EngageError

__all__ = ["RESULTS_DIR", "TEST_STORIES", "MIN_INTENT_F1", "Scores", "evaluate_bot", "read_scores"]

RESULTS_DIR = "var/bot/results"
TEST_STORIES = "bot/tests/test_stories.yml"
TEST_LOG = "var/log/rasa-test.log"
MIN_INTENT_F1 = 0.90
FOLDS = 5
_NOT_ENTITIES = frozenset({"intent_report.json", "response_selection_report.json"})


@dataclass(frozen=True)
class Scores:
    """What `engage bot test` reports; `stories_total` is 0 when there are no test stories."""

    intent_macro_f1: float
    intent_weighted_f1: float
    stories_passed: int
    stories_total: int
    entities: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Macro and weighted F1 of the entities, per extractor (e.g. DIETClassifier), when the data has any."""

    @property
    def passed(self) -> bool:
        return self.intent_macro_f1 >= MIN_INTENT_F1 and self.stories_passed == self.stories_total

    def lines(self) -> list[str]:
        mark = "" if self.intent_macro_f1 >= MIN_INTENT_F1 else f"  (below {MIN_INTENT_F1:.2f})"
        lines = [
            f"intents: macro F1 {self.intent_macro_f1:.3f}, weighted F1 {self.intent_weighted_f1:.3f}{mark}"
        ]
        for extractor, (macro, weighted) in sorted(self.entities.items()):
            lines.append(f"entities ({extractor}): macro F1 {macro:.3f}, weighted F1 {weighted:.3f}")
        failed = self.stories_total - self.stories_passed
        lines.append(
            f"stories: {self.stories_passed}/{self.stories_total} passed"
            + (f", {failed} failed" if failed else "")
        )
        return lines


def evaluate_bot(
    root: Path, model: Path, environment: RasaEnvironment | None = None, folds: int = FOLDS
) -> Scores:
    """Run Rasa's NLU cross-validation and story test on the bot at `root` (its core test with `model`),
    replacing the reports in var/bot/results/, and read the scores. Rasa's output goes to
    var/log/rasa-test.log."""
    environment = (environment or rasa_environment()).require()
    results = root / RESULTS_DIR
    shutil.rmtree(results, ignore_errors=True)
    data = _nlu_data(root)
    domain = "bot/domain.yml" if (root / "bot" / "domain.yml").exists() else "bot/domain"
    _rasa(
        root, environment, "NLU cross-validation", append=False,
        args=("test", "nlu", "--nlu", str(data.relative_to(root)), "--config", "bot/config.yml",
              "--domain", domain, "--cross-validation", "--folds", str(folds),
              "--out", f"{RESULTS_DIR}/nlu"),
    )  # fmt: skip
    if (root / TEST_STORIES).is_file():
        _rasa(
            root, environment, "story test", append=True,
            args=("test", "core", "--model", str(model), "--stories", TEST_STORIES,
                  "--out", f"{RESULTS_DIR}/core"),
        )  # fmt: skip
    return read_scores(results)


def read_scores(results: Path) -> Scores:
    """The scores in Rasa's reports under `results` (its `nlu/` and `core/` folders)."""
    intents = _report(results / "nlu" / "intent_report.json")
    entities = {
        path.name.removesuffix("_report.json"): _f1(_report(path), path)
        for path in sorted((results / "nlu").glob("*_report.json"))
        if path.name not in _NOT_ENTITIES
    }
    stories = results / "core" / "story_report.json"
    passed = total = 0
    if stories.is_file():
        conversations = _report(stories).get("conversation_accuracy") or {}
        passed, total = int(conversations.get("correct", 0)), int(conversations.get("total", 0))
    macro, weighted = _f1(intents, results / "nlu" / "intent_report.json")
    return Scores(macro, weighted, passed, total, entities)


def _nlu_data(root: Path) -> Path:
    """`rasa test nlu` reads one path: a copy of bot/data with the lookup table, under var/bot/."""
    folder = root / "var" / "bot" / "test-data"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(root / "bot" / "data", folder)
    lookup = write_lookup(root)
    if lookup is not None:
        shutil.copy2(lookup, folder / Path(LOOKUP_FILE).name)
    return folder


def _rasa(root: Path, environment: RasaEnvironment, what: str, args: tuple[str, ...], append: bool) -> None:
    log_path = root / TEST_LOG
    command = environment.command(*args)
    code = run_logged(command, cwd=root, environ=environment.environ(root), log_path=log_path, append=append)
    if code != 0:
        reason = last_error(log_path.read_text(encoding="utf-8", errors="replace"))
        raise EngageError(f"rasa {what} failed (exit {code}): {reason} (log: {TEST_LOG})")


def _report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngageError(f"{path}: Rasa wrote no report there") from None
    except ValueError as exc:
        raise EngageError(f"{path}: not a JSON report: {exc}") from None
    if not isinstance(report, dict):
        raise EngageError(f"{path}: not a report of Rasa's (expected a JSON object)")
    return report


def _f1(report: dict[str, Any], path: Path) -> tuple[float, float]:
    try:
        return float(report["macro avg"]["f1-score"]), float(report["weighted avg"]["f1-score"])
    except (KeyError, TypeError, ValueError):
        raise EngageError(f"{path}: no 'macro avg' and 'weighted avg' F1 in the report") from None
