"""A small MLP probe: one hidden ReLU layer, soft-label cross-entropy, full-batch L-BFGS.

Objective (the logistic probe's, :mod:`.logistic`, with a hidden layer)::

    f(W1, b1, w2, b2) = mean_i BCE(sigmoid(w2 . relu(W1 x_i + b1) + b2), y_i)
                        + l2 * (||W1||^2 + ||w2||^2)                       (biases unpenalised)

on features standardised by their training mean and standard deviation.  scikit-learn's
``MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", solver="lbfgs", alpha=a)``
minimises the same on hard labels with ``l2 = a / (2 N)`` (its penalty is
``alpha / (2 N) * sum ||W||^2`` added to the mean log-loss); tests/test_probes_builtin.py
checks the two agree.  Weights start from a seeded Glorot-uniform draw (sklearn's scheme), so a
fit is deterministic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError
from .base import (
    Acts,
    FilterResult,
    check_acts,
    check_contamination,
    check_k,
    check_labels,
    check_number,
    device_of,
    filter_by_score,
    take_rows,
)
from .logistic import standardisation


class MlpProbe:
    """One hidden ReLU layer of ``hidden`` units (module doc for the objective).  After
    ``fit``: ``loss_`` (final objective) and ``n_iter_``."""

    name = "mlp"

    def __init__(
        self,
        hidden: int = 64,
        l2: float = 1e-2,
        max_iter: int = 500,
        tol: float = 1e-6,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        self.hidden = check_k(hidden, "hidden")
        self.l2 = check_number(l2, "l2")
        self.max_iter = check_k(max_iter, "max_iter")
        self.tol = check_number(tol, "tol")
        self.seed = int(seed)
        self.device = device_of(device)
        self.loss_ = math.nan
        self.n_iter_ = 0
        self._params: list[torch.Tensor] | None = None
        self._labels: np.ndarray | None = None
        self._fit_predictions: np.ndarray | None = None

    def fit(self, acts: Acts, labels: Any) -> MlpProbe:
        acts = check_acts(acts, min_rows=2)
        self._labels = check_labels(labels, acts.shape[0])
        x = take_rows(acts, slice(None), self.device)
        y = torch.from_numpy(self._labels).to(self.device)
        self._shift, self._scale = standardisation(x)
        x = (x - self._shift) / self._scale
        generator = torch.Generator().manual_seed(self.seed)
        params = [
            _glorot(x.shape[1], self.hidden, generator),
            _glorot(x.shape[1], self.hidden, generator, bias=True)[:, 0],
            _glorot(self.hidden, 1, generator),
            _glorot(self.hidden, 1, generator, bias=True)[:, 0],
        ]
        params = [p.to(self.device).requires_grad_(True) for p in params]
        w1, b1, w2, b2 = params
        optimizer = torch.optim.LBFGS(
            params,
            lr=1,
            max_iter=self.max_iter,
            tolerance_grad=self.tol,
            tolerance_change=1e-12,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def objective() -> torch.Tensor:
            logits = _forward(x, w1, b1, w2, b2)
            penalty = w1.square().sum() + w2.square().sum()
            return F.binary_cross_entropy_with_logits(logits, y) + self.l2 * penalty

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = objective()
            loss.backward()
            return loss

        optimizer.step(closure)
        self.n_iter_ = int(optimizer.state[optimizer._params[0]].get("n_iter", 0))
        self._params = [p.detach() for p in params]
        with torch.no_grad():
            self.loss_ = float(objective())
            self._fit_predictions = self._scores(x)
        return self

    def _scores(self, x: torch.Tensor) -> np.ndarray:
        w1, b1, w2, b2 = self._params
        with torch.no_grad():
            return torch.sigmoid(_forward(x, w1, b1, w2, b2)).float().cpu().numpy()

    def predict(self, acts: Acts) -> np.ndarray:
        if self._params is None:
            raise UsageError("the MLP probe is not fitted yet: call fit(acts, labels) first")
        acts = check_acts(acts)
        if acts.shape[1] != self._shift.numel():
            raise UsageError(
                f"acts have {acts.shape[1]} features; the probe was fitted on {self._shift.numel()}"
            )
        x = (take_rows(acts, slice(None), self.device) - self._shift) / self._scale
        return self._scores(x)

    def predict_fit_set(self) -> np.ndarray:
        """The fitted model's predictions on its own training rows (in sample)."""
        if self._fit_predictions is None:
            raise UsageError("the MLP probe is not fitted yet: call fit(acts, labels) first")
        return self._fit_predictions

    def filter(self, acts: Acts, labels: Any, contamination: float) -> FilterResult:
        """Fit, then drop the ``round(N * contamination)`` rows the fit disagrees with most."""
        check_contamination(contamination)
        self.fit(acts, labels)
        return filter_by_score(np.abs(self._labels - self._fit_predictions), contamination)


def _forward(x, w1, b1, w2, b2) -> torch.Tensor:
    return (torch.relu(x @ w1 + b1) @ w2)[:, 0] + b2


def _glorot(fan_in: int, fan_out: int, generator: torch.Generator, bias: bool = False):
    """A (fan_in, fan_out) weight -- or, with ``bias``, a (fan_out, 1) bias -- drawn uniformly
    from +-sqrt(6 / (fan_in + fan_out)), as scikit-learn's MLP initialises."""
    bound = math.sqrt(6 / (fan_in + fan_out))
    shape = (fan_out, 1) if bias else (fan_in, fan_out)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound
