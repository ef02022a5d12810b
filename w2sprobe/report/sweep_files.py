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
from ..probes.choice import sweep_choice
from ..workspace import cache_of, kind_root, make_out_dir, rm_hint, slug_dir
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
    out_dir = make_out_dir(out_dir, "sweep")
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
    choice = sweep_choice(rows, grid_param(param))
    manifest = {
        "key": rows[0].get("sweep_key") if rows else None,
        "param": param,
        "rows": len(rows),
        **({"choice": _choice_record(choice, param)} if choice else {}),
        "files": {name: file_record(out_dir / name) for name in (SWEEP_CSV, SWEEP_PNG)},
    }
    write_json(paths["manifest"], finite(manifest), indent=2, sort_keys=True)
    write_json(paths["json"], finite(rows), indent=2)
    return paths


def grid_param(param: str | None) -> str | None:
    """The swept parameter of a sweep written with ``param`` (``layer``: none, layers only)."""
    return None if param in (None, "layer") else param


def _choice_record(choice, param: str) -> dict:
    """The manifest's account of the choice: the point chosen on the fit labels and the best in
    hindsight, overall and per layer (their grid value, criterion and test AUC with CI)."""

    def point(row: dict) -> dict:
        keys = ("layer", param, "criterion", "auc", "auc_low", "auc_high")
        return {k: row.get(k) for k in keys if k in row}

    return {
        "criterion": choice.criterion_name,
        "chosen": point(choice.chosen),
        "best_in_hindsight": point(choice.best),
        "by_layer": {
            str(layer): {"chosen": point(a), "best_in_hindsight": point(b)}
            for layer, (a, b) in choice.by_layer.items()
        },
    }


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
    """Left: probe AUC minus the labels' AUC (or probe AUC) vs ``param``, one line per layer,
    the point chosen on the fit labels ringed.  Right (rows with the weak-label criterion):
    per layer, the test AUC with its 95 % CI of the point chosen on the fit labels beside the
    best in hindsight, the overall choice starred (:mod:`w2sprobe.probes.choice`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..probes.choice import sweep_choice

    metric = (
        "auc_minus_labels_auc"
        if all(r.get("auc_minus_labels_auc") is not None for r in rows)
        else "auc"
    )
    choice = sweep_choice(rows, grid_param(param))
    if choice is None:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    else:
        fig, (ax, right) = plt.subplots(
            1, 2, figsize=(10, 4), dpi=120, gridspec_kw={"width_ratios": [3, 2]}
        )
    layers = sorted({r["layer"] for r in rows})
    for layer in layers:
        points = sorted((r[param], r[metric]) for r in rows if r["layer"] == layer)
        ax.plot(*zip(*points), **layer_style(layer, layers), label=f"layer {layer}")
        if choice is not None and layer in choice.by_layer:
            picked = choice.by_layer[layer][0]
            ax.plot(
                picked[param], picked[metric], marker="o", markersize=13, markerfacecolor="none",
                markeredgecolor=layer_style(layer, layers)["color"], linestyle="none",
            )  # fmt: skip
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
    ax.set_title(
        f"{rows[0]['probe']} sweep on {rows[0].get('dataset', '')}"
        + ("" if choice is None else "\n(ringed: chosen on the fit labels, per layer)"),
        fontsize=10,
    )
    if choice is not None:
        _choice_panel(right, choice, grid_param(param))
    fig.tight_layout()
    return fig


def _choice_panel(ax, choice, param: str | None) -> None:
    """Per layer: test AUC [95 % CI] of the weak-label choice (filled) and of the best in
    hindsight (open); the overall choice starred."""
    layers = sorted(choice.by_layer)
    for offset, which, style in (
        (-0.15, 0, {"marker": "o", "color": "#0072B2", "label": "chosen on fit labels"}),
        (0.15, 1, {"marker": "s", "color": "#D55E00", "markerfacecolor": "none",
                   "label": "best in hindsight (test)"}),
    ):  # fmt: skip
        xs, ys, low, high = [], [], [], []
        for layer in layers:
            row = choice.by_layer[layer][which]
            xs.append(layer + offset)
            ys.append(row["auc"])
            if param:  # which value each point is
                at = (layer + offset, row["auc"])
                ax.annotate(f"{row.get(param):g}", at, fontsize=6, xytext=(3, -2),
                            textcoords="offset points", color=style["color"])  # fmt: skip
            lo, hi = row.get("auc_low"), row.get("auc_high")
            low.append(row["auc"] - lo if lo is not None else 0.0)
            high.append(hi - row["auc"] if hi is not None else 0.0)
        ax.errorbar(xs, ys, yerr=[low, high], linestyle="none", capsize=2, markersize=5, **style)
    star = choice.chosen
    ax.plot(star["layer"] - 0.15, star["auc"], marker="*", markersize=14, color="#0072B2",
            linestyle="none", label="chosen overall")  # fmt: skip
    best = choice.best
    hollow = {"markerfacecolor": "none", "linestyle": "none"}
    ax.plot(best["layer"] + 0.15, best["auc"], marker="*", markersize=14, color="#D55E00",
            label="best in hindsight overall", **hollow)  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("layer")
    ax.set_ylabel("probe test AUC (95 % CI)")
    what = f"{param} per layer" if param else "layer"
    ax.set_title(f"{what}: chosen without test vs hindsight", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(color="#eeeeee", linewidth=0.5)
