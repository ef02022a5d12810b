"""What every trained run records in ``metrics.json``, LoRA and head runs alike.

Test AUC and accuracy; the val AUC its checkpoint was chosen on and the val AUC against ground
truth; the fit's steps, warnings (why a result may mislead: no val AUC to select on, a schedule
shorter than its warmup — recorded with the run so a report can show it later) and window
radius; a student's label set, PGR with the PGR rule's verdict and diagnostics; a weak or
ceiling run's calibration (the weak labels' calibration matters).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..diagnostics import calibration, diagnostics_of
from ..errors import UsageError
from ..metrics import accuracy, roc_auc
from ..pgr_rule import pgr_fields
from ..runs import SplitPredictions

#: How students' checkpoints are chosen (both kinds), as the study does.
VAL_SELECTION = "val AUC against the training labels (weak labels for students), as the study"


def stage_metrics(
    manifest: dict,
    request: Any,
    fit: Any,
    predictions: dict[str, SplitPredictions],
    train_n: int,
    started: float,
) -> dict:
    """The metrics of a finished run of ``request`` (a LoRA or head stage request: ``stage``,
    ``labels``, ``weak``, ``ceiling``, ``min_gap``) from its ``fit`` (``best_val_auc``,
    ``steps``, ``best_step``, ``seconds``, ``warnings``, ``radius``) and its predictions."""
    test, val = predictions["test"], predictions["val"]
    student = request.stage == "student" and request.labels is not None
    metrics = {
        **manifest,
        "auc": roc_auc(test.labels, test.soft),
        "accuracy": accuracy(test.labels, test.soft),
        "n": len(test.ids),
        "val_auc": fit.best_val_auc,
        "val_auc_vs_truth": _safe_auc(val.labels, val.soft),
        "val_selection": VAL_SELECTION,
        "train_n": train_n,
        "steps": fit.steps,
        "best_step": fit.best_step,
        "train_seconds": fit.seconds,
        "elapsed_s": time.perf_counter() - started,
        "labels": request.labels.name if student else None,
        "labels_key": request.labels.key if student else None,
        "warnings": list(fit.warnings),
    }
    if fit.radius is not None:
        metrics["radius"] = fit.radius
    if request.stage == "student":
        metrics.update(
            pgr_fields(metrics["auc"], test.soft, request.weak, request.ceiling, request.min_gap)
        )
        metrics["diagnostics"] = diagnostics_of(
            predictions, "strong_train", request.labels, request.weak, request.ceiling
        )
    else:
        metrics["diagnostics"] = {"test": calibration(test.labels, test.soft)}
    return metrics


def _safe_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    try:
        return roc_auc(labels, scores)
    except UsageError:
        return None
