"""Running Rasa's commands with their output in a log file, and stopping a child and all its children."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["run_logged", "stop_group"]


def run_logged(
    command: Sequence[str],
    *,
    cwd: Path,
    environ: Mapping[str, str],
    log_path: Path,
    append: bool = False,
    cancel: threading.Event | None = None,
) -> int | None:
    """Run `command` in a session of its own with its output written to `log_path`; its exit code, or None
    when `cancel` was set first (the command is then stopped)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            while True:
                try:
                    return process.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    if cancel is not None and cancel.is_set():
                        stop_group(process)
                        return None
        except BaseException:  # Ctrl-C in the foreground: the child is in its own session, stop it here
            stop_group(process)
            raise


def stop_group(process: subprocess.Popen[bytes], grace: float = 20.0) -> int | None:
    """Stop `process` and its children (it must have been started with `start_new_session=True`): SIGTERM,
    then SIGKILL after `grace` seconds. Its exit code, None if it could not be reaped."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    _kill_leftovers(process.pid)
    try:
        return process.wait(timeout=1)
    except subprocess.TimeoutExpired:
        return None


def _kill_leftovers(group: int) -> None:
    """Children that outlived their parent (e.g. a worker pool) still carry its group id."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
