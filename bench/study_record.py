"""The study's record: the report's inputs, copied between a working cache and docs/results.

A study over every offline dataset takes longer than one session on a CPU, and only the
repository survives between sessions.  ``save WORK RECORD`` copies what the report reads and
what later stages build on (each finished run's manifest, metrics and predictions; every label
set; every probe sweep's table and plot) from the working cache into the committed record;
``restore RECORD WORK`` copies it back (never over a newer file), so finished stages are cache
hits and the study resumes at its first missing stage.  Checkpoints, locks and activation
files stay out (they are large, and activations are rebuilt by the one stage that needs them).

    python bench/study_record.py save study-cache/mpnet docs/results/mpnet/cache
    python bench/study_record.py restore docs/results/mpnet/cache study-cache/mpnet
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

RUN_FILES = ("manifest.json", "metrics.json", "predictions.csv")
LABEL_FILES = ("manifest.json", "labels.csv")
SWEEP_FILES = ("sweep.json", "sweep.csv", "sweep.png")


def recorded(cache: Path) -> list[Path]:
    """The files of ``cache`` the record keeps, relative to it (finished runs only)."""
    keep = []
    for metrics in cache.glob("runs/*/*/metrics.json"):  # metrics.json is written last
        keep += [metrics.parent / name for name in RUN_FILES if (metrics.parent / name).exists()]
    for manifest in cache.glob("labels/*/*/manifest.json"):
        keep += [manifest.parent / name for name in LABEL_FILES]
    for table in cache.glob("sweeps/*/*/sweep.json"):  # the report's sweep figure reads these
        keep += [table.parent / name for name in SWEEP_FILES if (table.parent / name).exists()]
    return sorted(path.relative_to(cache) for path in keep)


def copy(source: Path, target: Path) -> int:
    copied = 0
    for relative in recorded(source):
        src, dst = source / relative, target / relative
        if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        copied += 1
    return copied


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("save", "restore"):
        sys.exit("usage: study_record.py save WORK RECORD | restore RECORD WORK")
    _, verb, source, target = sys.argv
    print(f"{verb}: {copy(Path(source), Path(target))} file(s) {source} -> {target}")
