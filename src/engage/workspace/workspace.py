"""The workspace: the folder holding endpoints.yml, found like a dbt project, loaded once per process."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engage.errors import ConfigError, WorkspaceError
from engage.workspace.connectors import ConnectorConfig, load_connector
from engage.workspace.endpoints import (
    ENDPOINTS_ENV,
    ENDPOINTS_FILE,
    Endpoints,
    endpoints_file,
    read_endpoints,
)

__all__ = ["Workspace", "find_workspace", "init_workspace", "example_workspace"]

VAR_DIR = "var"
_SECRET_FILE = "secret.key"
_NEVER_COPIED = frozenset({VAR_DIR, "__pycache__", ".rasa"})
_GITIGNORE = (
    "# Written by engage at run time; not content.\nvar/\nbot/models/\nbot/.rasa/\n__pycache__/\n"
    "# A host's own settings and secrets (see .env.example).\n.env\n"
)


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: its absolute root and its validated endpoints file (endpoints.yml, or the one
    `ENGAGE_ENDPOINTS` names)."""

    root: Path
    endpoints: Endpoints
    endpoints_file: str = ENDPOINTS_FILE
    """The file `endpoints` was read from, relative to `root`; Rasa started by engage reads it too."""

    @classmethod
    def load(cls, root: Path, environ: Mapping[str, str] | None = None) -> Workspace:
        """Load the workspace at `root`; a ConfigError lists every problem of endpoints.yml.

        `${VAR}` come from `environ` (default: os.environ)."""
        root = root.resolve()
        name = endpoints_file(environ)
        if not (root / name).is_file():
            raise WorkspaceError(f"{root} is not an engage workspace: it has no {_named(name)}")
        _, endpoints, problems = read_endpoints(root, environ)
        if endpoints is None:
            raise ConfigError(problems)
        return cls(root, endpoints, name)

    @property
    def endpoints_path(self) -> Path:
        return self.root / self.endpoints_file

    @property
    def var_dir(self) -> Path:
        """`root/var`, for what engage writes at run time (database, outbox, models); created on demand."""
        path = self.root / VAR_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    def secret_key(self) -> bytes:
        """`endpoints.yml`'s `secret_key`, else the one kept in var/secret.key (made on first use)."""
        if self.endpoints.secret_key:
            return self.endpoints.secret_key.encode()
        path = self.var_dir / _SECRET_FILE
        if not path.exists():  # written whole, then linked into place: a process never reads half a key
            draft = path.with_name(f".{_SECRET_FILE}.{os.getpid()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(secrets.token_hex(32) + "\n")
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text(encoding="ascii").strip().encode()

    def connector(self, name: str, environ: Mapping[str, str] | None = None) -> ConnectorConfig:
        """The validated `connectors/NAME.yml`; ConfigError if it is missing, invalid or lacks a `${VAR}`."""
        return load_connector(self.root, name, environ)


def find_workspace(explicit: Path | None = None, start: Path | None = None) -> Path:
    """The workspace root: `explicit` (from --workspace or ENGAGE_WORKSPACE) if given, which must hold the
    endpoints file (endpoints.yml, or the one ENGAGE_ENDPOINTS names); otherwise the first folder holding it
    from `start` (default: the current folder) up."""
    name = endpoints_file()
    if explicit is not None:
        root = explicit.expanduser().resolve()
        if not root.is_dir():
            raise WorkspaceError(f"workspace {explicit} does not exist or is not a folder")
        if not (root / name).is_file():
            raise WorkspaceError(
                f"workspace {explicit} has no {_named(name)}; create a workspace with `engage init DIR`"
            )
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / name).is_file():
            return folder
    raise WorkspaceError(
        f"no engage workspace: no {_named(name)} in {here} or any folder above it; "
        "pass --workspace DIR, set ENGAGE_WORKSPACE, or create one with `engage init DIR`"
    )


def _named(name: str) -> str:
    """The endpoints file in a message, saying where a name other than endpoints.yml came from."""
    return name if name == ENDPOINTS_FILE else f"{name} (from {ENDPOINTS_ENV})"


def example_workspace() -> Path:
    """The example workspace shipped with engage (in a checkout: links to the repository's own files)."""
    example = Path(__file__).resolve().parent.parent / "example"
    if not (example / ENDPOINTS_FILE).is_file():
        raise WorkspaceError(f"the example workspace is missing from this installation of engage ({example})")
    return example


def init_workspace(dest: Path, example: Path | None = None) -> None:
    """Create a workspace at `dest` from `example` (default: the shipped one), following its symlinks and
    leaving out what runs write (var/, caches, trained models); `dest` must not exist or be empty."""
    if dest.exists() and not dest.is_dir():
        raise WorkspaceError(f"cannot create a workspace at {dest}: it is a file")
    if dest.is_dir() and any(dest.iterdir()):
        raise WorkspaceError(f"cannot create a workspace in {dest}: the folder is not empty")
    source = example_workspace() if example is None else example

    def never_copied(folder: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name in _NEVER_COPIED or name.endswith(".pyc")}
        if Path(folder) == source / "bot":
            skipped |= {"models"} & set(names)  # trained models: rebuilt with `rasa train`
        return skipped

    shutil.copytree(source, dest, symlinks=False, ignore=never_copied, dirs_exist_ok=True)
    (dest / ".gitignore").write_text(_GITIGNORE, encoding="utf-8")
