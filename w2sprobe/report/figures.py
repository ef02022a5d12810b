"""Report figures drawn for a paper (matplotlib, Agg), each saved as PNG, SVG and PDF.

Every figure is sized for a two-column paper (at most 7 in wide, 7-8 pt type), uses the
Okabe-Ito palette (distinguishable with the common colour-vision deficiencies) with a marker
per series, so it still reads in greyscale, and has one legend shared by all its panels. A
figure whose inputs do not exist is skipped with a reason instead of drawn empty. The
arithmetic (clipping, ticks, layout) is in ``plotting.py``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..atomic import replacing
from ..vocabulary import DISPLAY_GROUPS as GROUP_TITLES
from ..vocabulary import display_group as experiment_group
from .build import Report
from .layers import layer_colour, layer_colour_bar
from .plotting import (
    LEGEND_LAYERS,
    MARKERS,
    OKABE_ITO,
    PAGE_WIDTH,
    PAPER_RC,
    REFERENCE_STYLE,
    clip_to_window,
    data_window,
    decade_ticks,
    marker_size,
    pack_rows,
    panel_width,
    series_styles,
    tick_labels,
)

#: PGR window: the blog cuts off extreme PGRs too; beyond it a point is an arrow with its value.
PGR_LIMITS = (-1.0, 2.0)
#: Every figure is written in each of these formats: PNG to look at, SVG and PDF for papers.
FIGURE_FORMATS = ("png", "svg", "pdf")
#: Height of one row of panels (inches), dataset labels included.
ROW_HEIGHT = 2.3


@dataclass
class Figure:
    """One written figure: where its files are and what it shows."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path
    pdf: Path

    @property
    def files(self) -> list[Path]:
        return [self.png, self.svg, self.pdf]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "caption": self.caption,
            "png": str(self.png),
            "svg": str(self.svg),
            "pdf": str(self.pdf),
        }


def draw_figures(
    report: Report, out_dir: Path, extra: tuple = ()
) -> tuple[list[Figure], list[dict]]:
    """Draw every figure the report has inputs for into ``out_dir``; return (figures, skipped).

    ``extra``: more ``(name, draw)`` pairs, drawn last (figures of modules that build on this
    one, such as report/views_figures.py)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    figures, skipped = [], []
    for name, draw in (
        ("pgr_by_dataset", pgr_by_dataset),
        ("auc_by_dataset", auc_by_dataset),
        ("probe_sweeps", probe_sweeps),
        ("filter_precision", filter_precision),
        ("misfit_vs_gain", misfit_vs_gain),
        *extra,
    ):
        with plt.rc_context(PAPER_RC):
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


@dataclass
class Panel:
    """One panel of a per-group figure: its title, series (in legend order) and dataset columns."""

    title: str
    series: list[str]
    datasets: list[str]


def pgr_panels(report: Report) -> list[Panel]:
    """One panel per intervention group, over only the datasets where that group has a PGR.

    The baseline joins every panel (the comparison each panel is about) but does not by itself
    earn a dataset a column: no empty columns.
    """
    baseline = report.options.get("baseline")
    panels = []
    for group, title in GROUP_TITLES.items():
        names = [e for e in _students(report) if experiment_group(e) == group and e != baseline]
        own = names + ([baseline] if baseline and experiment_group(baseline) == group else [])
        columns = [d for d in report.included if any(_value(report, d, e, "pgr") for e in own)]
        # a series with no PGR on these columns (e.g. run only on an unstable dataset) would
        # sit in the legend with no point to show
        names = [e for e in names if any(_value(report, d, e, "pgr") for d in columns)]
        if own and columns:
            panels.append(Panel(title, ([baseline] if baseline else []) + names, columns))
    return panels


def pgr_by_dataset(report: Report):
    """The blog's dot plot: PGR per dataset, one compact panel per group of interventions."""
    panels = pgr_panels(report)
    if not panels:
        return "no student or probe runs with a PGR on a non-saturated dataset"
    baseline = report.options.get("baseline")
    styles = series_styles(_students(report), baseline)
    ends = [
        v
        for panel in panels
        for d in panel.datasets
        for e in panel.series
        for v in _point_and_interval(report.row(d, e), "pgr")
    ]
    window = data_window(ends, PGR_LIMITS, (0.0, 1.0))
    fig, axes = _panel_figure(panels)
    clipped = cut = 0
    for ax, panel in zip(axes, panels):
        for index, experiment in enumerate(panel.series):
            offset = _dodge(index, len(panel.series))
            for x, dataset in enumerate(panel.datasets):
                row = report.row(dataset, experiment)
                if row is None or row["pgr"] is None:
                    continue
                drawn = clip_to_window(row["pgr"], _error(row, "pgr"), window)
                _clipped_point(ax, x + offset, drawn, styles[experiment])
                clipped += drawn.beyond != 0
                cut += drawn.low_cut + drawn.high_cut
        ax.axhline(0, color="#777777", linewidth=0.7, linestyle="--", zorder=0)
        ax.axhline(1, color="#777777", linewidth=0.7, linestyle=":", zorder=0)
        pad = 0.06 * (window[1] - window[0])
        ax.set_ylim(window[0] - pad, window[1] + pad)
        _panel_axes(ax, panel, "PGR")
    _shared_legend(fig, _legend_entries(panels, styles))
    return fig, "PGR per dataset and intervention", _pgr_caption(report, window, clipped, cut)


