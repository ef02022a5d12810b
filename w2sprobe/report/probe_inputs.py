"""Probe-side results a report plots: sweep rows and filtered label sets' precision.

Both are optional extras (a study without sweeps still gets its tables), so an unreadable file
here is skipped with a note rather than failing the report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

#: The parameter each probe's sweep varies (see ``w2sprobe.probes.sweep.GRID_PARAM``).
SWEEP_PARAMS = ("k", "l2", "k_zeta")


def collect_sweeps(
    cache_dir: Path, datasets: list[str] | None = None
) -> tuple[list[dict], list[str]]:
    """Rows of every ``<cache>/sweeps/<dataset>/<key>/sweep.json`` (optionally only ``datasets``).

    Each row keeps the probe, layer, swept parameter and ``auc_minus_labels_auc`` (probe test AUC
    minus the AUC of the labels it was fit on; with weak labels, the probe's gain over weak).
    """
    rows, notes = [], []
    for path in _files(Path(cache_dir) / "sweeps", "sweep.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            notes.append(f"skipped unreadable sweep {path}: {exc}")
            continue
        good = [row for row in data if _sweep_row_ok(row)] if isinstance(data, list) else []
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
    for path in _files(Path(cache_dir) / "labels", "manifest.json"):
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # not ours to judge: the label-set commands validate their own files
        made = meta.get("manifest") if isinstance(meta, dict) else None
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


def _files(root: Path, name: str) -> list[Path]:
    return sorted(root.glob(f"*/*/{name}")) if root.is_dir() else []


def _wanted(dataset: str, folder: str, datasets: list[str] | None) -> bool:
    return not datasets or dataset in datasets or folder in datasets


def _sweep_row_ok(row) -> bool:
    return (
        isinstance(row, dict)
        and isinstance(row.get("probe"), str)
        and isinstance(row.get("layer"), int)
        and _num(row.get("auc_minus_labels_auc")) is not None
        and isinstance(row.get("dataset"), str)
    )


def _num(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None
