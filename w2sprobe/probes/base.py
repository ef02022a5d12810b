"""The probe protocol, the result of a filter, and the input checks every probe shares.

Activations reach a probe as any 2-D array sliceable by rows: a numpy array (an
``np.memmap`` from the activation store included), an ``h5py.Dataset`` or a torch tensor,
in any float dtype. Probes never copy the whole array to float32 unless their math needs all
of it at once (logistic regression); they read it in row blocks and convert each block to
float32 (numpy on the CPU, torch where a probe's math runs in torch), so float16 storage costs
no extra memory.

This module imports no torch: a probe that computes in numpy on the CPU (kNN through faiss,
logistic regression) runs in a process that never imports it (1-2 s of a short command's
start).  A torch tensor can only reach it where torch is imported already (:func:`is_tensor`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..errors import UsageError
from ..models import device_name

if TYPE_CHECKING:
    import torch

#: A 2-D array sliceable by rows: np.ndarray / np.memmap, h5py.Dataset or torch.Tensor.
Acts = Any

#: Scratch memory one probe operation may use for its row blocks, in bytes.
DEFAULT_MEMORY_BUDGET = 256 * 2**20


@runtime_checkable
class Probe(Protocol):
    """What every probe offers: fit on labelled activations, predict, filter labels.

    Predictions are float32 soft labels in [0, 1]. ``filter`` fits the probe on
    ``(acts, labels)`` and says which training points to drop.
    """

    name: str

    def fit(self, acts: Acts, labels: Any) -> "Probe":
        """Fit on ``acts`` (N, D) and soft ``labels`` (N,) in [0, 1]; returns ``self``."""

    def predict(self, acts: Acts) -> np.ndarray:
        """Soft labels (M,) float32 in [0, 1] for new points ``acts`` (M, D)."""

    def predict_fit_set(self) -> np.ndarray:
        """Predictions (N,) for the training points, out of sample where the probe allows it."""

    def filter(self, acts: Acts, labels: Any, contamination: float) -> "FilterResult":
        """Fit, then mark the training points to drop (about ``contamination`` of them)."""


@dataclass(frozen=True)
class FilterResult:
    """Which training points a filter keeps, and why the others went.

    ``keep`` (N,) bool is True for kept points; ``scores`` (N,) float32 is each point's
    disagreement ``|label - probe prediction|``, removed highest first. ``requested`` is
    ``round(N * contamination)`` (Python's round, as in the reference study).
    ``removed_by_components`` counts the points TopoFilter's component step dropped (0 for
    the other probes); ``removed_by_score`` those dropped for their score (TopoFilter's zeta
    step). When the component step alone drops more than requested, ``overshoot`` says by
    how much: the filter never hides it.
    """

    keep: np.ndarray
    scores: np.ndarray
    requested: int
    removed_by_components: int
    removed_by_score: int

    @property
    def kept_indices(self) -> np.ndarray:
        """Indices of the kept points, ascending."""
        return np.flatnonzero(self.keep)

    @property
    def removed(self) -> int:
        return self.removed_by_components + self.removed_by_score

    @property
    def overshoot(self) -> int:
        """How many more points were removed than requested (0 when exact)."""
        return max(self.removed - self.requested, 0)

    def summary(self) -> dict[str, int]:
        """The counts, JSON-ready."""
        return {
            "n": int(self.keep.size),
            "kept": int(self.keep.sum()),
            "requested": self.requested,
            "removed": self.removed,
            "removed_by_components": self.removed_by_components,
            "removed_by_score": self.removed_by_score,
            "overshoot": self.overshoot,
        }


def filter_by_score(
    scores: np.ndarray, contamination: float, candidates: np.ndarray | None = None
) -> FilterResult:
    """Drop the highest-scoring points until ``round(N * contamination)`` are gone in all.

    ``candidates`` (bool, N) marks the points still in play; the others count as already
    removed (TopoFilter's component step). Equal scores go in index order, so the result is
    deterministic.
    """
    n = scores.size
    requested = round(n * check_contamination(contamination))
    keep = np.ones(n, dtype=bool) if candidates is None else candidates.copy()
    removed_before = n - int(keep.sum())
    count = max(requested - removed_before, 0)
    in_play = np.flatnonzero(keep)
    # Stable sort of the negated scores: highest first, ties by smaller index.
    order = np.argsort(-scores[in_play], kind="stable")
    keep[in_play[order[:count]]] = False
    return FilterResult(
        keep=keep,
        scores=scores.astype(np.float32, copy=False),
        requested=requested,
        removed_by_components=removed_before,
        removed_by_score=count,
    )


# --------------------------------------------------------------------------- checks


def check_k(k: Any, name: str = "k") -> int:
    """``k`` as an int >= 1, else a UsageError."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"{name} must be an integer >= 1, got {k!r}")
    return int(k)


def check_contamination(contamination: Any) -> float:
    """A fraction in [0, 1), else a UsageError."""
    if not _is_number(contamination) or not 0 <= contamination < 1:
        raise UsageError(f"contamination must be a fraction in [0, 1), got {contamination!r}")
    return float(contamination)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"unknown {name} {value!r}; use one of: {', '.join(choices)}")
    return value