def _pgr_caption(report: Report, window: tuple[float, float], clipped: int, cut: int) -> str:
    baseline = report.options.get("baseline")
    unstable = [u["dataset"] for u in report.unstable]
    saturated = len(report.saturated)
    parts = [
        "PGR = (student − weak) / (ceiling − weak) on test ROC AUC, one marker per "
        "intervention; each panel shows only the datasets with results for its interventions"
        + (f", and the baseline {baseline} (black circles)" if baseline else "")
        + ". Dashed line: weak supervisor (0); dotted: ceiling (1). Error bars: 95% paired "
        "bootstrap CI (one seed) or ± standard error over seeds.",
    ]
    if clipped:
        parts.append(
            f"Clipped points: {clipped} PGR(s) outside [{window[0]:.2g}, {window[1]:.2g}] are "
            "drawn as open markers (white face) on the panel's edge, labelled with their value."
        )
    if cut:
        parts.append(
            f"Clipped intervals: {cut} CI end(s) beyond the window end in a caret at the edge "
            "(the point itself is inside)."
        )
    if saturated:
        parts.append(f"{saturated} saturated dataset(s) excluded.")
    if unstable:
        parts.append(
            "Excluded for unstable PGR (the 95% CI of ceiling − weak AUC not above "
            f"{report.options['min_gap']}): "
            f"{', '.join(unstable)}."
        )
    return " ".join(parts)


def _clipped_point(ax, x: float, drawn, kw: dict) -> None:
    """A marker with its error bar as ``clip_to_window`` placed it; arrows where it was cut."""
    if drawn.beyond:
        # The point itself lies outside: its own marker, open (white face), on the edge -- never
        # a triangle, which is what ends a cut interval (a caret below).
        ax.plot(
            [x],
            [drawn.y],
            marker=kw["marker"],
            markerfacecolor="white",
            markeredgecolor=kw["color"],
            markeredgewidth=1.1,
            markersize=marker_size(kw["marker"], 5),
            linestyle="none",
            clip_on=False,
            zorder=3,
        )
        ax.annotate(
            drawn.label,
            (x, drawn.y),
            xytext=(0, 4 if drawn.beyond < 0 else -4),
            textcoords="offset points",
            rotation=90,
            ha="center",
            va="bottom" if drawn.beyond < 0 else "top",
            fontsize=5.5,
            color=kw["color"] if kw["color"] != OKABE_ITO[7] else "#8a7a00",
        )
        return
    bar = None
    if drawn.low is not None:
        bar = [[max(drawn.y - drawn.low, 0)], [max(drawn.high - drawn.y, 0)]]
    ax.errorbar(
        [x],
        [drawn.y],
        yerr=bar,
        fmt=kw["marker"],
        color=kw["color"],
        markersize=marker_size(kw["marker"], 4.5),
        capsize=1.5,
        elinewidth=0.8,
        markeredgecolor="white" if kw["color"] != OKABE_ITO[0] else OKABE_ITO[0],
        markeredgewidth=0.4,
        zorder=2,
    )
    # a cut interval end: a caret (the interval goes on beyond the window)
    for end, cut, marker in ((drawn.low, drawn.low_cut, 7), (drawn.high, drawn.high_cut, 6)):
        if cut:
            ax.plot([x], [end], marker=marker, color=kw["color"], markersize=4, zorder=2)


# --------------------------------------------------------------------------- AUC per dataset


