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

``--gzip`` keeps the record's CSV files (predictions, labels, sweep tables) gzip-compressed,
``<name>.csv.gz``: a study at the blog's sizes has ten times the rows, and its record is for
resuming and reproducing, while the report is generated from the restored working cache.
``restore`` decompresses them again (it recognises ``.csv.gz`` files whatever the flag).
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

RUN_FILES = ("manifest.json", "metrics.json", "predictions.csv")
LABEL_FILES = ("manifest.json", "labels.csv")
SWEEP_FILES = ("manifest.json", "sweep.json", "sweep.csv", "sweep.png")


def recorded(cache: Path) -> list[Path]:
    """The files of ``cache`` the record keeps, relative to it (finished runs only)."""
    keep = []
    for metrics in cache.glob("runs/*/*/metrics.json"):  # metrics.json is written last
        keep += [metrics.parent / name for name in RUN_FILES if (metrics.parent / name).exists()]
    for manifest in cache.glob("labels/*/*/manifest.json"):
        keep += [
            manifest.parent / name for name in LABEL_FILES if (manifest.parent / name).exists()
        ]
    for table in cache.glob("sweeps/*/*/sweep.json"):  # the report's sweep figure reads these
        keep += [table.parent / name for name in SWEEP_FILES if (table.parent / name).exists()]
    return sorted(path.relative_to(cache) for path in keep)


def copy(source: Path, target: Path, compress: bool = False) -> int:
    """Copy what ``source`` records into ``target`` (never over a newer file); ``compress``:
    CSV files are written gzip-compressed as ``<name>.csv.gz``."""
    copied = 0
    for relative in recorded(source):
        src, dst = source / relative, target / relative
        if compress and dst.suffix == ".csv":
            dst = dst.with_name(dst.name + ".gz")
        if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.name.endswith(".csv.gz"):
            with src.open("rb") as fh, gzip.open(dst, "wb", compresslevel=9) as out:
                shutil.copyfileobj(fh, out)
            shutil.copystat(src, dst)
        else:
            shutil.copy2(src, dst)
        copied += 1
    return copied


def restore(record: Path, work: Path) -> int:
    """Copy a record back into a working cache, decompressing ``.csv.gz`` files."""
    copied = copy(record, work)
    for packed in record.rglob("*.csv.gz"):
        dst = work / packed.relative_to(record).with_suffix("")
        if dst.exists() and dst.stat().st_mtime >= packed.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(packed, "rb") as fh, dst.open("wb") as out:
            shutil.copyfileobj(fh, out)
        shutil.copystat(packed, dst)
        copied += 1
    return copied


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--gzip"]
    if len(args) != 3 or args[0] not in ("save", "restore"):
        sys.exit("usage: study_record.py save WORK RECORD [--gzip] | restore RECORD WORK")
    verb, source, target = args
    if verb == "save":
        count = copy(Path(source), Path(target), compress="--gzip" in sys.argv)
    else:
        count = restore(Path(source), Path(target))
    print(f"{verb}: {count} file(s) {source} -> {target}")
