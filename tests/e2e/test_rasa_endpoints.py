"""endpoints.yml holds engage's keys and Rasa's; Rasa 3.6 itself must still load it.

Rasa lives in its own Python 3.10 environment, `.venv-rasa` (built by the bot's set-up); until it exists
this test skips with that reason. ENGAGE_RASA_PYTHON points at another Rasa interpreter.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import MakeWorkspace

REPO = Path(__file__).resolve().parents[2]
LOAD = """
import sys
from rasa.core.utils import AvailableEndpoints
endpoints = AvailableEndpoints.read_endpoints(sys.argv[1])
print(endpoints.action.url, endpoints.tracker_store.type, endpoints.tracker_store.kwargs.get("db"))
print(endpoints.event_broker.type, endpoints.event_broker.kwargs.get("db"))
"""


def _rasa_python() -> Path:
    explicit = os.environ.get("ENGAGE_RASA_PYTHON")
    candidate = Path(explicit) if explicit else REPO / ".venv-rasa" / "bin" / "python"
    if not candidate.exists():
        pytest.skip(f"no Rasa environment at {candidate} (created with the bot's set-up)")
    return candidate


@pytest.mark.slow
def test_rasa_loads_the_shipped_endpoints_file(make_workspace: MakeWorkspace) -> None:
    python = _rasa_python()
    workspace = make_workspace()
    result = subprocess.run(
        [str(python), "-c", LOAD, str(workspace.root / "endpoints.yml")],
        capture_output=True, text=True, timeout=300, cwd=workspace.root,
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [
        "http://127.0.0.1:5055/webhook", "SQL", "var/rasa-tracker.db", "SQL", "var/rasa-events.db",
    ]  # fmt: skip
