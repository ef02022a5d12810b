"""Difference-of-means directions: the concept a labeling draws in activation space.

With soft labels (weak supervisors give probabilities) each row counts ``y`` toward the
positive mean and ``1 - y`` toward the negative one; with 0/1 labels this is the plain
difference of the two class means.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError


def mean_difference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """mean(x | positive) - mean(x | negative), weighted by the soft labels ``y`` in [0, 1]."""
    data = np.asarray(x, dtype=np.float64)
    weight = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    if len(weight) != len(data):
        raise UsageError(f"{len(weight)} labels for {len(data)} rows of activations")
    positive, negative = weight.sum(), (1.0 - weight).sum()
    if positive <= 0 or negative <= 0:
        raise UsageError("a difference of means needs rows of both classes")
    return weight @ data / positive - (1.0 - weight) @ data / negative


def direction_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two directions (NaN when either is the zero vector)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norms) if norms > 0 else float("nan")
