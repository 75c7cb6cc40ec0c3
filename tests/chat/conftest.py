"""Fixtures of the chatbot's tests: the real Rasa server and engage's real action server.

Rasa runs from `.venv-rasa` (`make` or `engage bot setup` builds it). Without it the tests using these
fixtures skip with the reason, and fail instead when ENGAGE_REQUIRE_SERVICES=1 (CI sets it).

One workspace, one trained model, one Rasa server and one action server serve the whole session:

- `bot_workspace`: a workspace from the shipped example; endpoints.yml points Rasa and the action server
  at free loopback ports.
- `bot_model`: its trained model (`engage bot train`), kept in pytest's cache by content hash, so a run
  trains only when bot/ or the catalog changed.
- `action_server`: `engage bot actions` on that workspace (`.url`, e.g. http://127.0.0.1:PORT).
- `rasa_server`: `rasa run` with that model, its HTTP API behind the token (`.url`, `.token`); it calls
  the action server when a test also asks for `action_server`.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from engage.chat.rasa import ActionServerProcess, RasaEnvironment, RasaServer, rasa_environment
from engage.chat.rasa.training import current_model
from engage.cli.main import main
from engage.workspace import Workspace, init_workspace

ACTION_URL = "url: http://127.0.0.1:5055/webhook"
RASA_URL = "url: http://127.0.0.1:5005"


def require_rasa() -> RasaEnvironment:
    """The Rasa environment; skip (or fail, under ENGAGE_REQUIRE_SERVICES=1) when it is not set up."""
    environment = rasa_environment()
    if environment.ready:
        return environment
    reason = f"Rasa is not set up in {environment.path} (`make` or `engage bot setup` builds it)"
    if os.environ.get("ENGAGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; ENGAGE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bot_workspace_at(root: Path) -> Workspace:
    """A workspace from the example at `root` whose Rasa and action server listen on free ports."""
    init_workspace(root)
    endpoints = root / "endpoints.yml"
    text = endpoints.read_text(encoding="utf-8")
    assert ACTION_URL in text and RASA_URL in text, "the shipped endpoints.yml changed: update tests/chat"
    text = text.replace(ACTION_URL, f"url: http://127.0.0.1:{free_port()}/webhook")
    text = text.replace(RASA_URL, f"url: http://127.0.0.1:{free_port()}")
    endpoints.write_text(text, encoding="utf-8")
    return Workspace.load(root)


def say(rasa: RasaServer, sender: str, message: str, metadata: dict[str, Any] | None = None) -> list[dict]:
    """One turn through Rasa's REST channel: the bot's answers (text, buttons, custom payloads...)."""
    body: dict[str, Any] = {"sender": sender, "message": message}
    if metadata is not None:
        body["metadata"] = metadata
    response = requests.post(f"{rasa.url}/webhooks/rest/webhook", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session")
def rasa_env() -> RasaEnvironment:
    return require_rasa()


@pytest.fixture(scope="session")
def bot_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return bot_workspace_at(tmp_path_factory.mktemp("bot") / "workspace")


@pytest.fixture(scope="session")
def bot_model(bot_workspace: Workspace, rasa_env: RasaEnvironment, request: pytest.FixtureRequest) -> Path:
    """The model of `bot_workspace`'s bot, trained with `engage bot train` unless pytest's cache has it."""
    target = current_model(bot_workspace.root)
    cache = getattr(request.config, "cache", None)
    cached = Path(cache.mkdir("engage-bot-models")) / target.name if cache is not None else None
    if cached is not None and cached.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cached, target)
    else:
        assert main(["bot", "train", "--workspace", str(bot_workspace.root)]) == 0
        assert target.is_file()
        if cached is not None:
            shutil.copy2(target, cached)
    return target


@pytest.fixture(scope="session")
def action_server(bot_workspace: Workspace) -> Iterator[ActionServerProcess]:
    with ActionServerProcess.for_workspace(bot_workspace) as server:
        yield server


@pytest.fixture(scope="session")
def rasa_server(bot_workspace: Workspace, bot_model: Path, rasa_env: RasaEnvironment) -> Iterator[RasaServer]:
    with RasaServer(bot_workspace, bot_model, environment=rasa_env) as server:
        yield server
