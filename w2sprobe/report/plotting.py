"""Pure helpers behind the report figures: palette, clipping to a window, decade ticks, layout.

Kept free of matplotlib state so the arithmetic a reader relies on (where a clipped point is
drawn and what its label says, which decades get a tick) is unit-tested on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Okabe & Ito (2008), black first (the baseline), yellow last (weakest on white).
#: Okabe-Ito's yellow darkened for markers and lines on white (the yellow itself is too light).
DARK_YELLOW = "#B59F00"
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
#: Series markers; no up/down triangles, which mark values clipped at the window's edge.
MARKERS = ("o", "s", "D", "P", "X", "*", "h", "p", "d", "<", ">")
#: Marker size factors that give every series marker a circle's area (squares and diamonds
#: fill more of their box, stars much less); measured by tests/test_report_figures.py.
_MARKER_SCALE = {
    "v": 1.25, "^": 1.25,
    "s": 0.87, "D": 0.84, "P": 1.14, "X": 1.06, "*": 1.7,
    "h": 1.07, "p": 1.15, "d": 1.11, "<": 1.23, ">": 1.23,
}  # fmt: skip
#: Weak supervisor and strong ceiling, the references: greys, so no intervention's colour.
REFERENCE_STYLE = {
    # far apart in tone (light vs near-black grey), so they tell apart in print too
    "weak": {"color": "#b3b3b3", "marker": "v"},
    "ceiling": {"color": "#3a3a3a", "marker": "^"},
}
#: Widest figure (inches): a two-column paper's text width; one column is about 3.4 in.
PAGE_WIDTH = 7.0
#: Type sizes for a figure printed at its own size in a paper (points).
PAPER_RC = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


#: Layers are ordered, so their lines run along one sequential, colour-vision-safe map.
LAYER_CMAP = "viridis"
#: Up to this many layers get a legend; more get a colour bar (a 13-31 entry legend is a wall).
LEGEND_LAYERS = 8
#: Where the layers' stretch of the map ends: viridis' last 15 % is a pale yellow lost on white.
LAYER_CMAP_END = 0.85


def layer_fraction(layer: int, layers: list[int]) -> float:
    """Where ``layer`` sits on :data:`LAYER_CMAP`: 0 for the first of ``layers``,
    :data:`LAYER_CMAP_END` for the last."""
    low, high = min(layers), max(layers)
    return LAYER_CMAP_END * (layer - low) / (high - low) if high > low else 0.0


def marker_size(marker: str | None, size: float) -> float:
    """``size`` (points) for ``marker``, scaled to cover as much area as a circle of ``size``."""
    return size * _MARKER_SCALE.get(marker or "", 1.0)


def series_styles(experiments: list[str], baseline: str | None) -> dict[str, dict]:
    """One colour and marker per experiment for a whole figure, so one legend serves all panels.

    The baseline is black circles; the others take the remaining colours and markers in order
    (7 colours against 10 markers: the pair stays unique for 70 experiments, and neighbours in
    display order, which share a panel, never share a colour).
    """
    out = {name: dict(style) for name, style in REFERENCE_STYLE.items()}
    if baseline:
        out[baseline] = {"color": OKABE_ITO[0], "marker": MARKERS[0]}
    others = [e for e in experiments if e not in out]
    for index, name in enumerate(others):
        colour = OKABE_ITO[1 + index % (len(OKABE_ITO) - 1)]
        out[name] = {
            # Okabe-Ito's yellow vanishes on white under a white marker edge: a dark yellow
            "color": DARK_YELLOW if colour == OKABE_ITO[7] else colour,
            "marker": MARKERS[1 + index % (len(MARKERS) - 1)],
        }
    return out


# --------------------------------------------------------------------------- clipping


@dataclass(frozen=True)
class Clipped:
    """A value and its interval as drawn inside a window.

    ``y`` is where the marker goes (the value, or the window edge it lies beyond); ``beyond`` is
    -1 / +1 when the value itself is below / above the window (then there is no error bar and
    ``label`` is the value as text), else 0; ``low``/``high`` are the drawn error bar ends and
    ``low_cut``/``high_cut`` say an end was cut at the edge (drawn with an arrowhead).
    """

    y: float
    low: float | None
    high: float | None
    beyond: int
    low_cut: bool
    high_cut: bool
    label: str | None


def clip_to_window(
    value: float, interval: list[float] | tuple[float, float] | None, window: tuple[float, float]
) -> Clipped:
    """Where ``value`` ± ``interval`` is drawn in ``window`` (see :class:`Clipped`)."""
    bottom, top = window
    if value < bottom or value > top:
        edge, side = (bottom, -1) if value < bottom else (top, 1)
        return Clipped(edge, None, None, side, False, False, value_label(value))
    if not interval:
        return Clipped(value, None, None, 0, False, False, None)
    low, high = interval
    return Clipped(
        value,
        max(low, bottom),
        min(high, top),
        0,
        low < bottom,
        high > top,
        None,
    )


def value_label(value: float) -> str:
    """A clipped value as its label: one decimal below 10, none above, a typographic minus."""
    text = f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"
    return text.replace("-", "\u2212")


def data_window(
    values: list[float], cap: tuple[float, float], always: tuple[float, float]
) -> tuple[float, float]:
    """The smallest window holding ``values`` and the range ``always``, cut to ``cap``.

    For PGR: ``always`` (0, 1) keeps the weak and ceiling lines in view, ``cap`` (-1, 2) cuts
    the extreme points (as the blog does) instead of squashing every other point.
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low = max(min(finite + [always[0]]), cap[0])
    high = min(max(finite + [always[1]]), cap[1])
    return low, high


