"""The view's figures, drawn like the report's: two-column-paper sizes, 7-8 pt type, the
Okabe-Ito palette, markers that survive greyscale, PNG to look at and SVG for papers.

Scatter points are rasterised inside the SVG (thousands of circles as vectors make a file
that editors choke on); axes, text and legends stay vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import replacing
from ..report.plotting import OKABE_ITO, PAGE_WIDTH, PAPER_RC

#: Every view figure is written in these formats.
VIEW_FORMATS = ("png", "svg")
#: Negative and positive ends of the label colour scale (Okabe-Ito vermillion and blue): the
#: pair stays apart for the common colour-vision deficiencies; white is an undecided 0.5.
NEGATIVE, POSITIVE = OKABE_ITO[5], OKABE_ITO[4]
KEPT_GREY = "#BBBBBB"
MIDDLE_GREY = "#D4D4D4"


@dataclass
class PointColours:
    """What the four projection panels colour each point by (all aligned with ``coords``)."""

    truth: np.ndarray  # 0/1
    weak: np.ndarray  # soft label in [0, 1]
    probe: np.ndarray  # soft score in [0, 1]
    kept: np.ndarray  # bool: the filter keeps the row
    wrong: np.ndarray  # bool: the weak label's side differs from the ground truth


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def label_cmap():
    from matplotlib.colors import LinearSegmentedColormap

    # A light grey middle, not white: an undecided 0.5 point must still show on white paper.
    return LinearSegmentedColormap.from_list("w2s_labels", [NEGATIVE, MIDDLE_GREY, POSITIVE])


def projection_figure(coords: np.ndarray, colours: PointColours, axis_labels, titles: dict):
    """Four panels of the same 2-D points: ground truth, weak label, probe score, filter."""
    plt = _pyplot()
    with plt.rc_context(PAPER_RC):
        fig, axes = plt.subplots(
            1, 4, figsize=(PAGE_WIDTH, 2.6), sharex=True, sharey=True, layout="constrained"
        )
        size = float(np.clip(6000 / max(len(coords), 1), 1.5, 12))
        cmap = label_cmap()
        mappable = None
        for ax, values, title in (
            (axes[0], colours.truth, titles["truth"]),
            (axes[1], colours.weak, titles["weak"]),
            (axes[2], colours.probe, titles["probe"]),
        ):
            mappable = ax.scatter(
                coords[:, 0], coords[:, 1], c=values, cmap=cmap, vmin=0, vmax=1, s=size,
                linewidths=0, rasterized=True,
            )  # fmt: skip
            ax.set_title(title)
        _filter_panel(axes[3], coords, colours, size, titles["filter"])
        for ax in axes:
            ax.set_xlabel(axis_labels[0])
            ax.tick_params(length=2)
        axes[0].set_ylabel(axis_labels[1])
        bar = fig.colorbar(mappable, ax=axes[:3], location="bottom", shrink=0.6, aspect=50)
        bar.set_label("label or score: 0 = negative, 1 = positive")
        bar.ax.tick_params(length=2)
    return fig


def _filter_panel(ax, coords, colours: PointColours, size: float, title: str) -> None:
    removed = ~colours.kept
    groups = (
        (colours.kept, {"color": KEPT_GREY, "marker": "o", "s": size}, "kept"),
        (removed & ~colours.wrong, {"color": OKABE_ITO[1], "marker": "o", "s": size * 2},
         "removed, weak label right"),
        (removed & colours.wrong, {"color": "#000000", "marker": "x", "s": size * 3,
         "linewidths": 0.6}, "removed, weak label wrong"),
    )  # fmt: skip
    for mask, style, label in groups:
        style = {"linewidths": 0, **style}
        ax.scatter(
            coords[mask, 0], coords[mask, 1], label=f"{label} ({int(mask.sum())})",
            rasterized=True, **style,
        )  # fmt: skip
    ax.set_title(title)
    legend = ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, handletextpad=0.2,
        borderaxespad=0, fontsize=6.5,
    )  # fmt: skip
    for handle in legend.legend_handles:
        handle.set_sizes([14])


def layers_figure(rows: list[dict], probe_layer: int):
    """Two panels by layer: the cosine of the truth and weak-label directions, and the
    cross-validated logistic AUC against each labeling."""
    plt = _pyplot()
    layers = [r["layer"] for r in rows]
    with plt.rc_context(PAPER_RC):
        fig, (left, right) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 2.3), layout="constrained")
        left.plot(layers, [r["cosine"] for r in rows], color=OKABE_ITO[0], marker="o", ms=3.5)
        left.axhline(0, color="#999999", lw=0.6)
        left.set_ylim(min(-0.05, min(r["cosine"] for r in rows) - 0.05), 1.02)
        left.set_ylabel("cosine(truth direction, weak direction)")
        left.set_title("Where the weak concept and the truth part ways")
        for key, colour, marker, name in (
            ("auc_truth", OKABE_ITO[0], "o", "vs ground truth"),
            ("auc_weak", OKABE_ITO[1], "s", "vs weak labels"),
        ):
            right.plot(
                layers, [r[key] for r in rows], color=colour, marker=marker, ms=3.5, label=name
            )
        right.axhline(0.5, color="#999999", lw=0.6, ls=":")
        right.set_ylabel("cross-validated logistic AUC")
        right.set_title("Linear separability by layer")
        right.legend(frameon=False, loc="lower right")
        for ax in (left, right):
            ax.axvline(probe_layer, color="#999999", lw=0.6, ls="--")
            ax.set_xlabel("layer (0 = embeddings)")
            ax.set_xticks(layers if len(layers) <= 16 else layers[:: (len(layers) + 15) // 16])
            ax.tick_params(length=2)
    return fig


def alignment_figure(cka_rows: list[dict], ridge_rows: list[dict], weak: str, strong: str):
    """Linear CKA of every weak x strong layer pair (a heat map), and how much of the strong
    view layer each weak layer's ridge map explains (held-out R²)."""
    plt = _pyplot()
    weak_layers = sorted({r["weak_layer"] for r in cka_rows})
    strong_layers = sorted({r["strong_layer"] for r in cka_rows})
    grid = np.full((len(weak_layers), len(strong_layers)), np.nan)
    for r in cka_rows:
        grid[weak_layers.index(r["weak_layer"]), strong_layers.index(r["strong_layer"])] = r["cka"]
    with plt.rc_context(PAPER_RC):
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(PAGE_WIDTH, 2.6), layout="constrained", width_ratios=(1.6, 1)
        )
        image = left.imshow(grid, cmap="viridis", vmin=0, vmax=1, origin="lower", aspect="auto")
        left.set_xticks(range(len(strong_layers)), strong_layers)
        left.set_yticks(range(len(weak_layers)), weak_layers)
        left.set_xlabel(f"strong layer ({strong})")
        left.set_ylabel(f"weak layer ({weak})")
        left.set_title("Linear CKA, strong_train")
        for i in range(len(weak_layers)):
            for j in range(len(strong_layers)):
                value = grid[i, j]
                left.text(
                    j, i, f"{value:.2f}", ha="center", va="center", fontsize=5,
                    color="black" if value > 0.6 else "white",
                )  # fmt: skip
        fig.colorbar(image, ax=left, shrink=0.9, aspect=25).ax.tick_params(length=2)
        target = ridge_rows[0]["strong_layer"] if ridge_rows else None
        right.plot(
            [r["weak_layer"] for r in ridge_rows], [r["r2"] for r in ridge_rows],
            color=OKABE_ITO[0], marker="o", ms=3.5,
        )  # fmt: skip
        right.set_xticks(weak_layers)
        right.set_xlabel(f"weak layer ({weak})")
        right.set_ylabel("held-out R² (test)")
        right.set_title(f"Ridge map weak → strong layer {target}")
        right.set_ylim(min(0.0, *(r["r2"] for r in ridge_rows)) if ridge_rows else 0.0, 1.0)
        for ax in (left, right):
            ax.tick_params(length=2)
    return fig


def save_figure(fig, stem: Path) -> dict[str, Path]:
    """``stem.png`` and ``stem.svg``, each written atomically, with fixed metadata (the same
    view gives byte-identical SVG files; text stays text)."""
    plt = _pyplot()
    paths = {fmt: stem.with_suffix(f".{fmt}") for fmt in VIEW_FORMATS}
    rc = {"svg.hashsalt": "w2sprobe", "svg.fonttype": "none"}
    metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
    try:
        with plt.rc_context(rc):
            for fmt, path in paths.items():
                with replacing(path) as tmp:
                    fig.savefig(
                        tmp, format=fmt, dpi=200, bbox_inches="tight", metadata=metadata[fmt]
                    )
    finally:
        plt.close(fig)
    return paths
