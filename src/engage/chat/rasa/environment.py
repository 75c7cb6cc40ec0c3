"""`.venv-rasa`: the Python 3.10 environment that runs Rasa, beside engage's own.

Rasa Open Source 3.6 supports Python 3.8-3.10 only and pins old libraries (TensorFlow 2.12, SQLAlchemy 1.4),
so it gets a virtual environment of its own, made from the machine's Python 3.10 found at run time:
`ENGAGE_RASA_PYTHON310` or `PYTHON310`, else `python3.10` on PATH, else pyenv's 3.10.13 or newest 3.10.
It holds `rasa==3.6.21` installed by plain pip under the constraints committed in `bot/constraints.txt`.
A stamp file, written last, records what was installed: an environment whose stamp matches is complete and
is never rebuilt.

The environment lives in `ENGAGE_RASA_VENV`, else in `.venv-rasa` beside the environment running engage
(in a checkout: the repository, next to `.venv`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from engage.errors import EngageError

__all__ = [
    "RASA_VERSION",
    "CONSTRAINTS_FILE",
    "RasaEnvironment",
    "rasa_environment",
    "find_python310",
    "setup_environment",
]

RASA_VERSION = "3.6.21"
CONSTRAINTS_FILE = "bot/constraints.txt"
"""Relative to a workspace (or the repository); pins every package Rasa installs, from `pip freeze`."""
CACHE_DIR = "var/bot/cache"
VENV_NAME = ".venv-rasa"
STAMP_NAME = ".installed-stamp"
PYENV_VERSION = "3.10.13"
_PYTHON_VARIABLES = ("ENGAGE_RASA_PYTHON310", "PYTHON310")
_VERSION_PART = re.compile(r"\d+")
_QUIET_ENVIRON = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ start-up chatter
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",  # Rasa 3.6 runs SQLAlchemy 1.4
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
}


@dataclass(frozen=True)
class RasaEnvironment:
    """A virtual environment holding Rasa; `ready` once its stamp is written."""

    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def rasa(self) -> Path:
        return self.path / "bin" / "rasa"

    @property
    def stamp(self) -> Path:
        return self.path / STAMP_NAME

    @property
    def ready(self) -> bool:
        return self.stamp.is_file() and self.rasa.is_file()

    def require(self) -> RasaEnvironment:
        """Itself when ready; an EngageError naming `engage bot setup` otherwise."""
        if not self.ready:
            raise EngageError(f"Rasa is not set up in {self.path}: run `engage bot setup` (or `make`)")
        return self

    def command(self, *args: str) -> list[str]:
        """The command line of `rasa ARGS...`."""
        return [str(self.rasa), *args]

    def environ(self, root: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of every Rasa process: this one's (endpoints.yml's `${VAR}` must reach Rasa too),
        telemetry off, TensorFlow's and SQLAlchemy's start-up noise silenced, and with a workspace `root`,
        Rasa's training cache in its var/ (instead of `.rasa/` in the current folder)."""
        environ = {**os.environ, **_QUIET_ENVIRON, **(extra or {})}
        if root is not None:
            environ["RASA_CACHE_DIRECTORY"] = str(root / CACHE_DIR)
        environ.pop("PYTHONPATH", None)  # engage's Python 3.11 paths must not leak into Python 3.10
        environ.pop("PYTHONHOME", None)
        return environ


def rasa_environment(environ: Mapping[str, str] | None = None) -> RasaEnvironment:
    """The Rasa environment engage uses: `ENGAGE_RASA_VENV`, else `.venv-rasa` beside engage's own."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("ENGAGE_RASA_VENV")
    if explicit:
        return RasaEnvironment(Path(explicit).expanduser().absolute())
    return RasaEnvironment(Path(sys.prefix).absolute().parent / VENV_NAME)


def find_python310(environ: Mapping[str, str] | None = None) -> Path:
    """The machine's Python 3.10: `ENGAGE_RASA_PYTHON310` or `PYTHON310` when set (which must be one),
    else the first that runs of `python3.10` on PATH, pyenv's 3.10.13 and pyenv's newest 3.10."""
    environ = os.environ if environ is None else environ
    for variable in _PYTHON_VARIABLES:
        value = environ.get(variable)
        if value:
            if not _is_python310(value):
                raise EngageError(f"{variable}={value} is not a Python 3.10 interpreter")
            return Path(value)
    for candidate in _candidates(environ):
        if _is_python310(candidate):
            return Path(candidate)
    raise EngageError(
        f"Python 3.10 not found (Rasa {RASA_VERSION} runs on Python 3.8-3.10): install it, e.g. "
        f"`pyenv install {PYENV_VERSION}`, or set ENGAGE_RASA_PYTHON310=/path/to/python3.10"
    )


def setup_environment(
    target: RasaEnvironment,
    constraints: Path,
    python: Path | None = None,
    echo: Callable[[str], None] = print,
) -> bool:
    """Make `target` hold Rasa under `constraints`: False when its stamp already says so, True once built.

    An existing environment is completed in place (pip keeps what is already installed)."""
    if not constraints.is_file():
        raise EngageError(f"{constraints}: missing; it pins the packages of rasa=={RASA_VERSION}")
    expected = _stamp_text(constraints)
    if target.ready and target.stamp.read_text(encoding="utf-8") == expected:
        return False
    if not target.python.exists():
        python = python or find_python310()
        echo(f"creating {target.path} with {python}")
        _run([str(python), "-m", "venv", str(target.path)], f"creating {target.path}", target.environ())
    echo(f"installing rasa=={RASA_VERSION} into {target.path} (a few minutes the first time)")
    target.stamp.unlink(missing_ok=True)
    pip = [str(target.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += [f"rasa=={RASA_VERSION}", "--constraint", str(constraints)]
    _run(pip, f"installing rasa=={RASA_VERSION}", target.environ(extra={"PIP_NO_INPUT": "1"}))
    target.stamp.write_text(expected, encoding="utf-8")
    return True


def _candidates(environ: Mapping[str, str]) -> list[str]:
    found = [shutil.which("python3.10", path=environ.get("PATH"))]
    pyenv = shutil.which("pyenv", path=environ.get("PATH"))
    if pyenv:
        prefix = _output([pyenv, "prefix", PYENV_VERSION])
        found.append(f"{prefix}/bin/python3.10" if prefix else None)
        root = _output([pyenv, "root"])
        if root:
            versions = sorted(Path(root, "versions").glob("3.10*"), key=_version_key, reverse=True)
            found += [str(version / "bin" / "python3.10") for version in versions]
    return list(dict.fromkeys(candidate for candidate in found if candidate))


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in _VERSION_PART.findall(path.name))


def _is_python310(python: str) -> bool:
    """True when `python` runs and is Python 3.10 (pyenv's shims exist for versions not selected)."""
    try:
        check = "import sys; sys.exit(sys.version_info[:2] != (3, 10))"
        return subprocess.run([python, "-c", check], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _output(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def _run(command: list[str], what: str, environ: Mapping[str, str]) -> None:
    try:
        code = subprocess.run(command, env=environ).returncode
    except OSError as exc:
        raise EngageError(f"{what} failed: {exc}") from None
    if code != 0:
        raise EngageError(f"{what} failed (exit {code}); its output is above")


def _stamp_text(constraints: Path) -> str:
    digest = hashlib.sha256(constraints.read_bytes()).hexdigest()
    return f"rasa=={RASA_VERSION}\nconstraints sha256 {digest}\n"