# --------------------------------------------------------------------------- ticks


def decade_ticks(low: float, high: float) -> list[float]:
    """Every power of ten in [low, high] (both > 0): the labelled ticks of a log axis.

    A range holding fewer than two decades also gets the 2x and 5x steps inside it, so the axis
    is never left with one lonely label (5..80 -> 5, 10, 20, 50).
    """
    if not (0 < low <= high):
        raise ValueError(f"a log axis needs 0 < low <= high, got {low}, {high}")
    first, last = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
    decades = [10.0**d for d in range(first, last + 1)]
    if len(decades) >= 2:
        return decades
    steps = [
        m * 10.0**d
        for d in range(first - 1, last + 1)
        for m in (1, 2, 5)
        if low * (1 - 1e-9) <= m * 10.0**d <= high * (1 + 1e-9)
    ]
    return sorted(set(steps))


def tick_labels(ticks: list[float]) -> list[str]:
    """Labels of log-axis ticks: as written (``5``, ``100``, ``0.1``) while every power of ten
    among them lies in 0.1..1000, else every power of ten as ``10^{d}`` (one style per axis)."""
    powers = {t: round(math.log10(t)) for t in ticks if _is_power_of_ten(t)}
    exponential = any(not -1 <= d <= 3 for d in powers.values())
    return [f"$10^{{{powers[t]}}}$" if exponential and t in powers else f"{t:g}" for t in ticks]


def _is_power_of_ten(value: float) -> bool:
    return math.isclose(value, 10.0 ** round(math.log10(value)), rel_tol=1e-9)


# --------------------------------------------------------------------------- layout


def pack_rows(widths: list[float], page: float = PAGE_WIDTH) -> list[list[int]]:
    """Panel indices packed left to right into rows no wider than ``page`` (order kept)."""
    rows: list[list[int]] = []
    used = 0.0
    for index, width in enumerate(widths):
        if not rows or (rows[-1] and used + width > page):
            rows.append([])
            used = 0.0
        rows[-1].append(index)
        used += width
    return rows


def panel_width(n_columns: int, n_series: int = 1) -> float:
    """Inches a dataset panel needs: a y axis, then per dataset column 0.32 in or, with many
    series side by side, 0.1 in per series (room for a rotated value label each)."""
    return 0.9 + max(n_columns, 1) * max(0.32, 0.1 * n_series + 0.05)
