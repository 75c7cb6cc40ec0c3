"""`engage demo`, the main job, runs the whole loop and its summary says what the database holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engage.cli.main import main
from tests.chat.conftest import require_rasa

SMALL = ["--users", "40", "--days", "20", "--live-days", "3", "--seed", "3"]


def _rows(output: str, title: str) -> dict[str, list[str]]:
    """The rows of the summary table titled `title`: first cell -> the other cells."""
    found = re.search(rf"^{re.escape(title)}.*$", output, re.MULTILINE)
    assert found, f"no table titled {title!r} in the output"
    section = output[found.start() :]
    body = section[section.index("┡") : section.index("└")]
    rows = {}
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) > 1:
            rows[cells[0]] = cells[1:]
    return rows


def _number(cell: str) -> int:
    return int(cell.replace(",", ""))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_runs_the_whole_loop_and_its_summary_matches_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    require_rasa()
    cache = Path(request.config.cache.mkdir("engage-bot-models"))  # shared with tests/chat's bot_model
    folder = tmp_path / "demo"
    assert main(["demo", "--dir", str(folder), *SMALL, "--bot-cache", str(cache)]) == 0
    output = capsys.readouterr().out
    database = create_engine(f"sqlite:///{folder / 'var' / 'engage.db'}")
    with database.connect() as connection:

        def scalar(sql: str, **params: object) -> int:
            return connection.execute(text(sql), params).scalar_one()

        events = _rows(output, "events")
        assert _number(events["all"][0]) == scalar("SELECT count(*) FROM event_log")
        for channel, (count,) in events.items():
            if channel != "all":
                assert _number(count) == scalar(
                    "SELECT count(*) FROM event_log WHERE channel = :c", c=channel
                )

        messages = _rows(output, "messages")
        active = "('sending', 'sent', 'delivered', 'opened', 'clicked', 'unknown')"
        assert set(messages) == {"email", "sms"}
        for channel, (sent, delivered, opened, clicked) in messages.items():
            assert _number(sent) == scalar(
                f"SELECT count(*) FROM messages WHERE channel = :c AND status IN {active}", c=channel
            )
            for cell, status in ((delivered, "delivered"), (opened, "opened"), (clicked, "clicked")):
                # "-": nothing can report it (an SMS's opens, the outbox's deliveries)
                expected = 0 if cell == "-" else _number(cell)
                assert (channel, status) in {("sms", "opened"), ("email", "delivered")} or cell != "-"
                assert expected == scalar(
                    "SELECT count(DISTINCT m.id) FROM messages m "
                    "JOIN message_statuses s ON s.message_id = m.id WHERE m.channel = :c AND s.status = :s",
                    c=channel, s=status,
                )  # fmt: skip
        emails = scalar(f"SELECT count(*) FROM messages WHERE channel = 'email' AND status IN {active}")
        assert len(list((folder / "var" / "outbox").glob("*/*.eml"))) == emails > 0
        assert _number(messages["sms"][0]) > 0 and _number(messages["email"][2]) > 0
        assert _number(messages["email"][3]) > 0

        segments = _rows(output, "segments (members now)")
        for name, (members,) in segments.items():
            assert _number(members) == scalar(
                "SELECT count(*) FROM segment_memberships WHERE segment = :s AND exited_at IS NULL", s=name
            )

        journeys = _rows(output, "journeys and campaigns")
        for name in ("signup_welcome", "abandoned_cart", "browse_abandonment"):
            entered, running, _, converted = journeys[name][:4]
            assert _number(entered) == scalar(
                "SELECT count(*) FROM journey_instances WHERE journey = :j", j=name
            ) > 0  # fmt: skip
            assert _number(running) == scalar(
                "SELECT count(*) FROM journey_instances WHERE journey = :j AND status = 'active'", j=name
            )
            assert _number(converted) == scalar(
                "SELECT count(goal_at) FROM journey_instances WHERE journey = :j", j=name
            )

        # Customers chatted with the real bot on the web and by SMS (through Twilio's signed webhook).
        chat = _rows(output, "chat")
        for channel in ("chat", "sms"):
            turns = _number(chat[f"customer turns ({channel})"][0])
            assert turns == scalar(
                "SELECT count(*) FROM event_log WHERE event = 'ChatMessage' AND channel = :c", c=channel
            ) > 0  # fmt: skip
        assert scalar("SELECT count(*) FROM event_log WHERE event = 'SmsReplied'") > 0

        # Recommendations shown and clicked, each list counted under the model version that chose it.
        loop = _rows(output, "the loop")
        shown = {"before": 0, "after": 0}
        for properties in connection.execute(
            text("SELECT properties FROM event_log WHERE event = 'RecommendationShown'")
        ).scalars():
            version = json.loads(properties)["model_version"]
            period = "before" if version in output.split("models: ")[1].split(" before")[0] else "after"
            shown[period] += 1
        assert _number(loop["all"][1]) == shown["before"] > 0
        assert _number(loop["all"][3]) == shown["after"] > 0
        assert scalar("SELECT count(*) FROM event_log WHERE event = 'RecommendationClicked'") > 0
        assert re.search(
            r"the loop: .* \d+\.\d% before retraining .* \d+\.\d% after", output.replace("\n", "")
        )

    report = folder.parent / "report.html"
    assert f"report: {report}" in output.replace("\n", "")
    html = report.read_text(encoding="utf-8")
    assert html.count("<svg") >= 4 and "before retraining" in html


def test_demo_is_deterministic_for_a_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run() -> str:
        assert main(["demo", "--dir", str(tmp_path / "demo"), *SMALL, "--no-bot"]) == 0
        output = capsys.readouterr().out
        return re.sub(r"(models: .*|finished in \d+ s|\d+:\d\d:\d\d)", "", output)

    first = run()
    assert "broken calls rejected by field" in first and "rejected: " in first
    assert run() == first


def test_demo_refuses_to_replace_a_folder_it_did_not_make(tmp_path: Path, capsys) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--dir", str(tmp_path), "--users", "10", "--no-bot"]) == 1
    assert "was not made by `engage demo`" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"
