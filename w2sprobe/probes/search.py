"""Exact k-nearest-neighbour search in bounded memory, behind interchangeable backends.

The search walks blocks of queries and, inside each, blocks of the index, keeping a running
top-k per query: peak scratch memory follows ``memory_budget_bytes``, never N x M.

Conventions every backend follows (so they return the same neighbours on the same data):

* distances are **squared** Euclidean for ``metric="euclidean"`` (faiss's convention) and
  ``1 - cosine similarity`` for ``metric="cosine"``, computed as half the squared distance
  between L2-normalised rows, so cosine runs the very same Euclidean search;
* an all-zero row has cosine similarity 0 with everything (scikit-learn's convention:
  ``cosine_distances`` and ``NearestNeighbors(metric="cosine")``), i.e. distance 1, itself and
  other zero rows included.  Left at the origin it would be at distance 0.5 from every unit row
  and land in almost every neighbour list; so each cosine row gets two extra coordinates, a
  zero query ``e_q`` and a zero index row ``e_x`` (orthogonal unit vectors, 0 for non-zero
  rows), which puts every pair involving a zero row at squared distance 2, cosine distance 1;
* neighbours come sorted by (distance, index): among equal distances (duplicated points) the
  smaller index wins, also at the k-th place;
* ``k`` is clipped to the number of rows searched; with ``exclude_self`` a query never gets
  its own row back (its duplicates still count).

Backends: ``torch`` (CPU or CUDA), ``faiss`` (faiss-cpu), ``cuml`` (GPU, optional extra).
``auto`` picks faiss on CPU when it is installed, else torch.  The faiss backend works on numpy
blocks from start to end, so a CPU search through it never imports torch (its import is most
of a short ``probe`` command's time); the others work on torch tensors.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import UsageError
from .base import (
    DEFAULT_MEMORY_BUDGET,
    Acts,
    check_acts,
    check_choice,
    check_k,
    device_name_of,
    host_rows,
    take_rows,
)
from .config import BACKENDS, METRICS

if TYPE_CHECKING:
    import scipy.sparse as sp
    import torch

# Scratch bytes per (query, index) pair inside a block: the float32 distance and topk's temps.
_PAIR_BYTES = 12
# Past a few thousand query rows a block gains no GEMM speed, only memory.
_MAX_QUERY_BLOCK = 4096

#: A numpy array (the faiss backend's blocks) or a torch tensor (the others').
Array = Any

# Cosine rows carry two flag coordinates: column 0 marks a zero query row, column 1 a zero
# index row (see the module doc); they sit after the features.
_ZERO_FLAGS, _QUERY, _INDEX = 2, 0, 1

# A block searcher: (queries, index rows, k, block width) -> (distances, local indices), the k
# nearest per query; the width is the size of a full index block (the last one may be shorter).
BlockSearch = Callable[[Array, Array, int, int], tuple[Array, Array]]


def knn_search(
    index: Acts,
    queries: Acts,
    k: int,
    *,
    metric: str = "euclidean",
    exclude_self: bool | np.ndarray = False,
    index_rows: np.ndarray | None = None,
    backend: str = "auto",
    device: str | torch.device = "cpu",
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    check_index: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``index`` for each row of ``queries``.

    Returns ``(distances, indices)``, float32 and int64, shape (M, k') with k' = ``k`` clipped
    to the rows searched, sorted by (distance, index); ``indices`` number rows of ``index``.

    ``exclude_self``: ``True`` when ``queries`` is ``index`` (query i is row i); or an int
    array giving, per query, the index row that is the query itself (-1: none). Then
    k' = min(k, rows - 1) when every query's own row is searched, else min(k, rows), and a
    query short of neighbours is padded with index -1 and distance inf.
    ``index_rows`` (ascending) restricts the search to those rows of ``index``.
    ``check_index=False`` skips the NaN/inf pass over an index the caller has checked already.
    """
    k = check_k(k)
    check_choice(metric, "metric", METRICS)
    search, dev = _block_searcher(check_choice(backend, "backend", BACKENDS), device)
    if check_index:
        index = check_acts(index, memory_budget_bytes=memory_budget_bytes, name="index")
    if queries is not index:
        queries = check_acts(queries, memory_budget_bytes=memory_budget_bytes, name="queries")
    if queries.shape[1] != index.shape[1]:
        raise UsageError(
            f"queries have {queries.shape[1]} features but the index has {index.shape[1]}"
        )
    rows = _check_index_rows(index_rows, index.shape[0])
    self_ids = _self_ids(exclude_self, queries.shape[0], index.shape[0])
    return _search(
        index,
        queries,
        k,
        metric=metric,
        self_ids=self_ids,
        rows=rows,
        search=search,
        device=dev,
        budget=memory_budget_bytes,
    )


