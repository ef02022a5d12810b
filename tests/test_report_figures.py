"""The arithmetic behind the report figures, and the figure files: hand-worked values."""

from __future__ import annotations

import pytest
from report_fixtures import make_study

from w2sprobe.report import build_report, write_report
from w2sprobe.report.figures import FIGURE_FORMATS, pgr_panels
from w2sprobe.report.plotting import (
    DARK_YELLOW,
    MARKERS,
    clip_to_window,
    data_window,
    decade_ticks,
    marker_size,
    pack_rows,
    series_styles,
    tick_labels,
    value_label,
)

WINDOW = (-1.0, 2.0)


def test_a_point_inside_keeps_its_value_and_its_interval_is_cut_at_the_edges():
    drawn = clip_to_window(0.5, (-1.5, 0.9), WINDOW)
    assert (drawn.y, drawn.low, drawn.high, drawn.beyond) == (0.5, -1.0, 0.9, 0)
    assert drawn.low_cut and not drawn.high_cut and drawn.label is None
    both = clip_to_window(1.5, (-3.0, 4.0), WINDOW)
    assert (both.low, both.high, both.low_cut, both.high_cut) == (-1.0, 2.0, True, True)
    plain = clip_to_window(0.2, None, WINDOW)
    assert (plain.low, plain.high, plain.low_cut, plain.high_cut) == (None, None, False, False)


def test_a_point_outside_sits_on_the_edge_labelled_with_its_value():
    below = clip_to_window(-3.26, (-5.0, -2.0), WINDOW)
    assert (below.y, below.beyond, below.label) == (-1.0, -1, "\u22123.3")
    assert below.low is None and below.high is None  # no bar: it would span the whole panel
    above = clip_to_window(12.4, (0.5, 20.0), WINDOW)
    assert (above.y, above.beyond, above.label) == (2.0, 1, "12")
    assert clip_to_window(2.0, None, WINDOW).beyond == 0  # the edge itself is inside
    assert value_label(-0.04) == "\u22120.0" and value_label(-123.4) == "\u2212123"


def test_the_window_holds_the_data_and_the_reference_lines_up_to_the_cap():
    assert data_window([0.2, 0.7], WINDOW, (0.0, 1.0)) == (0.0, 1.0)
    assert data_window([-0.4, 1.3], WINDOW, (0.0, 1.0)) == (-0.4, 1.3)
    assert data_window([-7.0, 5.0, float("nan")], WINDOW, (0.0, 1.0)) == (-1.0, 2.0)


def test_decade_ticks_label_every_decade_the_range_spans():
    assert decade_ticks(5, 200) == [10, 100]  # k from 5 to 200
    assert decade_ticks(1e-4, 1.0) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert decade_ticks(0.003, 0.5) == pytest.approx([0.01, 0.1])
    assert decade_ticks(10, 1000) == [10, 100, 1000]  # the ends are decades themselves
    # Fewer than two decades inside: the 1-2-5 steps too, so the axis has several labels.
    assert decade_ticks(5, 80) == [5, 10, 20, 50]
    assert decade_ticks(20, 80) == [20, 50]
    with pytest.raises(ValueError):
        decade_ticks(0, 10)
    assert tick_labels([10.0, 100.0]) == ["10", "100"]
    assert tick_labels([1e-4, 1e-3, 1e-2]) == ["$10^{-4}$", "$10^{-3}$", "$10^{-2}$"]


def test_panels_pack_into_rows_no_wider_than_the_page():
    assert pack_rows([3.0, 3.0, 3.0, 2.0, 6.0, 8.0], page=7.0) == [[0, 1], [2, 3], [4], [5]]


def test_one_style_per_experiment_across_the_figure():
    names = ["xent", "kl", "logconf", "s2s-1", "knn-probe", "knn-filter", "knn-relabel", "x", "y"]
    styles = series_styles(names, "xent")
    assert styles["xent"] == {"color": "#000000", "marker": "o"}
    pairs = [(styles[n]["color"], styles[n]["marker"]) for n in names]
    assert len(set(pairs)) == len(names)  # one legend can name every series
    assert all(styles[n]["marker"] not in ("v", "^") for n in names)  # triangles mean clipped
    # no series in Okabe-Ito's light yellow, invisible on white under a white marker edge
    assert "#F0E442" not in {styles[n]["color"] for n in names}
    assert styles["x"]["color"] == DARK_YELLOW  # the 7th intervention takes the yellow slot


