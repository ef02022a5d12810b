"""``--k auto`` and ``--l2 auto``: a probe's parameter chosen without ground truth.

The choice is made on strong_train against the labels the probe is fit on (the weak labels by
default) -- never against ground truth, never on val or test -- so it is a choice a user
without gold labels could make:

* kNN's ``k``: leave-one-out cross-validation, as the reference code chose it (EleutherAI/w2s,
  commit c81be50, "LOOCV for choosing k").  Each row's prediction is the mean label of its k
  nearest *other* rows; the criterion is the Brier score ``mean_i (pred_i - y_i)^2`` against
  the soft labels (finite even when a small k predicts exactly 0 or 1).  One neighbour search
  of the largest candidate serves every k.
* the logistic (and MLP) probe's ``l2``: 5-fold cross-validation, folds from a seeded
  permutation; the criterion is the mean held-out binary cross-entropy against the soft labels.

Ties go to the smoother model (the larger k, the larger l2): :mod:`.choice`'s rule, which
``sweep`` and ``--layer auto`` use too, over the same criteria (:func:`criteria`).  The chosen
value, the criterion and every candidate's score are the probe's :attr:`AutoProbe.chosen_`,
recorded in the run's metrics and the derived label set's manifest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import check_acts, check_labels
from .choice import pick

AUTO = "auto"
K_CANDIDATES = (1, 2, 5, 10, 20, 50, 100, 200)
L2_CANDIDATES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FOLDS, FOLD_SEED = 5, 0
K_CRITERION = "leave-one-out Brier score vs the fit labels on strong_train"
CV_CRITERION = f"{FOLDS}-fold cross-validated cross-entropy vs the fit labels on strong_train"
L2_CRITERION = CV_CRITERION


def k_candidates(n: int) -> list[int]:
    """The candidate ks a training set of ``n`` rows allows (a row has n - 1 others)."""
    return [k for k in K_CANDIDATES if k <= n - 1] or [max(n - 1, 1)]


def loo_brier(
    acts, labels, ks, *, metric: str = "euclidean", backend: str = "auto", device="cpu"
) -> dict[int, float]:
    """Each k's leave-one-out Brier score against ``labels`` (module doc): one neighbour
    search of the largest k serves every k."""
    from .knn import neighbour_mean
    from .search import knn_search

    acts = check_acts(acts, min_rows=2)
    y = check_labels(labels, acts.shape[0])
    _, neighbours = knn_search(
        acts, acts, max(ks), metric=metric, exclude_self=True, backend=backend, device=device
    )
    return {k: float(np.mean((neighbour_mean(y, neighbours[:, :k]) - y) ** 2)) for k in ks}


def choose_k(acts, labels, *, metric: str = "euclidean", backend: str = "auto", device="cpu"):
    """The k of least leave-one-out Brier score (module doc), with every candidate's score."""
    acts = check_acts(acts, min_rows=2)
    ks = k_candidates(acts.shape[0])
    scores = loo_brier(acts, labels, ks, metric=metric, backend=backend, device=device)
    return _chosen("k", pick(scores), K_CRITERION, scores)


def folds(n: int, count: int = FOLDS, seed: int = FOLD_SEED) -> np.ndarray:
    """Each row's fold (0..count-1): a seeded permutation dealt round-robin."""
    fold = np.empty(n, dtype=int)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % count
    return fold


def cv_cross_entropy(acts, labels, build) -> float:
    """Mean held-out binary cross-entropy against ``labels`` over :data:`FOLDS` seeded folds;
    ``build()`` makes each fold's unfitted probe."""
    acts = np.asarray(check_acts(acts, min_rows=2 * FOLDS), dtype=np.float32)
    y = check_labels(labels, acts.shape[0]).astype(np.float64)
    fold = folds(len(y))
    losses = []
    for f in range(FOLDS):
        train, held = fold != f, fold == f
        p = build().fit(acts[train], y[train]).predict(acts[held]).astype(np.float64)
        p = np.clip(p, 1e-7, 1 - 1e-7)
        losses.append(-(y[held] * np.log(p) + (1 - y[held]) * np.log(1 - p)))
    return float(np.mean(np.concatenate(losses)))


def choose_l2(acts, labels, build) -> dict:
    """The l2 of least cross-validated cross-entropy (module doc); ``build(l2)`` makes the
    unfitted probe."""
    acts = np.asarray(check_acts(acts, min_rows=2 * FOLDS), dtype=np.float32)
    scores = {l2: cv_cross_entropy(acts, labels, lambda l2=l2: build(l2)) for l2 in L2_CANDIDATES}
    return _chosen("l2", pick(scores), L2_CRITERION, scores)


def criteria(configs: list, acts, labels, device="cpu") -> list[dict]:
    """The weak-label criterion of each probe config on one layer's fit rows: what ``sweep``
    ranks by and ``--layer auto`` minimises (:mod:`.choice`).

    kNN: the leave-one-out Brier score at its k (one neighbour search of the largest k serves
    every k of the same metric); every other probe: the k-fold cross-validated cross-entropy
    of the probe as configured.  A config whose k or l2 is ``auto`` scores its chosen value's
    criterion (and says what it chose).  Each item: ``{"criterion", "criterion_name"}``, plus
    ``"chosen"`` for an ``auto`` config.
    """
    out: list[dict | None] = [None] * len(configs)
    knn: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        if config.name == "knn" and config.k != AUTO:
            knn.setdefault((config.metric, config.backend), []).append(i)
        elif AUTO in (getattr(config, "k", None), getattr(config, "l2", None)):
            chosen = config.build(device).fit(acts, labels).chosen_
            score = chosen["scores"][str(chosen["value"])]
            out[i] = {"criterion": score, "criterion_name": chosen["criterion"], "chosen": chosen}
        else:
            score = cv_cross_entropy(acts, labels, lambda config=config: config.build(device))
            out[i] = {"criterion": score, "criterion_name": CV_CRITERION}
    for (metric, backend), rows in knn.items():
        ks = sorted({configs[i].k for i in rows})
        scores = loo_brier(acts, labels, ks, metric=metric, backend=backend, device=device)
        for i in rows:
            out[i] = {"criterion": scores[configs[i].k], "criterion_name": K_CRITERION}
    return out


def _chosen(param: str, value, criterion: str, scores: dict) -> dict:
    return {
        "param": param,
        "value": value,
        "criterion": criterion,
        "scores": {str(k): v for k, v in scores.items()},
    }


class AutoProbe:
    """A built-in probe whose ``k`` or ``l2`` is ``auto``: chosen at ``fit`` (module doc), then
    the probe with the chosen value does the work."""

    def __init__(self, config, device: Any = "cpu"):
        self.config, self.device = config, device
        self.name = config.name
        self.param = "k" if getattr(config, "k", None) == AUTO else "l2"
        self.chosen_: dict | None = None
        self.probe = None

    def fit(self, acts, labels) -> AutoProbe:
        if self.param == "k":
            params = self.config.params()
            self.chosen_ = choose_k(
                acts,
                labels,
                metric=params["metric"],
                backend=params["backend"],
                device=self.device,
            )
        else:
            self.chosen_ = choose_l2(
                acts, labels, lambda l2: self.config.replace(l2=l2).build(self.device)
            )
        value = self.chosen_["value"]
        self.probe = self.config.replace(**{self.param: value}).build(self.device)
        self.probe.fit(acts, labels)
        return self

    def predict(self, acts) -> np.ndarray:
        return self.probe.predict(acts)

    def predict_fit_set(self) -> np.ndarray:
        return self.probe.predict_fit_set()

    def filter(self, acts, labels, contamination: float):
        self.fit(acts, labels)
        return self.probe.filter(acts, labels, contamination)
