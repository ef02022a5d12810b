"""kNN search and the kNN probe against brute-force numpy (full distance matrices are fine here)."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest
import torch

from w2sprobe.errors import UsageError
from w2sprobe.probes import KnnProbe, Probe, knn_graph, knn_search, make_probe

search_module = importlib.import_module(
    "w2sprobe.probes.search"
)  # the module, not the function

BACKENDS = ["torch"] + (["faiss"] if importlib.util.find_spec("faiss") else [])


def brute_knn(index, queries, k, self_ids=None, rows=None):
    """Exact neighbours in float64, sorted by (distance, index); -1/inf pads like knn_search."""
    index, queries = np.asarray(index, np.float64), np.asarray(queries, np.float64)
    d = ((queries[:, None, :] - index[None]) ** 2).sum(-1)
    allowed = np.zeros(d.shape, dtype=bool)
    allowed[:, np.arange(len(index)) if rows is None else rows] = True
    if self_ids is not None:
        valid = self_ids >= 0
        allowed[np.flatnonzero(valid), self_ids[valid]] = False
    d = np.where(allowed, d, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(index)), d.shape), d), axis=1)[:, :k]
    dist = np.take_along_axis(d, order, 1)
    return dist, np.where(np.isinf(dist), -1, order)


def integer_points(rng, n, dim=5, duplicates=20):
    """Small-integer coordinates: every distance is exact in float32 and ties abound."""
    x = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    x[n // 3 : n // 3 + duplicates] = x[0]  # a block of exact duplicates of row 0
    return x


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------- knn_search


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("budget", [None, 3_000])
def test_search_matches_brute_force_with_ties_and_duplicates(rng, backend, budget):
    x, q = integer_points(rng, 300), rng.integers(-2, 3, size=(40, 5)).astype(np.float32)
    options = {} if budget is None else {"memory_budget_bytes": budget}
    d, i = knn_search(x, q, 25, backend=backend, **options)
    want_d, want_i = brute_knn(x, q, 25)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_array_equal(d, want_d.astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_exclude_self_drops_only_the_query_row(rng, backend):
    x = integer_points(rng, 200)
    d, i = knn_search(x, x, 30, exclude_self=True, backend=backend, memory_budget_bytes=5_000)
    want_d, want_i = brute_knn(x, x, 30, self_ids=np.arange(200))
    np.testing.assert_array_equal(i, want_i)
    assert not (i == np.arange(200)[:, None]).any()
    assert (d[0, :20] == 0).all()  # row 0's duplicates are still its neighbours


def test_backends_agree_on_float_data_with_duplicates(rng):
    if len(BACKENDS) < 2:
        pytest.skip("faiss not installed")
    x = rng.standard_normal((500, 32)).astype(np.float16)
    x[250:270] = x[3]
    results = [
        knn_search(x, x, 40, exclude_self=True, backend=b, memory_budget_bytes=200_000)
        for b in BACKENDS
    ]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-4)


def test_blockwise_with_a_tiny_budget_equals_one_block(rng):
    x, q = rng.standard_normal((257, 12)), rng.standard_normal((33, 12))
    whole = knn_search(x, q, 7, backend="torch", memory_budget_bytes=2**30)
    tiny = knn_search(x, q, 7, backend="torch", memory_budget_bytes=1)
    np.testing.assert_array_equal(whole[1], tiny[1])
    np.testing.assert_allclose(whole[0], tiny[0], rtol=1e-5)  # BLAS rounds by matrix shape


def test_duplicates_in_different_blocks_tie_exactly(rng):
    """Copies of one row in full index blocks and in a one-row last block: equal distances,
    index order (BLAS rounds a 1-row product differently unless the block is padded)."""
    x = rng.standard_normal((6 * 167 + 1, 64)).astype(np.float32)
    copies = [5, 400, 777, 6 * 167]
    x[copies] = x[0] + 0.05 * rng.standard_normal(64).astype(np.float32)
    budget = 40 * 880 + 167 * (640 + 12 * 40)  # 40 queries x index blocks of 167 rows
    for backend in BACKENDS:
        d, i = knn_search(x, x[:40], 5, backend=backend, memory_budget_bytes=budget)
        assert i[0].tolist() == [0] + copies and (d[0, 1:] == d[0, 1]).all()


def test_scratch_memory_follows_the_budget(rng, monkeypatch):
    """No block ever holds more (query, index) pairs than the budget allows: never N x M."""
    seen = []
    real = search_module.torch_block
    monkeypatch.setattr(
        search_module,
        "torch_block",
        lambda q, x, k, width: (
            seen.append((q.shape[0] * max(width, x.shape[0]), q.shape[0] * x.shape[0]))
            or real(q, x, k, width)
        ),
    )
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    knn_search(x, x[:500], 10, backend="torch", memory_budget_bytes=64_000)
    scratch, pairs = zip(*seen)
    assert max(scratch) * 12 <= 64_000 and sum(pairs) == 3000 * 500


def test_cosine_matches_brute_force(rng):
    x, q = rng.standard_normal((150, 8)), rng.standard_normal((20, 8))
    for backend in BACKENDS:
        d, i = knn_search(x, q, 10, metric="cosine", backend=backend)
        unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
        similarity = unit(q) @ unit(x).T
        np.testing.assert_array_equal(i, np.argsort(-similarity, axis=1)[:, :10])
        np.testing.assert_allclose(d, 1 - np.take_along_axis(similarity, i, 1), atol=1e-5)


def with_zero_rows(rng, n=60, dim=5, zeros=(3, 17, 41)):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[list(zeros)] = 0
    return x


def assert_exact_cosine_knn(x, queries, d, i, exclude_self=False):
    """Tie-robust exactness against sklearn: each reported distance is sklearn's distance to the
    reported row, and the reported distances are sklearn's k smallest (in order)."""
    from sklearn.metrics.pairwise import cosine_distances
    from sklearn.neighbors import NearestNeighbors

    truth = cosine_distances(queries.astype(np.float64), x.astype(np.float64))
    np.testing.assert_allclose(d, np.take_along_axis(truth, i, 1), atol=2e-6)
    nn = NearestNeighbors(n_neighbors=d.shape[1], metric="cosine", algorithm="brute").fit(
        x.astype(np.float64)
    )
    want_d, _ = nn.kneighbors(None if exclude_self else queries.astype(np.float64))
    np.testing.assert_allclose(d, want_d, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cosine_zero_rows_follow_sklearn(rng, backend):
    """An all-zero row is at cosine distance 1 from everything (sklearn's convention), so it is
    nobody's near neighbour; it used to sit at 0.5 from every row and crowd the lists."""
    x = with_zero_rows(rng)
    queries = np.concatenate([x[:10], np.zeros((2, 5), np.float32)])
    d, i = knn_search(x, queries, 40, metric="cosine", backend=backend)
    assert_exact_cosine_knn(x, queries, d, i)
    np.testing.assert_allclose(d[-2:], 1.0, atol=1e-6)  # a zero query: distance 1 to every row
    d, i = knn_search(
        x, x, 40, metric="cosine", exclude_self=True, backend=backend, memory_budget_bytes=3_000
    )
    assert_exact_cosine_knn(x, x, d, i, exclude_self=True)


def test_zero_rows_are_rarely_neighbours_in_the_knn_probe(rng):
    """The issue's repro: 200 rows, 2 of them zero, k = 10.

    Before the fix, a zero row was in 198 of the 200 neighbour lists.
    """
    x = rng.standard_normal((200, 16)).astype(np.float32)
    x[[5, 150]] = 0
    _, i = knn_search(x, x, 10, metric="cosine", exclude_self=True)
    listed = int(np.isin(i, [5, 150]).any(1).sum())
    assert listed == 0, listed


def test_k_at_least_n_returns_every_row(rng):
    x = rng.standard_normal((6, 3))
    assert knn_search(x, x[:2], 50)[1].shape == (2, 6)
    d, i = knn_search(x, x, 50, exclude_self=True)
    assert i.shape == (6, 5) and sorted(i[0]) == [1, 2, 3, 4, 5]


def test_index_rows_and_per_query_self_ids(rng):
    x = integer_points(rng, 120, duplicates=5)
    rows = np.arange(0, 120, 3)
    self_ids = np.arange(0, 60)  # queries are rows 0..59; a third of them are searched rows
    d, i = knn_search(x, x[:60], 50, index_rows=rows, exclude_self=self_ids)
    assert i.shape == (60, 40)  # min(k, 40 rows); rows searched as themselves lose one: padded
    want_d, want_i = brute_knn(x, x[:60], 40, self_ids=self_ids, rows=rows)
    np.testing.assert_array_equal(i, want_i)
    assert (i[0] == -1).sum() == 1 and (i[1] == -1).sum() == 0


def test_inputs_float16_memmap_torch_and_hdf5_agree(rng, tmp_path):
    import h5py

    x = rng.standard_normal((100, 8)).astype(np.float16)
    mapped = np.memmap(tmp_path / "x.bin", dtype=np.float16, mode="w+", shape=x.shape)
    mapped[:] = x
    mapped = np.memmap(tmp_path / "x.bin", dtype=np.float16, mode="r", shape=x.shape)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = x
    with h5py.File(tmp_path / "x.h5", "r") as f:
        from_h5 = knn_search(f["x"], f["x"], 5, exclude_self=True)[1]
    reference = brute_knn(x, x, 5, self_ids=np.arange(100))[1]
    for acts in (x, mapped, torch.from_numpy(x)):
        np.testing.assert_array_equal(knn_search(acts, acts, 5, exclude_self=True)[1], reference)
    np.testing.assert_array_equal(from_h5, reference)


def test_knn_graph_is_sparse_and_excludes_self(rng):
    x = rng.standard_normal((80, 4))
    graph = knn_graph(x, 6)
    assert graph.shape == (80, 80) and graph.nnz == 80 * 6 and graph.diagonal().sum() == 0
    _, i = knn_search(x, x, 6, exclude_self=True)
    assert sorted(graph[7].indices) == sorted(i[7])


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(k=0), "k must be an integer >= 1"),
        (dict(metric="manhattan"), "unknown metric"),
        (dict(backend="annoy"), "unknown backend"),
    ],
)
def test_search_rejects_bad_options(rng, bad, message):
    x = rng.standard_normal((10, 3))
    options = {"k": 3, **bad}
    with pytest.raises(UsageError, match=message):
        knn_search(x, x, options.pop("k"), **options)


