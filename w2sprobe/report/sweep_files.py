"""A sweep's files: ``sweep.csv``, ``sweep.png``, ``manifest.json`` and ``sweep.json``.

``<cache>/sweeps/<dataset>/<key>/`` (or ``sweep --out DIR``).  ``sweep.json`` (the rows) is
written last and marks the sweep complete; ``manifest.json`` before it records the key, the
number of rows and the byte count and SHA-256 of ``sweep.csv`` and ``sweep.png``.  Every file
is written atomically, and a rerun over a finished sweep first removes ``sweep.json``, so a
kill at any point leaves either the finished sweep or one that ``cache ls`` calls unfinished —
never a torn file in a sweep that looks complete.  Sweeps written before manifests existed
(no ``manifest.json``) are read by their rows alone.

This module is the one writer and reader of the format (``sweep``, ``report``, ``cache ls``
and ``cache verify`` go through it); it imports no torch and, until a plot is drawn, no
matplotlib.  Probe runs themselves are results like any trained run (:mod:`w2sprobe.runs`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import NoReturn

from ..atomic import file_record, record_problem, replacing, write_json, write_text
from ..errors import UsageError, first_line
from ..jsonutil import finite
from ..workspace import cache_of, kind_root, rm_hint, slug_dir
from .layers import layer_colour_bar, layer_style
from .plotting import LEGEND_LAYERS

SWEEP_CSV, SWEEP_JSON, SWEEP_PNG, MANIFEST = "sweep.csv", "sweep.json", "sweep.png", "manifest.json"

#: The parameter each probe's sweep varies (``w2sprobe.probes.sweep.GRID_PARAM``'s values).
SWEEP_PARAMS = ("k", "l2", "k_zeta")


def sweep_dir(cache_dir: Path, dataset: str, key: str) -> Path:
    """Where a sweep's table and plot go: ``<cache>/sweeps/<dataset slug>/<key>``."""
    return slug_dir(kind_root(cache_dir, "sweeps"), dataset) / key


def sweep_folders(cache_dir: Path) -> list[Path]:
    """Every sweep folder under ``<cache>/sweeps`` (dot-named folders are not sweeps)."""
    root = kind_root(cache_dir, "sweeps")
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.glob("*/*")
        if p.is_dir() and not p.name.startswith(".") and not p.parent.name.startswith(".")
    )


# --------------------------------------------------------------------------- writing


def write_sweep(rows: list[dict], out_dir: Path, param: str) -> dict[str, Path]:
    """Tidy table (CSV + JSON) and a plot of the probe's gain over the labels vs ``param``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out_dir / SWEEP_CSV,
        "json": out_dir / SWEEP_JSON,
        "png": out_dir / SWEEP_PNG,
        "manifest": out_dir / MANIFEST,
    }
    paths["json"].unlink(missing_ok=True)  # unfinished until the rows are back, last
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(paths["csv"], table.getvalue())
    plot_sweep(rows, param, paths["png"])
    manifest = {
        "key": rows[0].get("sweep_key") if rows else None,
        "param": param,
        "rows": len(rows),
        "files": {name: file_record(out_dir / name) for name in (SWEEP_CSV, SWEEP_PNG)},
    }
    write_json(paths["manifest"], finite(manifest), indent=2, sort_keys=True)
    write_json(paths["json"], finite(rows), indent=2)
    return paths


def plot_sweep(rows: list[dict], param: str, path: Path) -> Path:
    """Write :func:`sweep_figure` to ``path`` (PNG, atomically)."""
    import matplotlib.pyplot as plt

    fig = sweep_figure(rows, param)
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


# --------------------------------------------------------------------------- reading


def read_sweep(folder: Path) -> list[dict] | None:
    """The rows of a finished sweep (None: unfinished, no ``sweep.json``), checked against
    its manifest; a damaged sweep is a UsageError naming it and the ``cache rm`` that clears
    it."""
    folder = Path(folder)
    if not (folder / SWEEP_JSON).is_file():
        return None
    rows, problem = _read(folder)
    if problem:
        _damaged(folder, problem)
    return rows


def verify_sweep(folder: Path) -> list[str]:
    """Problems of one finished sweep (empty: intact): ``cache verify``'s check."""
    if not (Path(folder) / SWEEP_JSON).is_file():
        return [f"unfinished: no {SWEEP_JSON} (run the sweep again, or w2sprobe cache gc)"]
    return [problem] if (problem := _read(Path(folder))[1]) else []


