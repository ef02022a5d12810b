"""Difference-of-means ("mass-mean") probe: the direction between the two class means.

Marks & Tegmark ("The Geometry of Truth", 2023) probe a concept along ``theta = mu+ - mu-``,
the difference between the mean activations of the true and the false statements, and show it
often generalises better than a logistic direction.  With soft labels the class means are
weighted: ``mu+ = sum_i y_i x_i / sum_i y_i`` and ``mu- = sum_i (1 - y_i) x_i / sum_i (1 -
y_i)``.  A row's soft label is ``sigmoid((x - m) . theta)`` with ``m = (mu+ + mu-) / 2``: the
paper's ``sigmoid(theta . x)`` on activations centred at the midpoint of the means, so a row
halfway between them scores 1/2.  Nothing is fitted iteratively: the probe is its two means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UsageError
from .base import (
    DEFAULT_MEMORY_BUDGET,
    Acts,
    FilterResult,
    check_acts,
    check_contamination,
    check_labels,
    device_name_of,
    filter_by_score,
    host_rows,
    rows_per_block,
)

if TYPE_CHECKING:
    import torch


class MassMeanProbe:
    """The difference-of-means probe (module doc).  After ``fit``: ``direction_`` (D,) =
    mu+ - mu-, ``midpoint_`` (D,), ``bias_`` = -midpoint . direction."""

    name = "massmean"

    def __init__(
        self,
        device: str | torch.device = "cpu",
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    ):
        # The sums run in float64 numpy whatever the device (two means: no GPU work worth the
        # copy), so a probe command with this probe never imports torch.
        self.device = device_name_of(device)
        self.memory_budget_bytes = memory_budget_bytes
        self.direction_: np.ndarray | None = None
        self.midpoint_: np.ndarray | None = None
        self.bias_ = 0.0
        self._labels: np.ndarray | None = None
        self._fit_predictions: np.ndarray | None = None

    def fit(self, acts: Acts, labels: Any) -> MassMeanProbe:
        """The label-weighted means of both classes, read in bounded row blocks (float64 sums)."""
        acts = check_acts(acts, memory_budget_bytes=self.memory_budget_bytes)
        y = check_labels(labels, acts.shape[0]).astype(np.float64)
        if y.sum() <= 0 or (1 - y).sum() <= 0:
            raise UsageError("the mass-mean probe needs labels of both classes (all are 0 or 1)")
        pos = np.zeros(acts.shape[1])
        neg = np.zeros(acts.shape[1])
        step = rows_per_block(acts.shape[1], self.memory_budget_bytes)
        for start in range(0, acts.shape[0], step):
            x = host_rows(acts, slice(start, start + step)).astype(np.float64)
            w = y[start : start + x.shape[0]]
            pos += w @ x
            neg += (1 - w) @ x
        mu_pos, mu_neg = pos / y.sum(), neg / (1 - y).sum()
        self.direction_ = mu_pos - mu_neg
        self.midpoint_ = (mu_pos + mu_neg) / 2
        self.bias_ = float(-self.midpoint_ @ self.direction_)
        self._labels = y.astype(np.float32)
        self._fit_predictions = self.predict(acts)
        return self

    def predict(self, acts: Acts) -> np.ndarray:
        """sigmoid((x - midpoint) . direction) per row."""
        if self.direction_ is None:
            raise UsageError("the mass-mean probe is not fitted yet: call fit(acts, labels) first")
        acts = check_acts(acts, memory_budget_bytes=self.memory_budget_bytes)
        width = self.direction_.size
        if acts.shape[1] != width:
            raise UsageError(f"acts have {acts.shape[1]} features; the probe was fitted on {width}")
        step = rows_per_block(acts.shape[1], self.memory_budget_bytes)
        out = np.empty(acts.shape[0], dtype=np.float32)
        for start in range(0, acts.shape[0], step):
            x = host_rows(acts, slice(start, start + step)).astype(np.float64)
            z = x @ self.direction_ + self.bias_
            out[start : start + len(x)] = 1 / (1 + np.exp(-np.clip(z, -500, 500)))
        return out

    def predict_fit_set(self) -> np.ndarray:
        """Predictions on the training rows (in sample: each row is in its class's mean)."""
        if self._fit_predictions is None:
            raise UsageError("the mass-mean probe is not fitted yet: call fit(acts, labels) first")
        return self._fit_predictions

    def filter(self, acts: Acts, labels: Any, contamination: float) -> FilterResult:
        """Fit, then drop the ``round(N * contamination)`` rows the fit disagrees with most."""
        check_contamination(contamination)
        self.fit(acts, labels)
        return filter_by_score(np.abs(self._labels - self._fit_predictions), contamination)
