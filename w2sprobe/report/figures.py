"""Report figures (matplotlib, Agg), each saved as PNG and SVG.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies) and every series also gets its own marker, so a figure still reads in greyscale.
A figure whose inputs do not exist is skipped with a reason instead of drawn empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .build import Report
from .groups import GROUP_TITLES, experiment_group

#: Okabe & Ito (2008), black first (the baseline), yellow last (weakest on white).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
#: Series markers; no up/down triangles, which mark PGRs clipped at the axis edge.
MARKERS = ("o", "s", "D", "P", "X", "*", "h", "p", "d", "<", ">")
#: PGR axis limits: the blog cuts off extreme PGRs too; clipped points sit on the edge as arrows.
PGR_LIMITS = (-1.0, 2.0)


@dataclass
class Figure:
    """One written figure: where its files are and what it shows."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "caption": self.caption,
            "png": str(self.png),
            "svg": str(self.svg),
        }


def draw_figures(report: Report, out_dir: Path) -> tuple[list[Figure], list[dict]]:
    """Draw every figure the report has inputs for into ``out_dir``; return (figures, skipped)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures, skipped = [], []
    for name, draw in (
        ("pgr_by_dataset", pgr_by_dataset),
        ("auc_by_dataset", auc_by_dataset),
        ("probe_sweeps", probe_sweeps),
        ("filter_precision", filter_precision),
    ):
        result = draw(report)
        if isinstance(result, str):
            skipped.append({"name": name, "reason": result})
            continue
        fig, title, caption = result
        figures.append(_save(fig, out_dir / name, name, title, caption))
    return figures, skipped


def style(index: int) -> dict:
    """Colour and marker of the ``index``-th series (they cycle at different periods)."""
    return {"color": OKABE_ITO[index % len(OKABE_ITO)], "marker": MARKERS[index % len(MARKERS)]}


# --------------------------------------------------------------------------- PGR dot plot


def pgr_by_dataset(report: Report):
    """The blog's dot plot: PGR per dataset, one panel per group of interventions."""
    plt = _pyplot()
    datasets = report.included
    baseline = report.options.get("baseline")
    groups = [
        g
        for g in GROUP_TITLES
        if g != "reference" and any(experiment_group(e) == g for e in _students(report))
    ]
    if not datasets or not groups:
        return "no student or probe runs with a PGR on a non-saturated dataset"
    fig, axes = plt.subplots(
        len(groups),
        1,
        figsize=(max(6.5, 0.55 * len(datasets) + 3.5), 2.8 * len(groups) + 0.8),
        squeeze=False,
        sharex=True,
    )
    clipped = 0
    for ax, group in zip(axes[:, 0], groups):
        names = [e for e in _students(report) if experiment_group(e) == group and e != baseline]
        series = ([baseline] if baseline else []) + names
        for index, experiment in enumerate(series):
            clipped += _pgr_series(ax, report, datasets, experiment, index, len(series))
        ax.axhline(0, color="#777777", linewidth=0.8, linestyle="--")
        ax.axhline(1, color="#777777", linewidth=0.8, linestyle=":")
        ax.set_ylim(*_pgr_limits(report, datasets, series))
        ax.set_ylabel("PGR")
        ax.set_title(GROUP_TITLES[group], loc="left", fontsize=10)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        ax.grid(axis="y", color="#dddddd", linewidth=0.5)
    _dataset_axis(axes[-1, 0], datasets)
    fig.suptitle("Performance gap recovered per dataset", fontsize=12)
    fig.tight_layout()
    saturated = len(report.saturated)
    unstable = [u["dataset"] for u in report.unstable]
    baseline_note = (
        "baseline " + baseline + " (black circles) in every panel" if baseline else "no baseline"
    )
    caption = (
        "PGR = (student − weak) / (ceiling − weak) on test ROC AUC, one marker per intervention, "
        f"{baseline_note}; "
        "dashed line = weak supervisor (0), dotted = ceiling (1). "
        "Error bars: 95% paired bootstrap CI "
        "(one seed) or ± standard error over seeds."
        + (
            f" {clipped} point(s) beyond the axis are drawn as triangles on its edge."
            if clipped
            else ""
        )
        + (f" {saturated} saturated dataset(s) excluded." if saturated else "")
        + (
            f" Excluded for unstable PGR (ceiling − weak AUC < {report.options['min_gap']}): "
            f"{', '.join(unstable)}."
            if unstable
            else ""
        )
    )
    return fig, "PGR per dataset and intervention", caption


