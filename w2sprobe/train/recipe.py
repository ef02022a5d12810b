"""What every trainer of the study shares: the optimizer and schedule, the setup checks, and
checkpoint selection on val.

The reference study's recipe: AdamW (beta2 0.95, weight decay 0.1) on a cosine schedule with a
linear warmup, evaluation on val every ``eval_every`` steps, and the weights with the best val
AUC kept -- val AUC against the labels the run trains on (weak labels for a student), never the
ground truth.  The LoRA trainer (:mod:`.trainer`) and the head trainer (:mod:`.head`) both use
it, so a LoRA student and a head student differ only in what they train.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch

from ..errors import UsageError
from ..metrics import roc_auc
from .checkpoint import TrainingState


class TrainingWarning(UserWarning):
    """Training ran, but something about it needs the researcher's attention.

    It is also recorded in metrics.json.
    """


class Schedule(Protocol):
    """The recipe fields the optimizer and schedule read."""

    lr: float
    beta2: float
    weight_decay: float
    warmup_steps: int


def optimizer_and_schedule(params: list[torch.nn.Parameter], recipe: Schedule, total_steps: int):
    """AdamW and a cosine schedule with ``warmup_steps`` of linear warmup (cut to the run)."""
    optimizer = torch.optim.AdamW(
        params, lr=recipe.lr, betas=(0.9, recipe.beta2), weight_decay=recipe.weight_decay
    )
    factor = warmup_cosine(min(recipe.warmup_steps, total_steps), total_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The learning-rate factor after ``step`` optimizer steps: a linear rise over the warmup,
    then half a cosine down to 0 at ``total_steps`` -- transformers'
    ``get_cosine_schedule_with_warmup``, written here because importing transformers'
    optimisation module costs seconds (it loads peft), which a head that trains in one second
    would pay on every run (equal to transformers' at every step: tests/test_train_head.py)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return factor


def setup_notes(total_steps: int, warmup_steps: int, val_targets: np.ndarray) -> list[dict]:
    """``{"code", "message"}`` for what would otherwise fail silently: a warmup longer than the
    run, no val labels, or val labels all on one side of 1/2 (no checkpoint can be selected)."""
    notes = []
    if total_steps < warmup_steps:
        notes.append(
            {
                "code": "warmup_longer_than_run",
                "message": (
                    f"the schedule has {total_steps} optimizer steps but {warmup_steps} warmup "
                    f"steps: the warmup is cut to {total_steps}, so the learning rate only rises "
                    "and never decays (more data, more epochs or fewer --warmup-steps)"
                ),
            }
        )
    hardened = np.asarray(val_targets) > 0.5
    if hardened.size == 0:
        notes.append(
            {
                "code": "no_val_labels",
                "message": "no val examples to select a checkpoint on: the last step is kept",
            }
        )
    elif hardened.all() or not hardened.any():
        low, high = float(np.min(val_targets)), float(np.max(val_targets))
        notes.append(
            {
                "code": "val_auc_undefined",
                "message": (
                    f"all {hardened.size} val labels lie on one side of 1/2 "
                    f"(range [{low:.3f}, {high:.3f}]): val AUC is undefined, so no checkpoint "
                    "can be selected and the last step is kept"
                ),
            }
        )
    return notes


def warn(notes: list[dict]) -> None:
    """Raise each note as a :class:`TrainingWarning` (the CLI shows ``warning: ...``)."""
    for note in notes:
        warnings.warn(note["message"], TrainingWarning, stacklevel=3)


def val_auc(val_targets: np.ndarray, predictions: np.ndarray) -> float:
    """Val AUC against the training labels (hardened at 1/2); NaN when they are one class."""
    try:
        return roc_auc(val_targets, predictions)
    except UsageError:
        return math.nan


def keep_if_best(state: TrainingState, auc: float, snapshot: Callable[[], Any]) -> None:
    """Record ``auc`` at ``state.step`` and keep ``snapshot()`` as the best weights when it beats
    every earlier AUC (or while AUC is undefined: the latest weights)."""
    state.history.append({"step": state.step, "val_auc": auc})
    if not math.isfinite(auc) or auc > state.best_auc:
        state.best, state.best_step = snapshot(), state.step
        state.best_auc = auc if math.isfinite(auc) else state.best_auc
