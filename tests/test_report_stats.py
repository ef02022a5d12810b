"""Report statistics against independent computations: brute-force bootstrap loops and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from w2sprobe.metrics import pgr, roc_auc
from w2sprobe.report.stats import (
    bootstrap_pgr,
    counts_from_indices,
    id_set_seed,
    is_saturated,
    mean_se,
    paired_comparison,
    percentile_ci,
    resample_counts,
    resample_indices,
    weighted_auc,
)


def _case(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.4).astype(float)
    # Rounded scores: many ties, which the tie-aware AUC must count as 1/2.
    scores = np.round(rng.random(n) + 0.4 * labels, 1)
    return labels, scores


def test_vectorised_auc_equals_a_loop_over_resamples():
    labels, scores = _case()
    idx = resample_indices(labels.size, 300, np.random.default_rng(5))
    fast = weighted_auc(labels, scores, counts_from_indices(idx, labels.size))
    loop = np.array([roc_auc(labels[i], scores[i]) for i in idx])
    assert fast.shape == (300,)
    np.testing.assert_allclose(fast, loop, rtol=0, atol=1e-12)


def test_vectorised_auc_of_the_identity_resample_is_the_auc():
    labels, scores = _case(seed=3)
    assert weighted_auc(labels, scores, np.ones((1, labels.size)))[0] == pytest.approx(
        roc_auc(labels, scores)
    )


def test_single_class_resample_is_nan():
    labels = np.array([0.0, 0.0, 1.0, 1.0])
    counts = np.array([[2, 2, 0, 0], [1, 1, 1, 1]], dtype=float)  # first resample: negatives only
    out = weighted_auc(labels, np.array([0.1, 0.2, 0.3, 0.4]), counts)
    assert math.isnan(out[0]) and out[1] == 1.0


def test_bootstrap_ci_matches_brute_force_loop():
    labels, scores = _case(n=80, seed=1)
    ids = [f"id{i:03d}" for i in range(labels.size)]
    counts = resample_counts(ids, 400, seed=7)
    # The same resamples, drawn the way a plain loop would draw them:
    idx = resample_indices(len(ids), 400, np.random.default_rng(id_set_seed(ids, 7)))
    loop = [roc_auc(labels[i], scores[i]) for i in idx]
    low, high = np.percentile(loop, [2.5, 97.5])
    assert percentile_ci(weighted_auc(labels, scores, counts)) == pytest.approx(
        [low, high], abs=1e-12
    )
    assert low < roc_auc(labels, scores) < high


def test_paired_pgr_bootstrap_matches_brute_force_loop():
    rng = np.random.default_rng(2)
    labels = (np.arange(90) % 2).astype(float)
    weak, student, ceiling = (labels * s + rng.normal(size=90) for s in (0.5, 1.0, 2.5))
    idx = resample_indices(90, 250, np.random.default_rng(11))
    counts = counts_from_indices(idx, 90)
    fast = bootstrap_pgr(*(weighted_auc(labels, p, counts) for p in (student, weak, ceiling)))
    loop = [
        pgr(
            roc_auc(labels[i], student[i]),
            roc_auc(labels[i], weak[i]),
            roc_auc(labels[i], ceiling[i]),
        )
        for i in idx
    ]
    np.testing.assert_allclose(fast, loop, atol=1e-12)
    assert percentile_ci(fast) == pytest.approx(list(np.percentile(loop, [2.5, 97.5])), abs=1e-12)


def test_resamples_depend_on_seed_and_id_set_not_on_call_order():
    ids = [f"x{i}" for i in range(30)]
    a, b = resample_counts(ids, 50, 0), resample_counts(ids, 50, 0)
    assert np.array_equal(a, b) and (a.sum(axis=1) == 30).all()
    assert not np.array_equal(a, resample_counts(ids, 50, 1))
    assert not np.array_equal(a, resample_counts(ids[:-1] + ["other"], 50, 0))


def test_pgr_without_a_gap_is_dropped_from_the_interval():
    out = bootstrap_pgr(
        np.array([0.8, 0.9, 0.7]), np.array([0.6, 0.7, 0.7]), np.array([1.0, 0.9, 0.7])
    )
    assert out[0] == pytest.approx(0.5) and out[1] == pytest.approx(1.0) and math.isnan(out[2])
    assert percentile_ci(np.array([np.nan, np.nan, 1.0])) is None  # mostly undefined: no interval


def test_paired_comparison_matches_scipy():
    rng = np.random.default_rng(4)
    base = rng.normal(0.5, 0.2, 21)
    other = base + rng.normal(0.03, 0.1, 21)
    out = paired_comparison(other, base)
    diff = other - base
    assert (
        out["n"] == 21
        and out["wins"] == int((diff > 0).sum())
        and out["losses"] == int((diff < 0).sum())
    )
    assert out["mean_diff"] == pytest.approx(diff.mean()) and out["median_diff"] == pytest.approx(
        np.median(diff)
    )
    assert out["t_test_p"] == pytest.approx(
        stats.ttest_rel(other, base, alternative="greater").pvalue
    )
    assert out["wilcoxon_p"] == pytest.approx(
        stats.wilcoxon(other, base, alternative="greater").pvalue
    )


def test_paired_comparison_on_hand_computed_inputs():
    diffs = np.array([0.1, 0.5, 0.2, 0.4, 0.9])
    out = paired_comparison(diffs, np.zeros(5))
    # Exact Wilcoxon: all 5 signed ranks positive is 1 of 2^5 equally likely sign patterns.
    assert out["wilcoxon_p"] == pytest.approx(1 / 32)
    t = diffs.mean() / (diffs.std(ddof=1) / math.sqrt(5))
    assert out["t_test_p"] == pytest.approx(stats.t.sf(t, df=4))
    assert (out["wins"], out["losses"], out["ties"]) == (5, 0, 0)
    # "Greater" is one-sided: the mirror image is not significant.
    assert paired_comparison(np.zeros(5), diffs)["t_test_p"] > 0.9


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_datasets_give_null_p_values_with_a_reason(n):
    out = paired_comparison([0.5] * n, [0.2] * n)
    assert out["t_test_p"] is None and out["wilcoxon_p"] is None
    assert "at least 2" in out["t_test_note"] and "at least 2" in out["wilcoxon_note"]
    assert out["n"] == n and out["wins"] == n


def test_all_zero_differences_give_null_p_values_with_a_reason():
    out = paired_comparison([0.3, 0.4, 0.5], [0.3, 0.4, 0.5])
    assert out["ties"] == 3 and out["t_test_p"] is None and out["wilcoxon_p"] is None
    assert "zero" in out["t_test_note"] and "zero" in out["wilcoxon_note"]


def test_mean_se_skips_missing_values():
    s = mean_se([1.0, 2.0, 3.0, None, float("nan")])
    assert (s.mean, s.n) == (2.0, 3) and s.se == pytest.approx(1 / math.sqrt(3))
    assert mean_se([0.4]).se is None and mean_se([None]).mean is None


def test_saturation_rule():
    assert is_saturated([0.9995, 0.9999, 0.99991], 0.999)
    assert not is_saturated([0.999, 0.9999, 0.9999], 0.999)  # must exceed, as "above .999"
    assert not is_saturated([0.9995, None, 0.9999], 0.999)  # unknown ceiling: not known to saturate
    assert not is_saturated([], 0.999)
    assert is_saturated([0.96, 0.97, 0.98], 0.95)