def _pgr_series(
    ax, report: Report, datasets: list[str], experiment: str, index: int, count: int
) -> int:
    """One experiment's PGR markers (dodged sideways so series do not overlap); returns #clipped."""
    offset = (index - (count - 1) / 2) * min(0.8 / max(count, 1), 0.18)
    xs, ys, errs, clipped = [], [], [], 0
    for x, dataset in enumerate(datasets):
        row = report.row(dataset, experiment)
        if row is None or row["pgr"] is None:
            continue
        xs.append(x + offset)
        ys.append(row["pgr"])
        errs.append(_error(row, "pgr"))
    if not xs:
        return 0
    kw = style(index)
    inside = [PGR_LIMITS[0] <= y <= PGR_LIMITS[1] for y in ys]
    shown = [(x, y, e) for x, y, e, ok in zip(xs, ys, errs, inside) if ok]
    ax.errorbar(
        [x for x, _, _ in shown],
        [y for _, y, _ in shown],
        yerr=[
            [max(y - e[0], 0) if e else 0 for _, y, e in shown],
            [max(e[1] - y, 0) if e else 0 for _, y, e in shown],
        ],
        fmt=kw["marker"],
        color=kw["color"],
        markersize=6,
        capsize=2,
        elinewidth=0.8,
        label=experiment,
        markeredgecolor="white" if kw["color"] != "#000000" else "black",
        markeredgewidth=0.5,
    )
    # Points beyond the fixed axis range: an arrow-like marker on the edge, so they are not lost
    # (without their error bar, which would only span the whole axis).
    for x, y, ok in zip(xs, ys, inside):
        if not ok:
            clipped += 1
            edge = PGR_LIMITS[0] if y < PGR_LIMITS[0] else PGR_LIMITS[1]
            ax.plot(
                [x],
                [edge],
                marker="v" if y < edge else "^",
                color=kw["color"],
                markersize=7,
                clip_on=False,
            )
    return clipped


def _pgr_limits(report: Report, datasets: list[str], experiments: list[str]) -> tuple[float, float]:
    values = [
        r["pgr"]
        for r in report.rows
        if r["dataset"] in datasets and r["experiment"] in experiments and r["pgr"] is not None
    ]
    low = max(min(values + [0.0]), PGR_LIMITS[0])
    high = min(max(values + [1.0]), PGR_LIMITS[1])
    pad = 0.06 * (high - low)
    return low - pad, high + pad


# --------------------------------------------------------------------------- AUC per dataset


def auc_by_dataset(report: Report):
    """Weak, student (baseline) and ceiling test AUC per dataset; the vertical bar is the gap."""
    plt = _pyplot()
    student = report.options.get("baseline") or next(iter(_students(report)), None)
    series = [("weak", "weak supervisor", 5, "v"), ("ceiling", "strong ceiling", 3, "^")]
    if student:
        series.insert(1, (student, f"strong student ({student})", 4, "o"))
    datasets = [d for d in report.datasets if any(report.row(d, e) for e, *_ in series)]
    if not datasets:
        return "no weak, student or ceiling AUCs"
    fig, ax = plt.subplots(figsize=(max(6.5, 0.55 * len(datasets) + 3.5), 4.2))
    for x, dataset in enumerate(datasets):
        weak, ceiling = report.row(dataset, "weak"), report.row(dataset, "ceiling")
        if weak and ceiling and weak["auc"] is not None and ceiling["auc"] is not None:
            ax.plot(
                [x, x],
                [weak["auc"], ceiling["auc"]],
                color="#bbbbbb",
                linewidth=3,
                zorder=0,
                solid_capstyle="round",
            )
    for experiment, label, colour, marker in series:
        points = [(x, report.row(d, experiment)) for x, d in enumerate(datasets)]
        points = [(x, r) for x, r in points if r and r["auc"] is not None]
        if not points:
            continue
        ys = [r["auc"] for _, r in points]
        errs = [_error(r, "auc") for _, r in points]
        ax.errorbar(
            [x for x, _ in points],
            ys,
            fmt=marker,
            color=OKABE_ITO[colour],
            markersize=7,
            capsize=2,
            elinewidth=0.8,
            label=label,
            yerr=[
                [max(y - e[0], 0) if e else 0 for y, e in zip(ys, errs)],
                [max(e[1] - y, 0) if e else 0 for y, e in zip(ys, errs)],
            ],
        )
    saturated = {item["dataset"] for item in report.saturated}
    unstable = {item["dataset"] for item in report.unstable}
    _dataset_axis(
        ax,
        [
            d
            + (" (saturated)" if d in saturated else "")
            + (" (unstable PGR)" if d in unstable else "")
            for d in datasets
        ],
    )
    ax.set_ylabel("test ROC AUC")
    ax.set_title("Weak vs student vs ceiling", loc="left")
    ax.grid(axis="y", color="#dddddd", linewidth=0.5)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    caption = (
        "Test ROC AUC of the weak supervisor, the strong student trained on its labels "
        f"({student or 'none'}) and the strong ceiling trained on ground truth; "
        "the grey bar spans the weak-to-ceiling gap that PGR measures. "
        "Error bars: 95% bootstrap CI (one seed) or ± standard error."
        + (
            f" '(unstable PGR)': the gap is below {report.options['min_gap']} AUC."
            if unstable
            else ""
        )
    )
    return fig, "Weak, student and ceiling AUC per dataset", caption


