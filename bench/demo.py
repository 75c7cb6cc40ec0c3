"""`engage demo`'s two figures, seed by seed: how long a default run takes, against the budget of five
minutes once the environments exist and the bot's model is cached, and the loop, the click-through of the
personalized lists shown to shoppers with a persona before and after retraining on the channels' clicks.

Each seed is a whole default run (600 shoppers, 90 days of history, 14 live days, the real Rasa bot) in a
process of its own, timed from outside, as `make demo` runs it.

    .venv/bin/python bench/demo.py [--seeds 7 1 2 3] [--dir var/bench-demo]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

BUDGET_SECONDS = 300.0
LOOP = re.compile(r"the loop: .*?(\d+\.\d)% before retraining.*?(\d+\.\d)% after")
ROOT = Path(__file__).resolve().parents[1]


def run(seed: int, folder: Path, bot_cache: Path) -> tuple[float, float, float]:
    """Wall seconds, and the loop's click-through before and after, of one default run."""
    command = [sys.executable, "-m", "engage.cli.main", "demo", "--dir", str(folder / f"seed-{seed}"),
               "--seed", str(seed), "--bot-cache", str(bot_cache)]  # fmt: skip
    began = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - began
    if finished.returncode != 0:
        raise SystemExit(f"seed {seed}: engage demo failed:\n{finished.stderr[-2000:]}")
    found = LOOP.search(finished.stdout.replace("\n", " "))
    if found is None:
        raise SystemExit(f"seed {seed}: no loop line in the demo's output")
    return seconds, float(found.group(1)), float(found.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 1, 2, 3])
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "bench-demo")
    parser.add_argument("--bot-cache", type=Path, default=ROOT / "var" / "demo-cache" / "bot-models")
    options = parser.parse_args()
    print(f"{'seed':>4} {'seconds':>8} {'of budget':>10} {'CTR before':>11} {'CTR after':>10} {'points':>7}")
    lifts = []
    for seed in options.seeds:
        seconds, before, after = run(seed, options.dir, options.bot_cache)
        lifts.append(after - before)
        print(
            f"{seed:>4} {seconds:>8.0f} {seconds / BUDGET_SECONDS:>10.2f} {before:>10.1f}% {after:>9.1f}% "
            f"{after - before:>+7.1f}"
        )
    print(f"the loop raised click-through in {sum(lift > 0 for lift in lifts)} of {len(lifts)} seeds")


if __name__ == "__main__":
    main()
