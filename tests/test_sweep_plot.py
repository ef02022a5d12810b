"""The sweep plot's layer styles: one distinct colour per layer in layer order, legend or bar."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from w2sprobe.report.layers import layer_style
from w2sprobe.report.plotting import LEGEND_LAYERS
from w2sprobe.report.sweep_files import plot_sweep, sweep_figure

matplotlib.use("Agg")


@pytest.mark.parametrize("count", [2, 13, 31])  # MiniLM-ish, MPNet (0..12), SmolLM2 (0..30)
def test_every_layer_has_its_own_colour_running_along_viridis(count):
    layers = list(range(count))
    colours = [layer_style(layer, layers)["color"] for layer in layers]
    assert len({tuple(np.round(c, 6)) for c in colours}) == count  # tab10 repeated after 10
    viridis = matplotlib.colormaps["viridis"]
    assert np.allclose(colours[0], viridis(0.0))
    assert np.allclose(colours[-1], viridis(0.85), atol=0.01)  # short of the pale yellow end


def test_a_few_layers_get_a_legend_and_many_a_colour_bar(tmp_path):
    def rows(n_layers):
        return [
            {"probe": "knn", "dataset": "d", "layer": layer, "k": k, "auc": 0.5 + 0.01 * layer}
            for layer in range(n_layers)
            for k in (5, 50)
        ]

    for n_layers, legend in ((LEGEND_LAYERS, True), (LEGEND_LAYERS + 1, False)):
        fig = sweep_figure(rows(n_layers), "k")
        main = fig.axes[0]
        assert (main.get_legend() is not None) == legend
        assert len(fig.axes) == (1 if legend else 2)  # the colour bar is an axes of its own
        assert len(main.get_lines()) == n_layers
    assert plot_sweep(rows(3), "k", tmp_path / "s.png").stat().st_size > 5_000