def check_labels(labels: Any, n: int) -> np.ndarray:
    """Soft labels as float32 (n,), each finite and in [0, 1], else a UsageError."""
    if is_tensor(labels):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != n:
        raise UsageError(
            f"labels must be 1-D with one value per row of acts ({n}), got shape {array.shape}"
        )
    if array.dtype.kind not in "biuf":
        raise UsageError(f"labels must be numbers in [0, 1], got dtype {array.dtype}")
    array = array.astype(np.float32)
    bad = int(np.count_nonzero(~((array >= 0) & (array <= 1))))  # NaN fails both comparisons
    if bad:
        raise UsageError(f"labels must lie in [0, 1]; {bad} of {n} do not (NaN included)")
    return array


def check_acts(
    acts: Any,
    *,
    min_rows: int = 1,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    name: str = "acts",
) -> Acts:
    """``acts`` as a 2-D numeric array of finite values with at least ``min_rows`` rows.

    numpy arrays, memmaps, h5py datasets and torch tensors pass through unchanged (no copy);
    anything else goes through ``np.asarray``. Finiteness is checked block by block, and a
    failure names how many rows hold NaN or inf.
    """
    if not is_tensor(acts) and not (hasattr(acts, "shape") and hasattr(acts, "dtype")):
        acts = np.asarray(acts)
    if len(acts.shape) != 2:
        raise UsageError(f"{name} must be 2-D (rows, features), got shape {tuple(acts.shape)}")
    if acts.shape[0] < min_rows or acts.shape[1] < 1:
        raise UsageError(
            f"{name} needs at least {min_rows} row(s) and 1 feature, got shape {tuple(acts.shape)}"
        )
    if not _is_numeric(acts.dtype):
        raise UsageError(f"{name} must hold numbers, got dtype {acts.dtype}")
    bad = count_nonfinite_rows(acts, memory_budget_bytes)
    if bad:
        raise UsageError(
            f"{name} has {bad} of {acts.shape[0]} rows with NaN or inf values; "
            "drop or repair them first"
        )
    return acts


def count_nonfinite_rows(acts: Acts, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET) -> int:
    """How many rows of ``acts`` hold a NaN or an inf, read in bounded blocks (no float32 copy)."""
    step = rows_per_block(acts.shape[1], memory_budget_bytes)
    bad = 0
    for start in range(0, acts.shape[0], step):
        block = acts[start : start + step]
        if is_tensor(block):
            bad += int((~block.isfinite().all(1)).sum())
        else:
            bad += int((~np.isfinite(np.asarray(block)).all(1)).sum())
    return bad


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _is_numeric(dtype: Any) -> bool:
    torch = loaded_torch()
    if torch is not None and isinstance(dtype, torch.dtype):
        return dtype.is_floating_point or dtype in (
            torch.int8,
            torch.int16,
            torch.int32,
            torch.int64,
            torch.uint8,
        )
    return np.dtype(dtype).kind in "iuf"


# --------------------------------------------------------------------------- row blocks


def loaded_torch():
    """The torch module if some code has imported it, else None (and torch stays unimported):
    a tensor, a torch device or dtype can only exist once it is."""
    return sys.modules.get("torch")


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (False, without importing torch, when no code has)."""
    torch = loaded_torch()
    return torch is not None and isinstance(value, torch.Tensor)


def host_rows(acts: Acts, rows: slice | np.ndarray) -> np.ndarray:
    """Rows of ``acts`` as a float32 numpy array (a fresh copy, never a view).

    ``rows`` is a slice or an ascending index array (h5py needs ascending order).
    """
    if is_tensor(acts):
        index = rows if isinstance(rows, slice) else np.asarray(rows)
        return acts[index].detach().float().cpu().numpy().copy()
    # numpy casts float16 fast; the cast always copies, so a slice never aliases the caller's data.
    return np.asarray(acts[rows]).astype(np.float32)


def take_rows(acts: Acts, rows: slice | np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows of ``acts`` as a float32 tensor on ``device`` (a fresh copy, never a view).

    ``rows`` is a slice or an ascending index array (h5py needs ascending order).
    """
    import torch

    if isinstance(acts, torch.Tensor):
        index = rows if isinstance(rows, slice) else torch.as_tensor(rows, device=acts.device)
        return acts[index].detach().to(device=device, dtype=torch.float32, copy=True)
    return torch.from_numpy(host_rows(acts, rows)).to(device)


def rows_per_block(dim: int, memory_budget_bytes: int, bytes_per_value: int = 8) -> int:
    """Rows of width ``dim`` that fit the budget at ``bytes_per_value`` (float32 + its source)."""
    return max(1, memory_budget_bytes // (dim * bytes_per_value))


def device_of(device: str | torch.device) -> torch.device:
    """A torch device from ``auto``/``cpu``/``cuda[:i]`` (UsageError when CUDA is missing)."""
    import torch

    return device if isinstance(device, torch.device) else torch.device(device_name(str(device)))


def device_name_of(device: str | torch.device) -> str:
    """``cpu``, ``cuda`` or ``cuda:i`` for a device or its name (``auto`` resolved), no torch
    import where no CUDA GPU can be (:mod:`w2sprobe.models.devices`)."""
    torch = loaded_torch()
    if torch is not None and isinstance(device, torch.device):
        return str(device)
    return device_name(str(device))


def check_number(value: Any, name: str, *, minimum: float = 0.0) -> float:
    """A finite float >= ``minimum``, else a UsageError."""
    if not _is_number(value) or not math.isfinite(value) or value < minimum:
        raise UsageError(f"{name} must be a finite number >= {minimum}, got {value!r}")
    return float(value)
