"""Evaluation metrics: tie-aware ROC AUC, accuracy, Performance Gap Recovered.

Labels may be soft: a label above 0.5 counts as the positive class (the convention the
probes use for classes too); a label of exactly 0.5 counts as negative.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import UsageError


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve, ties in ``scores`` counted as half (Mann-Whitney U).

    Equals ``sklearn.metrics.roc_auc_score(labels > 0.5, scores)``; kNN scores tie a lot, and
    average ranks handle that exactly. Needs both classes present, else a UsageError.
    """
    positive, s = _pair(labels, scores)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        which = "negative" if n_pos == 0 else "positive"
        raise UsageError(f"ROC AUC needs both classes; all {positive.size} labels are {which}")
    ranks = average_ranks(s)  # a tied pair counts 1/2
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (``scipy.stats.rankdata``'s
    default, for finite values).

    In numpy: importing ``scipy.stats`` costs every command that computes an AUC 1-2 s of
    start-up on this project's 2 cores, more than the ranking itself.
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first of each tie run
    ends = np.r_[starts[1:], values.size]
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + 1 + ends) / 2, ends - starts)  # mean of starts+1..ends
    return ranks


def accuracy(labels: Any, scores: Any, threshold: float = 0.5) -> float:
    """Fraction of rows where ``score > threshold`` matches ``label > 0.5``."""
    positive, s = _pair(labels, scores)
    return float(np.mean((s > threshold) == positive))


def pgr(student: float, weak: float, ceiling: float) -> float:
    """Performance Gap Recovered, ``(student - weak) / (ceiling - weak)``.

    ``nan`` when ``ceiling == weak``: there is no gap to recover, and any number would mislead.
    """
    gap = ceiling - weak
    return math.nan if gap == 0 else (student - weak) / gap


def _pair(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels as a positive-class mask and scores as float64, both 1-D, same non-zero length."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.size != s.size or y.size == 0:
        raise UsageError(
            f"labels and scores must be non-empty and of equal length, got {y.size} and {s.size}"
        )
    if not (np.isfinite(y).all() and np.isfinite(s).all()):
        raise UsageError("labels and scores must be finite (found NaN or inf)")
    return y > 0.5, s
