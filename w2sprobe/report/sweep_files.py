"""A sweep's table and plot: ``sweep.csv``, ``sweep.json`` and ``sweep.png``.

Probe runs themselves are results like any trained run: :mod:`w2sprobe.runs` writes them to
``<cache>/runs/<dataset>/<key>/`` (see :meth:`w2sprobe.study.Study.probe_run`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..jsonutil import finite
from ..report.layers import layer_colour_bar, layer_style
from ..report.plotting import LEGEND_LAYERS


def write_sweep(rows: list[dict], out_dir: Path, param: str) -> dict[str, Path]:
    """Tidy table (CSV + JSON) and a plot of the probe's gain over the labels vs ``param``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with (out_dir / "sweep.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "sweep.json").write_text(json.dumps(finite(rows), indent=2))
    paths = {"csv": out_dir / "sweep.csv", "json": out_dir / "sweep.json"}
    paths["png"] = plot_sweep(rows, param, out_dir / "sweep.png")
    return paths


def plot_sweep(rows: list[dict], param: str, path: Path) -> Path:
    """Write :func:`sweep_figure` to ``path``."""
    import matplotlib.pyplot as plt

    fig = sweep_figure(rows, param)
    fig.savefig(path)
    plt.close(fig)
    return path


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
