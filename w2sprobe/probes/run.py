"""A probe's own val/test predictions as a run: the result folder the report reads.

A probe run is a result like a trained student's (:mod:`w2sprobe.runs` writes the folder:
manifest first, then predictions, metrics last), with a PGR against the weak run behind its
labels and the ceiling.  Its key hashes the probe's config and layer, the label set's key, the
activation file's manifest and the seed; the experiment name is not in it.  The fitted probe
itself is saved first, as a cache entry of its own (:mod:`.artifact`), whose key the run's
manifest and metrics name (``probe_key``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..cache import ActivationStore
from ..diagnostics import diagnostics_of
from ..hashing import short_hash
from ..labels import LabelSet
from ..metrics import accuracy, roc_auc
from ..runs import (
    RunRecord,
    SplitPredictions,
    find_runs,
    run_dir,
    write_manifest,
    write_metrics,
    write_predictions,
)
from .artifact import probe_exists, save_probe
from .experiment import ProbeSpec, evaluate_probe


def find_probe_run(
    cache_dir: Path, dataset: str, spec: ProbeSpec, labels: LabelSet, activations: dict, seed
) -> RunRecord | None:
    """A finished run of this probe on these labels, fit on a file of this extraction.  A run
    whose saved probe (``probe_key``) was removed since is fit again, which writes both; a run
    from before probes were saved (no ``probe_key``) stays a hit, as every cached run does.

    ``activations`` is the extraction's manifest without its layer list: any file of it that
    holds the layer gives the same probe, whatever other layers it stores.
    """
    for record in find_runs(
        cache_dir, dataset, stage="probe", probe=spec.describe(), labels_key=labels.key, seed=seed
    ):
        saved = record.metrics.get("probe_key")
        if _without_layers(record.metrics.get("activations", {})) == activations and (
            saved is None or probe_exists(cache_dir, dataset, saved)
        ):
            return record
    return None


def write_probe_run(
    cache_dir: Path,
    store: ActivationStore,
    labels: LabelSet,
    spec: ProbeSpec,
    *,
    experiment: str,
    model: str,
    seed,
    pgr: Callable[[float, np.ndarray], dict],
    weak: RunRecord | None = None,
    ceiling: RunRecord | None = None,
) -> RunRecord:
    """Fit the probe, predict val and test, and write the run; ``pgr(auc, test_scores)`` gives
    its PGR fields, ``weak``/``ceiling`` (the runs it is measured against) its diagnostics."""
    dataset = labels.dataset
    manifest = {
        "stage": "probe",
        "experiment": experiment,
        "dataset": dataset,
        "probe": spec.describe(),
        "labels": {"name": labels.name, "key": labels.key},
        "activations": store.manifest,
        "seed": seed,
    }
    key = short_hash({k: v for k, v in manifest.items() if k != "experiment"})
    folder = run_dir(cache_dir, dataset, key)
    outcome = evaluate_probe(store, labels, spec)
    # the fitted probe first: a run names a probe entry that exists (not part of the run's key)
    probe_key = save_probe(cache_dir, store, labels, outcome, model=model, seed=seed)
    truth = {split: store.labels(split) for split in outcome.predictions}
    write_manifest(folder, {"key": key, **manifest, "probe_key": probe_key})
    split_predictions = {
        split: SplitPredictions(outcome.ids[split], outcome.predictions[split], truth[split])
        for split in outcome.predictions
    }
    write_predictions(folder, split_predictions)
    test = outcome.predictions["test"]
    auc = roc_auc(truth["test"], test)
    metrics = {
        "key": key,
        **manifest,
        "model": model,
        "auc": auc,
        "accuracy": accuracy(truth["test"], test),
        "n": len(test),
        "labels": labels.name,
        "labels_key": labels.key,
        "config": spec.describe(),
        "probe_key": probe_key,
        **{k: outcome.metrics.get(k) for k in ("train_n", "labels_auc", "auc_minus_labels_auc")},
        **({"chosen": outcome.metrics["chosen"]} if "chosen" in outcome.metrics else {}),
        **spec.choices(),
        **pgr(auc, test),
    }
    # a probe's fit is judged on val: on strong_train a kNN probe would see each row itself
    metrics["diagnostics"] = diagnostics_of(split_predictions, "val", labels, weak, ceiling)
    return write_metrics(folder, metrics)


def _without_layers(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "layers"}
