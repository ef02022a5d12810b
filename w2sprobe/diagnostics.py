"""Why a student generalised: cheap diagnostics from the predictions every run already stores.

Written under ``diagnostics`` in every student's and probe's ``metrics.json`` (and, for weak
and ceiling runs, their calibration), after the theory of weak-to-strong generalisation:

* **agreement** — the fraction of rows where the run's hard label (score > 0.5) equals its
  supervisor's (the soft labels it trained on, > 0.5) and ground truth's, on the training
  split and on test (openai's vision experiments report student–supervisor agreement);
* **misfit** — the run's distance to its training labels on the training split: mean squared
  ``(p − y)²`` and mean ``KL(Bern(y) ‖ Bern(p))``; set against the **gain** over the weak model
  on test against ground truth (squared error, cross-entropy and AUC).  Charikar, Pabbaraju &
  Shiragur (2024): for convex heads, gain ≥ misfit in squared distance (≈ for small misfit);
  Mulgund & Pabbaraju (2025) the same for KL;
* **calibration** on test against ground truth — ECE over 10 *equal-mass* bins (rows sorted by
  score, split into 10 groups as equal in size as possible; the row-weighted mean of
  ``|mean label − mean score|``) and the Brier score (Yao et al. 2025 bound the student's error
  through the supervisor's calibration);
* **weak–ceiling similarity** on test — Cohen's κ between the weak model's and the ceiling's
  *errors* (hard label ≠ ground truth), and Goel et al. (2025)'s CAPA κp from both models'
  probabilities (:func:`capa`); their claim: the more different the models' mistakes (lower
  κ, lower κp), the more a student can gain.

The training split is ``strong_train`` for students; a probe's is ``val`` (a kNN probe predicts
its own training rows from themselves, so its fit there says nothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Bins of the expected calibration error: equal-mass (equal row counts), not equal-width.
ECE_BINS = 10
#: Probabilities are clipped to [EPS, 1 − EPS] in KL and cross-entropy (a 0/1 score is finite).
EPS = 1e-6


def _hard(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1) > 0.5


def agreement(a: Any, b: Any) -> float:
    """Fraction of rows where ``a > 0.5`` equals ``b > 0.5``."""
    return float(np.mean(_hard(a) == _hard(b)))


def squared_distance(pred: Any, target: Any) -> float:
    """Mean ``(pred − target)²`` (the Brier score when ``target`` is 0/1)."""
    p, y = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (pred, target))
    return float(np.mean((p - y) ** 2))


def kl_distance(pred: Any, target: Any) -> float:
    """Mean ``KL(Bern(target) ‖ Bern(pred))`` in nats; ``0·log 0 = 0``."""
    p = np.clip(np.asarray(pred, dtype=np.float64).reshape(-1), EPS, 1 - EPS)
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / p), 0.0)
        neg = np.where(y < 1, (1 - y) * np.log(np.where(y < 1, 1 - y, 1) / (1 - p)), 0.0)
    return float(np.mean(pos + neg))


def cross_entropy(labels: Any, scores: Any) -> float:
    """Mean binary cross-entropy of ``scores`` against ``labels`` (nats)."""
    p = np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), EPS, 1 - EPS)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(labels: Any, scores: Any) -> float:
    """Brier score: mean ``(score − [label > 0.5])²``."""
    return squared_distance(scores, _hard(labels).astype(np.float64))


def ece(labels: Any, scores: Any, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-mass bins of the sorted scores.

    ``Σ_b (n_b / N) · |mean(label_b) − mean(score_b)|``, bins from ``np.array_split`` of the rows
    sorted by score (ties broken by row order, stably), so their sizes differ by at most one.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = _hard(labels).astype(np.float64)
    order = np.argsort(s, kind="stable")
    total = 0.0
    for rows in np.array_split(order, min(n_bins, s.size)):
        total += rows.size * abs(y[rows].mean() - s[rows].mean())
    return float(total / s.size)


def cohen_kappa(a: Any, b: Any) -> float | None:
    """Cohen's κ of two binary raters: ``(p_o − p_e) / (1 − p_e)``; None when ``p_e`` is 1."""
    x, y = (np.asarray(v, dtype=bool).reshape(-1) for v in (a, b))
    observed = float(np.mean(x == y))
    expected = float(x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean()))
    return None if expected == 1 else (observed - expected) / (1 - expected)


