"""The operator's commands, run through the real CLI on a workspace in a temporary folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests

from engage.bootstrap import bootstrap
from engage.cli.main import main
from engage.store import Database, current_revision, head_revision
from tests.conftest import MakeWorkspace
from tests.helpers import Bearer, settled, wait_for


def _seed(workspace_root: Path, make_workspace: MakeWorkspace) -> None:
    engage = bootstrap(make_workspace())
    engage.ingestor.batch(
        {
            "batch": [
                {
                    "type": "track",
                    "anonymousId": "a1",
                    "event": "ProductViewed",
                    "timestamp": "2026-04-30T10:00:00Z",
                    "properties": {"sku": "old"},
                },
                {
                    "type": "identify",
                    "userId": "u1",
                    "anonymousId": "a1",
                    "timestamp": "2026-05-02T10:00:00Z",
                    "traits": {"email": "u1@shop.example", "firstName": "Uma"},
                },
                {
                    "type": "track",
                    "userId": "u1",
                    "event": "ProductAdded",
                    "timestamp": "2026-05-03T10:00:00Z",
                    "properties": {"sku": "p1", "price": 9.5},
                },
            ]
        },
        size=0,
    )
    engage.stream.drain(engage.consumers)
    settled(engage)
    engage.close()


def test_db_upgrade_is_idempotent(make_workspace: MakeWorkspace, database_url: str, capsys) -> None:
    workspace = make_workspace(database_url=database_url)
    assert main(["db", "upgrade", "-w", str(workspace.root)]) == 0
    assert "upgraded from empty to" in capsys.readouterr().out
    assert main(["db", "upgrade", "-w", str(workspace.root)]) == 0
    assert "already at revision" in capsys.readouterr().out
    database = Database(workspace.endpoints.database.url)
    assert current_revision(database) == head_revision()
    database.dispose()


def test_events_tail_profiles_show_and_export(make_workspace: MakeWorkspace, tmp_path: Path, capsys) -> None:
    root = tmp_path / "workspace"
    _seed(root, make_workspace)
    os.chdir(root / "journeys")  # the workspace is found by walking up

    assert main(["events", "tail", "--no-follow", "-n", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "identify" in out[0] and "ProductAdded" in out[1] and '"sku":"p1"' in out[1]
    assert "system" in out[2] and "SegmentEntered" in out[2] and '"segment":"email_users"' in out[2]

    assert main(["profiles", "show", "a1"]) == 0
    out = capsys.readouterr().out
    assert "u1" in out and "Uma" in out and "ProductViewed" in out
    assert main(["profiles", "show", "nobody"]) == 1
    assert "no profile for 'nobody'" in capsys.readouterr().err

    assert (
        main(
            [
                "events",
                "export",
                "--since",
                "2026-05-01",
                "--format",
                "parquet",
                "-o",
                str(tmp_path / "e.parquet"),
            ]
        )
        == 0
    )
    frame = pd.read_parquet(tmp_path / "e.parquet")
    assert list(frame["event"].fillna(frame["type"])) == ["identify", "ProductAdded", "SegmentEntered"]
    assert frame["user_id"].tolist() == ["u1", "u1", "u1"]
    assert main(["events", "export", "--since", "2026-01-01", "--format", "csv"]) == 0
    written = root / "var" / "exports" / "events-since-20260101.csv"
    assert f"wrote 4 events to {written}" in capsys.readouterr().out  # SegmentEntered happened today
    assert len(pd.read_csv(written)) == 4
    assert main(["events", "export", "--since", "last tuesday"]) == 1
    assert "--since: not a date" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "serve"])
def test_serve_and_run_listen_where_told(
    command: str, make_workspace: MakeWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = make_workspace()
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engage.cli.main",
            command,
            "-w",
            str(workspace.root),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *(["--no-bot"] if command == "run" else []),  # the chatbot's own tests run it
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return requests.get(f"{url}/healthz", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, timeout=30, what=f"engage {command} to answer")
        auth = (workspace.endpoints.ingest.write_keys[0], "")
        assert requests.post(
            f"{url}/v1/identify", json={"userId": "u9", "traits": {"firstName": "Ivy"}}, auth=auth, timeout=5
        ).ok
        if command == "run":  # the worker runs in the same process
            assert main(["tokens", "create", "reader", "-s", "profiles:read", "-w", str(workspace.root)]) == 0
            reader = Bearer(capsys.readouterr().out.strip())

            def profiled() -> bool:
                response = requests.get(f"{url}/v1/profiles/u9", auth=reader, timeout=5)
                return response.ok and response.json()["traits"] == {"first_name": "Ivy"}

            wait_for(profiled, what="the profile to be updated")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output


def test_errors_are_one_line_and_exit_1(tmp_path: Path, capsys) -> None:
    os.chdir(tmp_path)
    assert main(["events", "tail", "--no-follow"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "endpoints.yml" in err[0]


def test_a_mistyped_option_is_a_usage_error_not_a_crash(capsys) -> None:
    assert main(["events", "tail", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --bogus" in err and "Traceback" not in err
