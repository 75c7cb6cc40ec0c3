"""The offline evaluations `engage recs evaluate` wrote (`var/evaluations/DATASET-PROTOCOL.json`), read
back for the dashboard: nothing is evaluated during a request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engage.recommend.evaluation.metrics import LABELS, METRICS
from engage.recommend.evaluation.report import CHART_METRICS
from engage.recommend.evaluation.runner import FORMAT_VERSION

__all__ = ["StoredEvaluation", "stored_evaluations", "COLUMNS", "CHART_METRICS", "LABELS"]

COLUMNS = tuple(dict.fromkeys(METRICS))
"""The metrics in report order, each once."""


@dataclass(frozen=True)
class StoredEvaluation:
    name: str
    """The file's name without .json: the dataset and the protocol."""
    written_at: datetime
    data: dict[str, Any]
    """`Evaluation.to_dict()` as written."""

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.data.get("results") or [])


def stored_evaluations(folder: Path) -> tuple[list[StoredEvaluation], list[str]]:
    """The evaluations in `folder`, the latest written first, and a line for each file left out."""
    found: list[StoredEvaluation] = []
    problems: list[str] = []
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: unreadable ({exc})")
            continue
        version = data.get("format") if isinstance(data, dict) else None
        if not isinstance(version, int) or version > FORMAT_VERSION:
            problems.append(
                f"{path.name}: format {version!r}, newer than this engage reads ({FORMAT_VERSION})"
            )
            continue
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        found.append(StoredEvaluation(path.stem, written, data))
    found.sort(key=lambda evaluation: evaluation.written_at, reverse=True)
    return found, problems
