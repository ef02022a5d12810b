"""Probe experiments on cached activations: predict, filter and relabel a label set.

A probe is fit on ``strong_train`` activations of one layer against a label set's soft labels
(the weak labels by default) and then:

* :func:`evaluate_probe` predicts val/test and scores test ROC AUC against ground truth, next
  to the AUC of the label set's own test labels (the blog's "probe AUC minus weak AUC");
* :func:`filter_label_set` drops the highest-disagreement fraction of train and val and says
  how many dropped labels were actually wrong (the filter's precision); val is scored by the
  probe fit on strong_train (TopoFilter: its own filter on val alone), as the reference does;
* :func:`relabel_label_set` replaces train and val labels by the probe's soft predictions
  (out-of-sample on train: a point never votes for itself).

Both take a ``save`` callback (:func:`~.artifact.save_probe` bound to a cache): the probe they
fit on strong_train is saved as a cache entry and the set's manifest names it (``probe_key``),
so ``load_probe(key).predict`` gives the scores the filter judged val by, or the relabeled val
labels.  A filter that runs on each split alone (TopoFilter, the random/oracle baselines) used
no probe's predictions: it saves none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cache import ActivationStore
from ..errors import UsageError
from ..labels import LabelSet, lineage
from ..metrics import accuracy, roc_auc
from .base import filter_by_score
from .config import ProbeConfig

TRAIN, EVAL_SPLITS = "strong_train", ("val", "test")
#: How a filter that runs on val alone is named in its report's ``scored_by``.
_PROBE_TITLES = {"topo": "TopoFilter", "oracle": "oracle (uses ground truth)"}


@dataclass
class ProbeSpec:
    """Which probe (its typed config), on which layer."""

    config: ProbeConfig
    layer: int
    device: str = "cpu"  # where the math runs; not part of what the result means
    #: ``--layer auto``: how ``layer`` was chosen (the layers, their criterion, the rule's
    #: pick), recorded in the run's metrics and the derived set's manifest as ``layer_choice``.
    layer_choice: dict | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def describe(self) -> dict:
        """What a probe run's key and a derived set's manifest record about the probe (a layer
        chosen by ``--layer auto`` says so: another key than the same layer asked by number)."""
        chosen = {"layer_from": "auto"} if self.layer_choice else {}
        return {"probe": self.config.name, "layer": self.layer, **chosen, **self.config.params()}

    def choices(self) -> dict:
        """``layer_choice`` for a record, when the layer was chosen."""
        return {"layer_choice": self.layer_choice} if self.layer_choice else {}

    def build(self):
        return self.config.build(self.device)


@dataclass
class ProbeOutcome:
    """Predictions (per split, aligned with the store's ids) and metrics of one probe run, and
    the fitted probe with the strong_train rows and labels it was fit on (what
    :func:`~.artifact.save_probe` stores)."""

    spec: ProbeSpec
    predictions: dict[str, np.ndarray]
    ids: dict[str, np.ndarray]
    metrics: dict = field(default_factory=dict)
    probe: Any = None
    train_rows: np.ndarray | None = None
    train_labels: np.ndarray | None = None


#: Saves a fitted probe as a cache entry and returns its key (:func:`~.artifact.save_probe`
#: bound to a cache, model and seed).
SaveProbe = Callable[[ProbeOutcome], str]


def _saved_probe(
    save: SaveProbe | None, store: ActivationStore, spec: ProbeSpec, probe, rows, soft
) -> dict:
    """``{"probe_key": key}`` of ``probe`` (fit on strong_train ``rows`` against ``soft``),
    saved by ``save`` with the scores it gives the first test rows (what a refit is checked
    against); empty without ``save``."""
    if save is None:
        return {}
    from .artifact import CHECK_ROWS

    test = np.asarray(store.get("test", spec.layer, rows=slice(0, CHECK_ROWS)))
    outcome = ProbeOutcome(
        spec, {"test": probe.predict(test)}, {}, probe=probe, train_rows=rows, train_labels=soft
    )
    return {"probe_key": save(outcome)}


def ground_truth_labels(store: ActivationStore, dataset: str) -> LabelSet:
    """The activation file's ground truth as a label set (name ``gt``): probing the task itself."""
    splits = [s for s in store.splits]
    return LabelSet(
        "gt",
        dataset,
        {s: store.ids(s) for s in splits},
        {s: store.labels(s) for s in splits},
        {"source": "ground truth", "activations": store.manifest},
    )


def training_data(store: ActivationStore, labels: LabelSet, layer: int, split: str = TRAIN):
    """(acts, soft labels, row mask) of ``split`` rows that ``labels`` covers."""
    mask, soft = labels.align(split, store.ids(split))
    if not mask.any():
        raise UsageError(f"label set {labels.name} labels none of the {split} rows")
    acts = store.get(split, layer)
    rows = np.flatnonzero(mask)
    return np.asarray(acts[rows] if len(rows) < len(mask) else acts), soft[rows], rows


def evaluate_probe(store: ActivationStore, labels: LabelSet, spec: ProbeSpec) -> ProbeOutcome:
    """Fit on strong_train against ``labels``; predict val and test; score test vs ground truth."""
    acts, soft, rows = training_data(store, labels, spec.layer)
    probe = spec.build().fit(acts, soft)
    outcome = ProbeOutcome(spec, {}, {}, probe=probe, train_rows=rows, train_labels=soft)
    for split in EVAL_SPLITS:
        outcome.ids[split] = store.ids(split)
        outcome.predictions[split] = probe.predict(np.asarray(store.get(split, spec.layer)))
    truth = store.labels("test")
    auc = roc_auc(truth, outcome.predictions["test"])
    outcome.metrics = {
        "auc": auc,
        "accuracy": accuracy(truth, outcome.predictions["test"]),
        "n": int(len(truth)),
        "train_n": int(len(soft)),
        **_label_set_auc(store, labels, auc),
        **_chosen(probe),
    }
    return outcome


def _chosen(probe) -> dict:
    """``--k auto`` / ``--l2 auto``: the value chosen, by which criterion (w2sprobe.probes.auto)."""
    chosen = getattr(probe, "chosen_", None)
    return {"chosen": chosen} if chosen else {}


def _label_set_auc(store: ActivationStore, labels: LabelSet, probe_auc: float) -> dict:
    """AUC of the label set's own test labels, and the probe's gain over it (when it has test)."""
    if "test" not in labels.ids:
        return {}
    mask, soft = labels.align("test", store.ids("test"))
    if not mask.all():
        return {}
    label_auc = roc_auc(store.labels("test"), soft)
    return {"labels_auc": label_auc, "auc_minus_labels_auc": probe_auc - label_auc}


@dataclass
class FilterOutcome:
    """The filtered label set plus what the filter removed, per split."""

    labels: LabelSet
    report: dict


def filter_label_set(
    store: ActivationStore,
    labels: LabelSet,
    spec: ProbeSpec,
    contamination: float,
    name: str,
    save: SaveProbe | None = None,
) -> FilterOutcome:
    """Drop the ``contamination`` fraction of train and val rows the probe disagrees with most.

    strong_train: the probe's own filter (fit on strong_train, each row scored out of sample
    where the probe allows: a kNN point never votes for itself).  val: each row is scored by
    ``|label - prediction|`` of that same strong_train-fit probe, as the reference code does;
    refitting on val would judge val labels by val labels alone (with ``n_val <= k + 1`` a kNN
    refit just drops the most extreme labels, whatever the activations say).  TopoFilter is the
    exception, again as the reference: its component step is defined on the graph of the points
    it filters, so it runs its whole filter on val alone.  Each split's report says which
    (``scored_by``) and lists ``warnings`` (e.g. TopoFilter's component step removing more than
    asked).  ``save``: the strong_train-fit probe is saved and named (``probe_key``), unless the
    filter runs on each split alone (it judged val by no probe's predictions).
    """
    acts, soft, rows = training_data(store, labels, spec.layer)
    probe = spec.build()
    # A ground-truth baseline (the oracle) is handed the truth of the rows it filters.
    truth = getattr(probe, "uses_ground_truth", False)
    given = {"truth": store.labels(TRAIN)[rows]} if truth else {}
    train_result = probe.filter(acts, soft, contamination, **given)
    val_acts, val_soft, val_rows = training_data(store, labels, spec.layer, "val")
    saved: dict = {}
    if getattr(probe, "filters_each_split", False):
        given = {"truth": store.labels("val")[val_rows]} if truth else {}
        val_result, val_scorer = (
            probe.filter(val_acts, val_soft, contamination, **given),
            f"{_PROBE_TITLES.get(spec.name, spec.name)} on val alone",
        )
    else:
        saved = _saved_probe(save, store, spec, probe, rows, soft)
        disagreement = np.abs(val_soft - probe.predict(val_acts))
        val_result, val_scorer = (
            filter_by_score(disagreement, contamination),
            "probe fit on strong_train",
        )
    results = {
        TRAIN: (train_result, soft, rows, "probe fit on strong_train"),
        "val": (val_result, val_soft, val_rows, val_scorer),
    }
    kept: dict[str, np.ndarray] = {}
    report: dict = {}
    for split, (result, split_soft, split_rows, scorer) in results.items():
        keep = np.asarray(result.keep, dtype=bool)
        kept[split] = split_rows[keep]
        report[split] = _filter_report(result, keep, split_soft, store.labels(split)[split_rows])
        report[split]["scored_by"] = scorer
    ids = {split: store.ids(split)[kept[split]] for split in kept}
    soft_kept = {split: labels.align(split, store.ids(split))[1][kept[split]] for split in kept}
    _carry_test(labels, store, ids, soft_kept)
    manifest = {
        "kind": "filter",
        "probe": spec.describe(),
        "contamination": contamination,
        "parent": labels.key,
        "parent_name": labels.name,
        "activations": store.manifest,
        **saved,
        **_chosen(probe),
        **spec.choices(),
        "report": report,
        **lineage(labels),
    }
    return FilterOutcome(LabelSet(name, labels.dataset, ids, soft_kept, manifest), report)


def _filter_report(result, keep: np.ndarray, soft: np.ndarray, truth: np.ndarray) -> dict:
    """Sizes, and how many removed labels were wrong vs how many wrong labels there were."""
    wrong = (soft > 0.5) != (truth > 0.5)
    removed = ~keep
    report = {
        "before": int(len(keep)),
        "kept": int(keep.sum()),
        "removed": int(removed.sum()),
        "mislabeled_before": int(wrong.sum()),
        "mislabeled_removed": int((wrong & removed).sum()),
        "precision": float((wrong & removed).sum() / removed.sum())
        if removed.any()
        else float("nan"),
        "mislabel_rate_before": float(wrong.mean()),
        "mislabel_rate_after": float(wrong[keep].mean()) if keep.any() else float("nan"),
    }
    report.update({k: v for k, v in result.summary().items() if k not in report})
    report["warnings"] = []
    if result.overshoot:  # recorded with the label set; topo.py also raised a TopoFilterWarning
        from .topo import overshoot_message  # scipy's graph code: only for TopoFilter's result

        report["warnings"].append(
            {"code": "component_step_overshoot", "message": overshoot_message(result)}
        )
    return report


def relabel_label_set(
    store: ActivationStore,
    labels: LabelSet,
    spec: ProbeSpec,
    name: str,
    save: SaveProbe | None = None,
) -> LabelSet:
    """Train and val labels replaced by the probe's soft predictions (train: out-of-sample).
    ``save``: the probe is saved and named (``probe_key``): its predictions on val are the new
    val labels."""
    acts, soft, rows = training_data(store, labels, spec.layer)
    probe = spec.build().fit(acts, soft)
    ids = {TRAIN: store.ids(TRAIN)[rows], "val": store.ids("val")}
    new_soft = {
        TRAIN: probe.predict_fit_set(),
        "val": probe.predict(np.asarray(store.get("val", spec.layer))),
    }
    _carry_test(labels, store, ids, new_soft)
    manifest = {
        "kind": "relabel",
        "probe": spec.describe(),
        "parent": labels.key,
        "parent_name": labels.name,
        "activations": store.manifest,
        **_saved_probe(save, store, spec, probe, rows, soft),
        **_chosen(probe),
        **spec.choices(),
        **lineage(labels),
    }
    return LabelSet(name, labels.dataset, ids, new_soft, manifest)


def _carry_test(labels: LabelSet, store: ActivationStore, ids: dict, soft: dict) -> None:
    """Test labels pass through unchanged, so a student's weak baseline stays comparable."""
    if "test" in labels.ids:
        mask, test_soft = labels.align("test", store.ids("test"))
        ids["test"] = store.ids("test")[mask]
        soft["test"] = test_soft[mask]