def auc_panels(report: Report) -> list[Panel]:
    """Per intervention group: weak, the baseline, the group's students and the ceiling."""
    baseline = report.options.get("baseline")
    panels = []
    for group, title in GROUP_TITLES.items():
        names = [e for e in _students(report) if experiment_group(e) == group and e != baseline]
        own = names + ([baseline] if baseline and experiment_group(baseline) == group else [])
        columns = [d for d in report.datasets if any(_value(report, d, e, "auc") for e in own)]
        if own and columns:
            middle = ([baseline] if baseline else []) + names
            panels.append(Panel(title, ["weak", *middle, "ceiling"], columns))
    if not panels:  # references only: still worth a look
        columns = [
            d for d in report.datasets if any(_value(report, d, e, "auc") for e in REFERENCE_STYLE)
        ]
        if columns:
            panels.append(Panel(GROUP_TITLES["reference"], ["weak", "ceiling"], columns))
    return panels


def auc_by_dataset(report: Report):
    """Test AUC per dataset: weak, each student and the ceiling side by side; a panel per group."""
    panels = auc_panels(report)
    if not panels:
        return "no weak, student or ceiling AUCs"
    styles = series_styles(_students(report), report.options.get("baseline"))
    values = [
        v
        for panel in panels
        for d in panel.datasets
        for e in panel.series
        for v in _point_and_interval(report.row(d, e), "auc")
    ]
    low, high = min(values), max(values)
    pad = 0.06 * max(high - low, 0.02)
    fig, axes = _panel_figure(panels)
    for ax, panel in zip(axes, panels):
        for index, experiment in enumerate(panel.series):
            offset = _dodge(index, len(panel.series))
            for x, dataset in enumerate(panel.datasets):
                row = report.row(dataset, experiment)
                if row is None or row["auc"] is None:
                    continue
                drawn = clip_to_window(row["auc"], _error(row, "auc"), (0.0, 1.0))
                _clipped_point(ax, x + offset, drawn, styles[experiment])
        ax.set_ylim(min(low - pad, 0.5 - pad), min(high + pad, 1.0 + pad / 2))
        ax.axhline(0.5, color="#777777", linewidth=0.7, linestyle="--", zorder=0)  # chance
        _panel_axes(ax, panel, "test ROC AUC", marks=_dataset_marks(report))
    # Panels stacked one above the other over the same datasets, at the same x positions (the
    # same left and right edges: a panel's width follows its series): their labels once, at
    # the foot.
    stacked = (
        len({(round(ax.get_position().x0, 3), round(ax.get_position().x1, 3)) for ax in axes}) == 1
    )
    if stacked and all(p.datasets == panels[-1].datasets for p in panels):
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)
    _shared_legend(fig, _legend_entries(panels, styles))
    unstable = bool(report.unstable)
    caption = (
        "Test ROC AUC per dataset, side by side: weak supervisor (light grey ▼), the strong "
        "students trained on its labels, and the strong ceiling trained on ground truth (dark "
        "grey ▲); one panel per group of interventions, over the datasets that group has "
        "results for. Dashed line: chance (0.5). "
        "Error bars: 95% bootstrap CI (one seed) or ± standard error."
        + (" *: saturated." if report.saturated else "")
        + (f" †: unstable PGR (ceiling − weak < {report.options['min_gap']})." if unstable else "")
    )
    return fig, "Weak, student and ceiling AUC per dataset", caption


def _dataset_marks(report: Report) -> dict[str, str]:
    """The table's marks on a dataset label: * saturated, † unstable PGR."""
    marks: dict[str, str] = {}
    for item in report.saturated:
        marks[item["dataset"]] = marks.get(item["dataset"], "") + "*"
    for item in report.unstable:
        marks[item["dataset"]] = marks.get(item["dataset"], "") + "†"
    return marks


# --------------------------------------------------------------------------- sweeps

_SWEEP_AXIS = {
    "k": "k (kNN neighbours)",
    "l2": "L2 penalty",
    "k_zeta": "k_zeta (TopoFilter)",
    "layer": "layer",
}
_SWEEP_TITLE = {"k": "kNN", "l2": "Logistic regression", "k_zeta": "TopoFilter", "layer": ""}


