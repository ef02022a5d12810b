"""``w2sprobe view`` on a real cache (sst2 through a tiny BERT) with a stored weak label set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, tiny_bert_workspace

from w2sprobe.atomic import file_record
from w2sprobe.cache import ActivationStore, list_entries
from w2sprobe.labels import find_label_set
from w2sprobe.study import load_options_splits
from w2sprobe.views import cv_auc, direction_cosine, disputed_order, mean_difference, project_2d

run = run_cli


@pytest.fixture
def cached(tmp_path, monkeypatch, shared_data, tiny_models, capsys):
    """The tiny BERT's layers 0..3 on sst2 and a 'weak' set: ground truth with 30% flips."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(shared_data))
    return tiny_bert_workspace(capsys, tmp_path, tiny_models, "all", sizes=(200, 50, 60))


def test_view_writes_figures_tables_and_its_record_last(capsys, cached):
    code, out, err = run(capsys, "view", "--k", "10", "--top", "5", "--json", "--out", "v")
    assert code == 0, err
    summary = json.loads(out)
    folder = Path("v")
    record = json.loads((folder / "view.json").read_text())
    expected = {"projection.png", "projection.svg", "layers.png", "layers.svg"}
    expected |= {"points.csv", "layers.csv", "disputed.csv"}
    assert set(record["files"]) == expected
    for name, recorded in record["files"].items():  # view.json came after every file
        assert file_record(folder / name) == recorded
        assert (folder / name).stat().st_mtime <= (folder / "view.json").stat().st_mtime
    assert (
        summary["layer"] == 2 and summary["rows"] == 100
    )  # n_train is split in halves: weak_train, strong_train

    ids, truth, weak = cached["ids"]["strong_train"], cached["truth"]["strong_train"], None
    weak = cached["soft"]["strong_train"]
    relabeled = find_label_set(Path("c"), "sst2", "knn-relabel@weak")
    filtered = find_label_set(Path("c"), "sst2", "knn-filter@weak")
    _, probe = relabeled.align("strong_train", ids)
    kept, _ = filtered.align("strong_train", ids)
    # the listing: the brute-force ranking of |probe - weak|, with the splits' texts
    order = sorted(range(len(ids)), key=lambda i: (-abs(float(probe[i]) - float(weak[i])), i))
    texts = load_options_splits(_opts(), "sst2").splits["strong_train"].texts
    assert [r["id"] for r in summary["disputed"]] == [ids[i] for i in order[:5]]
    assert [r["text"] for r in summary["disputed"]] == [texts[i] for i in order[:5]]
    assert [r["ground_truth"] for r in summary["disputed"]] == [int(truth[i]) for i in order[:5]]
    with (folder / "disputed.csv").open() as fh:
        assert [r["id"] for r in csv.DictReader(fh)] == [ids[i] for i in order]

    # the points: the seeded projection of layer 2, and every colour as it was made
    with ActivationStore.open(cached["path"]) as store:
        x = {layer: np.asarray(store.get("strong_train", layer)) for layer in store.layers}
    coords = project_2d(x[2], seed=0).coords
    with (folder / "points.csv").open() as fh:
        points = list(csv.DictReader(fh))
    np.testing.assert_allclose([float(p["x"]) for p in points], coords[:, 0], rtol=1e-5)
    assert [p["kept_by_filter"] == "True" for p in points] == kept.tolist()
    removed_wrong = sum(
        (not k) and ((w >= 0.5) != (t >= 0.5)) for k, w, t in zip(kept, weak, truth)
    )
    assert summary["filter_removed_wrong"] == removed_wrong
    assert summary["filter_removed"] == 10  # contamination 0.1 of 100

    # the layer profile: every cached layer, its cosine and separability recomputed
    assert [r["layer"] for r in summary["layers"]] == [0, 1, 2, 3]
    for row in summary["layers"]:
        layer = row["layer"]
        cosine = direction_cosine(mean_difference(x[layer], truth), mean_difference(x[layer], weak))
        assert row["cosine"] == pytest.approx(cosine)
        assert row["auc_weak"] == pytest.approx(cv_auc(x[layer], weak, folds=5, seed=0))
    assert disputed_order(probe, weak)[0] == order[0]


