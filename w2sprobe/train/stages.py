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

import numpy as np
from filelock import FileLock

from ..data import SplitSet
from ..distributed import DistEnv, barrier, current
from ..errors import UsageError
from ..labels import LabelSet, save_label_set
from ..models import (
    load_tokenizer,
    release_freed_memory,
    resolve_device,
    resolve_dtype,
)
from ..runs import (
    RunRecord,
    SplitPredictions,
    load_run,
    write_manifest,
    write_metrics,
    write_predictions,
)
from .classifier import build_classifier
from .distributed import from_rank0, main_rank_lock
from .plans import PREDICT_SPLITS, TRAIN_SPLIT, StagePlan, StageRequest
from .run_labels import weak_label_set
from .run_metrics import stage_metrics
from .trainer import Examples, FitResult, Trainer

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
    """What every trained run records (:mod:`.run_metrics`), and a LoRA fit's tokens."""
    metrics = stage_metrics(plan.manifest, plan.request, fit, predictions, train_n, started)
    return metrics | {
        "resumed_from": fit.resumed_from,
        "train_tokens": fit.tokens,
        "tokens_per_second": fit.tokens_per_second,
    }
