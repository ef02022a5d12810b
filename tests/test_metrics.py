"""Metrics: tie-aware ROC AUC against scikit-learn and by hand; accuracy; PGR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from w2sprobe.errors import UsageError
from w2sprobe.metrics import accuracy, average_ranks, pgr, roc_auc


def test_auc_by_hand():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # all tied: chance
    # one positive/negative pair tied (1/2), three ordered right: (3 + 0.5) / 4
    assert roc_auc([0, 0, 1, 1], [0.2, 0.6, 0.6, 0.9]) == 0.875


@pytest.mark.parametrize("seed", range(3))
def test_auc_matches_sklearn_on_heavily_tied_scores(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(500) < 0.4
    scores = np.round(rng.random(500) * 0.5 + labels * 0.3, 1)  # kNN-like: few distinct values
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_average_ranks_equal_scipys_rankdata(seed):
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=300), 1)  # many ties, runs of every length
    np.testing.assert_array_equal(average_ranks(values), rankdata(values))
    np.testing.assert_array_equal(average_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1, 3.5, 2])
    np.testing.assert_array_equal(average_ranks(np.array([5.0])), [1.0])


def test_auc_thresholds_soft_labels_at_one_half():
    rng = np.random.default_rng(3)
    soft = rng.random(200)
    scores = np.round(soft + rng.normal(0, 0.3, 200), 1)
    assert roc_auc(soft, scores) == pytest.approx(roc_auc_score(soft > 0.5, scores), abs=1e-12)


def test_auc_needs_both_classes_and_clean_input():
    with pytest.raises(UsageError, match="both classes"):
        roc_auc([1, 1, 0.9], [0.1, 0.2, 0.3])
    with pytest.raises(UsageError, match="equal length"):
        roc_auc([0, 1], [0.3])
    with pytest.raises(UsageError, match="finite"):
        roc_auc([0, 1], [0.3, np.nan])


def test_accuracy():
    assert accuracy([0, 1, 1, 0.2], [0.4, 0.6, 0.5, 0.9]) == 0.5  # 0.5 is not above the threshold
    assert accuracy([0, 1], [0.2, 0.3], threshold=0.25) == 1.0


def test_pgr():
    assert pgr(0.8, 0.6, 1.0) == pytest.approx(0.5)
    assert pgr(0.5, 0.6, 1.0) == pytest.approx(-0.25)  # worse than weak: negative
    assert math.isnan(pgr(0.7, 0.6, 0.6))  # no gap to recover