def test_search_rejects_nan_and_mismatched_widths(rng):
    x = rng.standard_normal((10, 3))
    x[[2, 5]] = np.nan
    with pytest.raises(UsageError, match="2 of 10 rows with NaN or inf"):
        knn_search(x, x, 3)
    with pytest.raises(UsageError, match="features"):
        knn_search(rng.standard_normal((10, 3)), rng.standard_normal((4, 2)), 3)


def test_cuml_backend_without_cuml_is_a_clear_error(rng):
    if importlib.util.find_spec("cuml"):
        pytest.skip("cuML is installed")
    x = rng.standard_normal((10, 3))
    with pytest.raises(UsageError, match=r"cuML is not installed: pip install 'w2sprobe\[gpu\]'"):
        knn_search(x, x, 3, backend="cuml")


# --------------------------------------------------------------------------- the probe


def soft_labels(rng, n):
    return rng.random(n).astype(np.float32)


def test_probe_predictions_are_neighbour_means(rng):
    x, q, y = rng.standard_normal((200, 6)), rng.standard_normal((30, 6)), soft_labels(rng, 200)
    x16 = x.astype(np.float16)
    probe = KnnProbe(k=9).fit(x16, y)
    assert isinstance(probe, Probe)
    _, want = brute_knn(x16, q.astype(np.float16), 9)
    np.testing.assert_allclose(probe.predict(q.astype(np.float16)), y[want].mean(1), atol=1e-6)
    _, loo = brute_knn(x16, x16, 9, self_ids=np.arange(200))
    fit_set = probe.predict_fit_set()
    assert fit_set.dtype == np.float32
    np.testing.assert_allclose(fit_set, y[loo].mean(1), atol=1e-6)
    np.testing.assert_array_equal(probe.predict(x16), fit_set)  # its own set: out of sample


