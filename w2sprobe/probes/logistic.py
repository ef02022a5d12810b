"""Logistic-regression probe trained on soft labels, full-batch L-BFGS (scipy's L-BFGS-B).

Objective (the convention of EleutherAI elk's ``Classifier``, which the reference study used)::

    f(w, b) = mean_i BCE(sigmoid(x_i . w + b), y_i) + l2 * ||w||^2        (bias unpenalised)

with BCE against the weak *soft* label y_i in [0, 1].

Equivalences, worked out so other solvers can be checked against (or stand in for) ours:

* scikit-learn: ``LogisticRegression(C=1 / (2 * l2 * N), solver="lbfgs")`` fitted on the rows
  duplicated as (x_i, 1) with sample weight y_i and (x_i, 0) with weight 1 - y_i minimises
  ``(1 / sum(weights)) * sum_j s_j * logloss_j + ||w||^2 / (2 * C * sum(weights))``; the
  weights sum to N and the weighted log-losses of a duplicated pair add up to BCE_i, so this
  is exactly f. The coefficients agree (tests/test_probes_logistic.py checks it).
* cuML (``cuml.linear_model.LogisticRegression``, QN solver): its loss is the sample-weighted
  mean ``sum_j s_j * l_j / sum(s)``, its penalty ``0.5 * (1 / C) / rows * ||w||^2`` (the
  strength is divided by the number of *rows*), and its gradient divides by the rows too, so
  loss and gradient only agree when the weights sum to the row count. Its logistic loss is
  ``log(1 + exp(-(2y - 1) z))``, which is BCE only for hard 0/1 targets. Hence: 2N duplicated
  rows with hard targets 1 and 0 and weights ``2 * y_i`` and ``2 * (1 - y_i)`` (summing to
  2N), which makes its loss ``(1 / N) * sum_i BCE_i``; and ``C = 1 / (4 * N * l2)``, which
  makes its penalty ``0.5 * 4 * N * l2 / (2N) * ||w||^2 = l2 * ||w||^2``. Not testable
  without a GPU; the mapping lives in :func:`cuml_fit`.

Math runs in float32 whatever the cache dtype (``dtype="float64"`` for tight comparisons): in
numpy on the CPU (a probe command on cached activations then never imports torch, 1-2 s of its
start), in torch on a CUDA device; the objective and its gradient are written once for both
(:func:`objective_and_gradient`, checked against torch's autograd in the tests).
With ``standardize=True`` each feature is centred and scaled by its training mean and
standard deviation (constant features by 1), and the penalty applies in that space.
"""

from __future__ import annotations

import math
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
    check_number,
    device_name_of,
    filter_by_score,
    host_rows,
    is_tensor,
    loaded_torch,
    rows_per_block,
    take_rows,
)

if TYPE_CHECKING:
    import torch

#: Compute dtypes by name (numpy's and torch's share them).
DTYPES = ("float32", "float64")
#: A numpy array on the CPU, a torch tensor on a CUDA device.
Array = Any


