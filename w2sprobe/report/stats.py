"""Statistics for reports: paired bootstrap CIs, paired tests across datasets, seeds, saturation.

The bootstrap works on *multiplicity counts*: resample ``b`` is the vector of how often each
test row was drawn.  One counts matrix serves every run scored on the same test ids, which is
what makes a PGR interval paired (weak, ceiling and student see the same resample) and what
lets a rank-based AUC be computed for all resamples at once with numpy.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

#: Confidence level of every interval in a report.
CI_LEVEL = 0.95


def id_set_seed(ids: Sequence[str], seed: int) -> list[int]:
    """A seed for ``np.random.default_rng`` from the report seed and the (sorted) id set.

    Seeding by the id set rather than by run order makes an interval independent of which other
    runs or datasets are in the report, and gives every run on the same ids the same resamples.
    """
    digest = hashlib.sha256("\n".join(ids).encode()).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]


def resample_indices(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n)`` row indices drawn with replacement.

    These are what a plain bootstrap loop would use.
    """
    return rng.integers(0, n, size=(n_boot, n))


def counts_from_indices(indices: np.ndarray, n: int) -> np.ndarray:
    """``(n_boot, n)`` multiplicities.

    ``counts[b, i]`` = how often row ``i`` is in resample ``b``.
    """
    n_boot = indices.shape[0]
    offsets = (np.arange(n_boot, dtype=np.int64) * n)[:, None]
    flat = np.bincount((indices + offsets).ravel(), minlength=n_boot * n)
    return flat.reshape(n_boot, n).astype(np.float64)


def resample_counts(ids: Sequence[str], n_boot: int, seed: int) -> np.ndarray:
    """The bootstrap counts matrix for a sorted id set (deterministic in ``ids`` and ``seed``)."""
    rng = np.random.default_rng(id_set_seed(ids, seed))
    return counts_from_indices(resample_indices(len(ids), n_boot, rng), len(ids))


