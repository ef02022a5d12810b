"""bench/study_record.py: the committed study record keeps the report's inputs, nothing else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "bench" / "study_record.py"
spec = importlib.util.spec_from_file_location("study_record", SCRIPT)
study_record = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_record)


def touch(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_save_keeps_finished_runs_and_label_sets_then_restore_brings_them_back(tmp_path):
    work, record = tmp_path / "work", tmp_path / "record"
    for name in ("manifest.json", "metrics.json", "predictions.csv", ".lock"):
        touch(work / "runs/sst2/done" / name)
    touch(work / "runs/sst2/training/manifest.json")  # unfinished: no metrics.json yet
    touch(work / "runs/sst2/training/checkpoint.pt")
    touch(work / "labels/sst2/k1/manifest.json")
    touch(work / "labels/sst2/k1/labels.csv")
    touch(work / "acts/mpnet/sst2/key.h5")
    touch(work / "sweeps/sst2/s1/sweep.json")
    touch(work / "sweeps/sst2/s1/sweep.png")
    assert study_record.copy(work, record) == 7
    kept = sorted(str(p.relative_to(record)) for p in record.rglob("*") if p.is_file())
    assert kept == [
        "labels/sst2/k1/labels.csv",
        "labels/sst2/k1/manifest.json",
        "runs/sst2/done/manifest.json",
        "runs/sst2/done/metrics.json",
        "runs/sst2/done/predictions.csv",
        "sweeps/sst2/s1/sweep.json",
        "sweeps/sst2/s1/sweep.png",
    ]
    assert study_record.copy(work, record) == 0  # nothing newer: nothing copied
    fresh = tmp_path / "fresh"
    assert study_record.copy(record, fresh) == 7
    assert (fresh / "runs/sst2/done/metrics.json").read_text() == "x"
