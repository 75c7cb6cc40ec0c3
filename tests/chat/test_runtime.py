"""The bot's runtime: its model trained only when what it learns from changed, Rasa served behind its token,
its tracker events in the SQL broker, and `engage run` starting and stopping Rasa and the action server."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from engage.chat.rasa import RasaServer, bot_hash, read_scores, write_lookup
from engage.chat.rasa.environment import RasaEnvironment
from engage.chat.rasa.training import TRAIN_LOG, current_model, last_error
from engage.cli.main import main
from engage.workspace import Workspace
from tests.chat.conftest import bot_workspace_at, free_port, say
from tests.conftest import MakeWorkspace
from tests.helpers import wait_for


def _hash(root: Path) -> str:
    return bot_hash(root, write_lookup(root))


def test_the_model_hash_follows_what_the_bot_learns_from(make_workspace: MakeWorkspace) -> None:
    root = make_workspace().root
    first = _hash(root)
    assert _hash(root) == first
    (root / "bot" / "credentials.yml").write_text("rest:\n", encoding="utf-8")
    (root / "bot" / "tests").mkdir(exist_ok=True)
    (root / "bot" / "tests" / "test_stories.yml").write_text('version: "3.1"\n', encoding="utf-8")
    assert _hash(root) == first, "credentials and test stories change nothing a model holds"

    nlu = next((root / "bot" / "data").glob("*.yml"))
    nlu.write_text(nlu.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    second = _hash(root)
    assert second != first

    catalog = root / "catalog" / "products.csv"
    header, first_row, *rest = catalog.read_text(encoding="utf-8").splitlines(keepends=True)
    name = first_row.split(",")[1]
    catalog.write_text(
        header + first_row.replace(name, "Zebra Test Lamp", 1) + "".join(rest), encoding="utf-8"
    )
    assert _hash(root) != second, "a product renamed changes the lookup table"
    assert "    - Zebra Test Lamp\n" in (root / "var" / "bot" / "lookup" / "products.yml").read_text()
    assert current_model(root).name == f"{_hash(root)}.tar.gz"


def test_the_lookup_table_is_rasa_nlu_with_each_product_name_once(make_workspace: MakeWorkspace) -> None:
    root = make_workspace().root
    lines = write_lookup(root).read_text(encoding="utf-8").splitlines()
    assert lines[:4] == ['version: "3.1"', "nlu:", "- lookup: product", "  examples: |"]
    names = [line.removeprefix("    - ") for line in lines[4:]]
    assert len(names) == len(set(names)) > 1000 and all(line.startswith("    - ") for line in lines[4:])
    (root / "catalog" / "products.csv").unlink()
    assert write_lookup(root) is None and not (root / "var" / "bot" / "lookup" / "products.yml").exists()


def test_rasa_errors_are_quoted_with_their_file_and_line() -> None:
    output = (
        "2026-12-04 INFO rasa.cli.train - Started validating domain and training data...\n"
        "\x1b[91mYamlSyntaxException: Failed to read 'bot/data/rules.yml'. "
        "mapping values are not allowed here\n"
        '  in "bot/data/rules.yml", line 208, column 48:\n'
        "You can use https://yamlchecker.com/ to validate the YAML syntax of your file.\x1b[0m\n"
    )
    assert last_error(output) == (
        "YamlSyntaxException: Failed to read 'bot/data/rules.yml'. mapping values are not allowed here "
        "(bot/data/rules.yml line 208)"
    )


@pytest.mark.slow
def test_engage_run_without_rasa_warns_once_and_serves(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    workspace = make_workspace()
    port = free_port()
    environ = {**os.environ, "ENGAGE_RASA_VENV": str(tmp_path / "no-rasa-here")}
    process = _engage_run(workspace.root, port, environ)
    try:
        wait_for(
            lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="engage run to answer"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    warnings = [line for line in output.splitlines() if "chatbot" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and "`engage bot setup`" in warnings[0], output


@pytest.mark.slow
def test_train_again_is_up_to_date_and_does_not_retrain(
    bot_workspace: Workspace, bot_model: Path, capsys
) -> None:
    before = bot_model.stat().st_mtime_ns
    log = bot_workspace.root / TRAIN_LOG
    log_before = log.stat().st_mtime_ns if log.exists() else None
    capsys.readouterr()
    assert main(["bot", "train", "--workspace", str(bot_workspace.root)]) == 0
    assert capsys.readouterr().out.strip() == f"up to date: bot/models/{bot_model.name}"
    assert bot_model.stat().st_mtime_ns == before
    assert (log.stat().st_mtime_ns if log.exists() else None) == log_before, "rasa train ran again"


@pytest.mark.slow
def test_rasa_answers_status_with_the_token_only(rasa_server: RasaServer, bot_model: Path) -> None:
    status = requests.get(f"{rasa_server.url}/status", params={"token": rasa_server.token}, timeout=10)
    assert status.status_code == 200 and status.json()["model_file"] == bot_model.name
    for params in ({}, {"token": "guess"}):
        assert requests.get(f"{rasa_server.url}/status", params=params, timeout=10).status_code in (401, 403)


@pytest.mark.slow
def test_rasa_publishes_each_turn_to_the_sql_event_broker(
    rasa_server: RasaServer, bot_workspace: Workspace
) -> None:
    assert say(rasa_server, "broker-check", "hello"), "the bot answers a greeting"
    with sqlite3.connect(bot_workspace.root / "var" / "rasa-events.db") as connection:
        rows = connection.execute("SELECT data FROM events WHERE sender_id = 'broker-check'").fetchall()
    kinds = [row[0] for row in rows]
    assert any('"event": "user"' in kind and '"text": "hello"' in kind for kind in kinds), kinds
    assert any('"event": "bot"' in kind for kind in kinds), kinds


@pytest.mark.slow
def test_engage_run_runs_rasa_and_the_actions_then_stops_them(
    bot_model: Path, rasa_env: RasaEnvironment, tmp_path: Path
) -> None:
    workspace = bot_workspace_at(tmp_path / "workspace")
    (workspace.root / "bot" / "models").mkdir()
    shutil.copy2(bot_model, workspace.root / "bot" / "models" / bot_model.name)  # the same bot: no training
    port = free_port()
    process = _engage_run(workspace.root, port, {**os.environ, "ENGAGE_RASA_VENV": str(rasa_env.path)})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: [lines.append(line) for line in process.stdout or ()])
    reader.start()
    rasa = workspace.endpoints.rasa
    actions = workspace.endpoints.action_endpoint["url"].removesuffix("/webhook")
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="engage's API")
        wait_for(lambda: any("chatbot ready" in line for line in lines), timeout=240, what="the chatbot")
        assert _answers(f"{rasa.url}/status?token={rasa.token}") and _answers(f"{actions}/health")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
        reader.join(timeout=10)
    output = "".join(lines)
    assert process.returncode == 0, output
    assert "trained the bot's model" not in output, output
    assert not _answers(f"{rasa.url}/status?token={rasa.token}") and not _answers(f"{actions}/health")


@pytest.mark.slow
def test_engage_bot_test_prints_rasas_scores_and_fails_on_a_failed_story(
    make_workspace: MakeWorkspace, rasa_env: RasaEnvironment, capsys
) -> None:
    """A small real run (the shipped bot's 5-fold evaluation takes minutes: `engage bot test` in CI)."""
    root = make_workspace().root
    shutil.rmtree(root / "bot")
    (root / "catalog" / "products.csv").unlink()
    for name, text in SMALL_BOT.items():
        (root / "bot" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "bot" / name).write_text(text, encoding="utf-8")
    code = main(["bot", "test", "--folds", "2", "--workspace", str(root)])
    out, err = capsys.readouterr()
    results = root / "var" / "bot" / "results"
    scores = read_scores(results)
    assert (results / "nlu" / "intent_report.json").is_file()
    assert (results / "core" / "story_report.json").is_file()
    assert (scores.stories_passed, scores.stories_total) == (1, 2), out + err
    assert 0 <= scores.intent_weighted_f1 <= 1 and 0 <= scores.intent_macro_f1 <= 1
    assert [line for line in out.splitlines() if line.startswith(("intents:", "stories:"))] == [
        scores.lines()[0],
        "stories: 1/2 passed, 1 failed",
    ], out
    assert code == 1 and err.strip().endswith("1 of 2 stories failed"), err


def test_scores_are_read_from_rasa_reports(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / "nlu").mkdir(parents=True)
    (results / "core").mkdir()
    (results / "nlu" / "intent_report.json").write_text(
        '{"greet": {"f1-score": 1.0}, "accuracy": 0.9,'
        ' "macro avg": {"f1-score": 0.884}, "weighted avg": {"f1-score": 0.912}}'
    )
    (results / "nlu" / "DIETClassifier_report.json").write_text(
        '{"macro avg": {"f1-score": 0.8}, "weighted avg": {"f1-score": 0.85}}'
    )
    (results / "core" / "story_report.json").write_text(
        '{"conversation_accuracy": {"accuracy": 0.5, "correct": 3, "with_warnings": 0, "total": 4}}'
    )
    scores = read_scores(results)
    assert (scores.intent_macro_f1, scores.intent_weighted_f1) == (0.884, 0.912)
    assert scores.entities == {"DIETClassifier": (0.8, 0.85)}
    assert (scores.stories_passed, scores.stories_total, scores.passed) == (3, 4, False)
    assert scores.lines()[0] == "intents: macro F1 0.884, weighted F1 0.912  (below 0.90)"
    assert scores.lines()[-1] == "stories: 3/4 passed, 1 failed"


def _engage_run(root: Path, port: int, environ: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "engage.cli.main", "run", "-w", str(root), "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


SMALL_BOT = {
    "config.yml": """\
recipe: default.v1
language: en
assistant_id: small
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: LogisticRegressionClassifier
policies:
  - name: RulePolicy
""",
    "domain.yml": """\
version: "3.1"
intents: [greet, goodbye, return_policy]
responses:
  utter_greet: [{text: "Hi!"}]
  utter_goodbye: [{text: "Bye!"}]
  utter_return_policy: [{text: "Unopened items within 30 days."}]
""",
    "data/nlu.yml": """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
    - hey
    - hey there
    - good morning
    - hello bot
- intent: goodbye
  examples: |
    - bye
    - goodbye
    - see you
    - see you later
    - have a nice day
    - ciao
- intent: return_policy
  examples: |
    - what is your return policy?
    - can I return an item?
    - how do I return something
    - I want a refund
    - can I get my money back
    - returns
""",
    "data/rules.yml": """\
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: goodbye
  steps: [{intent: goodbye}, {action: utter_goodbye}]
- rule: returns
  steps: [{intent: return_policy}, {action: utter_return_policy}]
""",
    "tests/test_stories.yml": """\
version: "3.1"
stories:
- story: returns
  steps:
  - user: hello
    intent: greet
  - action: utter_greet
  - user: can I return an item?
    intent: return_policy
  - action: utter_return_policy
- story: a story the bot does not follow
  steps:
  - user: hello
    intent: greet
  - action: utter_goodbye
""",
}