def weighted_auc(labels: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Tie-aware ROC AUC of every resample: one value per row of ``counts``.

    In each resample a positive scores 1 for every negative with a lower score and 1/2 for
    every tied one (Mann-Whitney U with multiplicities), so the result equals
    :func:`w2sprobe.metrics.roc_auc` on the resampled rows exactly. Which negatives lie below
    or tie with a positive does not depend on the resample, so it is found once (searchsorted
    on the sorted negatives); per resample only a cumulative count of negatives is needed.
    A resample holding only one class gets ``nan``.
    """
    positive = np.asarray(labels, dtype=np.float64) > 0.5
    scores = np.asarray(scores, dtype=np.float64)
    pos_rows, neg_rows = np.flatnonzero(positive), np.flatnonzero(~positive)
    neg_rows = neg_rows[np.argsort(scores[neg_rows], kind="stable")]
    below = np.searchsorted(scores[neg_rows], scores[pos_rows], side="left")
    up_to = np.searchsorted(scores[neg_rows], scores[pos_rows], side="right")
    # cum[:, j] = how many of the j lowest-scoring negatives each resample holds.
    cum = np.zeros((counts.shape[0], neg_rows.size + 1))
    np.cumsum(counts[:, neg_rows], axis=1, out=cum[:, 1:])
    pos_weight = counts[:, pos_rows]
    # negatives strictly below + half the tied ones = (cum[below] + cum[up_to]) / 2
    wins = 0.5 * np.einsum("bi,bi->b", pos_weight, cum[:, below] + cum[:, up_to])
    pairs = pos_weight.sum(axis=1) * cum[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def bootstrap_pgr(student: np.ndarray, weak: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """PGR of each resample from paired bootstrap AUCs (``nan`` where a resample has no gap)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = ceiling - weak
        return np.where(gap != 0, (student - weak) / np.where(gap != 0, gap, 1.0), np.nan)


def percentile_ci(values: np.ndarray, level: float = CI_LEVEL) -> list[float] | None:
    """Percentile interval of the finite bootstrap values; None when fewer than half are finite."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.size < values.size / 2:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return [float(low), float(high)]


def auc_ci(ids, labels, scores, n_boot: int = 1000, seed: int = 0) -> list[float] | None:
    """The bootstrap 95 % percentile CI of one predictor's test AUC, as the report computes
    every run's: the id set's resamples (:func:`resample_counts`, rows sorted by id; the
    report's defaults, 1000 resamples, seed 0).  ``None`` for ``n_boot <= 0``."""
    if n_boot <= 0:
        return None
    ids = np.asarray(ids).astype(str)
    order = np.argsort(ids, kind="stable")
    counts = resample_counts(ids[order].tolist(), n_boot, seed)
    labels = np.asarray(labels, dtype=np.float64)[order]
    return percentile_ci(weighted_auc(labels, np.asarray(scores, dtype=np.float64)[order], counts))


# --------------------------------------------------------------------------- seeds, saturation


@dataclass(frozen=True)
class SeedSummary:
    """Mean and standard error over seeds (``se`` is None for a single seed)."""

    mean: float | None
    se: float | None
    n: int


def mean_se(values: Iterable[float | None]) -> SeedSummary:
    """Mean ± standard error of the finite values (None/nan skipped: a missing PGR is not 0)."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return SeedSummary(None, None, 0)
    se = float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size > 1 else None
    return SeedSummary(float(finite.mean()), se, int(finite.size))


def is_saturated(aucs: Iterable[float | None], threshold: float) -> bool:
    """The study's rule: a dataset saturates when every given model's AUC exceeds ``threshold``.

    Callers pass the weak, ceiling and student AUCs; a missing one means "not known to
    saturate", so the dataset stays in the summary.
    """
    values = list(aucs)
    return bool(values) and all(
        v is not None and math.isfinite(v) and v > threshold for v in values
    )


# --------------------------------------------------------------------------- paired tests


def paired_comparison(intervention: Sequence[float], baseline: Sequence[float]) -> dict:
    """Does ``intervention`` beat ``baseline`` across datasets? (one value per dataset, paired)

    Wins/losses/ties of the differences, their mean and median, and one-sided p-values for
    "intervention > baseline": paired t-test (mean effect) and Wilcoxon signed-rank (median
    effect), as the blog reports them. A p-value that cannot be computed is None, with the
    reason in ``t_test_note`` / ``wilcoxon_note``.
    """
    from scipy import stats

    x = np.asarray(intervention, dtype=np.float64)
    y = np.asarray(baseline, dtype=np.float64)
    diff = x - y
    n = int(diff.size)
    out = {
        "n": n,
        "wins": int((diff > 0).sum()),
        "losses": int((diff < 0).sum()),
        "ties": int((diff == 0).sum()),
        "mean_diff": float(diff.mean()) if n else None,
        "median_diff": float(np.median(diff)) if n else None,
        "t_test_p": None,
        "t_test_note": None,
        "wilcoxon_p": None,
        "wilcoxon_note": None,
    }
    if n < 2:
        note = f"needs at least 2 datasets, have {n}"
        return {**out, "t_test_note": note, "wilcoxon_note": note}
    out["t_test_p"], out["t_test_note"] = _p_value(
        lambda: stats.ttest_rel(x, y, alternative="greater"),
        "every difference is zero (no variance)",
    )
    if not diff.any():
        out["wilcoxon_note"] = "every difference is zero"
    else:
        out["wilcoxon_p"], out["wilcoxon_note"] = _p_value(
            lambda: stats.wilcoxon(x, y, alternative="greater"), "scipy could not compute it"
        )
    return out


def _p_value(test, why_nan: str) -> tuple[float | None, str | None]:
    """Run a scipy test quietly; a nan or refused p-value becomes (None, reason)."""
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # scipy warns on degenerate input; we report a reason instead
        try:
            p = float(test().pvalue)
        except ValueError as exc:
            return None, str(exc)
    return (p, None) if math.isfinite(p) else (None, why_nan)
