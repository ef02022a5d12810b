"""bench/background.sh: a study run under nice lowers its whole scheduling group (Linux's
autogroup, one per session), where a process's own nice value ranks it only inside the group."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "bench" / "background.sh"
AUTOGROUP = Path("/proc/self/autogroup")


def _group_nice(*prefix: str) -> str:
    """The autogroup line of a new session that sources the script under ``prefix``."""
    shell = f'. "{SCRIPT}"; cat /proc/self/autogroup 2>/dev/null || echo none'
    out = subprocess.run(
        ["setsid", *prefix, "bash", "-c", shell], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def test_a_niced_study_lowers_its_group_and_a_plain_one_leaves_it():
    niced, plain = _group_nice("nice", "-n", "19"), _group_nice()
    if AUTOGROUP.exists():  # a kernel with autogroup: the line ends in the group's nice value
        assert niced.endswith("nice 19"), niced
        assert plain.endswith("nice 0"), plain
    else:  # without it the script does nothing, and says nothing
        assert niced == plain == "none"
