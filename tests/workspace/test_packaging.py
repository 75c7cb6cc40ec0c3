"""A non-editable install must carry the example workspace that `engage init` copies."""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "engage"


def test_every_example_file_is_declared_as_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["engage"]
    # As setuptools expands them: recursive globs that follow the example's symlinks.
    declared = {
        Path(found) for pattern in patterns for found in glob.glob(str(PACKAGE / pattern), recursive=True)
    }
    run_output = ("__pycache__", "/bot/models/")  # what runs write (a trained bot), not the example's files
    files = {
        Path(found)
        for found in glob.glob(str(PACKAGE / "example" / "**" / "*"), recursive=True)
        if Path(found).is_file() and not any(part in found for part in run_output)
    }
    assert len(files) >= 10, "the example workspace looks incomplete"
    assert sorted(str(path.relative_to(PACKAGE)) for path in files - declared) == [], (
        "add these to [tool.setuptools.package-data] in pyproject.toml"
    )
