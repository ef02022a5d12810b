"""The study's training stages, each a cached run keyed by everything that changes its result.

* ``weak``    — the weak model on ``weak_train`` ground truth; predicts strong_train, val and
  test, and those predictions become the ``weak`` label set;
* ``ceiling`` — the strong model on ``strong_train`` ground truth; predicts val and test;
* ``student`` — the strong model on a label set's ``strong_train`` labels (only the ids the set
  keeps: a filtered set trains on exactly those), checkpoint chosen on the set's val labels;
  predicts strong_train (so it can relabel: strong-to-strong), val and test, and reports PGR.

Under ``torchrun`` every rank runs the stage together (data-parallel, :mod:`.distributed`);
rank 0 alone takes the run folder's lock, decides whether the stage is cached, and writes the
manifest, predictions, metrics and label set; the other ranks read the finished run after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from ..data import SplitSet
from ..diagnostics import calibration, diagnostics_of
from ..distributed import DistEnv, barrier, current
from ..errors import UsageError
from ..hashing import short_hash
from ..labels import LabelSet, lineage, save_label_set
from ..metrics import accuracy, roc_auc
from ..models import (
    ModelRef,
    load_tokenizer,
    release_freed_memory,
    resolve_device,
    resolve_dtype,
    resolve_model,
)
from ..pgr_rule import DEFAULT_MIN_GAP
from ..pgr_rule import pgr_fields as rule_fields
from ..runs import (
    RunRecord,
    SplitPredictions,
    load_run,
    run_dir,
    write_manifest,
    write_metrics,
    write_predictions,
)
from ..vocabulary import WEAK, student_experiment
from .classifier import build_classifier
from .distributed import from_rank0, main_rank_lock
from .trainer import Examples, FitResult, TrainConfig, Trainer

STAGE_NAMES = ("weak", "ceiling", "student")
TRAIN_SPLIT = {"weak": "weak_train", "ceiling": "strong_train", "student": "strong_train"}
PREDICT_SPLITS = {
    "weak": ("strong_train", "val", "test"),
    "ceiling": ("val", "test"),
    "student": ("strong_train", "val", "test"),
}


@dataclass
class StageRequest:
    """One stage to run: which model learns what, with which recipe."""

    stage: str
    model: str
    splits: SplitSet
    config: TrainConfig
    labels: LabelSet | None = None  # students only
    experiment: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None  # spread one model over devices (single process); not in the key
    weak: RunRecord | None = None  # the runs PGR is computed against (students)
    ceiling: RunRecord | None = None
    min_gap: float = DEFAULT_MIN_GAP  # the PGR rule's minimum gap (recorded, not in the key)


@dataclass
class StagePlan:
    request: StageRequest
    ref: ModelRef
    key: str
    folder: Path
    manifest: dict

    @property
    def cached(self) -> RunRecord | None:
        return load_run(self.folder)


def plan_stage(request: StageRequest, cache_dir: Path) -> StagePlan:
    """Validate ``request`` and compute its key (no weights are loaded)."""
    if request.stage not in STAGE_NAMES:
        raise UsageError(f"unknown stage '{request.stage}'; use one of {', '.join(STAGE_NAMES)}")
    if request.stage == "student" and request.labels is None:
        raise UsageError("a student needs a label set")
    ref = resolve_model(request.model)
    dtype = resolve_dtype(request.dtype, resolve_device(request.device))
    splits = request.splits
    labels = request.labels if request.stage == "student" else None
    if labels is not None:
        check_labels_match(labels, splits)
    identity = {
        "stage": request.stage,
        "model_revision": ref.revision,
        "dataset": splits.dataset,
        "dataset_fingerprint": splits.fingerprint,
        "split_sizes": split_sizes(splits),
        "seed": splits.report.get("seed"),
        "config": request.config.describe(),
        "compute_dtype": str(dtype).removeprefix("torch."),
        "labels": {"name": labels.name, "key": labels.key} if labels else None,
    }
    key = short_hash(identity)
    experiment = request.experiment or default_experiment(
        request.stage, labels, request.config.loss.name
    )
    manifest = {"key": key, "experiment": experiment, "model": ref.name, **identity}
    return StagePlan(request, ref, key, run_dir(cache_dir, splits.dataset, key), manifest)


def default_experiment(stage: str, labels: LabelSet | None, loss: str) -> str:
    """``weak``/``ceiling``; a student is named by its labels and loss (the vocabulary's rule)."""
    if stage != "student":
        return stage
    return student_experiment(labels.name if labels is not None else WEAK, loss)


def split_sizes(splits: SplitSet) -> dict[str, int]:
    return {name: len(split.ids) for name, split in splits.splits.items()}


def check_labels_match(labels: LabelSet, splits: SplitSet) -> None:
    """A label set must label rows of these very splits (same dataset, same ids)."""
    if labels.dataset != splits.dataset:
        raise UsageError(
            f"label set {labels.name} ({labels.key}) was made for dataset {labels.dataset}, "
            f"not {splits.dataset}"
        )
    for split in ("strong_train", "val"):
        if split in labels.ids:
            known = set(splits.splits[split].ids)
            stray = sum(1 for id_ in labels.ids[split].tolist() if id_ not in known)
            if stray:
                raise UsageError(
                    f"label set {labels.name} ({labels.key}) does not match {splits.dataset}'s "
                    f"splits: {stray} of its {len(labels.ids[split])} {split} ids are not there "
                    "(other split sizes or seed?)"
                )
    if "strong_train" not in labels.ids or not len(labels.ids["strong_train"]):
        raise UsageError(f"label set {labels.name} has no strong_train labels to train on")


# --------------------------------------------------------------------------- running


ProgressFn = Callable[[int, int, dict], None]


def run_stage(plan: StagePlan, progress: ProgressFn | None = None) -> RunRecord:
    """Train (or resume, or find cached) the stage; write predictions, then metrics.

    In a process group every rank must call it; each gets the finished run.
    """
    env = current()
    if env.is_main:
        plan.folder.mkdir(parents=True, exist_ok=True)
    with main_rank_lock(lambda: FileLock(str(plan.folder / ".lock")), env):
        done, cached = _cached_on_rank0(plan, env)
        if not cached:
            done = _train(plan, progress, env)
            release_freed_memory()  # before the next stage loads its model
        if plan.request.stage == "weak" and env.is_main:
            save_label_set(
                weak_label_set(done, plan.request.splits.dataset), plan.folder.parents[2]
            )
    if not env.enabled:
        return done
    barrier()  # rank 0's files are complete before the other ranks read them
    return done if env.is_main else load_run(plan.folder)


def _cached_on_rank0(plan: StagePlan, env: DistEnv) -> tuple[RunRecord | None, bool]:
    """One decision for all ranks.

    Returns (the cached run on rank 0 / None elsewhere, whether rank 0 found it).
    """
    done, verdict = None, ("train", "")
    if env.is_main:
        try:
            done = plan.cached
            verdict = ("cached", "") if done is not None else ("train", "")
        except (
            UsageError
        ) as exc:  # e.g. a corrupt metrics file: every rank must fail, none may wait
            verdict = ("error", str(exc))
    verdict = from_rank0(verdict, env)
    if verdict[0] == "error":
        raise UsageError(verdict[1])
    return done, verdict[0] == "cached"


def _train(plan: StagePlan, progress: ProgressFn | None, env: DistEnv) -> RunRecord | None:
    """Train and predict on every rank; rank 0 writes the results (the others get None)."""
    request, started = plan.request, time.perf_counter()
    if env.is_main:
        write_manifest(plan.folder, plan.manifest)
    device = env.device(resolve_device(request.device))
    model = build_classifier(
        plan.ref,
        device=device,
        dtype=resolve_dtype(request.dtype, device),
        pooling=request.config.pooling,
        lora=request.config.lora,
        seed=request.config.seed,
        device_map=request.device_map,
    )
    trainer = Trainer(
        model,
        load_tokenizer(plan.ref),
        request.config,
        device,
        checkpoint=plan.folder / "checkpoint.pt",
        progress=progress if env.is_main else None,
        env=env,
    )
    train, val = training_examples(request)
    fit = trainer.fit(train, val)
    predictions = {
        split: _predict(trainer, request.splits, split) for split in PREDICT_SPLITS[request.stage]
    }
    if not env.is_main:
        return None
    write_predictions(plan.folder, predictions)
    record = write_metrics(plan.folder, _metrics(plan, fit, predictions, len(train.ids), started))
    (plan.folder / "checkpoint.pt").unlink(missing_ok=True)
    return record


def training_examples(request: StageRequest) -> tuple[Examples, Examples]:
    """(train, val) examples: ground truth for weak/ceiling, the label set's labels for students."""
    splits = request.splits.splits
    if request.stage != "student":
        train, val = splits[TRAIN_SPLIT[request.stage]], splits["val"]
        return (
            Examples(np.array(train.ids), train.texts, train.labels),
            Examples(np.array(val.ids), val.texts, val.labels),
        )
    return _labelled(request.labels, splits["strong_train"]), _labelled(
        request.labels, splits["val"]
    )


def _labelled(labels: LabelSet, split) -> Examples:
    if split.name not in labels.ids:
        return Examples(np.array([], dtype=str), [], np.array([], dtype=np.float32))
    mask, soft = labels.align(split.name, np.array(split.ids))
    rows = np.flatnonzero(mask)
    return Examples(np.array(split.ids)[rows], [split.texts[i] for i in rows], soft[rows])


def _predict(trainer: Trainer, splits: SplitSet, name: str) -> SplitPredictions:
    split = splits.splits[name]
    return SplitPredictions(
        np.array(split.ids), trainer.predict(split.texts), np.asarray(split.labels)
    )


def _metrics(
    plan: StagePlan,
    fit: FitResult,
    predictions: dict[str, SplitPredictions],
    train_n: int,
    started: float,
) -> dict:
    request, test, val = plan.request, predictions["test"], predictions["val"]
    metrics = {
        **plan.manifest,
        "auc": roc_auc(test.labels, test.soft),
        "accuracy": accuracy(test.labels, test.soft),
        "n": len(test.ids),
        "val_auc": fit.best_val_auc,
        "val_auc_vs_truth": _safe_auc(val.labels, val.soft),
        "val_selection": (
            "val AUC against the training labels (weak labels for students), as the study"
        ),
        "train_n": train_n,
        "steps": fit.steps,
        "best_step": fit.best_step,
        "resumed_from": fit.resumed_from,
        "train_tokens": fit.tokens,
        "train_seconds": fit.seconds,
        "tokens_per_second": fit.tokens_per_second,
        "elapsed_s": time.perf_counter() - started,
        "labels": request.labels.name if request.labels and request.stage == "student" else None,
        "labels_key": request.labels.key if request.labels and request.stage == "student" else None,
    }
    # Why a result may mislead (no val AUC to select on, a schedule shorter than its warmup):
    # recorded with the run, not only printed, so a report can show it later.
    metrics["warnings"] = list(fit.warnings)
    if fit.radius is not None:
        metrics["radius"] = fit.radius
    if request.stage == "student":
        metrics.update(
            pgr_fields(metrics["auc"], request.weak, request.ceiling, test.soft, request.min_gap)
        )
        metrics["diagnostics"] = diagnostics_of(
            predictions, "strong_train", request.labels, request.weak, request.ceiling
        )
    else:  # weak and ceiling: how calibrated they are (the weak labels' calibration matters)
        metrics["diagnostics"] = {"test": calibration(test.labels, test.soft)}
    return metrics


def pgr_fields(
    auc: float,
    weak: RunRecord | None,
    ceiling: RunRecord | None,
    scores: np.ndarray | None = None,
    min_gap: float = DEFAULT_MIN_GAP,
) -> dict:
    """``pgr``, the runs it was computed against and the PGR rule's verdict
    (:mod:`w2sprobe.pgr_rule`; null PGR when weak or ceiling is missing)."""
    return rule_fields(auc, [] if scores is None else scores, weak, ceiling, min_gap)


def _safe_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    try:
        return roc_auc(labels, scores)
    except UsageError:
        return None


# --------------------------------------------------------------------------- label sets from runs


def weak_label_set(run: RunRecord, dataset: str) -> LabelSet:
    """The weak model's predictions on strong_train, val and test, as the ``weak`` label set."""
    preds = run.predictions()
    manifest = {
        "kind": "weak",
        "run": run.key,
        "model": run.metrics["model"],
        "model_revision": run.metrics["model_revision"],
        "dataset_fingerprint": run.metrics["dataset_fingerprint"],
        "split_sizes": run.metrics["split_sizes"],
        "seed": run.metrics["seed"],
        "weak_run": run.key,
    }
    return LabelSet(
        "weak",
        dataset,
        {s: p.ids for s, p in preds.items()},
        {s: p.soft for s, p in preds.items()},
        manifest,
    )


def student_label_set(run: RunRecord, parent: LabelSet, name: str) -> LabelSet:
    """A student's predictions on strong_train and val as labels (strong-to-strong).

    Test stays the parent's.
    """
    preds = run.predictions()
    ids = {s: preds[s].ids for s in ("strong_train", "val")}
    soft = {s: preds[s].soft for s in ("strong_train", "val")}
    if "test" in parent.ids:
        ids["test"], soft["test"] = parent.ids["test"], parent.soft["test"]
    manifest = {
        "kind": "s2s",
        "run": run.key,
        "parent": parent.key,
        "parent_name": parent.name,
        **lineage(parent),
    }
    return LabelSet(name, parent.dataset, ids, soft, manifest)
