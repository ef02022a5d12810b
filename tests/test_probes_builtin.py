"""The difference-of-means ("mass-mean") and MLP probes, against independent references."""

from __future__ import annotations

import json

import numpy as np
import pytest
import test_probe_cli
from conftest import run_cli
from sklearn.datasets import make_circles
from sklearn.neural_network import MLPClassifier

from w2sprobe.probes import MassMeanProbe, MlpProbe, make_probe

#: The workspace of the probe commands' tests: tiny BERT layers and noisy weak labels.
cached = test_probe_cli.cached


def sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))


def test_mass_mean_is_the_hand_computed_projection():
    x = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], dtype=np.float32)
    y = np.array([1, 0.5, 0, 0], dtype=np.float32)
    probe = MassMeanProbe().fit(x, y)
    # mu+ = (1 * (0,0) + 0.5 * (2,0)) / 1.5 = (2/3, 0)
    # mu- = (0.5 * (2,0) + (0,2) + (2,2)) / 2.5 = (1.2, 1.6)
    # direction = mu+ - mu- = (-8/15, -1.6); midpoint = (14/15, 0.8)
    np.testing.assert_allclose(probe.direction_, [-8 / 15, -1.6], rtol=1e-6)
    np.testing.assert_allclose(probe.midpoint_, [14 / 15, 0.8], rtol=1e-6)
    # (0,0): (x - m) . d = (-14/15)(-8/15) + (-0.8)(-1.6) = 112/225 + 1.28
    expected = sigmoid([112 / 225 + 1.28, (16 / 15) * (-8 / 15) + 1.28])
    np.testing.assert_allclose(probe.predict(x[:2]), expected, rtol=1e-6)
    np.testing.assert_allclose(probe.predict_fit_set(), probe.predict(x), rtol=1e-6)


def test_mass_mean_reads_any_array_in_blocks_like_the_numpy_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 7)).astype(np.float16)
    y = rng.random(500).astype(np.float32)
    probe = MassMeanProbe(memory_budget_bytes=7 * 8 * 64).fit(x, y)  # 64-row blocks
    x64 = x.astype(np.float64)
    direction = np.average(x64, axis=0, weights=y) - np.average(x64, axis=0, weights=1 - y)
    np.testing.assert_allclose(probe.direction_, direction, rtol=1e-6, atol=1e-9)


def test_mlp_probe_agrees_with_sklearn_mlp_on_hard_labels():
    x, y = make_circles(450, noise=0.08, factor=0.5, random_state=0)
    x = ((x - x[:300].mean(0)) / x[:300].std(0)).astype(np.float32)
    alpha, n = 1e-2, 300
    ours = MlpProbe(hidden=16, l2=alpha / (2 * n)).fit(x[:n], y[:n].astype(np.float32))
    theirs = MLPClassifier(
        (16,), solver="lbfgs", alpha=alpha, max_iter=2000, tol=1e-8, random_state=0
    ).fit(x[:n], y[:n])
    p_ours, p_theirs = ours.predict(x[n:]), theirs.predict_proba(x[n:])[:, 1]
    # circles: no linear probe separates them; both MLPs do, with nearly the same probabilities
    assert ((p_ours > 0.5) == y[n:]).mean() >= 0.97
    assert ((p_theirs > 0.5) == y[n:]).mean() >= 0.97
    assert np.abs(p_ours - p_theirs).mean() < 0.05
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=0.5, abs=5e-3)


def test_mlp_soft_labels_and_seeded_fit():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    y = sigmoid(2 * x[:, 0]).astype(np.float32)
    a = make_probe("mlp", hidden=8, l2=1e-3).fit(x, y)
    b = make_probe("mlp", hidden=8, l2=1e-3).fit(x, y)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert np.corrcoef(a.predict_fit_set(), y)[0, 1] > 0.95


def test_massmean_and_mlp_through_the_commands(capsys, cached):
    code, out, err = run_cli(capsys, "probe", "--probe", "massmean", "--layer", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["probe"] == "massmean"
    code, out, err = run_cli(
        capsys, "relabel", "--probe", "mlp", "--mlp-hidden", "8", "--layer", "2", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["label_set"] == "mlp-relabel@weak" and summary["hidden"] == 8
    code, out, err = run_cli(capsys, "sweep", "--probe", "mlp", "--l2", "1e-3,1e-1", "--json")
    assert code == 0, err
    assert [r["l2"] for r in json.loads(out)["rows"]] == [1e-3, 1e-1]