def probe_sweeps(report: Report):
    """Probe AUC minus the label set's AUC vs the probe's parameter, one line per layer."""
    if not report.sweeps:
        return "no sweep results (<cache>/sweeps/*/*/sweep.json); run w2sprobe sweep"
    rows, left_out = sweeps_of_one_label_set(report.sweeps)
    panels = [p for p in ("k", "l2", "k_zeta") if _varies(rows, p, ("dataset", "probe", "layer"))]
    if not panels and _varies(rows, "layer", ("dataset", "probe", "k", "l2", "k_zeta")):
        panels = ["layer"]  # only the layer varies: it is the x axis
    if not panels:
        return "the stored sweeps vary neither k, l2, k_zeta nor the layer (single points only)"
    datasets = sorted({r["dataset"] for r in rows})
    layers = sorted({r["layer"] for r in rows if r.get("layer") is not None})
    if panels != ["layer"] and (len(datasets) > len(OKABE_ITO) or len(layers) > LEGEND_LAYERS):
        fig, title, caption = _sweep_means(rows, panels, datasets, layers)
        return fig, title, caption + left_out
    plt = _pyplot()
    width = min(PAGE_WIDTH, 2.5 * len(panels) + 0.4)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width, 2.4), squeeze=False, layout="constrained"
    )
    entries: dict[str, dict] = {}
    for ax, param in zip(axes[0], panels):
        entries.update(_sweep_panel(ax, rows, param, datasets))
    # Datasets (colours) first, then layers (markers), whatever order the panels met them in.
    order = sorted(entries, key=lambda name: (name not in datasets, _text_order(name)))
    _shared_legend(fig, {name: entries[name] for name in order})
    caption = (
        _SWEEP_Y
        + "; "
        + (
            "colour: dataset, marker: layer"
            if len(datasets) > 1 and panels != ["layer"]
            else "one line per layer"
            if panels != ["layer"]
            else "one line per probe setting"
        )
        + ". Panels: "
        + ", ".join(_SWEEP_AXIS[p] for p in panels)
        + "; log axes are labelled at every decade."
    )
    return fig, "Probe sweeps", caption + left_out


def sweeps_of_one_label_set(rows: list[dict]) -> tuple[list[dict], str]:
    """The sweep rows fit on one label set, and a caption sentence naming those left out.

    A probe's gain is measured against the labels it was fit on, so gains over weak labels and
    over a filtered set are different quantities: one figure averaging both would mean nothing.
    The weak labels (the blog's sweeps) win where present, else the label set swept most.
    """
    counts = Counter(row.get("labels", "weak") for row in rows)
    chosen = "weak" if "weak" in counts else max(sorted(counts), key=counts.get)
    kept = [row for row in rows if row.get("labels", "weak") == chosen]
    others = sorted(name for name in counts if name != chosen)
    if not others:
        return kept, ""
    return kept, (
        f" Probes fit on the {chosen} labels; the sweeps fit on "
        + ", ".join(f"{name} ({counts[name]} rows)" for name in others)
        + " are left out."
    )


_SWEEP_Y = (
    "y = probe test AUC minus the AUC of the labels it was fit on (with weak labels: the "
    "probe's gain over the weak supervisor), so points above the dashed line beat those labels"
)


def _sweep_means(rows: list[dict], panels: list[str], datasets: list[str], layers: list[int]):
    """Too many datasets or layers for one line each: per layer (coloured in order, with a
    colour bar), the mean over datasets at each parameter value."""

    plt = _pyplot()
    width = min(PAGE_WIDTH, 2.5 * len(panels) + 1.0)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width, 2.4), squeeze=False, layout="constrained"
    )
    for ax, param in zip(axes[0], panels):
        for layer, points in sweep_means(rows, param).items():
            xs, ys = zip(*points)
            ax.plot(xs, ys, color=layer_colour(layer, layers), marker="o",
                    markersize=2.5, linewidth=1.0)  # fmt: skip
        _sweep_axes(ax, param, [x for r in rows if (x := r.get(param)) is not None])
    layer_colour_bar(fig, axes[0].tolist(), layers)
    counts = sorted({len(ds) for ds in _datasets_per_point(rows).values()})
    spread = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    caption = (
        f"{_SWEEP_Y}; one line per layer (colour bar)"
        + (
            f", each point the mean over the {spread} datasets swept at that setting "
            f"({len(datasets)} in all; each dataset's own lines are in its sweep.png under "
            "<cache>/sweeps/)"
            if len(datasets) > 1
            else ""
        )
        + ". Panels: "
        + ", ".join(_SWEEP_AXIS[p] for p in panels)
        + "; log axes are labelled at every decade."
    )
    return fig, "Probe sweeps", caption