def knn_graph(acts: Acts, k: int, **search_options) -> sp.csr_matrix:
    """The directed kNN graph of ``acts``.

    It has an edge i -> j when j is among i's ``k`` nearest (self excluded).

    ``search_options`` go to :func:`knn_search` (metric, backend, device, memory budget).
    """
    _, neighbours = knn_search(acts, acts, k, exclude_self=True, **search_options)
    return neighbour_graph(neighbours, neighbours.shape[0])


def neighbour_graph(neighbours: np.ndarray, n: int) -> sp.csr_matrix:
    """A sparse (n, n) adjacency with an edge i -> j for each ``neighbours[i]`` entry.

    Entries of -1 are skipped.
    """
    import scipy.sparse as sp  # 0.15 s of import a kNN probe's predictions do not need

    valid = neighbours >= 0
    sources = np.repeat(np.arange(neighbours.shape[0]), valid.sum(1))
    edges = np.ones(sources.size, dtype=np.int8)
    return sp.csr_matrix((edges, (sources, neighbours[valid])), shape=(n, n))


# --------------------------------------------------------------------------- the block loop


def _search(
    index: Acts,
    queries: Acts,
    k: int,
    *,
    metric: str,
    self_ids: np.ndarray | None,
    rows: np.ndarray | None,
    search: BlockSearch,
    device: torch.device | None,
    budget: int,
) -> tuple[np.ndarray, np.ndarray]:
    n_rows = index.shape[0] if rows is None else rows.size
    n_queries, dim = queries.shape
    columns = _result_width(k, n_rows, self_ids, rows)
    wanted = min(columns + (self_ids is not None), n_rows)  # one spare to drop the query itself
    width = dim + (_ZERO_FLAGS if metric == "cosine" else 0)
    q_block, i_block = _plan_blocks(n_queries, n_rows, width, wanted, budget)
    distances = np.full((n_queries, columns), np.inf, dtype=np.float32)
    indices = np.full((n_queries, columns), -1, dtype=np.int64)
    if columns == 0:
        return distances, indices
    for q0 in range(0, n_queries, q_block):
        q = _prepare(_read(queries, slice(q0, q0 + q_block), device), metric, _QUERY)
        best = None
        for i0 in range(0, n_rows, i_block):
            block_rows, block_ids = _block(rows, i0, min(i0 + i_block, n_rows), device)
            x = _prepare(_read(index, block_rows, device), metric, _INDEX)
            d, local = search(q, x, min(wanted, x.shape[0]), i_block)
            best = merge_keys(best, pack_keys(_host(d), _host(block_ids)[_host(local)]), wanted)
        d, i = (_to_numpy(part) for part in unpack_keys(best))
        if self_ids is not None:
            d, i = _drop_self(d, i, self_ids[q0 : q0 + q_block], columns)
        distances[q0 : q0 + q.shape[0]], indices[q0 : q0 + q.shape[0]] = (
            d[:, :columns],
            i[:, :columns],
        )
    if metric == "cosine":
        distances /= 2  # |a - b|^2 / 2 = 1 - cos(a, b) for unit rows
    return distances, indices


def _result_width(k: int, n_rows: int, self_ids: np.ndarray | None, rows: np.ndarray | None) -> int:
    """Result columns: k clipped to the rows searched, one fewer when every query is among them."""
    if self_ids is None:
        return min(k, n_rows)
    searched = self_ids >= 0 if rows is None else np.isin(self_ids, rows)
    return min(k, n_rows - 1 if searched.all() else n_rows)


