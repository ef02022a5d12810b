"""Wall time of the instant commands: this tree vs a baseline commit, side by side in one run.

    python bench/cli.py                       # baseline: 571df33, the main before the redesign
    python bench/cli.py --baseline HEAD~3 --repeats 7
    python bench/cli.py --baseline f8ef7c0    # before issue 27's grouped help

Each command runs as a fresh ``python -m w2sprobe`` process (what a user waits for), in an empty
temporary folder (no w2sprobe.toml, an empty cache), alternating baseline and current, best and
median of ``--repeats`` runs.  The baseline is checked out with ``git worktree`` and removed again.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["--help"],
    ["extract", "--help"],
    ["probe", "--help"],
    ["run", "--help"],
    ["data", "list"],
    ["cache", "ls"],
    ["config", "show"],
]


def timed(tree: Path, args: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("W2SPROBE_CACHE", None)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "w2sprobe", *args],
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="571df33", help="git ref of the code to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        baseline = Path(scratch) / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline],
            check=True,
            capture_output=True,
        )
        try:
            work = Path(scratch) / "work"
            work.mkdir()
            rows = []
            for command in COMMANDS:
                times = {"baseline": [], "current": []}
                for _ in range(args.repeats):  # interleaved: both see the same machine load
                    times["baseline"].append(timed(baseline, command, work))
                    times["current"].append(timed(REPO, command, work))
                rows.append((" ".join(command), times))
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],
                check=False,
            )
    print(
        f"| command | baseline {args.baseline} best / median | current best / median "
        "| speed-up (median) |"
    )
    print("|---|---|---|---|")
    for name, t in rows:
        b, c = t["baseline"], t["current"]
        print(
            f"| `w2sprobe {name}` | {min(b):.2f} s / {statistics.median(b):.2f} s | "
            f"{min(c):.2f} s / {statistics.median(c):.2f} s | "
            f"{statistics.median(b) / statistics.median(c):.1f}x |"
        )


if __name__ == "__main__":
    main()