def sweep_means(rows: list[dict], param: str) -> dict[int, list[tuple[float, float]]]:
    """layer -> sorted (value of ``param``, mean over datasets of probe AUC − label AUC)."""
    cells: dict[tuple[int, float], list[float]] = {}
    for row in rows:
        if row.get(param) is not None and row.get("auc_minus_labels_auc") is not None:
            cells.setdefault((row["layer"], row[param]), []).append(row["auc_minus_labels_auc"])
    out: dict[int, list[tuple[float, float]]] = {}
    for (layer, value), gains in sorted(cells.items()):
        out.setdefault(layer, []).append((value, sum(gains) / len(gains)))
    return {layer: points for layer, points in out.items() if len(points) >= 2}


def _datasets_per_point(rows: list[dict]) -> dict[tuple, set]:
    seen: dict[tuple, set] = {}
    for row in rows:
        key = (row.get("probe"), row.get("layer"), row.get("k"), row.get("l2"), row.get("k_zeta"))
        seen.setdefault(key, set()).add(row["dataset"])
    return seen


def _sweep_panel(ax, rows: list[dict], param: str, datasets: list[str]) -> dict[str, dict]:
    """One swept parameter's lines; returns the legend entries it used (label -> style)."""
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
    lines = {line: pts for line, pts in lines.items() if len({x for x, _ in pts}) >= 2}
    variants = sorted({line[1:] for line in lines}, key=_natural)
    by_dataset = len(datasets) > 1
    colours: dict[str, dict] = {}
    entries: dict[str, dict] = {}
    for line, points in sorted(lines.items(), key=lambda kv: _natural(kv[0])):
        variant = variants.index(line[1:])
        colour = OKABE_ITO[(datasets.index(line[0]) if by_dataset else variant) % len(OKABE_ITO)]
        marker = MARKERS[variant % len(MARKERS)]
        ax.plot(
            *zip(*sorted(points)),
            marker=marker,
            color=colour,
            linewidth=1.0,
            markersize=marker_size(marker, 3.5),
        )
        name = _variant_name(keys, line)
        if by_dataset:
            colours[line[0]] = {"color": colour, "marker": None}
            entries[name] = {"color": "#666666", "marker": marker, "linestyle": "none"}
        else:
            entries[name] = {"color": colour, "marker": marker}
    _sweep_axes(ax, param, [x for pts in lines.values() for x, _ in pts])
    return {**colours, **entries}


def _sweep_axes(ax, param: str, values: list[float]) -> None:
    """Scale, ticks, zero line, labels and grid of one sweep panel whose x values are ``values``."""
    if values and min(values) > 0 and (param == "l2" or max(values) / min(values) >= 20):
        ax.set_xscale("log")
        ticks = decade_ticks(min(values), max(values))
        ax.set_xticks(ticks, tick_labels(ticks))
        ax.xaxis.set_minor_formatter(_null_formatter())
    elif param == "layer":
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.axhline(0, color="#777777", linewidth=0.7, linestyle="--", zorder=0)
    ax.set_xlabel(_SWEEP_AXIS[param])
    ax.set_ylabel("probe AUC − label AUC")
    ax.set_title(_SWEEP_TITLE[param], loc="left")
    ax.grid(color="#eeeeee", linewidth=0.5)


def _variant_name(keys: tuple[str, ...], line: tuple) -> str:
    """How the legend names a line's non-dataset identity: ``layer 6`` or ``knn k=50``."""
    if keys[-1] == "layer":
        return f"layer {line[2]}"
    settings = " ".join(f"{k}={v:g}" for k, v in zip(keys[2:], line[2:]) if v is not None)
    return f"{line[1]} {settings}".strip()


def _varies(rows: list[dict], param: str, within: tuple[str, ...]) -> bool:
    """Does any group of rows (equal on ``within``) take two or more values of ``param``?"""
    seen: dict[tuple, set] = {}
    for row in rows:
        if row.get(param) is not None:
            seen.setdefault(tuple(row.get(k) for k in within if k != param), set()).add(row[param])
    return any(len(values) > 1 for values in seen.values())


# --------------------------------------------------------------------------- filter precision