def _plan_blocks(n_queries: int, n_rows: int, dim: int, k: int, budget: int) -> tuple[int, int]:
    """Query and index block sizes whose scratch memory stays within ``budget`` bytes."""
    per_query = 10 * dim + 48 * k  # float32 row, its source slice, its squares, top-k merge scratch
    per_row = 10 * dim
    # Up to half the budget for queries: every query block re-reads (and converts) the index.
    q_block = min(n_queries, _MAX_QUERY_BLOCK, max(1, budget // 2 // per_query))
    i_block = max(1, (budget - q_block * per_query) // (per_row + _PAIR_BYTES * q_block))
    return q_block, min(n_rows, i_block)


def _read(acts: Acts, rows: slice | np.ndarray, device: torch.device | None) -> Array:
    """Rows as float32: numpy for a host searcher (``device`` None), else a tensor on it."""
    return host_rows(acts, rows) if device is None else take_rows(acts, rows, device)


def _block(
    rows: np.ndarray | None, start: int, stop: int, device: torch.device | None
) -> tuple[slice | np.ndarray, Array]:
    """Which rows of the index to read, and their index numbers (for the results)."""
    ids = np.arange(start, stop) if rows is None else rows[start:stop]
    read = slice(start, stop) if rows is None else ids  # a slice reads h5py/memmaps fastest
    if device is None:
        return read, ids
    import torch

    return read, torch.from_numpy(ids).to(device)


def _prepare(block: Array, metric: str, role: int) -> Array:
    """Cosine: unit rows plus the zero-row flags (module doc); Euclidean: the rows as they are."""
    if metric != "cosine":
        return block
    if isinstance(block, np.ndarray):
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]
        block /= np.maximum(norms, np.finfo(block.dtype).tiny)
        flags = np.zeros((block.shape[0], _ZERO_FLAGS), dtype=block.dtype)
        flags[:, role] = norms[:, 0] == 0
        return np.concatenate([block, flags], axis=1)
    import torch

    norms = block.norm(dim=1, keepdim=True)
    block /= norms.clamp_min(torch.finfo(block.dtype).tiny)
    flags = block.new_zeros(block.shape[0], _ZERO_FLAGS)
    flags[:, role] = (norms[:, 0] == 0).to(block.dtype)
    return torch.cat([block, flags], dim=1)


# Key handling runs in numpy on the CPU (torch is far slower on these small arrays there)
# and in torch on a GPU; the functions below take either.


def pack_keys(d: Array, i: Array) -> Array:
    """(distance, index) pairs as int64 keys that sort exactly like the pairs.

    Distances are >= 0, and the bits of a non-negative float32 order like the float; the
    index fills the low 32 bits, so equal distances sort by index.
    """
    if isinstance(d, np.ndarray):
        return (
            (d + np.float32(0)).view(np.int32).astype(np.int64) << 32
        ) | i  # + 0 turns -0.0 into +0.0
    import torch

    return ((d + 0.0).view(torch.int32).to(torch.int64) << 32) | i


def unpack_keys(keys: Array) -> tuple[Array, Array]:
    if isinstance(keys, np.ndarray):
        return (keys >> 32).astype(np.int32).view(np.float32), keys & 0xFFFFFFFF
    import torch

    return (keys >> 32).to(torch.int32).view(torch.float32), keys & 0xFFFFFFFF


def merge_keys(best: Array | None, keys: Array, k: int) -> Array:
    """The ``k`` smallest keys per row of ``best`` and ``keys`` together, ascending."""
    if isinstance(keys, np.ndarray):
        return np.sort(keys if best is None else np.concatenate([best, keys], 1), axis=1)[:, :k]
    import torch

    return (keys if best is None else torch.cat([best, keys], 1)).sort(dim=1).values[:, :k]


def _host(t: Array) -> Array:
    """A CPU tensor as numpy (no copy); numpy arrays and GPU tensors as they are."""
    return t if isinstance(t, np.ndarray) or t.device.type != "cpu" else t.numpy()


def _to_numpy(a: Array) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.cpu().numpy()


def _drop_self(
    d: np.ndarray, i: np.ndarray, self_ids: np.ndarray, columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Remove each query's own row (else the spare last candidate); pad rows left short."""
    is_self = i == self_ids[:, None]
    if d.shape[1] > columns:
        is_self[~is_self.any(1), -1] = True
    order = np.argsort(is_self, axis=1, kind="stable")[:, :columns]  # self moves to the end
    d, i = np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)
    pad = np.take_along_axis(is_self, order, 1)
    d[pad], i[pad] = np.inf, -1
    return d, i


def _check_index_rows(index_rows: np.ndarray | None, n: int) -> np.ndarray | None:
    if index_rows is None:
        return None
    rows = np.asarray(index_rows, dtype=np.int64)
    if (
        rows.ndim != 1
        or rows.size == 0
        or rows[0] < 0
        or rows[-1] >= n
        or np.any(np.diff(rows) <= 0)
    ):
        raise UsageError(f"index_rows must be a non-empty ascending list of rows in [0, {n})")
    return rows


def _self_ids(exclude_self: bool | np.ndarray, n_queries: int, n_index: int) -> np.ndarray | None:
    if isinstance(exclude_self, (bool, np.bool_)):
        if not exclude_self:
            return None
        if n_queries != n_index:
            raise UsageError(
                f"exclude_self=True needs the queries to be the index rows; "
                f"got {n_queries} queries for {n_index} rows"
            )
        return np.arange(n_queries)
    ids = np.asarray(exclude_self, dtype=np.int64)
    if ids.shape != (n_queries,) or ids.min(initial=-1) < -1 or ids.max(initial=-1) >= n_index:
        raise UsageError(
            f"exclude_self must hold one row id in [-1, {n_index}) per query ({n_queries})"
        )
    return ids


# --------------------------------------------------------------------------- backends


def check_backend(backend: str, device: str | torch.device) -> None:
    """Fail now if ``backend`` cannot run on ``device`` here (not installed, wrong device):
    called when the options are checked, before any stage runs."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown kNN backend '{backend}'; use one of {', '.join(BACKENDS)}")
    _block_searcher(backend, device)


def _block_searcher(
    backend: str, device: str | torch.device
) -> tuple[BlockSearch, torch.device | None]:
    """The block searcher, and the torch device its blocks go to (None: numpy blocks)."""
    name = device_name_of(device)
    on_cpu = name == "cpu"
    if backend == "auto":
        backend = "faiss" if on_cpu and _installed("faiss") else "torch"
    if backend == "faiss":
        if not _installed("faiss"):
            raise UsageError("faiss is not installed: pip install 'w2sprobe[faiss]'")
        if not on_cpu:
            raise UsageError(
                "the faiss backend runs on the CPU; use --device cpu or another backend"
            )
        return _faiss_block, None
    import torch

    if backend == "cuml":
        if not _installed("cuml"):
            raise UsageError("cuML is not installed: pip install 'w2sprobe[gpu]'")
        if on_cpu:
            raise UsageError("the cuml backend needs a CUDA device; use --device cuda")
        return _cuml_block, torch.device(name)
    return torch_block, torch.device(name)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def torch_block(
    q: torch.Tensor, x: torch.Tensor, k: int, width: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest rows of ``x`` per row of ``q``: squared distances, ties by smaller index.

    A short block is padded to ``width`` rows: BLAS rounds a product differently for different
    matrix shapes, and only one shape for all blocks gives duplicated rows equal distances.
    """
    import torch

    n = x.shape[0]
    if width > n:
        x = torch.cat([x, x.new_zeros(width - n, x.shape[1])])
    # |x|^2 - 2 q.x ranks each row like the distance; |q|^2 (and the clamp) wait for the winners.
    d = torch.addmm((x * x).sum(1), q, x.T, alpha=-2)[:, :n]
    q_norms = (q * q).sum(1, keepdim=True)
    spare = min(k + 1, d.shape[1])
    values, local = d.topk(spare, dim=1, largest=False, sorted=True)
    values = (values + q_norms).clamp_(min=0)  # rounding can dip below 0 for identical rows
    if spare > k:
        # topk picks freely among values tied with the k-th: redo those rows in index order.
        crowded = (values[:, k - 1] == values[:, k]).nonzero().squeeze(1)
        if crowded.numel():
            full = (d[crowded] + q_norms[crowded]).clamp_(min=0)
            order = full.argsort(dim=1, stable=True)[:, :spare]
            local[crowded], values[crowded] = order, full.gather(1, order)
    return values[:, :k], local[:, :k]


def _faiss_block(q: np.ndarray, x: np.ndarray, k: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's brute-force L2 search; it scans rows in order and keeps the earlier of equal
    distances, which is the smaller-index rule (its products are the same whatever the block
    size, so no padding to ``width``)."""
    import faiss

    return faiss.knn(q, x, k, metric=faiss.METRIC_L2)


def _cuml_block(
    q: torch.Tensor, x: torch.Tensor, k: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """cuML's brute-force search; it orders equal distances freely, so rows where the k-th
    distance is tied with the next one are redone by :func:`torch_block` on the same GPU."""
    import torch
    from cuml.neighbors import NearestNeighbors

    spare = min(k + 1, x.shape[0])
    model = NearestNeighbors(
        n_neighbors=spare, algorithm="brute", metric="sqeuclidean", output_type="cupy"
    )
    d, local = model.fit(x).kneighbors(q)
    d = torch.as_tensor(d, device=q.device).clamp_(min=0)  # keys need d >= 0
    keys = pack_keys(d, torch.as_tensor(local, device=q.device).long())
    d, local = unpack_keys(keys.sort(dim=1).values)  # cuML's order of equal distances is its own
    if spare == k:
        return d, local
    tied = d[:, k - 1] == d[:, k]
    if tied.any():
        rows = tied.nonzero().squeeze(1)
        d[rows, :k], local[rows, :k] = torch_block(q[rows], x, k, width)
    return d[:, :k], local[:, :k]
