"""bench/study_summary.py: the BENCHMARKS study table, counts and sweep means, worked by hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "bench" / "study_summary.py"
spec = importlib.util.spec_from_file_location("study_summary", SCRIPT)
study_summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_summary)


def write_metrics(
    record: Path, dataset: str, experiment: str, auc: float, pgr=None, key=None, **extra
) -> None:
    key = key or experiment
    folder = record / "cache" / "runs" / dataset / key
    folder.mkdir(parents=True)
    stage = experiment if experiment in ("weak", "ceiling") else "student"
    metrics = {"key": key, "stage": stage, "experiment": experiment, "dataset": dataset}
    metrics.update({"seed": 0, "auc": auc, "pgr": pgr, **extra})
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_table_counts_pgr_above_zero_only_where_the_gap_is_stable(tmp_path):
    for dataset, weak, ceiling, xent, logconf in (
        ("wide", 0.60, 0.80, 0.70, 0.75),  # PGR .5 and .75: both count, logconf beats xent
        ("narrow", 0.70, 0.71, 0.60, 0.72),  # gap .01 < .02: left out of every count
        ("worse", 0.60, 0.70, 0.55, 0.65),  # PGR -.5 and .5
    ):
        write_metrics(tmp_path, dataset, "weak", weak)
        write_metrics(tmp_path, dataset, "ceiling", ceiling)
        for name, auc in (("xent", xent), ("logconf", logconf)):
            write_metrics(tmp_path, dataset, name, auc, (auc - weak) / (ceiling - weak))
    text = study_summary.summary_tables(tmp_path)
    counts = "datasets whose ceiling − weak 95 % CI lies above 0.02): xent 1/2, logconf 2/2"
    assert counts in text  # no predictions here: the rule's point gap
    assert "Test AUC above xent's: logconf 2/2" in text
    assert "| narrow | 0.700 | 0.710 | +0.010 ⚠ | 0.600 | 0.720 |" in text  # no PGR shown
    assert "| wide | 0.600 | 0.800 | +0.200 | 0.700 (+0.50) | 0.750 (+0.75) |" in text


def test_sweep_tables_average_over_datasets_at_the_blogs_setting_and_best_layer():
    rows = [
        {"dataset": d, "probe": "knn", "layer": layer, "k": k, "labels": "weak",
         "auc_minus_labels_auc": base + 0.01 * layer - (0.0 if k == 50 else 0.02)}
        for d, base in (("a", 0.0), ("b", -0.1))
        for layer in (0, 1)
        for k in (10, 50)
    ]  # fmt: skip
    lines = study_summary.sweep_tables(rows)
    # at k=50: layer 0 mean (0 - .1)/2 = -.05, layer 1 -.04; best layer 1; k=10 there: -.06
    assert lines == [
        "knn: probe AUC − weak AUC, mean over 2 datasets — by layer at k=50: 0: -0.050, 1: -0.040",
        "knn: at layer 1 (best test gain on average: hindsight; these sweeps predate the "
        "weak-label criterion) by k: 10: -0.060, 50: -0.040",
    ]


def test_a_gap_just_under_the_floor_is_not_rounded_onto_it(tmp_path):
    assert study_summary.gap_cell(0.0197, stable=False) == "+0.0197 ⚠"  # 3 decimals: +0.020
    assert study_summary.gap_cell(-0.046, stable=False) == "-0.046 ⚠"
    assert study_summary.gap_cell(0.0203, stable=True) == "+0.020"


def test_time_table_folds_stages_of_seconds_and_reads_the_sweeps_from_progress_log(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "progress.log").write_text(
        "mpnet sst2: exit 0 after 400 s\n"
        "mpnet sst2 sweeps: exit 0 after 36 s\n"
        "mpnet cola sweeps: exit 1 after 5 s\n"  # a failed sweep has no time to report
    )
    assert study_summary.sweep_seconds(tmp_path) == {"sst2": 36.0}
    seconds = {
        "sst2": {"weak": 33.0, "knn-probe": 0.2, "logreg-probe": 1.1, "sweeps": 36.0},
        "cola": {"weak": 35.0, "logreg-probe": 0.4},
    }
    assert study_summary.time_table(seconds) == [
        "| dataset | weak | sweeps | (seconds)",
        "|---|---|---|",
        "| cola | 35 | — |",
        "| sst2 | 33 | 36 |",
        "",
        "Under 5 s on every dataset: knn-probe, logreg-probe.",
    ]


def test_the_weak_run_shown_is_the_one_the_pgrs_were_computed_against(tmp_path):
    """A rerun weak model (newer, unused) must not replace the weak AUC the PGRs divide by."""
    write_metrics(tmp_path, "d", "weak", 0.60, key="w-used", finished=1.0)
    write_metrics(tmp_path, "d", "weak", 0.50, key="w-rerun", finished=2.0)
    write_metrics(tmp_path, "d", "ceiling", 0.80)
    used = {"weak": {"key": "w-used", "auc": 0.60}, "ceiling": {"key": "ceiling", "auc": 0.80}}
    write_metrics(tmp_path, "d", "xent", 0.70, 0.5, **used)
    assert "| d | 0.600 | 0.800 | +0.200 | 0.700 (+0.50) |" in study_summary.summary_tables(
        tmp_path
    )


def test_stability_is_the_report_s_ci_rule_not_the_point_gap(tmp_path):
    """A gap of +0.04 on 40 noisy test rows: the point rule keeps it, the CI rule does not --
    the same verdict ``w2sprobe report`` reaches on the same runs."""
    import numpy as np
    from report_fixtures import noisy_scores, write_run

    from w2sprobe.report import build_report

    rng = np.random.default_rng(2)
    ids = [f"t{i:03d}" for i in range(40)]
    y = (np.arange(40) % 2).astype(float)
    cache = tmp_path / "cache"
    weak = write_run(cache, "d", "w", "weak", "weak", 0, ids, y, noisy_scores(y, 1.2, rng))
    ceiling = write_run(cache, "d", "c", "ceiling", "ceiling", 0, ids, y, noisy_scores(y, 1.1, rng))
    gap = ceiling["auc"] - weak["auc"]
    assert gap == pytest.approx(0.04)  # the point rule (>= 0.02) would call it stable
    verdicts = study_summary.stable_datasets(tmp_path)
    report = build_report(cache, n_boot=1000, seed=0)
    assert verdicts["d"][0] == ("d" not in {u["dataset"] for u in report.unstable})
    assert verdicts["d"][1].value == pytest.approx(gap)
    assert verdicts["d"][1].ci[0] < 0.02 and not verdicts["d"][0]  # the CI reaches below
    assert "+0.040 [" in study_summary.summary_tables(tmp_path)


def test_sweep_lines_choose_on_the_weak_label_criterion():
    rows = [
        {"dataset": d, "probe": "knn", "layer": 1, "k": k, "labels": "weak", "sweep_key": d,
         "auc": 0.7 + gain, "auc_minus_labels_auc": gain, "criterion": c}
        for d, k, gain, c in (
            ("a", 10, 0.05, 0.20), ("a", 50, 0.01, 0.10),  # chosen: k=50 (+.01); best +.05
            ("b", 10, -0.02, 0.30), ("b", 50, 0.03, 0.25),  # chosen: k=50 (+.03); best +.03
        )
    ]  # fmt: skip
    lines = study_summary.sweep_tables(rows)
    assert lines[1] == (
        "knn: chosen on weak labels (least criterion, per dataset, 2 sweeps): mean probe AUC − "
        "weak AUC +0.020; best in hindsight (test): +0.040"
    )