def _inked_pixels(marker: str) -> int:
    """Pixels one marker covers when drawn alone at its corrected size (Agg, no edge)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig = plt.figure(figsize=(0.5, 0.5), dpi=200)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.plot(
        [0],
        [0],
        marker=marker,
        markersize=marker_size(marker, 10),
        color="k",
        markeredgewidth=0,
        linestyle="none",
    )
    fig.canvas.draw()
    ink = (np.asarray(fig.canvas.buffer_rgba())[..., :3] < 128).all(axis=-1).sum()
    plt.close(fig)
    return int(ink)


def test_every_series_marker_covers_about_as_much_ink_as_a_circle():
    circle = _inked_pixels("o")
    areas = {m: _inked_pixels(m) / circle for m in MARKERS}
    assert all(0.9 <= ratio <= 1.1 for ratio in areas.values()), areas


def test_pgr_panels_have_no_empty_dataset_columns(tmp_path):
    make_study(tmp_path, datasets=("a", "b", "c"), experiments={"xent": 1.5, "kl": 1.4}, n=60)
    make_study(
        tmp_path,
        datasets=("d",),
        experiments={"xent": 1.5, "knn-filter": 1.2},
        n=60,
        base_seed=1,
    )
    panels = {p.title: p for p in pgr_panels(build_report(tmp_path, n_boot=0))}
    assert panels["Loss functions"].datasets == ["a", "b", "c", "d"]
    assert panels["Probe filtering"].datasets == ["d"]  # xent alone earns no column here
    assert panels["Probe filtering"].series == ["xent", "knn-filter"]


def test_a_series_with_no_pgr_on_the_panels_columns_is_left_out_of_the_legend(tmp_path):
    make_study(tmp_path, datasets=("a", "b"), experiments={"xent": 1.5, "logconf": 1.4}, n=60)
    make_study(tmp_path, datasets=("c",), experiments={"xent": 1.5, "kl": 1.4}, n=60, base_seed=1)
    report = build_report(tmp_path, n_boot=0)
    report.unstable.append({"dataset": "c"})  # kl's only dataset leaves the figure
    panels = {p.title: p for p in pgr_panels(report)}
    assert panels["Loss functions"].datasets == ["a", "b"]
    assert panels["Loss functions"].series == ["xent", "logconf"]


def test_every_figure_is_written_as_png_svg_and_pdf(tmp_path):
    make_study(tmp_path, datasets=("a", "b"), n=60)
    summary = write_report(build_report(tmp_path, n_boot=20), tmp_path / "out", fmt="json")
    assert FIGURE_FORMATS == ("png", "svg", "pdf")
    magic = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}
    for figure in summary["figures"]:
        for fmt in FIGURE_FORMATS:
            with open(figure[fmt], "rb") as fh:
                assert fh.read(5).startswith(magic[fmt]), figure[fmt]


def _sweep_rows(datasets, layers, ks=(5, 50)):
    return [
        {
            "dataset": d,
            "probe": "knn",
            "layer": layer,
            "k": k,
            "auc_minus_labels_auc": 0.01 * i + 0.001 * layer + (0.002 if k == 50 else 0.0),
        }
        for i, d in enumerate(datasets)
        for layer in layers
        for k in ks
    ]


def test_sweep_means_average_each_layer_and_setting_over_datasets():
    from w2sprobe.report.figures import sweep_means

    rows = _sweep_rows(["a", "b", "c"], [0, 1])
    rows.append({"dataset": "d", "probe": "knn", "layer": 1, "k": 50, "auc_minus_labels_auc": 1.0})
    means = sweep_means(rows, "k")
    # worked by hand: datasets a, b, c add 0, .01, .02 (mean .01); d only at layer 1, k 50
    assert means[0] == [(5, pytest.approx(0.01)), (50, pytest.approx(0.012))]
    assert means[1] == [(5, pytest.approx(0.011)), (50, pytest.approx((0.013 * 3 + 1.0) / 4))]


@pytest.mark.parametrize(
    ("datasets", "layers", "per_layer_means"),
    [(2, 3, False), (1, 13, True), (12, 2, True)],  # 13 layers or 12 datasets: too many lines
)
def test_probe_sweeps_draw_layer_means_when_lines_would_be_too_many(
    datasets, layers, per_layer_means
):
    from types import SimpleNamespace

    from w2sprobe.report.figures import probe_sweeps

    names = [f"d{i:02d}" for i in range(datasets)]
    report = SimpleNamespace(sweeps=_sweep_rows(names, list(range(layers))))
    fig, _, caption = probe_sweeps(report)
    ax = fig.axes[0]
    assert len(ax.get_lines()) - 1 == (layers if per_layer_means else datasets * layers)  # - y=0
    assert ("colour bar" in caption) == per_layer_means
    assert (f"mean over the {datasets} datasets" in caption) == (per_layer_means and datasets > 1)


def test_probe_sweeps_plot_one_label_set_and_name_the_sweeps_left_out():
    from types import SimpleNamespace

    from w2sprobe.report.figures import probe_sweeps, sweeps_of_one_label_set

    weak = _sweep_rows(["a", "b"], [0, 1])
    filtered = [{**row, "labels": "knn-filter@weak", "auc_minus_labels_auc": 9.0} for row in weak]
    rows, note = sweeps_of_one_label_set(filtered + weak)
    assert rows == weak  # rows without a labels key are sweeps on the weak labels
    assert note == (
        " Probes fit on the weak labels; the sweeps fit on knn-filter@weak (8 rows) are left out."
    )
    fig, _, caption = probe_sweeps(SimpleNamespace(sweeps=filtered + weak))
    drawn = [y for line in fig.axes[0].get_lines() for y in line.get_ydata()]
    assert max(drawn) < 1.0 and caption.endswith(note)  # no line reaches the filtered 9.0
    only_filtered, note = sweeps_of_one_label_set(filtered)
    assert only_filtered == filtered and note == ""


def _filter_row(dataset, precision, base_rate, contamination=0.1, probe="knn"):
    return {
        "dataset": dataset,
        "probe": probe,
        "layer": 6,
        "contamination": contamination,
        "precision": precision,
        "base_rate": base_rate,
    }


def test_filter_precision_puts_each_filter_beside_its_own_datasets_random_removal_bar():
    from types import SimpleNamespace

    from matplotlib.colors import to_rgba

    from w2sprobe.report.figures import filter_precision

    rows = [
        _filter_row("sst2", 0.30, 0.19),
        _filter_row("cola", 0.27, 0.47),
        _filter_row("cola", 0.35, 0.47, contamination=0.2),
    ]
    fig, title, caption = filter_precision(SimpleNamespace(filters=rows))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cola", "sst2"]
    black = to_rgba("black")
    bars = {
        (round(float(line.get_xdata()[0] + 0.4)), float(line.get_ydata()[0]))
        for line in ax.get_lines()
        if to_rgba(line.get_color()) == black and len(line.get_xdata()) == 2
    }
    assert bars == {(0, 0.47), (1, 0.19)}  # one bar per dataset column, at its mislabel rate
    points = {
        line.get_label(): list(zip(line.get_xdata(), line.get_ydata()))
        for line in ax.get_lines()
        if line.get_marker() not in (None, "None", "")
    }
    assert set(points) == {"knn 10%", "knn 20%"}  # two contaminations: one series each
    for name, pts in points.items():
        for x, y in pts:
            dataset = "cola" if round(x) == 0 else "sst2"
            assert abs(x - round(x)) < 0.4  # inside its dataset's column
            want = {("cola", "knn 10%"): 0.27, ("cola", "knn 20%"): 0.35, ("sst2", "knn 10%"): 0.30}
            assert y == want[(dataset, name)]
    assert "10%, 20%" in caption and "3 label set(s) over 2 dataset(s)" in caption
    fig.clear()


def test_a_clipped_point_is_an_open_marker_and_a_cut_interval_ends_in_a_caret():
    """Issue 31: a clipped *point* must not look like a clipped CI end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from w2sprobe.report.figures import _clipped_point
    from w2sprobe.report.plotting import clip_to_window

    kw = {"color": "#E69F00", "marker": "s"}
    fig, ax = plt.subplots()
    _clipped_point(ax, 0, clip_to_window(-3.2, [-4.0, -2.5], (-1.0, 2.0)), kw)  # point outside
    point = ax.lines[-1]
    assert point.get_marker() == "s" and point.get_markerfacecolor() == "white"
    assert "3.2" in ax.texts[-1].get_text()  # labelled with its value
    _clipped_point(ax, 1, clip_to_window(0.5, [-1.8, 0.9], (-1.0, 2.0)), kw)  # only its CI cut
    assert ax.lines[-1].get_marker() == 7  # CARETDOWN at the lower edge
    plt.close(fig)


