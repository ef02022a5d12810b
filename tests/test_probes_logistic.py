"""The logistic probe against scikit-learn on the duplicated-rows objective (module doc)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from w2sprobe.errors import UsageError
from w2sprobe.probes import LogisticProbe
from w2sprobe.probes.logistic import logistic_objective

L2 = 1e-2


@pytest.fixture
def data():
    """Shifted, unevenly scaled features and noisy soft labels from a logistic model."""
    rng = np.random.default_rng(0)
    n, dim = 400, 20
    x = rng.standard_normal((n, dim)) * np.linspace(0.5, 3, dim) + rng.standard_normal(dim)
    logits = 0.5 * x @ rng.standard_normal(dim) + 0.3
    y = np.clip(1 / (1 + np.exp(-logits)) + rng.normal(0, 0.1, n), 0, 1)
    return x, y


def sklearn_fit(x, y, l2=L2):
    """sklearn's lbfgs on rows (x, 1) weighted y and (x, 0) weighted 1 - y, C = 1 / (2 l2 N)."""
    n = len(x)
    model = LogisticRegression(C=1 / (2 * l2 * n), tol=1e-12, max_iter=10_000)
    model.fit(np.vstack([x, x]), np.r_[np.ones(n), np.zeros(n)], sample_weight=np.r_[y, 1 - y])
    return model.coef_[0], model.intercept_[0]


def objective(x, y, w, b, l2=L2):
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    return float(logistic_objective(t(x), t(y), t(w), t(b), l2))


def test_float64_matches_sklearn_coefficients(data):
    x, y = data
    w, b = sklearn_fit(x, y)
    probe = LogisticProbe(l2=L2, dtype="float64", tol=1e-10).fit(x, y)
    np.testing.assert_allclose(probe.coef_, w, atol=1e-5)
    assert probe.intercept_ == pytest.approx(b, abs=1e-5)
    assert probe.loss_ == pytest.approx(objective(x, y, w, b), abs=1e-8)


def test_float32_reaches_the_same_loss(data):
    x, y = data
    w, b = sklearn_fit(x, y)
    probe = LogisticProbe(l2=L2).fit(x.astype(np.float16), y)  # float16 cache, float32 math
    x16 = x.astype(np.float16).astype(np.float64)
    best = objective(x16, y, *sklearn_fit(x16, y))
    assert objective(x16, y, probe.coef_, probe.intercept_) == pytest.approx(best, abs=1e-5)
    assert objective(x, y, probe.coef_, probe.intercept_) == pytest.approx(
        objective(x, y, w, b), abs=1e-3
    )


def test_standardize_matches_sklearn_on_scaled_features(data):
    x, y = data
    w, b = sklearn_fit(StandardScaler().fit_transform(x), y)
    probe = LogisticProbe(l2=L2, standardize=True, dtype="float64", tol=1e-10).fit(x, y)
    np.testing.assert_allclose(probe.coef_, w, atol=1e-5)
    assert probe.intercept_ == pytest.approx(b, abs=1e-5)


def test_predictions(data):
    x, y = data
    probe = LogisticProbe(standardize=True, memory_budget_bytes=2_000).fit(
        x, y
    )  # predict in small blocks
    x_std = StandardScaler().fit_transform(x)
    want = 1 / (1 + np.exp(-(x_std @ probe.coef_ + probe.intercept_)))
    predictions = probe.predict(x)
    assert predictions.dtype == np.float32
    np.testing.assert_allclose(predictions, want, atol=1e-5)
    np.testing.assert_allclose(probe.predict_fit_set(), predictions, atol=1e-6)


def test_filter_drops_the_worst_fitted_rows(data):
    x, y = data
    probe = LogisticProbe()
    result = probe.filter(x, y, 0.25)
    scores = np.abs(y - probe.predict_fit_set())
    assert result.removed == result.requested == 100 and result.overshoot == 0
    assert scores[~result.keep].min() >= scores[result.keep].max()


@pytest.mark.parametrize("constant", [0.7, 0.0, 1.0])
def test_constant_labels_predict_the_constant(data, constant):
    x, _ = data
    probe = LogisticProbe().fit(x, np.full(len(x), constant))
    np.testing.assert_allclose(probe.predict(x), constant, atol=1e-3)
    assert np.abs(probe.coef_).max() < 1e-2


def test_bad_inputs_are_usage_errors(data):
    x, y = data
    with pytest.raises(UsageError, match="l2 must be"):
        LogisticProbe(l2=-1)
    with pytest.raises(UsageError, match="unknown dtype"):
        LogisticProbe(dtype="float16")
    with pytest.raises(UsageError, match="not fitted"):
        LogisticProbe().predict(x)
    with pytest.raises(UsageError, match="fitted on 20"):
        LogisticProbe().fit(x, y).predict(x[:, :5])
    bad = x.copy()
    bad[[1, 2, 3]] = np.nan
    with pytest.raises(UsageError, match="3 of 400 rows"):
        LogisticProbe().fit(bad, y)
    with pytest.raises(UsageError, match="contamination"):
        LogisticProbe().filter(x, y, -0.5)


def test_cuml_backend_without_cuml_is_a_clear_error(data):
    if importlib.util.find_spec("cuml"):
        pytest.skip("cuML is installed")
    x, y = data
    with pytest.raises(UsageError, match="cuML is not installed"):
        LogisticProbe(backend="cuml").fit(x, y)
