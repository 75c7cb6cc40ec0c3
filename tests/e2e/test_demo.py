"""`engage demo`, the main job, runs end to end and reports what engage made of the traffic."""

from __future__ import annotations

import re
from pathlib import Path

from engage.cli.main import main


def _counts(output: str) -> dict[str, int]:
    rows = re.findall(r"│ (.+?)\s+│\s+([\d,]+) │", output)
    return {label.strip(): int(count.replace(",", "")) for label, count in rows}


def test_demo_runs_the_storefront_through_ingestion_and_profiles(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "demo"
    assert main(["demo", "--dir", str(folder), "--users", "60", "--days", "5", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    counts = _counts(first)
    assert counts["events stored"] > 0
    assert counts["bad events rejected, rest of batch kept"] > 0
    assert counts["retried events stored once (same messageId)"] > 0
    assert counts["profiles"] == 60
    assert (
        counts["customers whose anonymous browsing followed them into their account"]
        == counts["known customers"]
    )
    assert "rejected: " in first

    segments = {path.stem for path in (folder / "segments").glob("*.yml")}
    assert counts["email_users"] > 0 and counts["recent_purchasers"] > 0 and counts["new_signups"] > 0

    journeys = {path.stem for path in (folder / "journeys").glob("*.yml")}
    assert counts["signup_welcome"] == counts["known customers"]  # each new account entered the journey
    assert counts["post_purchase"] > 0 and counts["abandoned_cart"] > 0

    # Deterministic for a seed, and a second run replaces only the folder the first one made. (Segment
    # sizes are left out: their windows end at the moment the demo runs; so are journeys: a second
    # device's browsing may start a journey of its own before the sign-in that merges it arrives.)
    assert main(["demo", "--dir", str(folder), "--users", "60", "--days", "5", "--seed", "3"]) == 0
    second = _counts(capsys.readouterr().out)

    def steady(found: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in found.items() if "events/s" not in k and k not in segments | journeys}

    assert steady(second) == steady(counts)
    user = re.search(r"engage profiles show (\S+)", first)
    assert user is not None
    assert main(["profiles", "show", user.group(1), "-w", str(folder)]) == 0
    assert "consent" in capsys.readouterr().out


def test_demo_refuses_to_replace_a_folder_it_did_not_make(tmp_path: Path, capsys) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--dir", str(tmp_path), "--users", "5"]) == 1
    assert "was not made by `engage demo`" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"
