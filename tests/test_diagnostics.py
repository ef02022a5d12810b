"""Diagnostics (w2sprobe.diagnostics) against scikit-learn, scipy and values worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import rel_entr
from sklearn.metrics import brier_score_loss, cohen_kappa_score, log_loss

from w2sprobe.diagnostics import (
    agreement,
    brier,
    cohen_kappa,
    cross_entropy,
    ece,
    error_kappa,
    kl_distance,
    run_diagnostics,
    squared_distance,
)
from w2sprobe.runs import SplitPredictions


def test_ece_by_hand_on_a_tiny_case():
    # 6 rows, 3 equal-mass bins of 2 (sorted by score):
    # bin 1: scores .1 .2 (mean .15), labels 0 1 (mean .5)   -> |.5 - .15| = .35
    # bin 2: scores .4 .6 (mean .5),  labels 0 0 (mean 0)    -> .5
    # bin 3: scores .8 .9 (mean .85), labels 1 1 (mean 1)    -> .15
    scores = [0.9, 0.1, 0.6, 0.2, 0.8, 0.4]
    labels = [1, 0, 0, 1, 1, 0]
    assert ece(labels, scores, n_bins=3) == pytest.approx((0.35 + 0.5 + 0.15) * 2 / 6)
    # 7 rows in 3 bins: sizes 3, 2, 2 (array_split), each weighted by its size
    s7, y7 = [0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.9], [0, 0, 1, 1, 0, 1, 1]
    by_hand = (3 * abs(1 / 3 - 0.2) + 2 * abs(0.5 - 0.55) + 2 * abs(1 - 0.8)) / 7
    assert ece(y7, s7, n_bins=3) == pytest.approx(by_hand)
    assert ece([0, 1], [0.0, 1.0]) == 0.0  # perfectly calibrated and confident


@pytest.mark.parametrize("seed", range(3))
def test_brier_xent_and_kappa_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.4).astype(float)
    a = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    b = np.clip(y * 0.2 + rng.random(300) * 0.8, 0, 1)
    assert brier(y, a) == pytest.approx(brier_score_loss(y, a), abs=1e-12)
    assert cross_entropy(y, a) == pytest.approx(log_loss(y, a), abs=1e-9)
    ea, eb = (a > 0.5) != (y > 0.5), (b > 0.5) != (y > 0.5)
    assert error_kappa(y, a, b) == pytest.approx(cohen_kappa_score(ea, eb), abs=1e-12)
    assert agreement(a, b) == pytest.approx(np.mean((a > 0.5) == (b > 0.5)))


def test_kappa_and_distances_by_hand():
    # 2x2 table: both 1 on 2 rows, both 0 on 1, disagree on 1: p_o = 3/4; p_e = .75*.5+.25*.5
    assert cohen_kappa([1, 1, 0, 1], [1, 1, 0, 0]) == pytest.approx((0.75 - 0.5) / 0.5)
    assert cohen_kappa([1, 1], [1, 1]) is None  # no chance of disagreeing: kappa undefined
    assert squared_distance([0.2, 0.9], [0.0, 0.5]) == pytest.approx((0.04 + 0.16) / 2)
    p, y = np.array([0.2, 0.7, 0.99]), np.array([0.0, 0.5, 1.0])
    by_scipy = np.mean(rel_entr(y, p) + rel_entr(1 - y, 1 - p))
    assert kl_distance(p, y) == pytest.approx(by_scipy, abs=1e-12)


def _split(ids, soft, labels):
    return SplitPredictions(np.array(ids), np.array(soft, float), np.array(labels, float))


def test_run_diagnostics_pairs_rows_by_id():
    test = _split(["a", "b", "c", "d"], [0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1])
    train = _split(["t1", "t2", "t3"], [0.8, 0.3, 0.6], [1, 0, 0])
    weak = {"test": _split(["d", "c", "b", "a"], [0.6, 0.7, 0.1, 0.4], [1, 0, 0, 1])}
    ceiling = {"test": _split(["a", "b", "c", "d"], [0.8, 0.1, 0.3, 0.2], [1, 0, 0, 1])}
    # the supervisor's labels for t3, t1 (t2 filtered out), listed in another order
    supervisor = (np.array(["t3", "t1"]), np.array([0.7, 0.9]))
    d = run_diagnostics(
        {"test": test, "strong_train": train}, "strong_train", supervisor, weak, ceiling
    )
    assert d["train"]["agree_supervisor"] == 1.0 and d["train"]["n_supervised"] == 2
    assert d["misfit_squared"] == pytest.approx(((0.8 - 0.9) ** 2 + (0.6 - 0.7) ** 2) / 2)
    assert d["train"]["agree_truth"] == pytest.approx(2 / 3)
    # weak by id: a .4, b .1, c .7, d .6 -> hard 0 0 1 1 vs the run's 1 0 1 0: agree on b, c
    assert d["test"]["agree_weak"] == 0.5
    weak_by_id = np.array([0.4, 0.1, 0.7, 0.6])
    y = np.array([1, 0, 0, 1.0])
    expected = brier_score_loss(y, weak_by_id) - brier_score_loss(y, test.soft)
    assert d["gain_squared"] == pytest.approx(expected)
    # errors: weak wrong on a, c; ceiling wrong on d -> kappa of [1,0,1,0] vs [0,0,0,1]
    assert d["weak_ceiling_error_kappa"] == pytest.approx(
        cohen_kappa_score([1, 0, 1, 0], [0, 0, 0, 1])
    )
    assert d["test"]["brier"] == pytest.approx(brier_score_loss(y, test.soft))
