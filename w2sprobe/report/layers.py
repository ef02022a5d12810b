"""How every figure colours probe layers: one colour map, one rule for legend vs colour bar.

The sweep plot (:mod:`w2sprobe.report.sweep_files`) and the report's probe-sweep figure draw layers
with these, so a layer has the same colour wherever it appears.
"""

from __future__ import annotations

from .plotting import LAYER_CMAP, LAYER_CMAP_END, LEGEND_LAYERS, layer_fraction

_MARKERS = "osD^vP*Xh"


def layer_colour(layer: int, layers: list[int]) -> tuple:
    """The RGBA colour of ``layer`` among ``layers`` (in order along :data:`LAYER_CMAP`)."""
    import matplotlib

    return matplotlib.colormaps[LAYER_CMAP](layer_fraction(layer, layers))


def layer_style(layer: int, layers: list[int]) -> dict:
    """Colour (and, when a legend names them, marker) of one layer's line among ``layers``."""
    color = layer_colour(layer, layers)
    if len(layers) > LEGEND_LAYERS:
        return {"color": color, "marker": "o", "markersize": 3, "linewidth": 1.0}
    return {"color": color, "marker": _MARKERS[layers.index(layer) % len(_MARKERS)]}


def layer_colour_bar(fig, ax, layers: list[int]):
    """A colour bar labelled ``layer`` spanning ``layers`` as :func:`layer_fraction` maps them."""
    import matplotlib
    import numpy as np
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    cmap = ListedColormap(matplotlib.colormaps[LAYER_CMAP](np.linspace(0.0, LAYER_CMAP_END, 256)))
    norm = Normalize(min(layers), max(max(layers), min(layers) + 1))
    bar = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, pad=0.02)
    bar.set_label("layer")
    return bar
