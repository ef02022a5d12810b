"""Probe experiments on a label set: how train and val are filtered (against sklearn / by hand)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsRegressor

from w2sprobe.labels import LabelSet
from w2sprobe.probes import LogisticProbe, TopoFilterProbe
from w2sprobe.probes.config import KnnConfig, LogregConfig, TopoConfig
from w2sprobe.probes.experiment import ProbeSpec, filter_label_set
from w2sprobe.probes.topo import TopoFilterWarning

LAYER = 3


@pytest.fixture
def rng():
    return np.random.default_rng(0)


class FakeStore:
    """What the experiments read from an activation store: ids, ground truth, one layer."""

    def __init__(self, splits: dict[str, tuple[np.ndarray, np.ndarray]]):
        self._splits = splits
        self.manifest = {"fake": True}

    @property
    def splits(self):
        return list(self._splits)

    def ids(self, split):
        return np.array([f"{split}-{i}" for i in range(len(self._splits[split][1]))])

    def labels(self, split):
        return self._splits[split][1].astype(np.float32)

    def get(self, split, layer):
        assert layer == LAYER
        return self._splits[split][0]


def two_clusters(rng, n_per_class: int):
    """Class 1 around +3 e_1, class 0 around -3 e_1 (4-d); returns (acts, truth)."""
    truth = np.repeat([1.0, 0.0], n_per_class)
    acts = rng.normal(size=(2 * n_per_class, 4)).astype(np.float32)
    acts[:, 0] += np.where(truth > 0.5, 3.0, -3.0)
    return acts, truth


@pytest.fixture
def study(rng):
    """Clean weak labels on strong_train; 8 val rows, two of them mislabeled (rows 2 and 6)."""
    train_acts, train_truth = two_clusters(rng, 40)
    val_acts, val_truth = two_clusters(rng, 4)
    store = FakeStore(
        {
            "strong_train": (train_acts, train_truth),
            "val": (val_acts, val_truth),
            "test": (val_acts, val_truth),
        }
    )
    train_soft = np.where(train_truth > 0.5, 0.9, 0.1).astype(np.float32)
    # Correct but confident labels at 0 and 5 (0.95, 0.05); wrong ones at 2 (0.2) and 6 (0.7).
    val_soft = np.array([0.95, 0.8, 0.2, 0.9, 0.1, 0.05, 0.7, 0.15], dtype=np.float32)
    labels = LabelSet(
        "weak",
        "toy",
        {s: store.ids(s) for s in ("strong_train", "val")},
        {"strong_train": train_soft, "val": val_soft},
        {},
    )
    return store, labels, train_acts, train_soft, val_acts, val_soft


def removed(outcome, store, split):
    kept = set(outcome.labels.ids[split].tolist())
    return [i for i, id_ in enumerate(store.ids(split).tolist()) if id_ not in kept]


def test_knn_val_is_scored_by_the_probe_fit_on_strong_train(study):
    """With n_val <= k + 1 a probe refit on val would score each row against the mean of all
    others and drop the most extreme labels (rows 0 and 5, both right); the train-fit probe
    drops the two wrong ones."""
    store, labels, train_acts, train_soft, val_acts, val_soft = study
    outcome = filter_label_set(
        store, labels, ProbeSpec(KnnConfig(k=10), LAYER), 0.25, "knn-filter"
    )
    reference = KNeighborsRegressor(n_neighbors=10).fit(train_acts, train_soft).predict(val_acts)
    scores = np.abs(val_soft - reference)
    want = sorted(np.argsort(-scores, kind="stable")[:2].tolist())
    assert want == [2, 6]
    assert removed(outcome, store, "val") == want
    report = outcome.report["val"]
    assert report["mislabeled_removed"] == 2 and report["precision"] == 1.0
    assert report["scored_by"] == "probe fit on strong_train"


def test_logreg_val_is_scored_by_the_probe_fit_on_strong_train(study):
    """A weakly penalised logistic refit on 8 val rows fits their noise (it would drop rows 2
    and 3); the train-fit one drops the wrong labels."""
    store, labels, train_acts, train_soft, val_acts, val_soft = study
    outcome = filter_label_set(
        store, labels, ProbeSpec(LogregConfig(l2=1e-3), LAYER), 0.25, "lr-filter"
    )
    fit = LogisticProbe(l2=1e-3).fit(train_acts, train_soft)
    scores = np.abs(val_soft - fit.predict(val_acts))
    assert (
        removed(outcome, store, "val")
        == sorted(np.argsort(-scores, kind="stable")[:2].tolist())
        == [2, 6]
    )


def test_topofilter_filters_val_on_its_own(study):
    """TopoFilter's component step is defined on the graph of the points it filters: the
    reference runs it on val alone, and so do we."""
    store, labels, _, _, val_acts, val_soft = study
    outcome = filter_label_set(
        store, labels, ProbeSpec(TopoConfig(k_cc=3, k_zeta=3), LAYER), 0.25, "t"
    )
    alone = TopoFilterProbe(k_cc=3, k_zeta=3).filter(val_acts, val_soft, 0.25)
    assert removed(outcome, store, "val") == np.flatnonzero(~alone.keep).tolist()
    assert outcome.report["val"]["scored_by"] == "TopoFilter on val alone"


def test_topofilter_overshoot_warns_and_is_recorded(rng):
    """Component step alone removes more than asked: a TopoFilterWarning in the Python API, and
    the count in the result and in the filter report."""
    acts, truth = two_clusters(rng, 60)
    soft = np.where(rng.random(truth.size) < 0.3, 1 - truth, truth).astype(np.float32)
    with pytest.warns(TopoFilterWarning, match="component step alone removed"):
        result = TopoFilterProbe(k_cc=2, k_zeta=5).filter(acts, soft, 0.01)
    assert result.overshoot > 0
    store = FakeStore({"strong_train": (acts, truth), "val": (acts[:40], truth[:40])})
    labels = LabelSet(
        "weak",
        "toy",
        {s: store.ids(s) for s in ("strong_train", "val")},
        {"strong_train": soft, "val": soft[:40]},
        {},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TopoFilterWarning)
        outcome = filter_label_set(
            store, labels, ProbeSpec(TopoConfig(k_cc=2, k_zeta=5), LAYER), 0.01, "t"
        )
    train = outcome.report["strong_train"]
    assert train["overshoot"] == result.overshoot
    assert [w["code"] for w in train["warnings"]] == ["component_step_overshoot"]


def test_exact_filters_have_no_warnings(study, recwarn):
    store, labels, *_ = study
    outcome = filter_label_set(
        store, labels, ProbeSpec(KnnConfig(k=10), LAYER), 0.25, "knn-filter"
    )
    assert (
        outcome.report["strong_train"]["warnings"] == [] and outcome.report["val"]["warnings"] == []
    )
