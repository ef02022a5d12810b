"""Which of two finished runs of one experiment a report keeps, and that it says why.

File times are no record of order: a clone, a plain ``cp`` or a study record restored into a
fresh workspace resets them.  Runs record when they finished; weak and ceiling runs are chosen
as the ones the kept students were measured against, so a table's weak AUC is the one its
PGRs used.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from report_fixtures import noisy_scores, write_run

from w2sprobe.metrics import pgr
from w2sprobe.report import build_report
from w2sprobe.runs import finished_at, load_run, write_metrics

N = 80


@pytest.fixture
def data():
    rng = np.random.default_rng(5)
    ids = np.array([f"t{i}" for i in range(N)])
    labels = (np.arange(N) % 2).astype(float)
    return ids, labels, {s: noisy_scores(labels, s, rng) for s in (0.3, 0.6, 1.5, 2.5, 3.0)}


def run(root, key, stage, experiment, ids, labels, preds, **kw):
    return write_run(root, "alpha", key, stage, experiment, 0, ids, labels, preds, **kw)


def touch(root, key: str, stamp: float) -> None:
    """Give a run's metrics.json the modification time ``stamp`` (what a copy may leave)."""
    os.utime(root / "runs" / "alpha" / key / "metrics.json", (stamp, stamp))


def kept_and_dropped(report, experiment: str) -> tuple[list[str], dict[str, str]]:
    kept = [r["key"] for r in report.seed_rows if r["experiment"] == experiment]
    dropped = {m["run"]: m["reason"] for m in report.missing if m["experiment"] == experiment}
    return kept, dropped


def test_the_weak_run_kept_is_the_one_the_students_were_measured_against(tmp_path, data):
    ids, labels, p = data
    old = run(tmp_path, "w-old", "weak", "weak", ids, labels, p[0.6], extra={"finished": 100.0})
    run(tmp_path, "w-new", "weak", "weak", ids, labels, p[0.3], extra={"finished": 200.0})
    ceiling = run(tmp_path, "c", "ceiling", "ceiling", ids, labels, p[3.0])
    student = run(tmp_path, "s", "student", "xent", ids, labels, p[1.5], weak=old, ceiling=ceiling)
    report = build_report(tmp_path, n_boot=0)
    kept, dropped = kept_and_dropped(report, "weak")
    assert kept == ["w-old"]  # older, but the one the PGR divides by
    assert dropped == {"w-new": "the kept students and probes were measured against run w-old"}
    # The line a reader sees names the run left out as well as the one kept.
    assert (
        "alpha weak seed 0 (run w-new): the kept students and probes were measured against "
        "run w-old" in [m["message"] for m in report.missing]
    )
    assert report.row("alpha", "weak")["auc"] == pytest.approx(old["auc"])
    (row,) = [r for r in report.seed_rows if r["experiment"] == "xent"]
    assert row["weak_key"] == "w-old" and row["weak_auc"] == pytest.approx(old["auc"])
    assert row["pgr"] == pytest.approx(pgr(student["auc"], old["auc"], ceiling["auc"]))


def test_reruns_are_ordered_by_the_time_they_recorded_not_by_file_times(tmp_path, data):
    ids, labels, p = data
    weak = run(tmp_path, "w", "weak", "weak", ids, labels, p[0.6])
    ceiling = run(tmp_path, "c", "ceiling", "ceiling", ids, labels, p[3.0])
    refs = {"weak": weak, "ceiling": ceiling}
    run(
        tmp_path, "s-first", "student", "xent", ids, labels, p[1.5], extra={"finished": 1.0}, **refs
    )
    run(
        tmp_path, "s-later", "student", "xent", ids, labels, p[2.5], extra={"finished": 2.0}, **refs
    )
    touch(tmp_path, "s-first", 2_000_000_000)  # a copy made the first run's file the newest
    touch(tmp_path, "s-later", 1_000_000_000)
    kept, dropped = kept_and_dropped(build_report(tmp_path, n_boot=0), "xent")
    assert kept == ["s-later"]
    assert dropped == {
        "s-first": "superseded by the newer run s-later of the same experiment and seed"
    }


def test_runs_written_before_finish_times_were_recorded_are_ordered_by_file_time(tmp_path, data):
    ids, labels, p = data
    weak = run(tmp_path, "w", "weak", "weak", ids, labels, p[0.6])
    ceiling = run(tmp_path, "c", "ceiling", "ceiling", ids, labels, p[3.0])
    run(tmp_path, "s-a", "student", "xent", ids, labels, p[1.5], weak=weak, ceiling=ceiling)
    run(tmp_path, "s-b", "student", "xent", ids, labels, p[2.5], weak=weak, ceiling=ceiling)
    touch(tmp_path, "s-a", 2_000_000_000)
    touch(tmp_path, "s-b", 1_000_000_000)
    kept, dropped = kept_and_dropped(build_report(tmp_path, n_boot=0), "xent")
    assert kept == ["s-a"] and list(dropped) == ["s-b"]


def test_a_written_run_records_when_it_finished(tmp_path):
    (tmp_path / "r").mkdir()
    before = time.time()
    record = write_metrics(tmp_path / "r", {"key": "r", "auc": 0.5})
    after = time.time()
    assert before <= record.metrics["finished"] <= after
    assert load_run(tmp_path / "r").metrics["finished"] == record.metrics["finished"]
    assert finished_at(tmp_path / "r", record.metrics) == record.metrics["finished"]