def filter_precision(report: Report):
    """Precision of each probe filter (removed labels that were wrong), one column per dataset,
    against that dataset's random-removal precision (the weak labels' mislabel rate).

    Dataset columns rather than a contamination axis: the reference is a per-dataset number, so
    a filter can only be judged against the bar of its own dataset.  Several contaminations of
    one probe are separate series (``knn 10%``).
    """
    rows = [
        r for r in report.filters if r["contamination"] is not None and r["precision"] is not None
    ]
    if not rows:
        return "no filtered label sets with a precision (w2sprobe filter writes them)"
    several = len({r["contamination"] for r in rows}) > 1
    names = {id(r): _filter_series(r, several) for r in rows}
    series = sorted(set(names.values()), key=lambda n: _natural((n,)))
    panel = Panel("", series, sorted({r["dataset"] for r in rows}, key=lambda d: _natural((d,))))
    column = {d: i for i, d in enumerate(panel.datasets)}
    plt = _pyplot()
    width = max(min(panel_width(len(panel.datasets), len(series)), PAGE_WIDTH), 3.2)
    fig, ax = plt.subplots(figsize=(width, 3.0), layout="constrained")
    for dataset in panel.datasets:
        for rate in {r["base_rate"] for r in rows if r["dataset"] == dataset} - {None}:
            x = column[dataset]
            ax.plot([x - 0.4, x + 0.4], [rate, rate], color="black", linewidth=1.5, zorder=2)
    for index, name in enumerate(series):
        kw = style(index + 1)  # skip black: it is the random-removal reference here
        mine = [r for r in rows if names[id(r)] == name]
        ax.plot(
            [column[r["dataset"]] + _dodge(index, len(series)) for r in mine],
            [r["precision"] for r in mine],
            linestyle="none",
            marker=kw["marker"],
            color=kw["color"],
            markersize=marker_size(kw["marker"], 5),
            label=name,
            zorder=3,
        )
    ax.plot([], [], color="black", linewidth=1.5, label="random removal (mislabel rate)")
    _panel_axes(ax, panel, "precision (removed labels\nthat were wrong)")
    ax.set_ylim(0, 1.02)
    fig.legend(loc="outside lower center", ncols=min(len(series) + 1, 3), frameon=False)
    contaminations = ", ".join(f"{c:.0%}" for c in sorted({r["contamination"] for r in rows}))
    caption = (
        "One marker per filtered label set (strong_train split; "
        f"fraction removed: {contaminations}); "
        "a filter is useful where it is above its dataset's black bar, "
        "the precision of removing the same number of rows at random "
        "(the weak labels' mislabel rate). "
        f"{len(rows)} label set(s) over {len(panel.datasets)} dataset(s)."
    )
    return fig, "Filter precision per dataset", caption


def _filter_series(row: dict, several_contaminations: bool) -> str:
    """A filtered label set's legend name: its probe, and its contamination where they differ."""
    name = str(row["probe"]) + (" (uses ground truth)" if row.get("uses_ground_truth") else "")
    return f"{name} {row['contamination']:.0%}" if several_contaminations else name


# --------------------------------------------------------------------------- helpers


def _natural(values: tuple) -> tuple:
    """Sort key for tuples mixing names, numbers and None: numbers numerically (k=5 before k=50)."""
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in values)


def _text_order(text: str) -> tuple:
    """Sort key reading the digits in a name as numbers: "layer 9" before "layer 10"."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _students(report: Report) -> list[str]:
    return [e for e in report.experiments if experiment_group(e) != "reference"]


def _value(report: Report, dataset: str, experiment: str, metric: str) -> bool:
    """Does ``experiment`` have a ``metric`` value on ``dataset``?"""
    row = report.row(dataset, experiment)
    return row is not None and row.get(metric) is not None


def _error(row: dict, metric: str) -> list[float] | None:
    """The interval an error bar shows: the bootstrap CI (one seed), else mean ± standard error."""
    if row.get(f"{metric}_ci"):
        return row[f"{metric}_ci"]
    se = row.get(f"{metric}_se")
    return [row[metric] - se, row[metric] + se] if se is not None and math.isfinite(se) else None


def _point_and_interval(row: dict | None, metric: str) -> list[float]:
    """A row's value and interval ends (what a window must hold to show it whole)."""
    if row is None or row.get(metric) is None:
        return []
    return [row[metric], *(_error(row, metric) or [])]


def _dodge(index: int, count: int) -> float:
    """Sideways offset of the ``index``-th of ``count`` series, so markers sit side by side."""
    step = min(0.8 / max(count, 1), 0.2)
    return (index - (count - 1) / 2) * step