@pytest.mark.parametrize("losses", [("logconf",), ("logconf", "entropy", "product", "adaptive")])
def test_a_panel_hides_its_dataset_labels_only_above_one_with_the_same_x_positions(
    tmp_path, losses
):
    """Stacked panels share one row of dataset labels only when their columns line up (the
    same left and right edges); a wider panel keeps its own labels."""
    from w2sprobe.report.figures import auc_by_dataset

    datasets = tuple("abcdef")
    experiments = {"xent": 1.5, **dict.fromkeys(losses, 1.4), "knn-filter": 1.2, "s2s-1": 1.1}
    make_study(tmp_path, datasets=datasets, experiments=experiments, n=60)
    fig, _, _ = auc_by_dataset(build_report(tmp_path, n_boot=0))
    axes = [ax for ax in fig.axes if ax.get_xticks().size]

    def shows_labels(ax) -> bool:
        return ax.xaxis.get_major_ticks()[0].label1.get_visible()

    def extent(ax) -> tuple[float, float]:
        box = ax.get_position()
        return round(box.x0, 3), round(box.x1, 3)

    for ax in axes:
        if not shows_labels(ax):
            below = [o for o in axes if o.get_position().y0 < ax.get_position().y0]
            assert below and all(extent(o) == extent(ax) for o in below)
    assert shows_labels(axes[-1])
