"""Training the bot only when it changed: models named by the content hash of what they learn from.

A model learns from `bot/config.yml`, `bot/domain.yml` (or `bot/domain/`), everything under `bot/data/`,
and the product lookup table engage writes from the workspace's catalog (`var/bot/lookup/products.yml`).
Their hash names the model, `bot/models/<hash>.tar.gz`: when that file exists the bot is up to date.
`bot/credentials.yml`, `bot/tests/` and the constraints change nothing a model holds.

Rasa trains into a folder of its own under var/ and the model is moved into place when complete, so an
interrupted training never leaves a file that looks up to date.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engage.chat.rasa._process import run_logged
from engage.chat.rasa.environment import RASA_VERSION, RasaEnvironment, rasa_environment
from engage.errors import EngageError
from engage.recommend.catalog import load_catalog

__all__ = [
    "LOOKUP_FILE",
    "MODELS_DIR",
    "TRAIN_LOG",
    "Trained",
    "TrainingCancelled",
    "write_lookup",
    "bot_hash",
    "model_path",
    "current_model",
    "ensure_model",
    "train_model",
    "last_error",
]

BOT_DIR = "bot"
MODELS_DIR = "bot/models"
LOOKUP_FILE = "var/bot/lookup/products.yml"
TRAIN_LOG = "var/log/rasa-train.log"
KEPT_MODELS = 3
"""Models kept in bot/models after a training: the new one and the most recent others."""
_DIGEST_CHARS = 16
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_YAML_MARK = re.compile(r'in "(?P<file>[^"]+)", line (?P<line>\d+)')
_ERROR_LINE = re.compile(r"\b(\w*Error|\w*Exception|InvalidDomain)\b|error:|^\s*ERROR\b", re.IGNORECASE)


class TrainingCancelled(EngageError):
    """The training was stopped before it finished (engage is stopping)."""


@dataclass(frozen=True)
class Trained:
    """The model of the bot as it is now; `seconds` is how long training took, 0 when it was up to date."""

    path: Path
    digest: str
    trained: bool
    seconds: float = 0.0


def write_lookup(root: Path) -> Path | None:
    """Write the `product` lookup table of the workspace's catalog (one product name per line) to
    `var/bot/lookup/products.yml` and return its path; None (and no file) when the catalog is empty.
    The file is rewritten only when the names change."""
    names = sorted({" ".join(p.name.split()) for p in load_catalog(root)} - {""}, key=str.casefold)
    path = root / LOOKUP_FILE
    if not names:
        path.unlink(missing_ok=True)
        return None
    lines = ['version: "3.1"', "nlu:", "- lookup: product", "  examples: |", *(f"    - {n}" for n in names)]
    text = "\n".join(lines) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(text, encoding="utf-8")
        draft.replace(path)
    return path


def bot_hash(root: Path, lookup: Path | None = None) -> str:
    """The content hash of what a model of the workspace at `root` learns from (with the Rasa version)."""
    digest = hashlib.sha256(f"rasa {RASA_VERSION}\n".encode())
    files = [(path.relative_to(root).as_posix(), path) for path in _bot_files(root)]
    if lookup is not None:
        files.append(("lookup/products.yml", lookup))
    for name, path in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()[:_DIGEST_CHARS]


def model_path(root: Path, digest: str) -> Path:
    return root / MODELS_DIR / f"{digest}.tar.gz"


def current_model(root: Path) -> Path:
    """Where the model of the bot as it is now belongs (the file may not exist yet)."""
    root = root.resolve()
    return model_path(root, bot_hash(root, write_lookup(root)))


def ensure_model(
    root: Path,
    environment: RasaEnvironment | None = None,
    *,
    force: bool = False,
    cancel: threading.Event | None = None,
) -> Trained:
    """The model of the bot at `root` as it is now, trained first unless it exists (or when `force`)."""
    root = root.resolve()
    lookup = write_lookup(root)
    digest = bot_hash(root, lookup)
    target = model_path(root, digest)
    if target.is_file() and not force:
        return Trained(target, digest, trained=False)
    started = time.monotonic()
    train_model(root, (environment or rasa_environment()).require(), lookup, target, cancel)
    _prune(target.parent, keep=target)
    return Trained(target, digest, trained=True, seconds=time.monotonic() - started)


def train_model(
    root: Path,
    environment: RasaEnvironment,
    lookup: Path | None,
    target: Path,
    cancel: threading.Event | None = None,
) -> None:
    """Run `rasa train` on the bot at `root` and the lookup table, leaving the model at `target`.

    Rasa's output goes to var/log/rasa-train.log; a failure is an EngageError quoting its error line."""
    for required in ("config.yml", "data"):
        if not (root / BOT_DIR / required).exists():
            raise EngageError(f"{BOT_DIR}/{required}: missing; a Rasa project holds it")
    domain = _domain(root)
    work = root / "var" / "bot" / f"training-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log_path = root / TRAIN_LOG
    command = environment.command(
        "train", "--domain", str(domain.relative_to(root)),
        "--data", f"{BOT_DIR}/data", *([str(lookup.relative_to(root))] if lookup else []),
        "--config", f"{BOT_DIR}/config.yml", "--out", str(work.relative_to(root)),
        "--fixed-model-name", target.name.removesuffix(".tar.gz"),
    )  # fmt: skip
    try:
        code = run_logged(
            command,
            cwd=root,
            environ=environment.environ(root),
            log_path=log_path,
            cancel=cancel,
        )
        if code is None:
            raise TrainingCancelled("training the bot was stopped")
        built = work / target.name
        if code != 0 or not built.is_file():
            reason = last_error(log_path.read_text(encoding="utf-8", errors="replace"))
            raise EngageError(f"rasa train failed (exit {code}): {reason} (log: {TRAIN_LOG})")
        target.parent.mkdir(parents=True, exist_ok=True)
        built.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def last_error(output: str) -> str:
    """The line of Rasa's output that says what went wrong (with the file and line a YAML error names), else
    its last line."""
    lines = [line.strip() for line in _ANSI.sub("", output).splitlines() if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if _ERROR_LINE.search(line) and not line.startswith(("Traceback", "File ")):
            where = next(filter(None, map(_YAML_MARK.match, lines[index + 1 : index + 3])), None)
            return f"{line} ({where['file']} line {where['line']})" if where else line
    return lines[-1] if lines else "no output"


def _domain(root: Path) -> Path:
    for candidate in (root / BOT_DIR / "domain.yml", root / BOT_DIR / "domain"):
        if candidate.exists():
            return candidate
    raise EngageError(f"{BOT_DIR}/domain.yml: missing; a Rasa project holds it")


def _bot_files(root: Path) -> Iterator[Path]:
    bot = root / BOT_DIR
    if (bot / "config.yml").is_file():
        yield bot / "config.yml"
    for folder in (bot / "domain", bot / "data"):
        yield from (
            path
            for path in folder.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(bot).parts)
        )
    if (bot / "domain.yml").is_file():
        yield bot / "domain.yml"


def _prune(folder: Path, keep: Path) -> None:
    models = sorted(folder.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime, reverse=True)
    for old in [model for model in models if model != keep][KEPT_MODELS - 1 :]:
        old.unlink(missing_ok=True)
