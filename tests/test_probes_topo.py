"""TopoFilter against a straightforward dense reference (dense distances, dense adjacency)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from w2sprobe.errors import UsageError
from w2sprobe.probes import TopoFilterProbe, make_probe
from w2sprobe.probes.topo import TopoFilterWarning

topo_module = importlib.import_module("w2sprobe.probes.topo")


def nearest(d, k):
    """Per row, the k smallest of ``d`` by (distance, index)."""
    idx = np.broadcast_to(np.arange(d.shape[1]), d.shape)
    return np.lexsort((idx, d), axis=1)[:, :k]


def dense_topofilter(x, y, k_cc, k_zeta, contamination):
    """The study's algorithm, spelled out densely; ties by index as the contract says.

    Returns (kept mask after both steps, component mask C, predictions for every point).
    """
    n = len(x)
    d = cdist(x, x, "sqeuclidean")
    np.fill_diagonal(d, np.inf)
    adj = np.zeros((n, n), dtype=bool)
    rows = np.repeat(np.arange(n), min(k_cc, n - 1))
    adj[rows, nearest(d, min(k_cc, n - 1)).ravel()] = True
    component_kept = np.zeros(n, dtype=bool)
    for members in (np.flatnonzero(y > 0.5), np.flatnonzero(y <= 0.5)):
        if members.size:
            _, comp = connected_components(
                adj[np.ix_(members, members)], directed=True, connection="strong"
            )
            sizes = np.bincount(comp)
            biggest = [c for c in comp if sizes[c] == sizes.max()][0]  # first member's component
            component_kept[members[comp == biggest]] = True
    kept = np.flatnonzero(component_kept)
    to_kept = d[:, kept]  # self is already at inf
    predictions = np.empty(n)
    for i in range(n):
        count = min(k_zeta, kept.size - component_kept[i])
        predictions[i] = y[kept[nearest(to_kept[i : i + 1], count)[0]]].mean()
    scores = np.abs(y - predictions)
    n_remove = max(round(n * contamination) - (n - kept.size), 0)
    ranked = sorted(kept, key=lambda i: (-scores[i], i))
    final = component_kept.copy()
    final[ranked[:n_remove]] = False
    return final, component_kept, predictions


def clustered(rng, n=300, dim=6, flip=0.15):
    """Two Gaussian clusters on an integer grid (exact float32 distances, many ties), soft
    labels, a fraction flipped to the other side."""
    side = rng.random(n) < 0.5
    x = np.round(rng.normal(size=(n, dim)) * 2 + np.where(side, 3, -3)[:, None]).astype(np.float32)
    y = np.where(side, rng.uniform(0.55, 1, n), rng.uniform(0, 0.45, n))
    flipped = rng.random(n) < flip
    y[flipped] = 1 - y[flipped]
    return x, y.astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize(
    "k_cc, k_zeta, contamination",
    [(5, 7, 0.1), (10, 10, 0.3), (3, 12, 0.2), (2, 5, 0.05), (400, 400, 0.1)],
)
def test_matches_dense_reference(rng, k_cc, k_zeta, contamination):
    x, y = clustered(rng)
    want_keep, want_c, want_pred = dense_topofilter(x, y, k_cc, k_zeta, contamination)
    probe = TopoFilterProbe(k_cc=k_cc, k_zeta=k_zeta, memory_budget_bytes=20_000)
    result = probe.filter(x, y, contamination)
    np.testing.assert_array_equal(probe.kept_, want_c)
    np.testing.assert_array_equal(result.keep, want_keep)
    np.testing.assert_allclose(probe.predict_fit_set(), want_pred, atol=1e-6)
    assert result.removed_by_components == (~want_c).sum()


def test_points_short_of_kept_neighbours_are_searched_again(rng, monkeypatch):
    """With a narrow self-kNN list some points see too few kept points: the fallback runs."""
    x, y = clustered(rng, flip=0.3)
    searched = []
    real = topo_module.TopoFilterProbe._search_kept
    monkeypatch.setattr(
        topo_module.TopoFilterProbe,
        "_search_kept",
        lambda self, points, out: searched.append(points.size) or real(self, points, out),
    )
    probe = TopoFilterProbe(k_cc=2, k_zeta=9).fit(x, y)
    assert sum(searched) > 0
    np.testing.assert_allclose(
        probe.predict_fit_set(), dense_topofilter(x, y, 2, 9, 0)[2], atol=1e-6
    )


def test_predict_new_points_uses_kept_neighbours(rng):
    x, y = clustered(rng)
    queries = clustered(np.random.default_rng(1), n=40)[0]
    probe = TopoFilterProbe(k_cc=5, k_zeta=7).fit(x, y)
    kept = np.flatnonzero(probe.kept_)
    want = y[kept[nearest(cdist(queries, x[kept], "sqeuclidean"), 7)]].mean(1)
    np.testing.assert_allclose(probe.predict(queries), want, atol=1e-6)
    np.testing.assert_array_equal(
        probe.predict(x), probe.predict_fit_set()
    )  # its own set: self excluded


def test_removes_exactly_the_requested_fraction(rng):
    x, y = clustered(rng, n=401, flip=0.1)
    result = TopoFilterProbe(k_cc=20, k_zeta=10).filter(x, y, 0.2)
    assert result.removed_by_components < result.requested == round(401 * 0.2)
    assert result.removed == result.requested and result.overshoot == 0


def test_overshoot_is_reported_not_hidden(rng):
    x, y = clustered(rng, flip=0.3)
    with pytest.warns(
        TopoFilterWarning, match=r"removed 290 of 300 points, more than the 3 asked for"
    ):
        result = TopoFilterProbe(k_cc=2, k_zeta=5).filter(x, y, 0.01)
    assert result.removed_by_components > result.requested == 3
    assert result.removed_by_score == 0
    assert result.overshoot == result.removed_by_components - 3
    assert result.summary()["overshoot"] == result.overshoot


def test_duplicated_points_and_constant_labels(rng):
    x, _ = clustered(rng, n=120)
    x[60:90] = x[0]
    y = np.full(120, 0.8, dtype=np.float32)  # one class only: the other contributes nothing
    with pytest.warns(TopoFilterWarning):  # the duplicates' component wins; the rest goes
        result = TopoFilterProbe(k_cc=6, k_zeta=6).filter(x, y, 0.1)
    want_keep, want_c, want_pred = dense_topofilter(x, y, 6, 6, 0.1)
    np.testing.assert_array_equal(result.keep, want_keep)
    np.testing.assert_allclose(
        TopoFilterProbe(k_cc=6, k_zeta=6).fit(x, y).predict_fit_set(), 0.8, atol=1e-6
    )


def test_tiny_sets(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    probe = TopoFilterProbe(k_cc=50, k_zeta=50).fit(x, np.array([1.0, 0.0]))
    assert probe.kept_.all()  # each class: one point, its own component
    np.testing.assert_array_equal(
        probe.predict_fit_set(), [0.0, 1.0]
    )  # each one's only kept neighbour
    with pytest.raises(UsageError, match="at least 2 row"):
        TopoFilterProbe().fit(x[:1], np.array([1.0]))


def test_bad_parameters_are_usage_errors(rng):
    x, y = clustered(rng, n=30)
    with pytest.raises(UsageError, match="k_cc must be"):
        TopoFilterProbe(k_cc=0)
    with pytest.raises(UsageError, match="--k-zeta must be"):
        make_probe("topo", k_zeta=-3)
    with pytest.raises(UsageError, match="contamination"):
        TopoFilterProbe(k_cc=3, k_zeta=3).filter(x, y, 1.0)
    x[3] = np.nan
    with pytest.raises(UsageError, match="1 of 30 rows"):
        TopoFilterProbe().fit(x, y)
    with pytest.raises(UsageError, match="not fitted"):
        TopoFilterProbe().predict(x)
