"""A sweep's table and plot: ``sweep.csv``, ``sweep.json`` and ``sweep.png``.

Probe runs themselves are results like any trained run: :mod:`w2sprobe.runs` writes them to
``<cache>/runs/<dataset>/<key>/`` (see :meth:`w2sprobe.study.Study.probe_run`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..jsonutil import finite


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
    colors = plt.get_cmap("tab10")  # colour-blind-safe enough for <= 10 lines; markers differ too
    markers = "osD^vP*Xh<"
    for index, layer in enumerate(sorted({r["layer"] for r in rows})):
        points = sorted((r[param], r[metric]) for r in rows if r["layer"] == layer)
        ax.plot(
            *zip(*points),
            marker=markers[index % len(markers)],
            color=colors(index % 10),
            label=f"layer {layer}",
        )
    if metric == "auc_minus_labels_auc":
        ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    values = [r[param] for r in rows]
    if min(values) > 0 and max(values) / min(values) >= 20:
        ax.set_xscale("log")
    ax.set_xlabel(param)
    ax.set_ylabel("probe AUC − label-set AUC" if metric != "auc" else "probe test AUC")
    ax.set_title(f"{rows[0]['probe']} sweep on {rows[0].get('dataset', '')}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