def _panel_figure(panels: list[Panel]):
    """A figure of one compact panel per entry (width from its dataset columns and series),
    packed into rows at most a page wide; returns (figure, axes in input order)."""
    plt = _pyplot()
    widths = [min(panel_width(len(p.datasets), len(p.series)), PAGE_WIDTH) for p in panels]
    rows = pack_rows(widths)
    page = max(sum(widths[i] for i in row) for row in rows)
    fig = plt.figure(figsize=(page, ROW_HEIGHT * len(rows) + 0.4), layout="constrained")
    grid = fig.add_gridspec(len(rows), 1)
    axes: list = [None] * len(panels)
    for r, row in enumerate(rows):
        ratios = [widths[i] for i in row]
        spare = page - sum(ratios)
        sub = grid[r].subgridspec(
            1, len(row) + (spare > 0.05), width_ratios=ratios + [spare] * (spare > 0.05)
        )
        for c, index in enumerate(row):
            axes[index] = fig.add_subplot(sub[0, c])
    return fig, axes


def _panel_axes(ax, panel: Panel, ylabel: str, marks: dict[str, str] | None = None) -> None:
    """Dataset columns, title and grid of one panel."""
    labels = [d + (marks or {}).get(d, "") for d in panel.datasets]
    ax.set_xticks(range(len(labels)))
    tilt = len(labels) > 2 or any(len(label) > 8 for label in labels)
    ax.set_xticklabels(labels, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(panel.title, loc="left")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.5, zorder=0)


def _legend_entries(panels: list[Panel], styles: dict[str, dict]) -> dict[str, dict]:
    """Every series of the figure once, in first-appearance order."""
    entries: dict[str, dict] = {}
    references = [n for n in REFERENCE_STYLE if any(n in p.series for p in panels)]
    for panel in [Panel("", references, []), *panels]:  # the references first, side by side
        for name in panel.series:
            entries.setdefault(name, {**styles[name], "linestyle": "none"})
    return entries


