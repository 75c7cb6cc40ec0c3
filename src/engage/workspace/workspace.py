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
from engage.workspace.endpoints import ENDPOINTS_FILE, Endpoints, read_endpoints

__all__ = ["Workspace", "find_workspace", "init_workspace", "example_workspace"]

VAR_DIR = "var"
_SECRET_FILE = "secret.key"
_NEVER_COPIED = frozenset({VAR_DIR, "__pycache__", ".rasa"})
_GITIGNORE = "# Written by engage at run time; not content.\nvar/\nbot/models/\nbot/.rasa/\n__pycache__/\n"


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: its absolute root and its validated endpoints.yml."""

    root: Path
    endpoints: Endpoints

    @classmethod
    def load(cls, root: Path, environ: Mapping[str, str] | None = None) -> Workspace:
        """Load the workspace at `root`; a ConfigError lists every problem of endpoints.yml.

        `${VAR}` come from `environ` (default: os.environ)."""
        root = root.resolve()
        if not (root / ENDPOINTS_FILE).is_file():
            raise WorkspaceError(f"{root} is not an engage workspace: it has no {ENDPOINTS_FILE}")
        _, endpoints, problems = read_endpoints(root, environ)
        if endpoints is None:
            raise ConfigError(problems)
        return cls(root, endpoints)

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
    """The workspace root: `explicit` (from --workspace or ENGAGE_WORKSPACE) if given, which must hold
    endpoints.yml; otherwise the first folder holding endpoints.yml from `start` (default: the current
    folder) up."""
    if explicit is not None:
        root = explicit.expanduser().resolve()
        if not root.is_dir():
            raise WorkspaceError(f"workspace {explicit} does not exist or is not a folder")
        if not (root / ENDPOINTS_FILE).is_file():
            raise WorkspaceError(
                f"workspace {explicit} has no {ENDPOINTS_FILE}; create a workspace with `engage init DIR`"
            )
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ENDPOINTS_FILE).is_file():
            return folder
    raise WorkspaceError(
        f"no engage workspace: no {ENDPOINTS_FILE} in {here} or any folder above it; "
        "pass --workspace DIR, set ENGAGE_WORKSPACE, or create one with `engage init DIR`"
    )


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