def test_probe_filter_removes_exactly_the_highest_disagreements(rng):
    x, y = rng.standard_normal((301, 5)), soft_labels(rng, 301)
    probe = KnnProbe(k=7)
    result = probe.filter(x, y, 0.1)
    scores = np.abs(y - probe.predict_fit_set())
    assert result.requested == round(301 * 0.1) == result.removed == (~result.keep).sum()
    assert result.overshoot == 0 and result.removed_by_components == 0
    assert scores[~result.keep].min() >= scores[result.keep].max()
    np.testing.assert_array_equal(result.kept_indices, np.flatnonzero(result.keep))


def test_probe_with_k_beyond_n_and_constant_labels(rng):
    x = rng.standard_normal((5, 3))
    probe = KnnProbe(k=50).fit(x, np.full(5, 0.3))
    np.testing.assert_allclose(probe.predict_fit_set(), 0.3, atol=1e-7)
    np.testing.assert_allclose(probe.predict(x[:2]), 0.3, atol=1e-7)
    y = np.array([1, 0, 0, 0, 0], dtype=np.float32)
    np.testing.assert_allclose(
        KnnProbe(k=50).fit(x, y).predict_fit_set(), [0, 0.25, 0.25, 0.25, 0.25]
    )


@pytest.mark.parametrize("contamination", [-0.1, 1.0, 1.5, float("nan"), "0.1"])
def test_probe_rejects_bad_contamination(rng, contamination):
    with pytest.raises(UsageError, match="contamination"):
        KnnProbe(k=3).filter(rng.standard_normal((20, 3)), soft_labels(rng, 20), contamination)


def test_probe_rejects_bad_inputs(rng):
    x = rng.standard_normal((20, 3))
    with pytest.raises(UsageError, match="k must be"):
        KnnProbe(k=0)
    with pytest.raises(UsageError, match="labels must lie in"):
        KnnProbe().fit(x, np.full(20, 1.5))
    with pytest.raises(UsageError, match="one value per row"):
        KnnProbe().fit(x, np.zeros(19))
    x[4, 1] = np.inf
    with pytest.raises(UsageError, match="1 of 20 rows"):
        KnnProbe().fit(x, np.zeros(20))
    with pytest.raises(UsageError, match="2-D"):
        KnnProbe().fit(np.zeros(20), np.zeros(20))
    with pytest.raises(UsageError, match="not fitted"):
        KnnProbe().predict(x)


def test_make_probe_by_name():
    assert make_probe("knn", k=3).k == 3
    with pytest.raises(UsageError, match="unknown probe 'svm'; known: knn, logreg, topo"):
        make_probe("svm")
    with pytest.raises(UsageError, match="takes no parameter 'l2'"):
        make_probe("knn", l2=0.1)
