"""TopoFilter (Wu et al.), as the reference weak-to-strong study runs it, on a sparse kNN graph.

1. Component step: build the directed kNN graph (``k_cc`` neighbours per point, self
   excluded; every other point when there are fewer). Per class (soft label > 0.5 or not),
   keep the largest strongly connected component of the class's induced subgraph. The kept
   set C is the union of both classes' components.
2. Zeta step (``filter``): score each point of C by ``|label - mean label of its k_zeta
   nearest points of C|`` (self excluded) and remove the highest scores until
   ``round(N * contamination)`` points are gone in all. If the component step alone removed
   more, the result says so (``removed_by_components`` and ``overshoot``) and ``filter``
   raises a :class:`TopoFilterWarning`; nothing is hidden.

Predictions (what relabeling uses, as the study's ``topo_relabel``) are the mean label of the
``k_zeta`` nearest points of C; for training points the point itself is excluded.

Where the reference is ambiguous this implementation is deterministic: among equally large
components the one holding the smallest point index wins; a class with no points contributes
nothing. Every point has a kept neighbour: |C| >= 2, since two non-empty classes give a
component each, and one class of N >= 2 points has a cycle (nearest-neighbour pointers close one).
The graph is never dense: one self-kNN search (``k_cc + k_zeta`` wide) yields both the graph
and, for most points, their nearest kept neighbours; the rest get a search restricted to C.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.sparse.csgraph import connected_components

from ..errors import UsageError
from .base import (
    DEFAULT_MEMORY_BUDGET,
    Acts,
    FilterResult,
    check_acts,
    check_choice,
    check_contamination,
    check_k,
    check_labels,
    device_name_of,
    filter_by_score,
    host_rows,
    rows_per_block,
)
from .knn import neighbour_mean
from .search import BACKENDS, METRICS, knn_search, neighbour_graph

if TYPE_CHECKING:
    import torch


class TopoFilterWarning(UserWarning):
    """TopoFilter's component step alone removed more points than the contamination asked for."""


def overshoot_message(result: FilterResult) -> str:
    return (
        f"TopoFilter's component step alone removed {result.removed_by_components} "
        f"of {result.keep.size} "
        f"points, more than the {result.requested} asked for (overshoot {result.overshoot}); "
        "a larger k_cc keeps more points in the largest components"
    )