# --------------------------------------------------------------------------- sweeps


def probe_sweeps(report: Report):
    """Probe AUC minus the label set's AUC vs the probe's parameter and vs layer."""
    rows = report.sweeps
    if not rows:
        return "no sweep results (<cache>/sweeps/*/*/sweep.json); run w2sprobe sweep"
    panels = [p for p in ("k", "l2", "k_zeta") if _varies(rows, p, ("dataset", "probe", "layer"))]
    if _varies(rows, "layer", ("dataset", "probe", "k", "l2", "k_zeta")):
        panels.append("layer")
    if not panels:
        return "the stored sweeps vary neither k, l2, k_zeta nor the layer (single points only)"
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 1.6, 4.0), squeeze=False)
    datasets = sorted({r["dataset"] for r in rows})
    for ax, param in zip(axes[0], panels):
        _sweep_panel(ax, rows, param, datasets)
    fig.suptitle(
        "Probe AUC minus label AUC (weak labels: the probe's gain over the weak supervisor)",
        fontsize=11,
    )
    fig.tight_layout()
    caption = (
        "Each line is one dataset (colour) and layer or probe (marker); "
        "y = probe test AUC minus the AUC "
        "of the labels it was fit on, so points above the dashed zero line beat those labels. "
        "Panels: "
        + ", ".join(
            {
                "k": "kNN k",
                "l2": "logistic L2 penalty",
                "k_zeta": "TopoFilter k_zeta",
                "layer": "layer",
            }[p]
            for p in panels
        )
        + "."
    )
    return fig, "Probe sweeps", caption


def _sweep_panel(ax, rows: list[dict], param: str, datasets: list[str]) -> None:
    keys = (
        ("dataset", "probe", "k", "l2", "k_zeta")
        if param == "layer"
        else ("dataset", "probe", "layer")
    )
    lines: dict[tuple, list] = {}
    for row in rows:
        if row.get(param) is not None:
            lines.setdefault(tuple(row.get(k) for k in keys), []).append(
                (row[param], row["auc_minus_labels_auc"])
            )
    variants = sorted({line[1:] for line in lines}, key=_natural)
    for line, points in sorted(lines.items(), key=lambda kv: _natural(kv[0])):
        if len({x for x, _ in points}) < 2:
            continue
        points.sort()
        # Colour tells datasets apart; with a single dataset it doubles the marker instead.
        colour_index = datasets.index(line[0]) if len(datasets) > 1 else variants.index(line[1:])
        colour = OKABE_ITO[colour_index % len(OKABE_ITO)]
        marker = MARKERS[variants.index(line[1:]) % len(MARKERS)]
        detail = (
            f"L{line[2]}"
            if param != "layer"
            else " ".join(f"{k}={v}" for k, v in zip(keys[2:], line[2:]) if v is not None)
        )
        ax.plot(
            *zip(*points),
            marker=marker,
            color=colour,
            linewidth=1.2,
            markersize=5,
            label=f"{line[0]} · {line[1]} {detail}".strip(),
        )
    values = [x for pts in lines.values() for x, _ in pts]
    if param == "l2" or (min(values) > 0 and max(values) / min(values) >= 20):
        ax.set_xscale("log")
    if param == "layer":
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.axhline(0, color="#777777", linewidth=0.8, linestyle="--")
    ax.set_xlabel(
        {
            "k": "k (kNN neighbours)",
            "l2": "L2 penalty",
            "k_zeta": "k_zeta (TopoFilter)",
            "layer": "layer",
        }[param]
    )
    ax.set_ylabel("probe AUC − label AUC")
    ax.grid(color="#eeeeee", linewidth=0.5)
    ax.legend(fontsize=7, frameon=False)


