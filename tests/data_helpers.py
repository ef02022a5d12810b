"""Helpers for the dataset tests: mirror rows read with the stdlib, a scripted RNG.

The ``mirror`` and ``no_hub`` fixtures live in conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MIRROR = REPO_ROOT.parent / "shared" / "data"


def mirror_rows(folder: str, split: str) -> list[dict[str, Any]]:
    """Every row of one mirror split, read with the stdlib (independent of the library)."""
    with open(MIRROR / folder / f"{split}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def mirror_row(folder: str, split: str, index: int = 0) -> dict[str, Any]:
    """Row ``index`` of one mirror split."""
    with open(MIRROR / folder / f"{split}.jsonl", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i == index:
                return json.loads(line)
    raise IndexError(index)


class ScriptedRng:
    """Stands in for ``random.Random``: returns scripted draws and records every call.

    ``u`` is what ``random()`` returns, ``pick`` the index ``choice`` takes, ``swap`` whether
    ``shuffle`` reverses its (two-element) list.
    """

    def __init__(self, u: float, pick: int = 0, swap: bool = False):
        self.u, self.pick, self.swap = u, pick, swap
        self.calls: list[Any] = []

    def random(self) -> float:
        self.calls.append("random")
        return self.u

    def choice(self, seq):
        self.calls.append(("choice", list(seq)))
        return seq[self.pick]

    def shuffle(self, items: list) -> None:
        self.calls.append("shuffle")
        if self.swap:
            items.reverse()


#: Draw values for the two outcomes of the MC coin (label 1 iff u < 0.5).
GOLD, WRONG = 0.25, 0.75
