"""MovieLens-100K (943 users, 1,682 movies, 100,000 ratings), read from inside the `recbole==1.2.1` wheel.

Its licence forbids redistribution, so engage neither commits nor ships it: pip downloads the wheel (about
2 MB, without dependencies) into a cache folder the caller chooses, such as the workspace's `var/cache/`,
and the ratings are read from it with zipfile. RecBole is never installed. Every rating counts as one
interaction of weight 1, whatever its value: implicit feedback, as recommender evaluations usually take it.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from engage.errors import EngageError

__all__ = ["REQUIREMENT", "WHEEL", "movielens_100k", "download_wheel"]

REQUIREMENT = "recbole==1.2.1"
WHEEL = "recbole-1.2.1-py3-none-any.whl"
_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
_COLUMNS = ("user_id:token", "item_id:token", "timestamp:float")


def movielens_100k(cache: Path, *, download: bool = True) -> pd.DataFrame:
    """The ratings as interactions (user and item ids as the file's tokens, weight 1.0, timestamps in
    seconds), read from the wheel in `cache`, which is first downloaded there when missing and `download`."""
    wheel = cache / WHEEL
    if not wheel.exists():
        if not download:
            raise EngageError(f"MovieLens-100K: {wheel} is missing; {_how_to_download(cache)}")
        download_wheel(cache)
    return _read_ratings(wheel)


def download_wheel(cache: Path) -> Path:
    """Download the recbole 1.2.1 wheel into `cache` with this interpreter's pip and return its path."""
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    command += ["--disable-pip-version-check", "--quiet", "-d", str(cache), REQUIREMENT]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngageError(f"MovieLens-100K: could not run pip ({exc}); {_how_to_download(cache)}") from exc
    if completed.returncode != 0 or not (cache / WHEEL).exists():
        lines = [line.strip() for line in (completed.stderr + completed.stdout).splitlines() if line.strip()]
        reason = lines[-1] if lines else f"pip exited with {completed.returncode}"
        raise EngageError(
            f"MovieLens-100K: could not download {REQUIREMENT} from PyPI ({reason}); is the network up? "
            f"{_how_to_download(cache)}"
        )
    return cache / WHEEL


def _how_to_download(cache: Path) -> str:
    return f"download it on a connected machine with `pip download --no-deps {REQUIREMENT} -d {cache}`"


def _read_ratings(wheel: Path) -> pd.DataFrame:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(_MEMBER) as ratings:
            frame = pd.read_csv(ratings, sep="\t", dtype={"user_id:token": str, "item_id:token": str})
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise EngageError(f"{wheel}: cannot read {_MEMBER} ({exc}); delete the file and run again") from exc
    missing = sorted(set(_COLUMNS) - set(frame.columns))
    if missing:
        raise EngageError(f"{wheel}: {_MEMBER} lacks the column(s) {', '.join(missing)}")
    return pd.DataFrame(
        {
            "user": frame["user_id:token"],
            "item": frame["item_id:token"],
            "weight": np.ones(len(frame)),
            "timestamp": frame["timestamp:float"].astype(np.int64),
        }
    )
