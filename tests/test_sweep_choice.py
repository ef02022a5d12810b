"""``sweep`` ranks by the weak-label criterion, never test: criteria and CIs against brute force,
the choice on a real cache, and old sweeps without the new columns."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import test_probe_cli
from conftest import run_cli

from w2sprobe.cache import ActivationStore
from w2sprobe.metrics import roc_auc
from w2sprobe.probes.auto import choose_l2, criteria
from w2sprobe.probes.choice import marked, summary_line, sweep_choice
from w2sprobe.probes.config import probe_config
from w2sprobe.report.stats import auc_ci, id_set_seed
from w2sprobe.report.sweep_files import read_sweep, sweep_figure, write_sweep

matplotlib.use("Agg")

#: The probe commands' workspace: tiny BERT layers 1..3, weak labels with 30% flips.
cached = test_probe_cli.cached


def _toy(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = 1 / (1 + np.exp(-3 * x[:, 0] + rng.normal(size=n)))
    return x, y.astype(np.float32)


def _brute_loo_brier(x, y, k):
    distance = ((x[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    loo = []
    for i in range(len(y)):
        others = [j for j in np.lexsort((np.arange(len(y)), distance[i])) if j != i]
        loo.append(y[others[:k]].mean())
    return float(np.mean((np.array(loo) - y) ** 2))


def test_knn_criterion_is_the_leave_one_out_brier_score_by_brute_force():
    x, y = _toy()
    configs = [probe_config("knn", k=k) for k in (1, 3, 10)]
    for config, score in zip(configs, criteria(configs, x, y)):
        assert score["criterion"] == pytest.approx(_brute_loo_brier(x, y, config.k), rel=1e-5)
        assert "leave-one-out" in score["criterion_name"]


def test_logreg_criterion_is_the_cross_validated_cross_entropy_of_l2_auto():
    x, y = _toy(n=100, d=3, seed=1)
    reference = choose_l2(x, y, lambda l2: probe_config("logreg", l2=l2).build())["scores"]
    configs = [probe_config("logreg", l2=l2) for l2 in (1e-3, 1e-1)]
    for config, score in zip(configs, criteria(configs, x, y)):
        assert score["criterion"] == pytest.approx(reference[str(config.l2)], rel=1e-6)
        assert "cross-validated" in score["criterion_name"]
    (auto,) = criteria([probe_config("logreg", l2="auto")], x, y)
    assert auto["criterion"] == pytest.approx(min(reference.values()))


def test_auc_ci_is_a_plain_bootstrap_loop_over_the_sorted_ids():
    rng = np.random.default_rng(3)
    ids = np.array([f"id{i:03d}" for i in rng.permutation(60)])
    truth = (rng.random(60) < 0.5).astype(float)
    scores = truth + rng.normal(size=60)
    order = np.argsort(ids)
    draw = np.random.default_rng(id_set_seed(ids[order].tolist(), 0))
    aucs = []
    for _ in range(200):
        rows = order[draw.integers(0, 60, size=60)]
        aucs.append(roc_auc(truth[rows], scores[rows]) if len(set(truth[rows])) == 2 else np.nan)
    expected = np.percentile(np.array(aucs)[np.isfinite(aucs)], [2.5, 97.5])
    assert auc_ci(ids, truth, scores, n_boot=200) == pytest.approx(expected)


def _rows(criteria_and_aucs):
    return [
        {"dataset": "d", "probe": "knn", "layer": layer, "k": k, "labels": "weak", "auc": auc,
         "auc_minus_labels_auc": auc - 0.6, "criterion": c, "auc_low": auc - 0.05,
         "auc_high": auc + 0.05, "criterion_name": "loo"}
        for layer, k, c, auc in criteria_and_aucs
    ]  # fmt: skip


def test_the_choice_minimises_the_criterion_and_hindsight_maximises_test_auc():
    rows = _rows(
        [
            (1, 5, 0.20, 0.70),
            (1, 50, 0.20, 0.65),  # a tie on the criterion: the smoother (larger k) wins
            (2, 5, 0.25, 0.90),  # the best test AUC, never chosen: its criterion is worse
            (2, 50, 0.22, 0.80),
        ]
    )
    choice = sweep_choice(rows, "k")
    assert (choice.chosen["layer"], choice.chosen["k"]) == (1, 50)
    assert (choice.best["layer"], choice.best["k"]) == (2, 5)
    assert {layer: (a["k"], b["k"]) for layer, (a, b) in choice.by_layer.items()} == {
        1: (50, 5),
        2: (50, 5),
    }
    assert summary_line(choice, "k") == (
        "chosen on weak labels: layer 1, k=50, test AUC 0.650 [0.600, 0.700]; "
        "best in hindsight: layer 2, k=5, test AUC 0.900 [0.850, 0.950]"
    )
    marks = [(r["layer_choice"], r["layer_hindsight"], r["chosen"]) for r in marked(rows, "k")]
    assert marks == [
        (False, True, False),
        (True, False, True),
        (False, True, False),
        (True, False, False),
    ]


def test_an_old_sweep_without_the_criterion_is_read_and_drawn_as_before(tmp_path):
    points = [(1, 5, 0, 0.7), (1, 50, 0, 0.6), (2, 5, 0, 0.8), (2, 50, 0, 0.75)]
    new_columns = ("criterion", "auc_low", "auc_high")
    old = [{k: v for k, v in r.items() if k not in new_columns} for r in _rows(points)]
    assert sweep_choice(old, "k") is None and marked(old, "k") == old
    write_sweep(old, tmp_path / "old", "k")
    assert read_sweep(tmp_path / "old") == old
    manifest = json.loads((tmp_path / "old" / "manifest.json").read_text())
    assert "choice" not in manifest
    assert len(sweep_figure(old, "k").axes) == 1
    new = _rows([(1, 5, 0.2, 0.7), (1, 50, 0.3, 0.6), (2, 5, 0.25, 0.8), (2, 50, 0.1, 0.75)])
    fig = sweep_figure(new, "k")
    assert len(fig.axes) == 2  # the curves, and per layer chosen vs hindsight with CIs
    write_sweep(new, tmp_path / "new", "k")
    manifest = json.loads((tmp_path / "new" / "manifest.json").read_text())
    assert manifest["choice"]["chosen"] == {
        "layer": 2, "k": 50, "criterion": 0.1, "auc": 0.75, "auc_low": 0.7, "auc_high": 0.8
    }  # fmt: skip
    assert manifest["choice"]["best_in_hindsight"]["k"] == 5


def test_sweep_on_a_real_cache_ranks_by_the_criterion_on_strong_train(capsys, cached, tmp_path):
    args = ("sweep", "--probe", "knn", "--k", "3,10,40", "--layers", "1,2,3")
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    summary = json.loads(out)
    rows = summary["rows"]
    with ActivationStore.open(cached["path"]) as store:
        for row in rows:  # the criterion: LOO Brier against the weak labels, strong_train only
            x = np.asarray(store.get("strong_train", row["layer"]))
            expected = _brute_loo_brier(x, cached["soft"]["strong_train"], row["k"])
            assert row["criterion"] == pytest.approx(expected, rel=1e-4)
            low, high = auc_ci(
                store.ids("test"), cached["truth"]["test"], _test_scores(store, row, cached)
            )
            assert (row["auc_low"], row["auc_high"]) == pytest.approx((low, high))
    chosen = min(rows, key=lambda r: (r["criterion"], -r["k"], r["layer"]))
    best = max(rows, key=lambda r: r["auc"])
    assert [r for r in rows if r["chosen"]] == [chosen]
    assert summary["choice"].startswith(
        f"chosen on weak labels: layer {chosen['layer']}, k={chosen['k']}, "
        f"test AUC {chosen['auc']:.3f} ["
    )
    assert (
        f"best in hindsight: layer {best['layer']}, k={best['k']}, test AUC {best['auc']:.3f}"
        in (summary["choice"])
    )
    folder = Path(summary["files"]["png"]).parent
    assert (
        json.loads((folder / "manifest.json").read_text())["choice"]["chosen"]["k"] == chosen["k"]
    )
    code, out, err = run_cli(capsys, *args)  # cached: the table and the printed line
    assert code == 0, err
    assert summary["choice"] in " ".join(out.split())


def _test_scores(store, row, cached):
    from w2sprobe.probes import KnnProbe

    probe = KnnProbe(k=row["k"]).fit(
        store.get("strong_train", row["layer"]), cached["soft"]["strong_train"]
    )
    return probe.predict(np.asarray(store.get("test", row["layer"])))


def test_the_report_shows_each_sweep_s_choice_beside_the_hindsight_point(tmp_path):
    from report_fixtures import make_study

    from w2sprobe.report import build_report, write_report

    make_study(tmp_path, datasets=("alpha", "beta", "gamma"))
    new = _rows([(1, 5, 0.20, 0.70), (1, 50, 0.30, 0.60), (2, 5, 0.25, 0.80), (2, 50, 0.1, 0.75)])
    new = [{**r, "dataset": "alpha"} for r in new]
    write_sweep(marked(new, "k"), tmp_path / "sweeps" / "alpha" / "new1", "k")
    old = [{k: v for k, v in r.items() if k != "criterion"} for r in new]
    write_sweep(old, tmp_path / "sweeps" / "alpha" / "old1", "k")
    report = build_report(tmp_path, n_boot=0)
    write_report(report, tmp_path / "out", fmt="md")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Probe sweeps: chosen without test labels" in text
    assert (
        "| alpha | knn | weak | layer 2, k=50 | 0.750 [0.700, 0.800] | layer 2, k=5 | "
        "0.800 [0.750, 0.850] |"
    ) in text
    assert "1 sweep(s) predate the weak-label criterion" in text