def sweep_rows_or_none(folder: Path) -> list[dict] | None:
    """The rows of ``sweep.json`` when it parses (for listings: no integrity check)."""
    try:
        rows = json.loads((Path(folder) / SWEEP_JSON).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else None


def _read(folder: Path) -> tuple[list[dict], str | None]:
    try:
        rows = json.loads((folder / SWEEP_JSON).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [], f"{SWEEP_JSON} is unreadable ({first_line(exc)})"
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return [], f"{SWEEP_JSON} is not a list of rows"
    manifest = _manifest(folder)
    if manifest is None:
        if (folder / MANIFEST).exists():
            return rows, f"{MANIFEST} is unreadable"
        return rows, _csv_problem(folder, len(rows), required=False)
    if manifest.get("rows") != len(rows):
        return rows, f"{SWEEP_JSON} has {len(rows)} rows, its manifest says {manifest.get('rows')}"
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    for name in (SWEEP_CSV, SWEEP_PNG):
        if name in files and not (folder / name).is_file():
            return rows, f"{name} is missing"
        if problem := record_problem(folder / name, files.get(name)):
            return rows, problem
    return rows, _csv_problem(folder, len(rows), required=SWEEP_CSV in files)


def _manifest(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _csv_problem(folder: Path, rows: int, required: bool) -> str | None:
    """``sweep.csv`` parses and holds as many rows as ``sweep.json``."""
    path = folder / SWEEP_CSV
    if not path.is_file():
        return f"{SWEEP_CSV} is missing" if required else None
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            body = [row for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return f"{SWEEP_CSV} is unreadable ({first_line(exc)})"
    if not header:
        return f"{SWEEP_CSV} is empty"
    if len(body) != rows or any(len(row) != len(header) for row in body):
        return f"{SWEEP_CSV} has {len(body)} complete rows, {SWEEP_JSON} {rows}"
    return None


def _damaged(folder: Path, problem: str) -> NoReturn:
    hint = rm_hint(cache_of(folder, "sweeps"), folder.name)
    raise UsageError(f"sweep {folder.name} ({folder}) is damaged: {problem}; remove it: {hint}")


def usable_rows(rows: list[dict]) -> list[dict]:
    """Rows a report can plot: probe, layer, dataset and a finite ``auc_minus_labels_auc``."""
    return [row for row in rows if _row_ok(row)]


def _row_ok(row) -> bool:
    value = row.get("auc_minus_labels_auc")
    return (
        isinstance(row.get("probe"), str)
        and isinstance(row.get("layer"), int)
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and isinstance(row.get("dataset"), str)
    )


# --------------------------------------------------------------------------- the plot


def sweep_figure(rows: list[dict], param: str):
    """Probe AUC minus the labels' AUC (or probe AUC) vs ``param``, one line per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = (
        "auc_minus_labels_auc"
        if all(r.get("auc_minus_labels_auc") is not None for r in rows)
        else "auc"
    )
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    layers = sorted({r["layer"] for r in rows})
    for layer in layers:
        points = sorted((r[param], r[metric]) for r in rows if r["layer"] == layer)
        ax.plot(*zip(*points), **layer_style(layer, layers), label=f"layer {layer}")
    if len(layers) > LEGEND_LAYERS:  # a legend of 13-31 entries is unreadable: a colour bar
        layer_colour_bar(fig, ax, layers)
    else:
        ax.legend(fontsize=8)
    if metric == "auc_minus_labels_auc":
        ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    values = [r[param] for r in rows]
    if min(values) > 0 and max(values) / min(values) >= 20:
        ax.set_xscale("log")
    ax.set_xlabel(param)
    ax.set_ylabel("probe AUC − label-set AUC" if metric != "auc" else "probe test AUC")
    ax.set_title(f"{rows[0]['probe']} sweep on {rows[0].get('dataset', '')}")
    fig.tight_layout()
    return fig
