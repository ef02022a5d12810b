"""The report's transfer table: saved probes scored on other datasets (``w2sprobe apply``).

Each ``transfer`` run (:mod:`w2sprobe.probes.transfer`) is one cell: the probe's fit dataset
(row) by the dataset it was scored on (column), test AUC with its bootstrap 95% CI computed
here as every CI of the report (its ``--n-boot`` and ``--seed``).  The diagonal is the probe's
own run on its fit dataset, where that run is cached.
"""

from __future__ import annotations

from pathlib import Path

from ..runs import read_metrics_or_none, run_folders
from .collect import read_run, read_test_predictions
from .stats import auc_ci

TRANSFER = "transfer"


def collect_transfers(
    cache_dir: Path, datasets: list[str] | None, n_boot: int, seed: int
) -> list[dict]:
    """One row per transfer run (scored on one of ``datasets``, or any), plus the probe runs
    that made their probes (the diagonal): probe key, probe, layer, fit and eval dataset, AUC,
    its CI, n and the run's key."""
    metrics = {folder: read_metrics_or_none(folder) for folder in run_folders(cache_dir)}
    transfers = [
        f
        for f, m in metrics.items()
        if m and m.get("stage") == TRANSFER and (not datasets or m.get("dataset") in datasets)
    ]
    probe_keys = {metrics[f].get("probe_key") for f in transfers}
    own = [
        f
        for f, m in metrics.items()
        if m and m.get("stage") == "probe" and m.get("probe_key") in probe_keys
    ]
    rows = [_row(folder, n_boot, seed) for folder in transfers + own]
    return sorted(rows, key=lambda r: (r["probe_key"], r["fit_dataset"], r["dataset"]))


def _row(folder: Path, n_boot: int, seed: int) -> dict:
    run = read_run(folder)
    m = run.metrics
    predictions = read_test_predictions(run)  # (ids, scores, truth), sorted by id
    probe = m.get("probe") if isinstance(m.get("probe"), dict) else {}
    ci = None
    if predictions is not None:
        ids, scores, truth = predictions
        ci = auc_ci(ids, truth, scores, n_boot, seed)
    return {
        "probe_key": m.get("probe_key"),
        "probe": probe.get("probe"),
        "layer": probe.get("layer"),
        "fit_dataset": m.get("fit_dataset") or m["dataset"],
        "dataset": m["dataset"],
        "auc": run.auc,
        "auc_ci": ci,
        "n": run.n,
        "key": run.key,
        "path": str(folder),
    }
