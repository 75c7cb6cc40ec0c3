"""The chat widget of the `/chat` page: `rasa-webchat` (Apache-2.0), the widget made for Rasa's socketio
channel, taken from the npm registry at set-up (`engage bot setup`, `make`) and checked against the
integrity hash the registry published for this version; it is not kept in the repository."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from engage.errors import EngageError

__all__ = ["WIDGET_PACKAGE", "widget_path", "fetch_widget"]

WIDGET_PACKAGE = "rasa-webchat@1.0.1"
WIDGET_INTEGRITY = (
    "sha512-Ld1zVJvTAaTrs6A5p8t70agNNrKYRyXlvqXZRgBoDvKKUXbA0jhJKECi5bdPGlaR6jsmqWtVylHS+YqIqo0x8w=="
)
_BUNDLE = "package/lib/index.js"


def widget_path() -> Path:
    """Where the widget's bundle is served from (beside engage's code, shared by every workspace)."""
    return Path(__file__).resolve().parent / "static" / f"{WIDGET_PACKAGE.replace('@', '-')}.js"


def fetch_widget(force: bool = False) -> Path:
    """Download the widget with npm (once), check its integrity, keep its bundle; its path."""
    target = widget_path()
    if target.is_file() and not force:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise EngageError("npm is needed once to fetch the chat widget (rasa-webchat); install Node.js")
    with tempfile.TemporaryDirectory(prefix="engage-widget-") as folder:
        result = subprocess.run(
            [npm, "pack", WIDGET_PACKAGE, "--pack-destination", folder, "--silent"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise EngageError(f"npm could not fetch {WIDGET_PACKAGE}: {result.stderr.strip()[-500:]}")
        tarball = next(Path(folder).glob("*.tgz"))
        data = tarball.read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != WIDGET_INTEGRITY:
        raise EngageError(f"{WIDGET_PACKAGE} from npm does not match its published integrity hash")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        member = archive.extractfile(_BUNDLE)
        if member is None:
            raise EngageError(f"{WIDGET_PACKAGE} has no {_BUNDLE}")
        bundle = member.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_suffix(".part")
    draft.write_bytes(bundle)
    draft.replace(target)
    return target