def test_view_align_compares_the_weak_models_activations(capsys, cached, tiny_models):
    weak_model = str(tiny_models["gpt2"])
    code, out, err = run(
        capsys, "view", "--k", "10", "--top", "0", "--align", "--weak", weak_model, "--json",
        "--out", "va",
    )  # fmt: skip
    assert code == 0, err
    alignment = json.loads(out)["alignment"]
    weak_files = [e for e in list_entries(Path("c")) if e.path.name != cached["path"].name]
    assert len(weak_files) == 1  # the weak model, extracted on the same splits
    with (
        ActivationStore.open(weak_files[0].path) as weak,
        ActivationStore.open(cached["path"]) as strong,
    ):
        assert weak.ids("strong_train").tolist() == strong.ids("strong_train").tolist()
        w = {i: np.asarray(weak.get("strong_train", i), np.float64) for i in weak.layers}
        s = {j: np.asarray(strong.get("strong_train", j), np.float64) for j in strong.layers}
        w_test = {i: weak.get("test", i) for i in weak.layers}
        s_test = strong.get("test", 2)
    assert len(alignment["cka"]) == len(w) * len(s)
    for row in alignment["cka"]:  # the Gram-matrix formula, brute force
        x, y = w[row["weak_layer"]], s[row["strong_layer"]]
        x, y = x - x.mean(0), y - y.mean(0)
        k, l_ = x @ x.T, y @ y.T
        assert row["cka"] == pytest.approx(
            np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_))
        )
    for row in alignment["ridge"]:  # the closed form at the chosen strength
        x, y = w[row["weak_layer"]], s[2]
        mx, my = x.mean(0), y.mean(0)
        coef = np.linalg.solve(
            (x - mx).T @ (x - mx) + row["alpha"] * np.eye(x.shape[1]), (x - mx).T @ (y - my)
        )
        predicted = (np.asarray(w_test[row["weak_layer"]], np.float64) - mx) @ coef + my
        target = np.asarray(s_test, np.float64)
        r2 = 1 - np.sum((target - predicted) ** 2) / np.sum((target - target.mean(0)) ** 2)
        assert row["r2"] == pytest.approx(r2, rel=1e-6, abs=1e-9)
    record = json.loads(Path("va/view.json").read_text())
    assert {"alignment.png", "alignment.svg", "cka.csv", "ridge.csv"} <= set(record["files"])


def _opts():
    from w2sprobe.options import resolve

    return resolve({})


def test_view_prints_the_listing(capsys, cached):
    code, out, err = run(capsys, "view", "--k", "10", "--top", "3", "--out", "v")
    assert code == 0, err
    assert "most disputed" in out and "cos(truth, weak)" in out and "view: v" in out
    disputed = json.loads(Path("v/view.json").read_text())["disputed"]
    assert len(disputed) == 3
    for row in disputed:  # each listed with its id, scores and ground truth on one line
        line = next(line for line in out.splitlines() if row["id"] in line)
        assert f"{row['weak_label']:.3f}" in line and f"{row['probe_score']:.3f}" in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--projection", "tsne"], "unknown projection 'tsne'"),
        (["--top", "-1"], "--top must be 0 or more"),
        (["--folds", "1"], "--folds must be at least 2"),
        (["--out", "afile"], "--out afile is a file"),
        (["--out", "afile/sub"], "cannot create view folder afile/sub"),
        (["--k", "0"], "k"),
    ],
)
def test_view_bad_input_is_one_error_line_and_writes_nothing(capsys, cached, args, message):
    Path("afile").write_text("x")
    code, _, err = run(capsys, "view", *args)
    assert code == 2
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
    assert not Path("views").exists()