def _shared_legend(fig, entries: dict[str, dict]) -> None:
    """One legend for the whole figure, below its panels."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            color=kw["color"],
            marker=kw.get("marker"),
            linestyle=kw.get("linestyle", "-"),
            markersize=marker_size(kw.get("marker"), 4.5),
            linewidth=1.0,
        )
        for kw in entries.values()
    ]
    columns = max(1, min(len(handles), int(fig.get_figwidth() / 1.1)))
    fig.legend(
        handles,
        list(entries),
        loc="outside lower center",
        ncols=columns,
        frameon=False,
        handletextpad=0.4,
        columnspacing=1.2,
    )


def _null_formatter():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig, stem: Path, name: str, title: str, caption: str) -> Figure:
    plt = _pyplot()
    paths = {fmt: stem.with_suffix(f".{fmt}") for fmt in FIGURE_FORMATS}
    # Fixed metadata and hash salt: the same report gives byte-identical SVG and PDF files;
    # text stays text (SVG) and TrueType (PDF: editable, and what paper templates require).
    rc = {"svg.hashsalt": "w2sprobe", "svg.fonttype": "none", "pdf.fonttype": 42}
    metadata = {
        "png": {"Software": None},
        "svg": {"Date": None, "Creator": None},
        "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
    }
    try:
        with plt.rc_context(rc):
            for fmt, path in paths.items():
                with replacing(path) as tmp:  # a kill never leaves a torn figure
                    fig.savefig(
                        tmp, format=fmt, dpi=200, bbox_inches="tight", metadata=metadata[fmt]
                    )
    finally:
        plt.close(fig)
    return Figure(name, title, caption, paths["png"], paths["svg"], paths["pdf"])


# --------------------------------------------------------------------------- diagnostics


def misfit_vs_gain(report: Report):
    """Across datasets: each student's and probe's misfit to its weak labels against its gain
    over the weak model (Charikar et al. 2024: gain ≥ misfit for convex heads), and each
    dataset's weak–ceiling error κ against the baseline's PGR (Goel et al. 2025)."""
    included = set(report.included)
    cells = [
        r
        for r in report.rows
        if experiment_group(r["experiment"]) != "reference"
        and (r.get("diag") or {}).get("misfit_squared") is not None
        and (r.get("diag") or {}).get("gain_squared") is not None
    ]
    if not cells:
        return "no student or probe runs with diagnostics (misfit and gain)"
    plt = _pyplot()
    baseline = report.options.get("baseline")
    styles = series_styles(_students(report), baseline)
    fig, (left, right) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.1), layout="constrained")
    shown: dict[str, dict] = {}
    for r in cells:
        d = r["diag"]
        kw = styles[r["experiment"]]
        if r["dataset"] in included and not r.get("pgr_unstable"):
            left.plot(
                [d["misfit_squared"]],
                [d["gain_squared"]],
                marker=kw["marker"],
                color=kw["color"],
                markersize=marker_size(kw["marker"], 4.5),
                markeredgecolor="white" if kw["color"] != OKABE_ITO[0] else OKABE_ITO[0],
                markeredgewidth=0.4,
                linestyle="none",
                zorder=3,
            )
            shown[r["experiment"]] = {**kw, "linestyle": "none"}
        else:
            left.plot(
                [d["misfit_squared"]],
                [d["gain_squared"]],
                marker="o",
                markerfacecolor="none",
                markeredgecolor="#999999",
                markersize=3.5,
                markeredgewidth=0.6,
                linestyle="none",
                zorder=2,
            )
    high = max(max(r["diag"]["misfit_squared"] for r in cells), 1e-3) * 1.1
    left.plot([0, high], [0, high], color="#777777", linewidth=0.7, linestyle="--", zorder=1)
    left.axhline(0, color="#777777", linewidth=0.7, linestyle=":", zorder=0)
    left.set_xlabel("misfit: mean (student − its weak labels)² on its training split")
    left.set_ylabel("gain: weak − student test Brier")
    left.set_title("Misfit vs gain", fontsize=8)
    _kappa_panel(right, report, baseline, included, styles)
    entries = {
        **shown,
        "unstable or saturated dataset": {"color": "#999999", "marker": "o", "linestyle": "none"},
    }
    _shared_legend(fig, entries)
    mg = (report.diagnostics or {}).get("misfit_vs_gain") or {}
    kp = (report.diagnostics or {}).get("kappa_vs_pgr") or {}
    caption = (
        "Left: each student's and probe's misfit (mean squared distance to the labels it trained "
        "on: strong_train for students, val for probes) against its gain over the weak model "
        "(test Brier score of the weak model minus its own); dashed: gain = misfit, the "
        "theory's bound for convex heads (Charikar et al. 2024); dotted: no gain. Filled: "
        "datasets with a stable PGR; hollow grey: unstable or saturated datasets and unstable "
        f"PGRs. Spearman ρ over the filled points = {_num(mg.get('rho'))} (p = "
        f"{_num(mg.get('p'))}, n = {mg.get('n', 0)}). Right: each stable dataset's Cohen's κ "
        f"between the weak model's and the ceiling's test errors against {baseline}'s PGR "
        f"(Goel et al. 2025: less similar errors, more gain); ρ = {_num(kp.get('rho'))} "
        f"(p = {_num(kp.get('p'))}, n = {kp.get('n', 0)}). The panel keeps Cohen's κ; their "
        "CAPA κp per dataset and its ρ with PGR are in the Diagnostics table."
    )
    return fig, "Misfit vs gain, and weak–ceiling error consistency vs PGR", caption


def _kappa_panel(ax, report: Report, baseline, included: set, styles: dict) -> None:
    points = []
    for dataset in report.datasets:
        row = report.row(dataset, baseline) if baseline else None
        kappa = ((row or {}).get("diag") or {}).get("weak_ceiling_error_kappa")
        if row is None or kappa is None or row.get("pgr") is None:
            continue
        if dataset in included and not row.get("pgr_unstable"):
            points.append((kappa, row["pgr"], dataset))
    kw = styles.get(baseline, {"color": OKABE_ITO[0], "marker": "o"})
    for kappa, value, dataset in points:
        ax.plot(
            [kappa],
            [value],
            marker=kw["marker"],
            color=kw["color"],
            markersize=4.5,
            linestyle="none",
            zorder=3,
        )
        ax.annotate(dataset, (kappa, value), xytext=(3, 2), textcoords="offset points", fontsize=6)
    ax.axhline(0, color="#777777", linewidth=0.7, linestyle="--", zorder=0)
    ax.axhline(1, color="#777777", linewidth=0.7, linestyle=":", zorder=0)
    ax.set_xlabel("weak–ceiling error consistency (Cohen's κ)")
    ax.set_ylabel(f"{baseline} PGR" if baseline else "PGR")
    ax.set_title("Error consistency vs PGR (stable datasets)", fontsize=8)
    if not points:
        ax.text(0.5, 0.5, "no stable dataset", transform=ax.transAxes, ha="center")
    elif len(points) == 1:  # one point: a readable window around it, not autoscale's sliver
        ax.set_xlim(points[0][0] - 0.25, points[0][0] + 0.25)


def _num(value) -> str:
    return "n/a" if value is None else f"{value:+.2f}" if abs(value) < 10 else f"{value:.3g}"
