"""The views' math against hand computation, brute force and the textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from w2sprobe.errors import UsageError
from w2sprobe.metrics import roc_auc
from w2sprobe.views import (
    cka_grid,
    cv_auc,
    direction_cosine,
    disputed_order,
    linear_cka,
    mean_difference,
    project_2d,
    ridge_map,
)
from w2sprobe.views.projection import check_projection


def _toy(n=300, d=40, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.float32)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, 0] += 3 * y  # one informative direction
    return x, y


def test_projection_is_deterministic_with_a_seed_and_equals_exact_pca():
    x, _ = _toy()
    x[:, 1] *= 6  # separated top components, as a real layer's leading ones
    x[:, 2] *= 3
    first, again = project_2d(x, seed=3), project_2d(x, seed=3)
    np.testing.assert_array_equal(first.coords, again.coords)
    # the reference: the top two right singular vectors of the centred data (numpy's SVD)
    centred = x.astype(np.float64) - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    exact = centred @ vt[:2].T
    for axis in range(2):  # equal up to the sign of each axis
        sign = np.sign(exact[:, axis] @ first.coords[:, axis])
        np.testing.assert_allclose(first.coords[:, axis], sign * exact[:, axis], atol=1e-3)
    np.testing.assert_allclose(first.explained, (s[:2] ** 2) / np.sum(s**2), rtol=1e-4)
    assert first.axis_labels()[0].startswith("PC1 (")


def test_projection_bad_input_is_one_usage_error():
    with pytest.raises(UsageError, match="unknown projection 'tsne'"):
        check_projection("tsne")
    with pytest.raises(UsageError, match="at least 3 rows"):
        project_2d(np.zeros((2, 4)))


def test_directions_and_cosine_equal_a_hand_computation():
    x = np.array([[1, 0], [3, 0], [0, 2], [0, 4]], dtype=np.float32)
    truth = np.array([1, 1, 0, 0])
    weak = np.array([1, 0.5, 0, 0])
    # by hand: positives (1,0),(3,0) -> (2,0); negatives (0,2),(0,4) -> (0,3)
    np.testing.assert_allclose(mean_difference(x, truth), [2, -3])
    # soft: positive weights 1, .5 -> ((1,0) + .5 (3,0)) / 1.5 = (5/3, 0);
    # negative weights .5, 1, 1 -> (.5 (3,0) + (0,2) + (0,4)) / 2.5 = (0.6, 2.4)
    np.testing.assert_allclose(mean_difference(x, weak), [5 / 3 - 0.6, -2.4])
    a, b = np.array([2, -3]), np.array([5 / 3 - 0.6, -2.4])
    by_hand = (2 * b[0] + 3 * 2.4) / (np.sqrt(13) * np.sqrt(b[0] ** 2 + 2.4**2))
    assert direction_cosine(mean_difference(x, truth), mean_difference(x, weak)) == pytest.approx(
        by_hand
    )
    assert np.isnan(direction_cosine(np.zeros(2), a))
    with pytest.raises(UsageError, match="both classes"):
        mean_difference(x, np.ones(4))


def test_separability_equals_a_hand_written_cross_validation():
    x, y = _toy(n=200, d=10, seed=1)
    noisy = y.copy()
    noisy[:30] = 1 - noisy[:30]
    for labels in (y, noisy):
        scores = np.zeros(len(x))
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=7)
        for train, test in folds.split(x, labels.astype(int)):
            mean, std = x[train].mean(0), x[train].std(0)
            model = LogisticRegression(C=1.0, max_iter=1000)
            model.fit((x[train] - mean) / std, labels[train].astype(int))
            scores[test] = model.predict_proba((x[test] - mean) / std)[:, 1]
        assert cv_auc(x, labels, folds=5, seed=7) == pytest.approx(
            roc_auc(labels, scores), abs=1e-6
        )
    with pytest.raises(UsageError, match="rows of each class"):
        cv_auc(x[:6], np.array([1, 0, 0, 0, 0, 0]), folds=5)


def test_disputed_ranking_equals_a_brute_force_sort():
    rng = np.random.default_rng(2)
    probe = np.round(rng.random(200), 1)  # coarse values: many ties
    weak = np.round(rng.random(200), 1)
    brute = sorted(range(200), key=lambda i: (-abs(float(probe[i]) - float(weak[i])), i))
    assert disputed_order(probe, weak).tolist() == brute


def _gram_cka(x, y):
    """The textbook form on N x N Gram matrices (Kornblith et al. 2019, eq. 3 with linear
    kernels): HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with H the centring matrix."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T
    kc, lc = h @ k @ h, h @ l_ @ h
    return np.trace(kc @ lc) / np.sqrt(np.trace(kc @ kc) * np.trace(lc @ lc))


def test_linear_cka_in_feature_space_equals_the_gram_matrix_formula():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 7)) + 5.0  # an offset: centring must be right
    y = x @ rng.normal(size=(7, 11)) + 0.5 * rng.normal(size=(50, 11))
    z = rng.normal(size=(50, 4))
    for a, b in ((x, y), (x, z), (y, z)):
        assert linear_cka(a, b, block=8) == pytest.approx(_gram_cka(a, b), rel=1e-9)
    grid = cka_grid({0: x, 1: y}, {5: y, 6: z}, block=16)
    assert grid[(0, 5)] == pytest.approx(_gram_cka(x, y), rel=1e-9)
    assert grid[(1, 5)] == pytest.approx(1.0)
    assert grid[(0, 6)] == pytest.approx(_gram_cka(x, z), rel=1e-9)
    # invariant to an orthogonal map and a scale, by its definition
    q, _ = np.linalg.qr(rng.normal(size=(7, 7)))
    assert linear_cka(x, 3 * x @ q) == pytest.approx(1.0)


def test_ridge_map_equals_the_closed_form_at_its_chosen_strength():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 6)) + 2.0
    y = x @ rng.normal(size=(6, 9)) + 0.3 * rng.normal(size=(120, 9)) + 1.0
    fit = ridge_map(x[:80], y[:80], x[80:], y[80:])
    # closed form: centred normal equations plus alpha I, intercept from the means
    mx, my = x[:80].mean(0), y[:80].mean(0)
    xc, yc = x[:80] - mx, y[:80] - my
    w = np.linalg.solve(xc.T @ xc + fit.alpha * np.eye(6), xc.T @ yc)
    predicted = (x[80:] - mx) @ w + my
    sse = np.sum((y[80:] - predicted) ** 2)
    sst = np.sum((y[80:] - y[80:].mean(0)) ** 2)
    assert fit.r2 == pytest.approx(1 - sse / sst, rel=1e-9)
    assert fit.r2 > 0.9 and (fit.n_train, fit.n_test) == (80, 40)
    unrelated = ridge_map(x[:80], rng.normal(size=(80, 3)), x[80:], rng.normal(size=(40, 3)))
    assert unrelated.r2 < 0.1
