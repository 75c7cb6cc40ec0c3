"""The Rasa server and engage's action server as child processes: started, awaited, stopped.

`RasaServer` runs `rasa run` from `.venv-rasa` in the workspace folder (endpoints.yml's relative paths are
relative to it), with its HTTP API behind the token of endpoints.yml's `rasa:` section; it is ready when
`GET /status?token=...` answers, which takes 15-80 s while the model loads. `ActionServerProcess` runs
`engage bot actions` (rasa-sdk in engage's own environment) and is ready when `GET /health` answers.
Each writes its output to a file under `var/log/` and is stopped as a group: SIGTERM, then SIGKILL.

    with ActionServerProcess(workspace.root), RasaServer(workspace, model) as rasa:
        requests.post(f"{rasa.url}/webhooks/rest/webhook", json={"sender": "u1", "message": "hi"})
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import requests

from engage.chat.rasa._process import stop_group
from engage.chat.rasa.environment import RasaEnvironment, rasa_environment
from engage.chat.rasa.training import last_error
from engage.errors import EngageError
from engage.workspace import Workspace

__all__ = ["ServiceProcess", "RasaServer", "ActionServerProcess", "RASA_LOG", "ACTIONS_LOG"]

RASA_LOG = "var/log/rasa.log"
ACTIONS_LOG = "var/log/actions.log"
ACTION_HOST, ACTION_PORT = "127.0.0.1", 5055
_POLL = 0.25


class ServiceProcess:
    """A child process serving HTTP at `url`, ready once `GET url + ready_path` answers 200."""

    name = "service"

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        environ: dict[str, str] | None,
        log_path: Path,
        url: str,
        ready_path: str,
        timeout: float,
    ):
        self.command = list(command)
        self.cwd = cwd
        self.environ = environ
        self.log_path = log_path
        self.url = url
        self.ready_path = ready_path
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where this run's output starts in the log

    def start(self) -> Self:
        """Start the process (appending its output to `log_path`) without waiting for it to serve."""
        if self.process is not None:
            raise RuntimeError(f"{self.name} is already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches engage, which stops its children in order
            )
        return self

    def wait_ready(self, timeout: float | None = None) -> float:
        """Block until the server answers; the seconds since it started. EngageError if it exits first or
        does not answer within `timeout` (default: the one given at construction)."""
        process = self.process  # `stop()` from another thread clears the attribute, not this one
        if process is None:
            raise RuntimeError(f"{self.name} is not started")
        started = time.monotonic()
        deadline = started + (self.timeout if timeout is None else timeout)
        with requests.Session() as session:
            while True:
                code = process.poll()
                if code is not None:
                    raise EngageError(
                        f"{self.name} exited (code {code}) before serving: {self._last_error()}"
                    )
                if self._answers(session):
                    return time.monotonic() - started
                if time.monotonic() > deadline:
                    self.stop()
                    raise EngageError(
                        f"{self.name} did not answer on {self.url} within {deadline - started:.0f} s "
                        f"(log: {self.log_path})"
                    )
                time.sleep(_POLL)

    @property
    def running(self) -> bool:
        process = self.process
        return process is not None and process.poll() is None

    def stop(self, grace: float = 20.0) -> int | None:
        """Stop the process and its children (SIGTERM, then SIGKILL after `grace` s); its exit code."""
        if self.process is None:
            return None
        code = stop_group(self.process, grace)
        self.process = None
        return code

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _answers(self, session: requests.Session) -> bool:
        try:
            return session.get(self.url + self.ready_path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _last_error(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            output = log.read().decode("utf-8", errors="replace")
        return f"{last_error(output)} (log: {self.log_path})"


class RasaServer(ServiceProcess):
    """`rasa run` on the workspace's endpoints file (endpoints.yml, or the one ENGAGE_ENDPOINTS names) and
    `bot/credentials.yml` with `model`, its HTTP API enabled behind the token; host, port and token default
    to the endpoints file's `rasa:` section."""

    name = "Rasa"

    def __init__(
        self,
        workspace: Workspace,
        model: Path,
        *,
        host: str | None = None,
        port: int | None = None,
        token: str | None = None,
        environment: RasaEnvironment | None = None,
        timeout: float = 180.0,
    ):
        config = workspace.endpoints.rasa
        self.host = host or config.host
        self.port = port or config.port
        self.token = token or config.token
        environment = (environment or rasa_environment()).require()
        root = workspace.root
        credentials = root / "bot" / "credentials.yml"
        command = environment.command(
            "run", "--enable-api", "--auth-token", self.token, "-i", self.host, "-p", str(self.port),
            "--endpoints", str(workspace.endpoints_path), "--model", str(model), "--cors", "*",
            *(["--credentials", str(credentials)] if credentials.is_file() else []),
        )  # fmt: skip
        (root / "var").mkdir(exist_ok=True)  # Rasa's SQLite files live there; Rasa does not create it
        super().__init__(
            command,
            cwd=root,
            environ=environment.environ(root),
            log_path=root / RASA_LOG,
            url=f"http://{_url_host(self.host)}:{self.port}",
            ready_path=f"/status?token={self.token}",
            timeout=timeout,
        )


class ActionServerProcess(ServiceProcess):
    """`engage bot actions`: engage's custom actions served by rasa-sdk, in engage's own environment."""

    name = "the action server"

    def __init__(
        self, workspace_root: Path, host: str = ACTION_HOST, port: int = ACTION_PORT, timeout: float = 60.0
    ):
        self.host, self.port = host, port
        command = [
            sys.executable, "-m", "engage.cli.main", "bot", "actions", "--workspace", str(workspace_root),
            "--host", host, "--port", str(port),
        ]  # fmt: skip
        super().__init__(
            command,
            cwd=workspace_root,
            environ=None,
            log_path=workspace_root / ACTIONS_LOG,
            url=f"http://{_url_host(host)}:{port}",
            ready_path="/health",
            timeout=timeout,
        )

    @classmethod
    def for_workspace(cls, workspace: Workspace) -> ActionServerProcess:
        """Listening where endpoints.yml's `action_endpoint.url` sends Rasa (127.0.0.1:5055 without one)."""
        url = (workspace.endpoints.action_endpoint or {}).get("url")
        parts = urlsplit(str(url)) if url else None
        try:
            port = parts.port if parts is not None else None
        except ValueError:
            raise EngageError(f"endpoints.yml: action_endpoint.url: '{url}' has an invalid port") from None
        host = (parts.hostname if parts is not None else None) or ACTION_HOST
        return cls(workspace.root, host, port or ACTION_PORT)


def _url_host(host: str) -> str:
    """`host` as written in a URL; a server bound to every address is reached on the loopback."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