def _varies(rows: list[dict], param: str, within: tuple[str, ...]) -> bool:
    """Does any group of rows (equal on ``within``) take two or more values of ``param``?"""
    seen: dict[tuple, set] = {}
    for row in rows:
        if row.get(param) is not None:
            seen.setdefault(tuple(row.get(k) for k in within if k != param), set()).add(row[param])
    return any(len(values) > 1 for values in seen.values())


# --------------------------------------------------------------------------- filter precision


def filter_precision(report: Report):
    """Precision of each probe filter (removed labels that were wrong) vs the fraction removed."""
    rows = [
        r for r in report.filters if r["contamination"] is not None and r["precision"] is not None
    ]
    if not rows:
        return "no filtered label sets with a precision (w2sprobe filter writes them)"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    probes = sorted({str(r["probe"]) for r in rows})
    for index, probe in enumerate(probes):
        mine = [r for r in rows if str(r["probe"]) == probe]
        kw = style(index + 1)  # skip black: it is the random-removal reference here
        # Dodge sideways: at the study's single contamination every probe would share one x.
        dodge = (index - (len(probes) - 1) / 2) * 0.004
        for line in sorted({(r["dataset"], r["layer"]) for r in mine}, key=_natural):
            pts = sorted(
                (r["contamination"], r["precision"])
                for r in mine
                if (r["dataset"], r["layer"]) == line
            )
            if len(pts) > 1:
                ax.plot(
                    [x + dodge for x, _ in pts],
                    [y for _, y in pts],
                    color=kw["color"],
                    linewidth=0.8,
                    alpha=0.6,
                )
        ax.plot(
            [r["contamination"] + dodge for r in mine],
            [r["precision"] for r in mine],
            linestyle="none",
            marker=kw["marker"],
            color=kw["color"],
            markersize=7,
            label=probe,
        )
    base = [(r["contamination"], r["base_rate"]) for r in rows if r["base_rate"] is not None]
    if base:
        ax.plot(
            *zip(*base),
            linestyle="none",
            marker="_",
            color="black",
            markersize=14,
            markeredgewidth=1.5,
            label="random removal (mislabel rate)",
        )
    # A wide enough x range that the sideways dodge does not read as a different contamination.
    spread = [r["contamination"] for r in rows]
    ax.set_xlim(max(min(spread) - 0.05, 0), max(spread) + 0.05)
    ax.set_xlabel("contamination (fraction removed)")
    ax.set_ylabel("precision (removed labels that were wrong)")
    ax.set_ylim(0, 1.02)
    ax.grid(color="#eeeeee", linewidth=0.5)
    ax.set_title("Filter precision vs contamination", loc="left")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    caption = (
        "One marker per filtered label set (strong_train split); "
        "a filter is useful when it beats the black bars, "
        "the precision of removing the same number of rows at random "
        "(the weak labels' mislabel rate). "
        f"{len(rows)} label set(s) over {len({r['dataset'] for r in rows})} dataset(s)."
    )
    return fig, "Filter precision vs contamination", caption


# --------------------------------------------------------------------------- helpers


def _natural(values: tuple) -> tuple:
    """Sort key for tuples mixing names, numbers and None: numbers numerically (k=5 before k=50)."""
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in values)


def _students(report: Report) -> list[str]:
    return [e for e in report.experiments if experiment_group(e) != "reference"]


def _error(row: dict, metric: str) -> list[float] | None:
    """The interval an error bar shows: the bootstrap CI (one seed), else mean ± standard error."""
    if row.get(f"{metric}_ci"):
        return row[f"{metric}_ci"]
    se = row.get(f"{metric}_se")
    return [row[metric] - se, row[metric] + se] if se is not None and math.isfinite(se) else None


def _dataset_axis(ax, labels: list[str]) -> None:
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(
        labels,
        rotation=40 if len(labels) > 4 else 0,
        ha="right" if len(labels) > 4 else "center",
        fontsize=9,
    )
    ax.set_xlim(-0.6, len(labels) - 0.4)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig, stem: Path, name: str, title: str, caption: str) -> Figure:
    plt = _pyplot()
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    # Fixed metadata and hash salt: the same report gives byte-identical SVGs.
    with plt.rc_context({"svg.hashsalt": "w2sprobe", "svg.fonttype": "none"}):
        fig.savefig(png, dpi=150, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return Figure(name, title, caption, png, svg)
