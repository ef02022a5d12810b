"""The kNN probe: a point's soft label is the mean soft label of its k nearest training points."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

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
)
from .search import BACKENDS, METRICS, knn_search

if TYPE_CHECKING:
    import torch


class KnnProbe:
    """Mean soft label of the ``k`` nearest training points (Euclidean, or ``metric="cosine"``).

    ``fit`` keeps a reference to the activations, not a copy (a float16 memmap stays on
    disk): do not change them before the probe is refit. On its own training set the probe
    predicts out of sample: a point is never its own neighbour (its duplicates are). With
    ``k`` at least the training size, every other training point is a neighbour.
    Constant labels are fine: the probe then predicts that constant.
    """

    name = "knn"

    def __init__(
        self,
        k: int = 50,
        metric: str = "euclidean",
        backend: str = "auto",
        device: str | torch.device = "cpu",
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    ):
        self.k = check_k(k)
        self.metric = check_choice(metric, "metric", METRICS)
        self.backend = check_choice(backend, "backend", BACKENDS)
        self.device = device_name_of(device)  # a name: a faiss search never imports torch
        self.memory_budget_bytes = memory_budget_bytes
        self._acts: Acts | None = None
        self._labels: np.ndarray | None = None
        self._fit_predictions: np.ndarray | None = None

    def fit(self, acts: Acts, labels: Any) -> "KnnProbe":
        """Remember the training points (N >= 2) and their soft labels."""
        self._acts = check_acts(acts, min_rows=2, memory_budget_bytes=self.memory_budget_bytes)
        self._labels = check_labels(labels, self._acts.shape[0])
        self._fit_predictions = None
        return self

    def predict(self, acts: Acts) -> np.ndarray:
        """Mean soft label of each new point's ``k`` nearest training points.

        Given the very array ``fit`` was given, this is :meth:`predict_fit_set` (self excluded).
        """
        if acts is self._acts:
            return self.predict_fit_set()
        _, neighbours = self._search(acts, exclude_self=False)
        return neighbour_mean(self._fitted_labels(), neighbours)

    def predict_fit_set(self) -> np.ndarray:
        """Leave-one-out predictions for the training points (computed once, then reused)."""
        if self._fit_predictions is None:
            _, neighbours = self._search(self._acts, exclude_self=True)
            self._fit_predictions = neighbour_mean(self._fitted_labels(), neighbours)
        return self._fit_predictions

    def filter(self, acts: Acts, labels: Any, contamination: float) -> FilterResult:
        """Drop the ``round(N * contamination)`` points that disagree most with their neighbours."""
        check_contamination(contamination)  # before the expensive fit
        self.fit(acts, labels)
        return filter_by_score(np.abs(self._labels - self.predict_fit_set()), contamination)

    def _search(self, queries: Acts, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
        self._fitted_labels()
        return knn_search(
            self._acts,
            queries,
            self.k,
            metric=self.metric,
            exclude_self=exclude_self,
            backend=self.backend,
            device=self.device,
            memory_budget_bytes=self.memory_budget_bytes,
            check_index=False,
        )

    def _fitted_labels(self) -> np.ndarray:
        if self._labels is None:
            raise UsageError("the kNN probe is not fitted yet: call fit(acts, labels) first")
        return self._labels


def neighbour_mean(labels: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Mean of ``labels`` over each row of ``neighbours``, skipping -1 padding (float32)."""
    valid = neighbours >= 0
    sums = np.where(valid, labels[np.where(valid, neighbours, 0)], 0).sum(1, dtype=np.float64)
    return (sums / np.maximum(valid.sum(1), 1)).astype(np.float32)
