"""Model versions under `var/models/`: each a folder with the fitted model, what serving needs with it (item
ids, similarities, the histories trained on) and a manifest (what it was trained on, when, how long it
took, its metrics); `CURRENT` names the one to serve.

Serving processes notice a new `CURRENT` and load it on a background thread while they keep answering
with the version they have, then swap the reference: no request waits for a load.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import threading
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from engage.recommend.models import Model
from engage.recommend.models.popularity import Popularity

__all__ = ["Trained", "ModelVersion", "ModelStore"]

_CURRENT = "CURRENT"
_MODEL = "model.pickle"
_MANIFEST = "manifest.json"
_Pointer = tuple[tuple[int, int], str]


@dataclass(frozen=True)
class Trained:
    """Everything one training produced, aligned with one item order."""

    model: Model
    popularity: Popularity
    """Time-decayed distinct shoppers per item: the answer for a shopper with no history."""
    items: np.ndarray
    """Item ids in the model's column order."""
    neighbours: sparse.csr_matrix
    """Item × item cosine similarity of co-occurrence (for related items, carts and reasons)."""
    users: np.ndarray
    """Profile ids in the order of `histories`' rows."""
    histories: sparse.csr_matrix
    """Each user's serving row when trained (their latest interactions, weighted as the model asks):
    campaigns score whole audiences from them without reading every shopper's history again."""
    segment_popularity: dict[str, np.ndarray] = field(default_factory=dict)
    """Popularity among each segment's members, for a shopper with no history who is in a segment."""


@dataclass(frozen=True)
class ModelVersion(Trained):
    version: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    item_index: dict[str, int] = field(init=False)
    user_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_index", {item: index for index, item in enumerate(self.items)})
        object.__setattr__(self, "user_index", {user: index for index, user in enumerate(self.users)})

    @property
    def trained_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest["trained_at"])


class ModelStore:
    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        self._current: ModelVersion | None = None
        self._seen: _Pointer | None = None
        self._read: _Pointer | None = None
        self._current_path = folder / _CURRENT
        self._loading: threading.Thread | None = None

    def save(self, trained: Trained, manifest: dict[str, Any]) -> ModelVersion:
        """Write a new version and make it current (here at once; in other processes at their next look)."""
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        manifest = {**manifest, "version": version, "model": trained.model.name}
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = self.folder / f".{version}"
        staging.mkdir()
        parts = {part.name: getattr(trained, part.name) for part in fields(Trained)}
        with (staging / _MODEL).open("wb") as file:
            pickle.dump(parts, file, protocol=5)
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        staging.rename(self.folder / version)
        pointer = self.folder / f".{_CURRENT}.{version}"
        pointer.write_text(version + "\n")
        os.replace(pointer, self.folder / _CURRENT)
        loaded = ModelVersion(**parts, version=version, manifest=manifest)
        with self._lock:
            self._current = loaded
            self._seen = self._pointer()
        return loaded

    def current(self) -> ModelVersion | None:
        """The version to serve now. A newer `CURRENT` starts loading in the background; until it is in,
        the previous version answers (the first call of a process, with nothing to answer yet, waits)."""
        pointer = self._pointer()
        if pointer is None or pointer == self._seen:
            return self._current
        if self._current is None:
            self._load(pointer)
            return self._current
        with self._lock:
            if self._loading is None or not self._loading.is_alive():
                self._loading = threading.Thread(target=self._load, args=(pointer,), daemon=True)
                self._loading.start()
        return self._current

    def wait(self) -> ModelVersion | None:
        """The current version once any background load has finished (for tests and the CLI)."""
        self.current()
        loading = self._loading
        if loading is not None:
            loading.join()
        return self._current

    def manifests(self) -> list[dict[str, Any]]:
        """Every saved version's manifest, oldest first."""
        if not self.folder.is_dir():
            return []
        paths = sorted(self.folder.glob(f"*/{_MANIFEST}"))
        return [json.loads(path.read_text()) for path in paths if not path.parent.name.startswith(".")]

    def prune(self, keep: int = 5) -> None:
        """Remove all but the newest `keep` versions (never the current one)."""
        current = self._pointer()
        versions = sorted(path for path in self.folder.iterdir() if path.is_dir() and path.name[0] != ".")
        for path in versions[:-keep]:
            if current is None or path.name != current[1]:
                shutil.rmtree(path, ignore_errors=True)

    def _pointer(self) -> _Pointer | None:
        """`CURRENT`'s identity (inode and time: it is replaced, never rewritten) and the version it names,
        read only when it changed: every request looks."""
        try:
            status = os.stat(self._current_path)
        except FileNotFoundError:
            return None
        identity = (status.st_ino, status.st_mtime_ns)
        if self._read is None or self._read[0] != identity:
            try:
                self._read = (identity, self._current_path.read_text().strip())
            except FileNotFoundError:
                return None
        return self._read

    def _load(self, pointer: _Pointer) -> None:
        folder = self.folder / pointer[1]
        with (folder / _MODEL).open("rb") as file:
            parts = pickle.load(file)  # noqa: S301 - written by this store, under the workspace's var/
        manifest = json.loads((folder / _MANIFEST).read_text())
        loaded = ModelVersion(**parts, version=pointer[1], manifest=manifest)
        with self._lock:
            self._current = loaded
            self._seen = pointer
