"""The study's stages as heads on cached activations: weak, ceiling and student head runs.

A head run is a run like a LoRA one (:mod:`w2sprobe.runs`: manifest first, predictions, then
metrics last) and plays the same part: a ``weak`` head's predictions become the weak label
set, a ``ceiling`` head is the ceiling of head students, and a ``student`` head's PGR is
measured against the weak run behind its labels and a ceiling *of its own kind*.  Its key
hashes the stage, the activation file it read (its manifest without the layer list: model
weights, dataset fingerprint, split sizes, pooling, max length, dtype), the layer, the head's
recipe and shape (:class:`~.head.HeadConfig`, loss included) and the label set's key; every run
records ``student_kind: head``.
"""

from __future__ import annotations

import time

import numpy as np

from ..runs import (
    RunRecord,
    SplitPredictions,
    write_manifest,
    write_metrics,
    write_predictions,
)
from .head import HeadFit, as_float32, fit_head, predict_head
from .plans import PREDICT_SPLITS, TRAIN_SPLIT, HeadPlan, HeadRequest
from .run_metrics import stage_metrics
from .stages import ProgressFn


def run_head(plan: HeadPlan, store, progress: ProgressFn | None = None) -> RunRecord:
    """Train the head on ``store`` (an :class:`~w2sprobe.cache.ActivationStore` holding the
    layer), predict, and write the run; returns the finished run."""
    request, started = plan.request, time.perf_counter()
    write_manifest(plan.folder, plan.manifest)
    (train_x, train_y, train_n), (val_x, val_y) = _training_data(request, store)
    fit = fit_head(train_x, train_y, val_x, val_y, request.config, progress, request.device)
    predictions = {
        split: SplitPredictions(
            store.ids(split),
            predict_head(fit.model, store.get(split, request.layer)),
            store.labels(split),
        )
        for split in PREDICT_SPLITS[request.stage]
    }
    write_predictions(plan.folder, predictions)
    return write_metrics(plan.folder, _metrics(plan, fit, predictions, train_n, started))


def _training_data(request: HeadRequest, store):
    """((train features, soft labels, rows), (val features, soft labels)): ground truth for
    weak and ceiling, the label set's labels (only the ids it keeps) for students."""
    layer = request.layer

    def split_data(split: str):
        if request.stage != "student":
            return as_float32(store.get(split, layer)), np.asarray(store.labels(split))
        if split not in request.labels.ids:
            return as_float32(store.get(split, layer), np.array([], dtype=np.int64)), np.array([])
        mask, soft = request.labels.align(split, store.ids(split))
        rows = np.flatnonzero(mask)
        return as_float32(store.get(split, layer), rows), soft[rows]

    train_x, train_y = split_data(TRAIN_SPLIT[request.stage])
    val_x, val_y = split_data("val")
    return (train_x, train_y, len(train_y)), (val_x, val_y)


def _metrics(
    plan: HeadPlan, fit: HeadFit, predictions: dict[str, SplitPredictions], n: int, started: float
) -> dict:
    return stage_metrics(plan.manifest, plan.request, fit, predictions, n, started)
