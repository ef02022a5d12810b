"""bench/study_summary.py: the BENCHMARKS study table, counts and sweep means, worked by hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "bench" / "study_summary.py"
spec = importlib.util.spec_from_file_location("study_summary", SCRIPT)
study_summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_summary)


def write_metrics(record: Path, dataset: str, experiment: str, auc: float, pgr=None) -> None:
    folder = record / "cache" / "runs" / dataset / experiment
    folder.mkdir(parents=True)
    metrics = {"dataset": dataset, "experiment": experiment, "auc": auc, "pgr": pgr}
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
    assert "PGR > 0 (datasets with ceiling − weak ≥ 0.02): xent 1/2, logconf 2/2" in text
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
        "knn: at layer 1 (best on average) by k: 10: -0.060, 50: -0.040",
    ]
