"""``--k auto`` (leave-one-out) and ``--l2 auto`` (k-fold CV) against brute-force references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import test_probe_cli
from conftest import run_cli
from sklearn.linear_model import LogisticRegression

from w2sprobe.probes.auto import FOLDS, L2_CANDIDATES, choose_k, choose_l2, folds, k_candidates
from w2sprobe.probes.config import probe_config

#: The probe commands' workspace: tiny BERT layers, weak labels with 30% flips.
cached = test_probe_cli.cached


def _toy(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = 1 / (1 + np.exp(-3 * x[:, 0] + rng.normal(size=n)))
    return x, y.astype(np.float32)


def test_k_by_leave_one_out_equals_brute_force():
    x, y = _toy()
    chosen = choose_k(x, y)
    distance = ((x[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    scores = {}
    for k in k_candidates(len(y)):
        loo = []
        for i in range(len(y)):
            others = [j for j in np.lexsort((np.arange(len(y)), distance[i])) if j != i]
            loo.append(y[others[:k]].mean())
        scores[k] = np.mean((np.array(loo) - y) ** 2)
    best = min(scores, key=lambda k: (scores[k], -k))
    assert chosen["value"] == best and chosen["param"] == "k"
    for k, score in scores.items():
        assert chosen["scores"][str(k)] == pytest.approx(score, rel=1e-5)


def sklearn_cv_cross_entropy(x, y, l2) -> float:
    """The 5-fold CV cross-entropy of the logistic probe's objective, fit by sklearn
    (logistic.py's doc: duplicated rows weighted by the soft labels)."""
    fold, losses = folds(len(y)), []
    for f in range(FOLDS):
        tr, te = fold != f, fold == f
        n = tr.sum()
        model = LogisticRegression(C=1 / (2 * l2 * n), tol=1e-10, max_iter=10_000)
        model.fit(
            np.r_[x[tr], x[tr]],
            np.r_[np.ones(n), np.zeros(n)],
            sample_weight=np.r_[y[tr], 1 - y[tr]],
        )
        p = model.predict_proba(x[te])[:, 1]
        losses.append(-(y[te] * np.log(p) + (1 - y[te]) * np.log(1 - p)))
    return float(np.mean(np.concatenate(losses)))


def test_l2_by_cross_validation_equals_sklearn_brute_force():
    x, y = _toy(n=100, d=3, seed=1)
    chosen = choose_l2(x, y, lambda l2: probe_config("logreg", l2=l2).build())
    scores = {l2: sklearn_cv_cross_entropy(x, y, l2) for l2 in L2_CANDIDATES}
    assert chosen["value"] == min(scores, key=lambda v: (scores[v], -v))
    for l2, score in scores.items():
        assert chosen["scores"][str(l2)] == pytest.approx(score, rel=1e-3)


def test_auto_values_through_the_commands_are_recorded(capsys, cached):
    code, out, err = run_cli(capsys, "probe", "--k", "auto", "--layer", "2", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["k"] == "auto" and summary["chosen"]["param"] == "k"
    assert summary["chosen"]["value"] in k_candidates(150)
    assert "leave-one-out" in summary["chosen"]["criterion"]
    metrics = json.loads((Path(summary["path"]) / "metrics.json").read_text())
    assert metrics["chosen"] == summary["chosen"]
    # the kNN probe with the chosen k gives the same test AUC
    code, out, err = run_cli(
        capsys, "probe", "--k", str(summary["chosen"]["value"]), "--layer", "2", "--json"
    )
    assert code == 0 and json.loads(out)["auc"] == pytest.approx(summary["auc"]), err
    code, out, err = run_cli(
        capsys, "relabel", "--probe", "logreg", "--l2", "auto", "--layer", "2", "--json"
    )
    assert code == 0, err
    relabeled = json.loads(out)
    assert relabeled["chosen"]["param"] == "l2" and relabeled["chosen"]["value"] in L2_CANDIDATES
    code, out, err = run_cli(capsys, "probe", "--k", "auto", "--layer", "2")
    assert code == 0 and "chosen: k=" in out, err
    code, _, err = run_cli(capsys, "probe", "--k", "often")
    assert code == 2 and "--k" in err