class TopoFilterProbe:
    """TopoFilter with ``k_cc`` graph neighbours and ``k_zeta`` label neighbours (module doc).

    ``fit`` keeps a reference to the activations (no copy). After ``fit``, ``kept_`` (bool,
    N) marks the component-kept set C. Constant labels are fine: one class, one component.
    """

    name = "topo"
    #: Filters every split on its own (the reference runs TopoFilter on val alone, too).
    filters_each_split = True

    def __init__(
        self,
        k_cc: int = 50,
        k_zeta: int = 50,
        metric: str = "euclidean",
        backend: str = "auto",
        device: str | torch.device = "cpu",
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    ):
        self.k_cc = check_k(k_cc, "k_cc")
        self.k_zeta = check_k(k_zeta, "k_zeta")
        self.metric = check_choice(metric, "metric", METRICS)
        self.backend = check_choice(backend, "backend", BACKENDS)
        self.device = device_name_of(device)  # a name: a faiss search never imports torch
        self.memory_budget_bytes = memory_budget_bytes
        self.kept_: np.ndarray | None = None
        self._acts: Acts | None = None
        self._labels: np.ndarray | None = None
        self._fit_predictions: np.ndarray | None = None

    def fit(self, acts: Acts, labels: Any) -> "TopoFilterProbe":
        """Run the component step and predict every training point from its kept neighbours."""
        self._acts = check_acts(acts, min_rows=2, memory_budget_bytes=self.memory_budget_bytes)
        self._labels = check_labels(labels, self._acts.shape[0])
        _, neighbours = self._search(self._acts, self.k_cc + self.k_zeta, exclude_self=True)
        self.kept_ = largest_class_components(neighbours[:, : self.k_cc], self._labels)
        self._fit_predictions = neighbour_mean(self._labels, self._nearest_kept(neighbours))
        return self

    def predict(self, acts: Acts) -> np.ndarray:
        """Mean label of each new point's ``k_zeta`` nearest kept training points.

        Given the very array ``fit`` was given, this is :meth:`predict_fit_set` (self excluded).
        """
        if acts is self._acts:
            return self.predict_fit_set()
        _, neighbours = self._search(
            acts, self.k_zeta, index_rows=np.flatnonzero(self._fitted_kept())
        )
        return neighbour_mean(self._labels, neighbours)

    def predict_fit_set(self) -> np.ndarray:
        """Per training point, the mean label of its ``k_zeta`` nearest kept points.

        The point itself is excluded.
        """
        self._fitted_kept()
        return self._fit_predictions

    def filter(self, acts: Acts, labels: Any, contamination: float) -> FilterResult:
        """The full TopoFilter.

        The component step, then the zeta step up to ``round(N * contamination)``.
        """
        check_contamination(contamination)  # before the expensive fit
        self.fit(acts, labels)
        scores = np.abs(self._labels - self._fit_predictions)
        result = filter_by_score(scores, contamination, candidates=self.kept_)
        if result.overshoot:
            warnings.warn(overshoot_message(result), TopoFilterWarning, stacklevel=2)
        return result

    # -- internals -----------------------------------------------------------------------
    def _search(self, queries: Acts, k: int, **options) -> tuple[np.ndarray, np.ndarray]:
        return knn_search(
            self._acts,
            queries,
            k,
            metric=self.metric,
            backend=self.backend,
            device=self.device,
            memory_budget_bytes=self.memory_budget_bytes,
            check_index=False,
            **options,
        )

    def _nearest_kept(self, neighbours: np.ndarray) -> np.ndarray:
        """(N, k) nearest kept points per point, self excluded, padded with -1.

        Read off the self-kNN list where it holds enough kept points; searched again,
        restricted to the kept set, for the points whose list runs short.
        """
        kept, n = self.kept_, neighbours.shape[0]
        available = int(kept.sum()) - kept.astype(int)  # kept points other than oneself
        wanted = np.minimum(self.k_zeta, available)
        out = np.full((n, min(self.k_zeta, int(kept.sum()))), -1, dtype=np.int64)
        is_kept = (neighbours >= 0) & kept[np.maximum(neighbours, 0)]
        rank = np.cumsum(is_kept, axis=1)
        take = is_kept & (rank <= wanted[:, None])
        complete = rank[:, -1] >= wanted
        rows, cols = np.nonzero(take & complete[:, None])
        out[rows, rank[rows, cols] - 1] = neighbours[rows, cols]
        self._search_kept(np.flatnonzero(~complete), out)
        return out

    def _search_kept(self, points: np.ndarray, out: np.ndarray) -> None:
        """Fill ``out[points]`` with a kNN search over the kept set, in bounded query blocks."""
        kept_rows = np.flatnonzero(self.kept_)
        step = rows_per_block(self._acts.shape[1], self.memory_budget_bytes)
        for start in range(0, points.size, step):
            chunk = points[start : start + step]
            queries = host_rows(self._acts, chunk)
            _, found = self._search(queries, self.k_zeta, index_rows=kept_rows, exclude_self=chunk)
            out[chunk, : found.shape[1]] = found

    def _fitted_kept(self) -> np.ndarray:
        if self.kept_ is None:
            raise UsageError("the TopoFilter probe is not fitted yet: call fit(acts, labels) first")
        return self.kept_


def largest_class_components(neighbours: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Union over both classes of the largest strongly connected component of the kNN graph
    restricted to the class (bool mask). Ties go to the component holding the smallest index."""
    graph = neighbour_graph(neighbours, labels.size)
    keep = np.zeros(labels.size, dtype=bool)
    positive = labels > 0.5
    for members in (np.flatnonzero(positive), np.flatnonzero(~positive)):
        if members.size == 0:
            continue
        _, component = connected_components(
            graph[members][:, members], directed=True, connection="strong"
        )
        sizes = np.bincount(component)
        winner = component[
            np.argmax(sizes[component] == sizes.max())
        ]  # first member in index order
        keep[members[component == winner]] = True
    return keep
