"""Synthetic result files for report tests, written exactly as the result-file contract says.

``write_run`` writes manifest.json, predictions.csv and (last) metrics.json for one run under
``<cache>/runs/<dataset>/<key>/``; ``make_study`` builds several datasets x seeds x experiments
with seeded random predictions whose AUCs the test can recompute independently.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from w2sprobe.metrics import accuracy, roc_auc


def noisy_scores(labels: np.ndarray, signal: float, rng: np.random.Generator) -> np.ndarray:
    """Scores in [0, 1] that separate the classes by ``signal`` (0: chance, large: near-perfect)."""
    raw = labels * signal + rng.normal(size=labels.size)
    return 1 / (1 + np.exp(-raw))


def write_run(
    root: Path,
    dataset: str,
    key: str,
    stage: str,
    experiment: str,
    seed: int,
    ids,
    labels,
    preds,
    weak: dict | None = None,
    ceiling: dict | None = None,
    pgr: float | None = None,
    finished: bool = True,
    predictions: bool = True,
    model: str = "m",
    extra: dict | None = None,
    manifest_extra: dict | None = None,
) -> dict:
    """One run folder; returns the metrics written (or the manifest when ``finished`` is False).

    ``extra`` adds fields to metrics.json, ``manifest_extra`` to manifest.json (``command``,
    ``split_sizes``: what the writers record).
    """
    folder = Path(root) / "runs" / dataset / key
    folder.mkdir(parents=True, exist_ok=True)
    config = {"experiment": experiment, "seed": seed, "lr": 1e-4}
    manifest = {
        "key": key,
        "stage": stage,
        "experiment": experiment,
        "dataset": dataset,
        "seed": seed,
        "model": model,
        "config": config,
        "labels": None,
        "weak_run": weak["key"] if weak else None,
        "ceiling_run": ceiling["key"] if ceiling else None,
        **(manifest_extra or {}),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if predictions:
        lines = ["split,id,soft_pred,label"]
        lines += [f"test,{i},{float(p)!r},{float(y)!r}" for i, p, y in zip(ids, preds, labels)]
        lines += [f"val,v{i},0.5,1.0" for i in range(3)]  # other splits must be ignored
        (folder / "predictions.csv").write_text("\n".join(lines) + "\n")
    if not finished:
        return manifest
    metrics = {
        "key": key,
        "stage": stage,
        "experiment": experiment,
        "dataset": dataset,
        "seed": seed,
        "model": model,
        "auc": roc_auc(labels, preds),
        "accuracy": accuracy(labels, preds),
        "n": len(ids),
        "labels": None if stage in ("weak", "ceiling") else "weak",
        "labels_key": None,
        "config": config,
        "elapsed_s": 1.0,
        **(extra or {}),
    }
    if stage in ("student", "probe"):
        metrics.update(
            {
                "pgr": pgr,
                "weak": {"key": weak["key"], "auc": weak["auc"]} if weak else None,
                "ceiling": {"key": ceiling["key"], "auc": ceiling["auc"]} if ceiling else None,
            }
        )
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def make_study(
    root: Path,
    datasets=("alpha", "beta", "gamma"),
    experiments=None,
    seeds=(0,),
    n: int = 200,
    base_seed: int = 0,
    manifest_extra: dict | None = None,
) -> dict:
    """Weak, ceiling and one student per experiment for each dataset and seed.

    ``experiments`` maps name -> signal of its student's scores (stage "probe" if the name ends
    with -probe); ``manifest_extra`` goes into every manifest.  Returns
    {(dataset, experiment, seed): metrics} for every run written.
    """
    experiments = experiments or {"xent": 1.5, "logconf": 1.8, "knn-filter": 1.2}
    written = {}
    for d_index, dataset in enumerate(datasets):
        for seed in seeds:
            rng = np.random.default_rng([base_seed, d_index, seed])
            ids = [f"{dataset}-{i:04d}" for i in range(n)]
            labels = (np.arange(n) % 2).astype(float)
            weak = write_run(
                root,
                dataset,
                f"weak{d_index}s{seed}",
                "weak",
                "weak",
                seed,
                ids,
                labels,
                noisy_scores(labels, 0.8 + 0.2 * d_index, rng),
                manifest_extra=manifest_extra,
            )
            ceiling = write_run(
                root,
                dataset,
                f"ceil{d_index}s{seed}",
                "ceiling",
                "ceiling",
                seed,
                ids,
                labels,
                noisy_scores(labels, 3.0, rng),
                manifest_extra=manifest_extra,
            )
            written[dataset, "weak", seed], written[dataset, "ceiling", seed] = weak, ceiling
            for e_index, (name, signal) in enumerate(experiments.items()):
                preds = noisy_scores(labels, signal, rng)
                auc = roc_auc(labels, preds)
                value = (auc - weak["auc"]) / (ceiling["auc"] - weak["auc"])
                stage = "probe" if name.endswith("-probe") else "student"
                written[dataset, name, seed] = write_run(
                    root,
                    dataset,
                    f"{name}{d_index}s{seed}",
                    stage,
                    name,
                    seed,
                    ids,
                    labels,
                    preds,
                    weak=weak,
                    ceiling=ceiling,
                    pgr=value,
                    manifest_extra=manifest_extra,
                )
    return written
