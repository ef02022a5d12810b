"""The report's alignment-vs-PGR figure: per dataset, how much the weak model's representation
resembles the strong model's (linear CKA, ridge R², last layers) against the baseline
student's PGR, one point per dataset (numbers from :mod:`w2sprobe.report.views`)."""

from __future__ import annotations

from .build import Report
from .figures import (
    PGR_LIMITS,
    _clipped_point,
    _dataset_marks,
    _error,
    _pyplot,
    _shared_legend,
)
from .plotting import OKABE_ITO, PAGE_WIDTH, clip_to_window, data_window, series_styles
from .views import too_few

#: Unstable or saturated datasets: hollow grey, as in the report's other scatter figure.
GREY = "#999999"


def alignment_vs_pgr(report: Report):
    """Two panels (CKA, ridge R²) of PGR against weak-strong alignment; skipped (a reason)
    without a dataset having both."""
    cross = (report.views or {}).get("alignment_vs_pgr") or {}
    points = cross.get("points") or []
    if not points:
        return (
            "no dataset with a PGR and the weak model's activations cached beside the strong ones"
        )
    baseline = cross.get("experiment")
    kw = series_styles([baseline], baseline).get(baseline, {"color": OKABE_ITO[0], "marker": "o"})
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.0), layout="constrained", sharey=True)
    rows = {p["dataset"]: p for p in points}
    marks = _dataset_marks(report)  # the tables' marks: * saturated, † unstable PGR
    ends = [v for p in points for v in [p["pgr"], *(_interval(p) or [])]]
    window = data_window(ends, PGR_LIMITS, (0.0, 1.0))
    labels = {}
    for ax, name, label in (
        (axes[0], "cka", "linear CKA, weak vs strong (last layers)"),
        (axes[1], "r2", "ridge R², weak → strong (held-out test)"),
    ):
        labels[name] = []
        for p in rows.values():
            drawn = clip_to_window(p["pgr"], _interval(p), window)
            style = kw if p["stable"] else {"color": GREY, "marker": "o"}
            _clipped_point(ax, p[name], drawn, style)
            text = p["dataset"] + ("" if p["stable"] else marks.get(p["dataset"], ""))
            labels[name].append((p[name], drawn.y, text, p["stable"]))
        ax.axhline(0, color="#777777", linewidth=0.7, linestyle="--", zorder=0)
        ax.axhline(1, color="#777777", linewidth=0.7, linestyle=":", zorder=0)
        pad = 0.06 * (window[1] - window[0])
        ax.set_ylim(window[0] - pad, window[1] + pad)
        xs = [p[name] for p in points]
        spread = max(max(xs) - min(xs), 0.1)
        ax.set_xlim(min(xs) - 0.12 * spread, max(xs) + 0.3 * spread)  # room for the names
        ax.set_xlabel(label)
        ax.grid(color="#e6e6e6", linewidth=0.5, zorder=0)
        ax.set_title(
            f"{'CKA' if name == 'cka' else 'Ridge R²'} vs PGR: {_rho(cross, name)}",
            fontsize=8,
            loc="left",
        )
    axes[0].set_ylabel(f"{baseline} PGR" if baseline else "PGR")
    entries = {}
    if any(p["stable"] for p in points):
        entries[f"{baseline} (stable dataset)"] = {**kw, "linestyle": "none"}
    if any(not p["stable"] for p in points):
        entries["unstable or saturated dataset"] = {
            "color": GREY,
            "marker": "o",
            "linestyle": "none",
        }
    _shared_legend(fig, entries)
    fig.canvas.draw()  # the layout settles first: the names are placed in final coordinates
    for ax, name in zip(axes, ("cka", "r2")):
        _place_labels(fig, ax, labels[name])
    caption = (
        f"Each dataset's {baseline} PGR (test ROC AUC; error bars: 95% paired bootstrap CI, or ± "
        "standard error over seeds) against how alike the weak and the strong model represent "
        "its strong_train rows: left, linear CKA of the two models' last layers; right, R² on "
        "held-out test rows of a ridge map from the weak model's last layer to the strong "
        "model's. Dashed line: weak supervisor (PGR 0); dotted: ceiling (1). Grey: datasets "
        "whose PGR is unstable (†) or that are saturated (*), left out of ρ. "
        f"Spearman over the stable datasets: CKA {_rho(cross, 'cka')}; R² {_rho(cross, 'r2')}."
    )
    return fig, "Weak–strong alignment vs PGR across datasets", caption


#: The least space beside a name before the next name or marker, in points: names that touch
#: side by side read as one ("boolq†social_i_qa†"); stacked rows may touch.
LABEL_GAP_POINTS = 2.0

#: Where a dataset's name may go, in points from its marker, in order of preference.
_LABEL_SPOTS = ((4, 2, "left"), (-4, 2, "right"), (4, -8, "left"), (-4, -8, "right"),
                (4, 9, "left"), (-4, 9, "right"), (4, -15, "left"), (-4, -15, "right"),
                (4, 16, "left"), (-4, 16, "right"))  # fmt: skip


def _place_labels(fig, ax, labels: list[tuple]) -> None:
    """Each dataset's name beside its marker, at the first spot of :data:`_LABEL_SPOTS` that
    stays inside the axes and comes within :data:`LABEL_GAP_POINTS` (side by side) of neither a
    name already placed, another marker nor a text already on the axes (else the spot inside
    that overlaps least)."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    half = 3.0 * fig.dpi / 72  # a marker's half width, in display units
    gap = LABEL_GAP_POINTS * fig.dpi / 72
    markers = [ax.transData.transform((x, y)) for x, y, _, _ in labels]
    taken = [Bbox([[mx - half, my - half], [mx + half, my + half]]) for mx, my in markers]
    # what is written there already (a clipped point's value) is kept clear too
    taken += [text.get_window_extent(renderer) for text in ax.texts]
    for index, (x, y, text, stable) in sorted(enumerate(labels), key=lambda t: t[1][:2]):
        own = taken[index]
        best = None
        for dx, dy, ha in _LABEL_SPOTS:
            note = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                fontsize=6,
                color="black" if stable else "#666666",
                # readable where it crosses a neighbour's error bar
                bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.8},
                zorder=4,
            )
            note.set_in_layout(False)
            box = note.get_window_extent(renderer)
            clear = box.padded(gap, 0)  # the space it needs beside it (rows may touch)
            inside = ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1
            cut = not (inside and ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1)  # off the axes
            clash = sum(_overlap(clear, other) for other in taken if other is not own)
            score = (cut, clash)
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, note, box)
            else:
                note.remove()
            if score == (False, 0):
                break
        taken.append(best[2])


def _overlap(a, b) -> float:
    """Area two display boxes share."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _interval(point: dict) -> list[float] | None:
    return _error(
        {"pgr": point["pgr"], "pgr_ci": point["pgr_ci"], "pgr_se": point["pgr_se"]}, "pgr"
    )


def _rho(cross: dict, name: str) -> str:
    stats = cross.get(name) or {}
    if too_few(stats):
        return f"too few datasets to tell (n = {stats.get('n', 0)})"
    return f"ρ = {stats['rho']:+.2f}, p = {stats['p']:.2g}, n = {stats['n']}"