class LogisticProbe:
    """Soft-label logistic regression with an L2 penalty (module doc for the exact objective).

    ``tol`` bounds the largest gradient entry at convergence; ``max_iter`` the L-BFGS
    iterations. After ``fit``: ``coef_`` (D,), ``intercept_``, ``loss_`` (final objective),
    ``n_iter_``. Constant labels are fine: hard 0s or 1s drive the bias towards -inf/+inf, and
    the probe predicts the constant up to ``tol``.
    """

    name = "logreg"

    def __init__(
        self,
        l2: float = 1e-2,
        standardize: bool = False,
        max_iter: int = 500,
        tol: float = 1e-6,
        backend: str = "torch",
        device: str | torch.device = "cpu",
        dtype: str = "float32",
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    ):
        self.l2 = check_number(l2, "l2")
        self.standardize = bool(standardize)
        self.max_iter = check_k(max_iter, "max_iter")
        self.tol = check_number(tol, "tol")
        # "torch": our objective under scipy's L-BFGS-B (numpy on the CPU, torch on a GPU);
        # the name predates the numpy path and stays: it is part of every logistic probe's key
        self.backend = check_choice(backend, "backend", ("torch", "cuml"))
        self.device = device_name_of(device)
        self.dtype = check_choice(dtype, "dtype", DTYPES)
        self.memory_budget_bytes = memory_budget_bytes
        self.coef_: np.ndarray | None = None
        self.intercept_ = 0.0
        self.loss_ = math.nan
        self.n_iter_ = 0
        self._w: Array | None = None
        self._b: Array | None = None
        self._shift: Array | None = None
        self._scale: Array | None = None
        self._labels: np.ndarray | None = None
        self._fit_predictions: np.ndarray | None = None

    @property
    def on_host(self) -> bool:
        """Whether the math runs in numpy (the CPU) rather than torch (a CUDA device)."""
        return self.device == "cpu" and self.backend != "cuml"

    def fit(self, acts: Acts, labels: Any) -> LogisticProbe:
        """Minimise the objective on ``acts`` (N, D) and soft ``labels`` (N,)."""
        acts = check_acts(acts, min_rows=2, memory_budget_bytes=self.memory_budget_bytes)
        self._labels = check_labels(labels, acts.shape[0])
        x = self._load(acts)
        y = self._array(self._labels)
        self._shift, self._scale = standardisation(x) if self.standardize else (None, None)
        if self.standardize:
            x -= self._shift
            x /= self._scale
        fit = cuml_fit if self.backend == "cuml" else lbfgs_fit
        w, b, self.n_iter_ = fit(x, y, self.l2, max_iter=self.max_iter, tol=self.tol)
        z = x @ w + b
        self.loss_ = float(logistic_objective(x, y, w, b, self.l2))
        self._fit_predictions = _float32(_sigmoid(z))
        self._w, self._b = w, b
        self.coef_, self.intercept_ = _numpy(w), float(b)
        return self

    def predict(self, acts: Acts) -> np.ndarray:
        """sigmoid(x . w + b) for each row, read in bounded blocks."""
        if self.coef_ is None:
            raise UsageError("the logistic probe is not fitted yet: call fit(acts, labels) first")
        acts = check_acts(acts, memory_budget_bytes=self.memory_budget_bytes)
        if acts.shape[1] != self.coef_.size:
            raise UsageError(
                f"acts have {acts.shape[1]} features; the probe was fitted on {self.coef_.size}"
            )
        step = rows_per_block(acts.shape[1], self.memory_budget_bytes)
        out = np.empty(acts.shape[0], dtype=np.float32)
        for start in range(0, acts.shape[0], step):
            x = self._rows(acts, slice(start, start + step))
            if self.standardize:
                x = (x - self._shift) / self._scale
            out[start : start + x.shape[0]] = _float32(_sigmoid(x @ self._w + self._b))
        return out

    def predict_fit_set(self) -> np.ndarray:
        """The fitted model's predictions on its own training rows (in sample)."""
        if self._fit_predictions is None:
            raise UsageError("the logistic probe is not fitted yet: call fit(acts, labels) first")
        return self._fit_predictions

    def filter(self, acts: Acts, labels: Any, contamination: float) -> FilterResult:
        """Fit, then drop the ``round(N * contamination)`` rows the fit disagrees with most."""
        check_contamination(contamination)  # before the expensive fit
        self.fit(acts, labels)
        return filter_by_score(np.abs(self._labels - self._fit_predictions), contamination)

    def _array(self, values: np.ndarray) -> Array:
        """``values`` in the probe's dtype, where its math runs."""
        values = np.asarray(values, dtype=self.dtype)
        if self.on_host:
            return values
        import torch

        return torch.from_numpy(values).to(self.device)

    def _rows(self, acts: Acts, rows: slice) -> Array:
        if self.on_host:
            return host_rows(acts, rows).astype(self.dtype, copy=False)
        import torch

        return take_rows(acts, rows, torch.device(self.device)).to(getattr(torch, self.dtype))

    def _load(self, acts: Acts) -> Array:
        """All rows as one array in the probe's dtype, filled block by block."""
        if self.on_host:
            x = np.empty(acts.shape, dtype=self.dtype)
        else:
            import torch

            x = torch.empty(tuple(acts.shape), dtype=getattr(torch, self.dtype), device=self.device)
        step = rows_per_block(acts.shape[1], self.memory_budget_bytes)
        for start in range(0, acts.shape[0], step):
            x[start : start + step] = self._rows(acts, slice(start, start + step))
        return x


# --------------------------------------------------------------------------- the math, once


def logistic_objective(x: Array, y: Array, w: Array, b: Any, l2: float) -> Any:
    """mean_i BCE(sigmoid(x_i . w + b), y_i) + l2 * ||w||^2 (numpy arrays or torch tensors)."""
    z = x @ w + b
    return (_softplus(z) - y * z).mean() + l2 * (w * w).sum()


def objective_and_gradient(x: Array, y: Array, theta: Array, l2: float) -> tuple[Any, Array]:
    """The objective at ``theta = (w, b)`` and its gradient, worked out by hand:
    d/dz BCE = sigmoid(z) - y, so grad_w = x^T (sigmoid(z) - y) / N + 2 l2 w and
    grad_b = mean(sigmoid(z) - y)."""
    d = x.shape[1]
    w, b = theta[:d], theta[d]
    z = x @ w + b
    loss = (_softplus(z) - y * z).mean() + l2 * (w * w).sum()
    residual = (_sigmoid(z) - y) / x.shape[0]
    grad = theta * 0  # zeros of theta's kind (numpy or torch), dtype and device
    grad[:d] = x.T @ residual + 2 * l2 * w
    grad[d] = residual.sum()
    return loss, grad


