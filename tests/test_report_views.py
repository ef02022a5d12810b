"""The report's views of the cache (report/views.py): disputed examples, weak-strong alignment
and alignment against PGR across datasets, on synthetic runs, label sets and activation files
written through the cache's own writers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from report_fixtures import make_study
from scipy import stats
from sklearn.linear_model import RidgeCV

from w2sprobe.cache.layout import activation_path
from w2sprobe.cache.writer import PartialActivationFile, SplitData, manifest_json
from w2sprobe.labels import LabelSet, save_label_set
from w2sprobe.report import build_report, write_report
from w2sprobe.report.views import FIT_ROWS, TOP
from w2sprobe.views import linear_cka

DATASETS = ("alpha", "beta", "gamma", "delta", "epsilon")
ROWS = {"strong_train": 80, "test": 40}
WEAK_LAYERS, STRONG_LAYERS = [0, 1, 2], [0, 1, 2, 3]
WEAK_DIM, STRONG_DIM = 6, 10


def _acts_file(root, model, dataset, fingerprint, ids, truth, acts):
    """A complete activation file as ``extract`` writes it; returns its manifest."""
    layers = sorted(next(iter(acts.values())))
    manifest = {
        "dataset": dataset,
        "dataset_fingerprint": fingerprint,
        "layers": layers,
        "model_revision": f"rev-{model}",
        "pooling": "mean",
        "split_sizes": {s: len(v) for s, v in ids.items()},
    }
    key = f"{model}{dataset}"
    attrs = {
        "manifest": manifest_json(manifest),
        "model": model,
        "model_revision": f"rev-{model}",
        "dataset": dataset,
        "layers": layers,
        "key": key,
    }
    hidden = next(iter(next(iter(acts.values())).values())).shape[1]
    splits = [SplitData(s, list(ids[s]), truth[s]) for s in ids]
    out = PartialActivationFile.open(
        activation_path(root, model, dataset, key), attrs, splits, layers, hidden
    )
    for s in ids:
        out.write_window(s, 0, np.stack([acts[s][i] for i in layers]))
    out.finish()
    return manifest


def _dataset(root, dataset, index, weak_acts=True):
    """Truth, weak labels, a relabel set's scores and both models' activations of one dataset;
    returns what was written (activations as stored: float16)."""
    rng = np.random.default_rng([7, index])
    fingerprint = f"fp-{dataset}"
    ids = {s: np.array([f"{dataset}-{s}-{i:03d}" for i in range(n)]) for s, n in ROWS.items()}
    truth = {s: (rng.random(n) < 0.5).astype(np.float32) for s, n in ROWS.items()}
    # coarse weak labels and scores: many ties in |gap|, so the order of ties is tested too
    weak = {s: np.round(rng.random(n), 1).astype(np.float32) for s, n in ROWS.items()}
    probe = {s: np.round(rng.random(n), 1).astype(np.float32) for s, n in ROWS.items()}
    noise = 0.3 + 0.6 * index  # a different weak-strong similarity per dataset
    projection = rng.normal(size=(WEAK_DIM, STRONG_DIM))
    weak_x = {s: {i: rng.normal(size=(n, WEAK_DIM)) for i in WEAK_LAYERS} for s, n in ROWS.items()}
    strong_x = {
        s: {
            j: weak_x[s][min(j, 2)] @ projection + noise * rng.normal(size=(n, STRONG_DIM))
            for j in STRONG_LAYERS
        }
        for s, n in ROWS.items()
    }
    strong_manifest = _acts_file(root, "sm", dataset, fingerprint, ids, truth, strong_x)
    if weak_acts:
        _acts_file(root, "wm", dataset, fingerprint, ids, truth, weak_x)
    made = {"dataset_fingerprint": fingerprint, "split_sizes": dict(ROWS), "seed": 0}
    weak_set = LabelSet(
        "weak",
        dataset,
        dict(ids),
        weak,
        {**made, "kind": "weak", "model": "wm", "model_revision": "rev-wm", "run": "none"},
    )
    save_label_set(weak_set, root)
    relabel = LabelSet(
        "knn-relabel@weak",
        dataset,
        dict(ids),
        probe,
        {
            **made,
            "kind": "relabel",
            "parent": weak_set.key,
            "parent_name": "weak",
            "probe": {"probe": "knn", "k": 5, "layer": 2},
            "activations": strong_manifest,
        },
    )
    save_label_set(relabel, root)
    stored = {
        side: {s: {i: x[s][i].astype(np.float16) for i in x[s]} for s in x}
        for side, x in (("weak", weak_x), ("strong", strong_x))
    }
    return {"ids": ids, "truth": truth, "weak_labels": weak, "probe": probe, **stored}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    make_study(root, datasets=DATASETS, n=120, experiments={"xent": 1.5, "logconf": 1.8})
    written = {d: _dataset(root, d, i) for i, d in enumerate(DATASETS)}
    report = build_report(root, n_boot=50, seed=0)
    return root, written, report


def _view(report, dataset):
    return next(v for v in report.views["datasets"] if v["dataset"] == dataset)


def test_disputed_table_ranks_as_a_brute_force_sort(cache):
    _, written, report = cache
    for dataset in DATASETS:
        w = written[dataset]
        weak, probe = w["weak_labels"]["strong_train"], w["probe"]["strong_train"]
        gap = [abs(float(probe[i]) - float(weak[i])) for i in range(len(weak))]
        # largest gap first, ties in row order, by plain Python sorting
        expected = sorted(range(len(weak)), key=lambda i: (-gap[i], i))[:TOP]
        table = _view(report, dataset)["disputed"]
        assert [r["row"] for r in table["top"]] == expected
        ids, truth = w["ids"]["strong_train"], w["truth"]["strong_train"]
        assert [r["id"] for r in table["top"]] == [ids[i] for i in expected]
        assert [r["ground_truth"] for r in table["top"]] == [int(truth[i]) for i in expected]
        assert [r["weak_label"] for r in table["top"]] == [float(weak[i]) for i in expected]
        assert [r["probe_score"] for r in table["top"]] == [float(probe[i]) for i in expected]
        assert table["label_set"] == "knn-relabel@weak" and table["layer"] == 2
        assert table["weak_wrong"] == int(((weak >= 0.5) != (truth >= 0.5)).sum())


def _gram_cka(x, y):
    """The textbook HSIC form on N x N kernels, independent of the feature-space code."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    h = np.eye(len(x)) - 1.0 / len(x)
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float(np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_)))


