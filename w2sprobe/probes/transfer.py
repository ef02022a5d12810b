"""A saved probe scored on another dataset's test split: a ``transfer`` run the report reads.

``w2sprobe apply KEY --dataset OTHER`` loads the fitted probe ``KEY`` (:mod:`.artifact`) and
scores OTHER's test activations of the same model and layer (made as the probe's were:
pooling, max length, dtype).  The run is written like any other (:mod:`w2sprobe.runs`:
manifest, predictions, metrics last) to ``<cache>/runs/<OTHER>/<key>/`` with stage
``transfer``; its metrics hold the test AUC against OTHER's ground truth, its bootstrap 95% CI
(the report's bootstrap, :func:`w2sprobe.report.stats.auc_ci`), the probe's key and the
dataset it was fit on.  Its key hashes the probe's key and OTHER's activation manifest, so
applying the same probe to the same activations again reads the run back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..hashing import short_hash
from ..metrics import accuracy, roc_auc
from ..report.stats import auc_ci
from ..runs import (
    RunRecord,
    SplitPredictions,
    load_run,
    run_dir,
    write_manifest,
    write_metrics,
    write_predictions,
)
from .artifact import SavedProbe

TRANSFER = "transfer"


def transfer_experiment(saved: SavedProbe) -> str:
    """The run's experiment name: ``transfer-<probe>``."""
    return f"{TRANSFER}-{saved.name}"


def transfer_run(cache_dir: Path, saved: SavedProbe, store, *, n_boot: int, seed: int) -> RunRecord:
    """Score ``saved`` on ``store``'s test split (its probe layer) and write the transfer run;
    a finished run of the same probe on the same activations is read back instead.

    The activations must hold the probe's layer at the probe's width; otherwise a UsageError
    and nothing is written.
    """
    layer = saved.layer
    if layer not in store.layers:
        raise UsageError(
            f"{Path(store.path).name} holds layers {store.layers}, not the probe's layer {layer}"
        )
    dataset = store.manifest["dataset"]
    acts = store.get("test", layer)
    if acts.shape[1] != saved.hidden_size:
        raise UsageError(
            f"layer {layer} of {dataset}'s activations is {acts.shape[1]} wide; probe "
            f"{saved.key} was fit on {saved.hidden_size}-wide ones (another model?)"
        )
    manifest = {
        "stage": TRANSFER,
        "experiment": transfer_experiment(saved),
        "dataset": dataset,
        "probe_key": saved.key,
        "fit_dataset": saved.dataset,
        "probe": saved.meta["probe"],
        "labels": saved.meta.get("labels"),
        "activations": store.manifest,
        "seed": _seed(saved),
    }
    key = short_hash({k: v for k, v in manifest.items() if k != "experiment"})
    folder = run_dir(cache_dir, dataset, key)
    done = load_run(folder)
    if done is not None and (done.metrics.get("n_boot"), done.metrics.get("boot_seed")) == (
        n_boot,
        seed,
    ):
        return done
    ids, truth = store.ids("test"), store.labels("test")
    scores = saved.predict(acts)
    auc = roc_auc(truth, scores)
    write_manifest(folder, {"key": key, **manifest})
    write_predictions(folder, {"test": SplitPredictions(ids, scores, truth)})
    return write_metrics(
        folder,
        {
            "key": key,
            **manifest,
            "model": saved.meta.get("model"),
            "layer": layer,
            "auc": auc,
            "auc_ci": auc_ci(ids, truth, scores, n_boot, seed),
            "n_boot": n_boot,
            "boot_seed": seed,
            "accuracy": accuracy(truth, scores),
            "n": int(len(truth)),
            "config": saved.meta["probe"],
        },
    )


def _seed(saved: SavedProbe) -> int:
    seed = saved.meta.get("seed")
    return int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else 0
