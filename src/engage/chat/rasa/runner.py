"""The chatbot beside `engage run`: train if the bot changed, then run the action server and Rasa.

All of it happens in a background thread, so the HTTP API serves while Rasa trains (seconds to minutes) and
loads its model (15-80 s). A bot that cannot start, or stops later, is logged as one error and the rest of
engage runs on.
"""

from __future__ import annotations

import logging
import threading
import time

from engage.chat.rasa.environment import RasaEnvironment, rasa_environment
from engage.chat.rasa.processes import ActionServerProcess, RasaServer, ServiceProcess
from engage.chat.rasa.training import TrainingCancelled, ensure_model
from engage.errors import EngageError
from engage.workspace import Workspace

__all__ = ["BotRunner", "bot_runner"]

log = logging.getLogger("engage.chat")


class BotRunner:
    """Start with `start()`, stop with `stop()`: the action server first, then Rasa; Rasa first on the way
    out. `ready` is set once both answer."""

    def __init__(self, workspace: Workspace, environment: RasaEnvironment):
        self.workspace = workspace
        self.environment = environment
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._processes: list[ServiceProcess] = []
        self._thread = threading.Thread(target=self._run, name="chatbot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once both answer; False when the bot could not start (its error is logged) or `timeout`
        passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if not self._thread.is_alive() or (deadline is not None and time.monotonic() > deadline):
                return self.ready.is_set()
        return True

    def stop(self) -> None:
        self._stopping.set()  # before taking the lock: `_launch` starts nothing after this
        self._stop_processes()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            trained = ensure_model(self.workspace.root, self.environment, cancel=self._stopping)
            if trained.trained:
                log.info("trained the bot's model %s in %.0f s", trained.path.name, trained.seconds)
            actions = self._launch(ActionServerProcess.for_workspace(self.workspace))
            rasa = self._launch(RasaServer(self.workspace, trained.path, environment=self.environment))
            if actions is None or rasa is None:
                return
            actions.wait_ready()
            seconds = rasa.wait_ready()
        except TrainingCancelled:
            return
        except EngageError as exc:
            if not self._stopping.is_set():
                log.error("the chatbot is not running: %s", exc)
                self._stop_processes()
            return
        self.ready.set()
        log.info("chatbot ready: Rasa on %s (up in %.0f s), actions on %s", rasa.url, seconds, actions.url)
        self._watch([actions, rasa])

    def _watch(self, processes: list[ServiceProcess]) -> None:
        """Log a process that ends on its own (it is not restarted: its log says why)."""
        while processes and not self._stopping.wait(1.0):
            for process in [process for process in processes if not process.running]:
                processes.remove(process)
                if not self._stopping.is_set():
                    log.error("%s stopped; the chatbot is down (log: %s)", process.name, process.log_path)

    def _launch(self, process: ServiceProcess) -> ServiceProcess | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            self._processes.append(process.start())
        return process

    def _stop_processes(self) -> None:
        with self._lock:
            processes, self._processes = self._processes, []
        for process in reversed(processes):
            process.stop()


def bot_runner(workspace: Workspace, environment: RasaEnvironment | None = None) -> BotRunner | None:
    """The chatbot of `engage run`; None (with one warning) when Rasa is not set up or there is no bot."""
    environment = environment or rasa_environment()
    if not (workspace.root / "bot" / "config.yml").is_file():
        log.warning("the chatbot is off: the workspace has no bot/config.yml")
        return None
    if not environment.ready:
        log.warning("the chatbot is off: Rasa is not set up in %s; run `engage bot setup`", environment.path)
        return None
    return BotRunner(workspace, environment)