def standardisation(x: Array) -> tuple[Array, Array]:
    """Per-feature mean and standard deviation (1 where a feature is constant)."""
    if is_tensor(x):
        import torch

        var, mean = torch.var_mean(x, dim=0, correction=0)
        scale = var.sqrt()
        return mean, torch.where(scale > 0, scale, torch.ones_like(scale))
    mean = x.mean(0)
    scale = np.sqrt(((x - mean) ** 2).mean(0))
    return mean, np.where(scale > 0, scale, 1).astype(x.dtype)


def lbfgs_fit(
    x: Array, y: Array, l2: float, *, max_iter: int, tol: float
) -> tuple[Array, Any, int]:
    """Full-batch L-BFGS from w = 0, b = 0: scipy's L-BFGS-B (no bounds, 20 corrections), the
    objective and gradient computed where ``x`` lives (numpy, or torch on its device) in its
    dtype.

    scipy's rather than ``torch.optim.LBFGS``: constructing any ``torch.optim`` optimizer imports
    ``torch._dynamo`` (1-3 s on this project's 2 cores), which every ``probe`` command on a
    cached workspace paid; scipy's solver is the reference L-BFGS-B.
    Stops when the largest gradient entry is at most ``tol`` or the objective stops moving.
    """
    from scipy.optimize import minimize

    d = x.shape[1]
    to_x, eps = _converter(x)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = objective_and_gradient(x, y, to_x(theta), l2)
        return float(loss), _float64(grad)

    result = minimize(
        objective,
        np.zeros(d + 1),
        jac=True,
        method="L-BFGS-B",
        options={
            "maxiter": max_iter,
            "maxfun": 2 * max_iter,
            "maxcor": 20,
            "gtol": tol,
            "ftol": eps,
        },
    )
    theta = to_x(result.x)
    return theta[:d], theta[d], int(result.nit)


def cuml_fit(
    x: torch.Tensor, y: torch.Tensor, l2: float, *, max_iter: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The same objective through cuML's QN solver (mapping derived in the module doc)."""
    try:
        from cuml.linear_model import LogisticRegression
    except ImportError as exc:
        raise UsageError("cuML is not installed: pip install 'w2sprobe[gpu]'") from exc
    if not is_tensor(x) or x.device.type != "cuda":
        raise UsageError("the cuml backend needs a CUDA device; use --device cuda")
    import torch

    n = x.shape[0]
    rows = torch.cat([x, x])
    targets = torch.cat([torch.ones_like(y), torch.zeros_like(y)])
    weights = 2 * torch.cat([y, 1 - y])  # sums to the row count, as cuML's gradient assumes
    penalty = {"penalty": None} if l2 == 0 else {"penalty": "l2", "C": 1 / (4 * n * l2)}
    model = LogisticRegression(
        **penalty, tol=tol, max_iter=max_iter, fit_intercept=True, output_type="cupy"
    )
    model.fit(rows, targets, sample_weight=weights)
    w = torch.as_tensor(model.coef_, device=x.device).reshape(-1).to(x.dtype)
    b = torch.as_tensor(model.intercept_, device=x.device).reshape(()).to(x.dtype)
    return w, b, int(np.asarray(model.n_iter_).max())


# --------------------------------------------------------------------------- numpy or torch


def _softplus(z: Array) -> Array:
    """log(1 + exp(z)), without overflow."""
    if is_tensor(z):
        return loaded_torch().nn.functional.softplus(z)
    return np.logaddexp(0, z)


def _sigmoid(z: Array) -> Array:
    if is_tensor(z):
        return z.sigmoid()
    return np.exp(-np.logaddexp(0, -z))  # 1 / (1 + exp(-z)), without overflow


def _converter(x: Array):
    """A function from a float64 numpy vector to an array like ``x``; ``x``'s dtype epsilon."""
    if is_tensor(x):
        torch = loaded_torch()
        return (lambda v: torch.from_numpy(v).to(x.device, x.dtype)), torch.finfo(x.dtype).eps
    return (lambda v: v.astype(x.dtype)), float(np.finfo(x.dtype).eps)


def _float32(values: Array) -> np.ndarray:
    return _numpy(values).astype(np.float32, copy=False)


def _float64(values: Array) -> np.ndarray:
    return _numpy(values).astype(np.float64, copy=False)


def _numpy(values: Array) -> np.ndarray:
    """``values`` as a numpy array in its own dtype."""
    return values.detach().cpu().numpy() if is_tensor(values) else np.asarray(values)