def test_alignment_equals_the_cka_function_and_a_hand_computation(cache):
    _, written, report = cache
    for dataset in DATASETS:
        w, a = written[dataset], _view(report, dataset)["alignment"]
        n = min(ROWS["strong_train"], FIT_ROWS)
        weak, strong = w["weak"]["strong_train"], w["strong"]["strong_train"]
        grid = {(r["weak_layer"], r["strong_layer"]): r["cka"] for r in a["cka"]}
        assert set(grid) == {(i, j) for i in WEAK_LAYERS for j in STRONG_LAYERS}
        for (i, j), value in grid.items():
            assert value == pytest.approx(_gram_cka(weak[i][:n], strong[j][:n]), abs=1e-10)
            assert value == pytest.approx(linear_cka(weak[i][:n], strong[j][:n]), abs=1e-12)
        assert a["cka_last"] == grid[2, 3] and (a["weak_last"], a["strong_last"]) == (2, 3)
        for row in a["per_weak_layer"]:
            best = max(STRONG_LAYERS, key=lambda j: grid[row["weak_layer"], j])
            assert row["best_strong_layer"] == best
            assert row["best_cka"] == grid[row["weak_layer"], best]
        # the ridge map: sklearn's RidgeCV refit here, R² = 1 - SSE / SST over all outputs
        x, y = weak[2][:n].astype(np.float64), strong[3][:n].astype(np.float64)
        model = RidgeCV(alphas=np.logspace(-2, 5, 15)).fit(x, y)
        xt, yt = (v.astype(np.float64) for v in (w["weak"]["test"][2], w["strong"]["test"][3]))
        r2 = 1 - np.sum((yt - model.predict(xt)) ** 2) / np.sum((yt - yt.mean(0)) ** 2)
        assert a["r2_last"] == pytest.approx(r2, abs=1e-9)
        assert a["ridge_alpha"] == pytest.approx(model.alpha_)


def test_alignment_against_pgr_is_scipys_spearman_over_the_stable_datasets(cache):
    _, _, report = cache
    cross = report.views["alignment_vs_pgr"]
    assert cross["experiment"] == "xent"
    stable = [p for p in cross["points"] if p["stable"]]
    assert {p["dataset"] for p in cross["points"]} == set(DATASETS)
    for p in cross["points"]:
        row = report.row(p["dataset"], "xent")
        assert (
            p["pgr"] == row["pgr"]
            and p["cka"] == _view(report, p["dataset"])["alignment"]["cka_last"]
        )
        assert p["stable"] == (p["dataset"] in report.included and not row.get("pgr_unstable"))
    assert len(stable) >= 3
    for name in ("cka", "r2"):
        expected = stats.spearmanr([p[name] for p in stable], [p["pgr"] for p in stable])
        assert cross[name]["n"] == len(stable)
        assert cross[name]["rho"] == pytest.approx(expected.statistic, abs=1e-12)
        assert cross[name]["p"] == pytest.approx(expected.pvalue, abs=1e-12)


def test_the_written_report_shows_the_tables_and_the_figure(cache, tmp_path):
    _, written, report = cache
    summary = write_report(report, tmp_path / "md", fmt="md")
    text = (tmp_path / "md" / "report.md").read_text()
    assert "## Views of the cache" in text
    top = _view(report, "alpha")["disputed"]["top"]
    assert "alpha: most-disputed strong_train examples" in text
    assert all(r["id"] in text for r in top)
    assert "Weak vs strong representations at the last layers" in text
    rho = report.views["alignment_vs_pgr"]["cka"]["rho"]
    assert f"Spearman ρ = {rho:.3f}" in text
    names = [f["name"] for f in summary["figures"]]
    assert "alignment_vs_pgr" in names
    html_summary = write_report(report, tmp_path / "html", fmt="html")
    page = (tmp_path / "html" / "report.html").read_text()
    assert "Views of the cache" in page and top[0]["id"] in page
    assert json.loads((tmp_path / "html" / "report.json").read_text())["views"]["datasets"]
    assert "alignment_vs_pgr" in [f["name"] for f in html_summary["figures"]]


def test_without_weak_activations_the_alignment_is_one_note(tmp_path):
    make_study(tmp_path, datasets=("alpha", "beta"), n=120, experiments={"xent": 1.5})
    _dataset(tmp_path, "alpha", 0, weak_acts=False)
    _dataset(tmp_path, "beta", 1)
    report = build_report(tmp_path, n_boot=0)
    alpha, beta = _view(report, "alpha"), _view(report, "beta")
    assert alpha["alignment"] is None and alpha["disputed"] is not None
    assert alpha["missing"] == ["weak_acts"] and not alpha["notes"]
    assert beta["alignment"] is not None and not beta["missing"] and not beta["notes"]
    # one dataset with an alignment: no rank correlation, and the report says so
    cross = report.views["alignment_vs_pgr"]
    assert cross["cka"]["rho"] is None and cross["cka"]["n"] <= 1
    write_report(report, tmp_path / "out", fmt="md")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "too few datasets to tell" in text
    # one line naming the dataset and the command that makes what it lacks
    (line,) = [x for x in text.splitlines() if "activations are not cached" in x]
    assert line.startswith("- alpha: ") and "extract --model wm --dataset D --layers all" in line


def test_a_report_without_label_sets_says_so_in_one_line(tmp_path):
    make_study(tmp_path, datasets=("alpha",), n=60, experiments={"xent": 1.5})
    report = build_report(tmp_path, n_boot=0)
    summary = write_report(report, tmp_path / "out", fmt="md")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "No views: no dataset has a probe relabel set" in text
    assert "alignment_vs_pgr" in [s["name"] for s in summary["skipped_figures"]]


def test_a_rebuilt_report_reuses_the_alignment_an_earlier_report_stored(tmp_path):
    make_study(tmp_path, datasets=("alpha",), n=60, experiments={"xent": 1.5})
    _dataset(tmp_path, "alpha", 0)
    first = build_report(tmp_path, n_boot=0)
    computed = _view(first, "alpha")["alignment"]
    assert computed["reused"] is False
    write_report(first, fmt="json")  # into <cache>/reports/<key>/, where the next one looks
    again = _view(build_report(tmp_path, n_boot=0), "alpha")["alignment"]
    assert again["reused"] is True
    assert again["cka"] == computed["cka"] and again["r2_last"] == computed["r2_last"]
    assert again["inputs"] == computed["inputs"]


def test_disputed_texts_are_the_splits_texts_and_a_rebuilt_report_reuses_them(
    tmp_path, shared_data, monkeypatch
):
    from w2sprobe.data.splits import SplitSizes, load_splits
    from w2sprobe.report import views

    splits = load_splits("sst2", data_dir=shared_data, seed=0, sizes=SplitSizes(40, 10, 10))
    make_study(tmp_path, datasets=("sst2",), n=60, experiments={"xent": 1.5})
    ids = {s: np.array(splits.splits[s].ids) for s in splits.splits}
    rng = np.random.default_rng(3)
    made = {
        "dataset_fingerprint": splits.fingerprint,
        "split_sizes": {s: len(v) for s, v in ids.items()},
        "seed": 0,
    }
    weak = LabelSet(
        "weak", "sst2", dict(ids), {s: rng.random(len(v)) for s, v in ids.items()},
        {**made, "kind": "weak", "model": "wm"},
    )  # fmt: skip
    save_label_set(weak, tmp_path)
    relabel = LabelSet(
        "knn-relabel@weak", "sst2", dict(ids), {s: rng.random(len(v)) for s, v in ids.items()},
        {**made, "kind": "relabel", "parent": weak.key, "probe": {"probe": "knn", "layer": 1}},
    )  # fmt: skip
    save_label_set(relabel, tmp_path)
    report = build_report(tmp_path, n_boot=0, data_dir=str(shared_data))
    table = _view(report, "sst2")["disputed"]
    text_of = dict(zip(splits.splits["strong_train"].ids, splits.splits["strong_train"].texts))
    assert [r["text"] for r in table["top"]] == [text_of[r["id"]] for r in table["top"]]
    assert table["texts"] == f"texts from {shared_data}"
    write_report(report, fmt="md")  # <cache>/reports/<key>/: the next report reads its texts

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the splits were rebuilt")

    monkeypatch.setattr("w2sprobe.data.splits.load_splits", no_rebuild)
    again = _view(build_report(tmp_path, n_boot=0, data_dir=str(shared_data)), "sst2")
    assert [r["text"] for r in again["disputed"]["top"]] == [r["text"] for r in table["top"]]
    # without a data dir: ids only, and the table says how to look a text up
    bare = _view(build_report(tmp_path, n_boot=0), "sst2")["disputed"]
    assert all(r["text"] is None for r in bare["top"]) and "data ids --id" in bare["texts"]
    assert views.TOP == len(bare["top"])


def test_dataset_names_side_by_side_keep_a_gap_between_them():
    """Two names on one row must not run into each other ("boolq†social_i_qa†" in the blog-size
    report): B's marker is placed so that its name, set left of it (C's marker blocks the right),
    would end 1 point short of A's name; it must take another spot."""
    from w2sprobe.report.figures import _pyplot
    from w2sprobe.report.views_figures import LABEL_GAP_POINTS, _place_labels

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.0))
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-1.0, 1.0)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    points = fig.dpi / 72  # display units per point
    _place_labels(fig, ax, [(0.1, 0.0, "boolq†", False)])
    a_box = ax.texts[0].get_window_extent(renderer)
    ax.texts[0].remove()
    b_name = "social_i_qa†"
    probe = ax.text(0, 0, b_name, fontsize=6, bbox={"boxstyle": "square,pad=0.05"})
    b_width = probe.get_window_extent(renderer).width
    probe.remove()
    # B's name set right-aligned 4 pt left of its marker ends there; start it 1 pt after A's
    b_x = a_box.x1 + 1 * points + b_width + 4 * points
    c_x = b_x + 6 * points  # C's marker sits where B's name would go on the right
    to_data = ax.transData.inverted()
    y0 = ax.transData.transform((0, 0))[1]
    labels = [(0.1, 0.0, "boolq†", False), (to_data.transform((b_x, y0))[0], 0.0, b_name, False),
              (to_data.transform((c_x, y0))[0], 0.0, "piqa†", False)]  # fmt: skip
    _place_labels(fig, ax, labels)
    boxes = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    a, b = boxes["boolq†"], boxes[b_name]
    apart_x = a.x1 + LABEL_GAP_POINTS * points <= b.x0 or b.x1 + LABEL_GAP_POINTS * points <= a.x0
    apart_y = a.y1 <= b.y0 or b.y1 <= a.y0  # stacked rows may touch
    assert apart_x or apart_y, (a, b)
    plt.close(fig)


def test_dataset_names_avoid_texts_already_there_and_stay_inside_the_axes():
    """A point on the bottom edge with a clipped point's value written right where its name
    would first go: the name takes another spot, clear of that text and inside the axes."""
    from w2sprobe.report.figures import _pyplot
    from w2sprobe.report.views_figures import _overlap, _place_labels

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.0, 3.0))
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-1.0, 1.0)
    value = ax.annotate("−6.6", (0.5, -1.0), xytext=(6, 4), textcoords="offset points", fontsize=6)
    fig.canvas.draw()
    _place_labels(fig, ax, [(0.5, -1.0, "ethics-commonsense†", False)])
    renderer = fig.canvas.get_renderer()
    name = next(t for t in ax.texts if t.get_text() == "ethics-commonsense†")
    box = name.get_window_extent(renderer)
    assert _overlap(box, value.get_window_extent(renderer)) == 0
    assert ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1
    assert ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1
    plt.close(fig)
