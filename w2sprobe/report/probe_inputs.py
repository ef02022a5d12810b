"""Probe-side results a report plots: sweep rows and filtered label sets' precision.

Both are optional extras (a study without sweeps still gets its tables): a sweep without
usable rows is skipped with a note, but a damaged one (its files disagree with what its writer
recorded) is an error naming the ``cache rm`` that clears it, as for runs.  Files are read
through their formats' own modules (:mod:`w2sprobe.report.sweep_files`, :mod:`w2sprobe.labels`).
"""

from __future__ import annotations

import math
from pathlib import Path

from ..labels import label_set_folders, read_label_meta
from .sweep_files import SWEEP_PARAMS, read_sweep, sweep_folders, usable_rows

__all__ = ["SWEEP_PARAMS", "collect_filters", "collect_sweeps"]


def collect_sweeps(
    cache_dir: Path, datasets: list[str] | None = None
) -> tuple[list[dict], list[str]]:
    """Rows of every ``<cache>/sweeps/<dataset>/<key>/sweep.json`` (optionally only ``datasets``).

    Each row keeps the probe, layer, swept parameter and ``auc_minus_labels_auc`` (probe test AUC
    minus the AUC of the labels it was fit on; with weak labels, the probe's gain over weak).
    """
    rows, notes = [], []
    for folder in sweep_folders(cache_dir):
        data = read_sweep(folder)
        if data is None:  # unfinished: not a result yet
            continue
        path = folder / "sweep.json"
        good = usable_rows(data)
        if not good:
            notes.append(
                f"skipped sweep {path}: no rows with probe, layer and auc_minus_labels_auc"
            )
            continue
        for row in good:
            if _wanted(row["dataset"], path.parent.parent.name, datasets):
                rows.append({**row, "path": str(path)})
    return rows, notes


def collect_filters(cache_dir: Path, datasets: list[str] | None = None) -> list[dict]:
    """One row per probe-filtered label set: probe, layer, contamination and the filter's precision.

    ``precision`` is the fraction of removed strong_train labels that were wrong; ``base_rate`` is
    the weak labels' mislabel rate before filtering, i.e. the precision of removing rows at random.
    """
    rows = []
    for folder in label_set_folders(cache_dir):
        meta = read_label_meta(folder)
        if meta is None:
            continue  # not ours to judge: the label-set commands validate their own files
        path = folder / "manifest.json"
        made = meta.get("manifest")
        if not isinstance(made, dict) or made.get("kind") != "filter":
            continue
        dataset = meta.get("dataset", path.parent.parent.name)
        if not _wanted(dataset, path.parent.parent.name, datasets):
            continue
        probe = made.get("probe") if isinstance(made.get("probe"), dict) else {}
        train = (made.get("report") or {}).get("strong_train") or {}
        val = (made.get("report") or {}).get("val") or {}
        rows.append(
            {
                "dataset": dataset,
                "name": meta.get("name"),
                "key": meta.get("key"),
                "probe": probe.get("probe"),
                "layer": probe.get("layer"),
                # the oracle baseline: an upper bound that reads ground truth, said wherever shown
                "uses_ground_truth": bool(probe.get("uses_ground_truth", False)),
                "contamination": _num(made.get("contamination")),
                "precision": _num(train.get("precision")),
                "base_rate": _num(train.get("mislabel_rate_before")),
                "mislabel_rate_after": _num(train.get("mislabel_rate_after")),
                "removed": train.get("removed"),
                "kept": train.get("kept"),
                "before": train.get("before"),
                "val_precision": _num(val.get("precision")),
                "path": str(path.parent),
            }
        )
    return rows


def _wanted(dataset: str, folder: str, datasets: list[str] | None) -> bool:
    return not datasets or dataset in datasets or folder in datasets


def _num(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None