def capa(labels: Any, first: Any, second: Any, n_options: int = 2) -> float | None:
    """CAPA, κp: chance adjusted probabilistic agreement of two models (binary soft scores).

    Goel et al. 2025, "Great Models Think Alike and this Undermines AI Oversight"
    (arXiv:2502.04313): ``κp = (c_obs − c_exp) / (1 − c_exp)`` with

    * ``c_obs = mean_x Σ_o p1(o|x) p2(o|x)``, the probability that the two models' sampled
      answers agree (binary: ``s1 s2 + (1 − s1)(1 − s2)`` with ``s = P(class 1)``);
    * ``c_exp = p̄1 p̄2 + (1 − p̄1)(1 − p̄2) / (|O| − 1)``, where ``p̄i`` is model i's mean
      probability on the correct option: the agreement of two independent models of those
      accuracies, their wrong mass spread evenly over the |O| − 1 wrong options (binary: 1).

    The definition was checked against a public implementation of κp (observed agreement as the
    per-row sum of products, expected agreement as above with the 1 / (|O| − 1) factor).  None when
    ``c_exp`` is 1 (both models certain and right everywhere: nothing to adjust for).
    """
    truth = _hard(labels)
    s1, s2 = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (first, second))
    observed = float(np.mean(s1 * s2 + (1 - s1) * (1 - s2)))
    right1, right2 = (float(np.mean(np.where(truth, s, 1 - s))) for s in (s1, s2))
    expected = right1 * right2 + (1 - right1) * (1 - right2) / (n_options - 1)
    return None if expected >= 1 else (observed - expected) / (1 - expected)


def error_kappa(labels: Any, first: Any, second: Any) -> float | None:
    """Cohen's κ between two models' errors (hard label ≠ ground truth) on the same rows."""
    truth = _hard(labels)
    return cohen_kappa(_hard(first) != truth, _hard(second) != truth)


def calibration(labels: Any, scores: Any) -> dict:
    """ECE (equal-mass bins) and Brier score against ground truth."""
    return {"ece": ece(labels, scores), "brier": brier(labels, scores), "ece_bins": ECE_BINS}


def aligned(ids: np.ndarray, other_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``ids`` and of ``other_ids`` that hold the same ids, in one order."""
    ids, other_ids = np.asarray(ids).astype(str), np.asarray(other_ids).astype(str)
    shared, rows, other = np.intersect1d(ids, other_ids, return_indices=True)
    return rows, other


def run_diagnostics(
    predictions: dict,
    train_split: str,
    train_labels: tuple[np.ndarray, np.ndarray] | None,
    weak: dict | None,
    ceiling: dict | None,
) -> dict:
    """The ``diagnostics`` of a student or probe.

    ``predictions``: split -> ``SplitPredictions`` (ids, soft, ground-truth labels) of the run;
    ``train_labels``: ``(ids, soft)`` of the labels it trained on, on ``train_split``;
    ``weak``/``ceiling``: those runs' test predictions (``{"test": SplitPredictions}``), or None.
    Any part whose inputs are missing is left out.
    """
    out: dict[str, Any] = {"train_split": train_split}
    test = predictions["test"]
    out["test"] = {
        "agree_truth": agreement(test.soft, test.labels),
        **calibration(test.labels, test.soft),
    }
    fit = predictions.get(train_split)
    if fit is not None:
        out["train"] = {"agree_truth": agreement(fit.soft, fit.labels)}
    if fit is not None and train_labels is not None:
        rows, other = aligned(fit.ids, train_labels[0])
        if rows.size:
            p, y = fit.soft[rows], train_labels[1][other]
            out["train"]["agree_supervisor"] = agreement(p, y)
            out["misfit_squared"] = squared_distance(p, y)
            out["misfit_kl"] = kl_distance(p, y)
            out["train"]["n_supervised"] = int(rows.size)
    if weak is not None:
        w = weak["test"]
        rows, other = aligned(test.ids, w.ids)
        if rows.size:
            s, y, ws = test.soft[rows], test.labels[rows], w.soft[other]
            out["test"]["agree_weak"] = agreement(s, ws)
            out["gain_squared"] = brier(y, ws) - brier(y, s)
            out["gain_xent"] = cross_entropy(y, ws) - cross_entropy(y, s)
            if ceiling is not None:
                c = ceiling["test"]
                crow, cother = aligned(w.ids, c.ids)
                out["weak_ceiling_error_kappa"] = error_kappa(
                    w.labels[crow], w.soft[crow], c.soft[cother]
                )
                out["weak_ceiling_capa"] = capa(w.labels[crow], w.soft[crow], c.soft[cother])
    return out


def diagnostics_of(predictions: dict, train_split: str, labels, weak, ceiling) -> dict:
    """:func:`run_diagnostics` of a run about to be written: ``labels`` the
    :class:`~w2sprobe.labels.LabelSet` it trained on (None: ground truth), ``weak``/``ceiling``
    the finished runs (:class:`~w2sprobe.runs.RunRecord`) it is measured against.  A reference
    run whose predictions cannot be read is left out, never an error: diagnostics explain a
    result, they do not gate it."""
    train_labels = None
    if labels is not None and train_split in labels.ids:
        train_labels = (labels.ids[train_split], labels.soft[train_split].astype(np.float64))

    def test_of(run):
        try:
            return None if run is None else {"test": run.predictions()["test"]}
        except Exception:  # noqa: BLE001 - an unreadable reference only loses its diagnostics
            return None

    return run_diagnostics(predictions, train_split, train_labels, test_of(weak), test_of(ceiling))
