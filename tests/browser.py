"""Headless Chromium for the browser tests: Debian's `chromium` package driven by Playwright (only its
driver; Playwright never downloads a browser here). Screenshots go to `test-artifacts/` at the repository
root (ENGAGE_TEST_ARTIFACTS overrides it), which CI keeps."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

__all__ = ["ARTIFACTS", "CHROMIUM_ARGS", "chromium_path", "screenshot"]

ARTIFACTS = Path(
    os.environ.get("ENGAGE_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts")
)
# Without the background-networking flags Chromium keeps calling Google's hosts, which this closed network
# refuses; a new profile per browser keeps runs apart.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def chromium_path() -> str:
    """Debian's Chromium; skip (fail under ENGAGE_REQUIRE_SERVICES=1) when it is not installed."""
    found = os.environ.get("ENGAGE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "Chromium is not installed (apt-get install chromium; `make test` installs it)"
    if os.environ.get("ENGAGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; ENGAGE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def screenshot(page, name: str) -> Path:  # noqa: ANN001 - a playwright Page
    """Save the whole page as test-artifacts/NAME.png and return the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
