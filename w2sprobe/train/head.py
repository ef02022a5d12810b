"""Head students: a classifier trained on a model's cached, pooled activations of one layer.

openai/weak-to-strong and EleutherAI/weak-to-strong both offer a ``linear_probe`` student (a
frozen body and a trained head), and openai's vision experiments are embeddings plus a linear
head throughout.  Here the body's forward pass is the activation cache, so a head trains in
seconds: every intervention can be screened, and the study runs at the blog's sizes on a CPU.

A head standardises its input with the training rows' mean and standard deviation (kept with
the head), then maps it to one logit: linearly, or through one hidden layer of ReLU units
(``hidden``).  It learns with the study's recipe (:mod:`.recipe`): soft targets, the same losses
(:mod:`.losses`, built from their configs), epochs of seeded random batches, AdamW with warmup
and cosine decay, val AUC against the training labels every ``eval_every`` steps and the best
weights kept.  What a head cannot do is change the representation: it is a screen for what a
student could learn from these features, not the study's finetuned student.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..options import TrainOptions
from .adamw import ScheduledAdamW
from .checkpoint import TrainingState
from .configs import HeadConfig  # re-exported: importable from here as before
from .recipe import keep_if_best, setup_notes, val_auc, warn

_TRAIN = TrainOptions()

#: ``progress(step, total_steps, info)`` after every optimizer step.
ProgressFn = Callable[[int, int, dict], None]

#: Rows per block when a head reads or predicts activations (bounded memory at any N).
_BLOCK_ROWS = 8192


class HeadClassifier(nn.Module):
    """Standardise, then a linear map (or one hidden ReLU layer) to one logit per row."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, hidden: int = 0):
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        dim = mean.numel()
        self.body = (
            nn.Linear(dim, 1)
            if hidden == 0
            else nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std).squeeze(-1)


@dataclass
class HeadFit:
    """A trained head and how its training went."""

    model: HeadClassifier
    steps: int
    best_step: int
    best_val_auc: float | None
    history: list[dict]
    seconds: float
    radius: float | None
    #: ``{"code", "message"}`` for each warning the run raised.
    warnings: list[dict] = field(default_factory=list)


def as_float32(acts, rows: np.ndarray | None = None) -> torch.Tensor:
    """Rows of ``acts`` (an array, memmap or h5py dataset of any float dtype) as float32 torch,
    read in blocks so a float16 file never holds a second full copy in memory."""
    index = np.arange(acts.shape[0]) if rows is None else np.asarray(rows)
    out = torch.empty((len(index), acts.shape[1]), dtype=torch.float32)
    for start in range(0, len(index), _BLOCK_ROWS):
        part = index[start : start + _BLOCK_ROWS]
        block = acts[part] if rows is not None else acts[start : start + len(part)]
        out[start : start + len(part)] = torch.from_numpy(np.asarray(block, dtype=np.float32))
    return out


def standardisation(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column mean and standard deviation of the training rows (float64 sums; std >= 1e-6)."""
    x64 = x.double()
    mean = x64.mean(0)
    std = x64.std(0, unbiased=False).clamp_min(1e-6)
    return mean.float(), std.float()


def fit_head(
    train_x: torch.Tensor,
    train_y: np.ndarray,
    val_x: torch.Tensor,
    val_y: np.ndarray,
    config: HeadConfig,
    progress: ProgressFn | None = None,
    device: torch.device | str = "cpu",
) -> HeadFit:
    """Train a head on ``train_x`` (N, D) float32 against soft labels ``train_y`` (N,), keeping
    the weights with the best val AUC against ``val_y``; seeded and deterministic.

    ``device``: where the math runs (not part of what the head means: it is initialised and
    its batches are drawn on the CPU, so a CUDA run gives the CPU's answer within float
    tolerance).
    """
    if len(train_y) == 0:
        raise UsageError("no training examples")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    mean, std = standardisation(train_x)
    device = torch.device(device)
    model = HeadClassifier(mean, std, config.hidden).to(device)
    train_x = train_x.to(device)
    targets = torch.as_tensor(np.asarray(train_y), dtype=torch.float32, device=device)
    loss_fn = config.loss.build(np.asarray(train_y))
    steps_per_epoch = math.ceil(len(targets) / config.batch_size)
    total = config.epochs * steps_per_epoch
    notes = setup_notes(total, config.warmup_steps, val_y)
    warn(notes)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = ScheduledAdamW(params, config, total)  # the recipe's, without torch.optim
    state = TrainingState()
    order = torch.Generator().manual_seed(config.seed)
    for epoch in range(config.epochs):
        permutation = torch.randperm(len(targets), generator=order)
        for index in range(steps_per_epoch):
            rows = permutation[index * config.batch_size : (index + 1) * config.batch_size]
            rows = rows.to(device)
            step = epoch * steps_per_epoch + index + 1
            model.train()
            optimizer.zero_grad()
            loss = loss_fn(model(train_x[rows]), targets[rows], step - 1)
            loss.backward()
            optimizer.step()
            state.step = step
            info = {"loss": float(loss.detach()), "epoch": epoch + 1}
            if step % config.eval_every == 0 or step == total:
                auc = val_auc(val_y, predict_head(model, val_x)) if len(val_y) else math.nan
                keep_if_best(state, auc, lambda: _copy_state(model))
                info["val_auc"] = auc
            if progress:
                progress(step, total, info)
    if state.best is not None:
        model.load_state_dict(state.best)
    model.cpu()  # predictions and what is kept of the head live on the CPU
    model.eval()
    best = state.best_auc if math.isfinite(state.best_auc) else None
    radius = getattr(loss_fn, "radius", None)
    return HeadFit(
        model,
        total,
        state.best_step,
        best,
        state.history,
        time.perf_counter() - started,
        radius,
        notes,
    )


@torch.inference_mode()
def predict_head(model: HeadClassifier, x) -> np.ndarray:
    """P(label = 1) per row of ``x`` (float32 torch, or any array read in blocks)."""
    model.eval()
    device = next(model.parameters()).device
    out = np.empty(x.shape[0], dtype=np.float32)
    for start in range(0, x.shape[0], _BLOCK_ROWS):
        block = x[start : start + _BLOCK_ROWS]
        if not isinstance(block, torch.Tensor):
            block = torch.from_numpy(np.asarray(block, dtype=np.float32))
        out[start : start + len(block)] = torch.sigmoid(model(block.to(device))).cpu().numpy()
    return out


def _copy_state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
