"""A small LoRA trainer for binary sequence classification on soft labels.

The reference study's recipe: AdamW (beta2 0.95, weight decay 0.1), cosine schedule with 40
warmup steps, 3 epochs of batches of 32 (gradient accumulation over ``minibatch``), evaluation
on val every 25 steps, and the checkpoint with the best val AUC kept.  As in the study, that
val AUC is measured against the labels the run trains on (weak labels for a student), not the
ground truth: selecting on ground truth would leak it into weak-to-strong results.

What it adds: length-bucketed dynamic padding, ``torch.inference_mode`` prediction, a
checkpoint at every evaluation so that a killed run resumes where it stopped, and data-parallel
training when launched by ``torchrun`` (:mod:`.distributed`: each rank trains on its share of
every batch, gradients are summed across ranks, only rank 0 writes the checkpoint).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..distributed import DistEnv, current
from ..errors import UsageError
from ..options import TrainOptions
from .batching import Encoded, collate, encode, epoch_batches, inference_batches, micro_batches
from .checkpoint import TrainingState, load_checkpoint, save_checkpoint
from .classifier import SequenceClassifier
from .configs import TrainConfig  # re-exported: importable from here as before
from .distributed import (
    broadcast_parameters,
    combine_shards,
    gather_objects,
    inference_rows,
    rank_rows,
    sum_gradients,
)
from .recipe import (
    keep_if_best,
    optimizer_and_schedule,
    setup_notes,
    val_auc,
    warn,
)

#: ``progress(step, total_steps, info)`` after every optimizer step.
ProgressFn = Callable[[int, int, dict], None]


_TRAIN = TrainOptions()


@dataclass
class Examples:
    """Texts with the soft labels to train on (or to select checkpoints by)."""

    ids: np.ndarray
    texts: list[str]
    targets: np.ndarray


@dataclass
class FitResult:
    steps: int
    best_step: int
    best_val_auc: float | None
    history: list[dict]
    tokens: int
    seconds: float
    resumed_from: int | None
    radius: float | None
    #: ``{"code", "message"}`` for each :class:`TrainingWarning` the run raised.
    warnings: list[dict] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class Trainer:
    """Fit a :class:`SequenceClassifier` on soft labels and predict with it.

    In a ``torch.distributed`` group (``env``, default: the group this process joined) every
    rank must call :meth:`fit` and :meth:`predict` with the same data; they return the same
    result on every rank, and only rank 0 writes the checkpoint.
    """

    def __init__(
        self,
        model: SequenceClassifier,
        tokenizer,
        config: TrainConfig,
        device: torch.device,
        checkpoint: Path | None = None,
        progress: ProgressFn | None = None,
        env: DistEnv | None = None,
    ):
        self.model, self.tokenizer, self.config, self.device = model, tokenizer, config, device
        self.checkpoint, self.progress = checkpoint, progress
        self.env = env or current()

    # ------------------------------------------------------------------ training

    def fit(self, train: Examples, val: Examples) -> FitResult:
        """Train, evaluating on ``val`` every ``eval_every`` steps.

        The model ends at its best checkpoint.
        """
        cfg = self.config
        if len(train.texts) == 0:
            raise UsageError("no training examples")
        enc, enc_val = self._encode(train.texts), self._encode(val.texts)
        lengths = enc.lengths
        loss_fn = cfg.loss.build(train.targets)
        steps_per_epoch = math.ceil(len(lengths) / cfg.batch_size)
        total = cfg.epochs * steps_per_epoch
        notes = setup_notes(total, cfg.warmup_steps, val.targets)
        if self.env.is_main:
            warn(notes)
        optimizer, scheduler = optimizer_and_schedule(self._trainable(), cfg, total)
        targets = torch.as_tensor(train.targets, dtype=torch.float32, device=self.device)
        torch.manual_seed(cfg.seed + 1 + self.env.rank)  # dropout: independent masks per rank
        broadcast_parameters(self._trainable(), self.env)
        state = self._resume(optimizer, scheduler, loss_fn)
        started = time.perf_counter() - state.seconds
        for epoch in range(cfg.epochs):
            for index, rows in enumerate(epoch_batches(lengths, cfg.batch_size, cfg.seed, epoch)):
                step = epoch * steps_per_epoch + index + 1
                if step <= state.step:
                    continue  # done before the run was interrupted
                loss = self._step(enc, lengths, rows, targets, loss_fn, optimizer, scheduler, step)
                state.step, state.tokens = step, state.tokens + int(lengths[rows].sum())
                info = {"loss": loss, "epoch": epoch + 1}
                if step % cfg.eval_every == 0 or step == total:
                    info.update(self._evaluate(enc_val, val.targets, state))
                    state.seconds = time.perf_counter() - started
                    self._save(state, optimizer, scheduler, loss_fn)
                if self.progress:
                    self.progress(step, total, info)
        state.seconds = time.perf_counter() - started
        if state.best is not None:
            self.model.load_trainable_state(state.best)
        has_auc = math.isfinite(state.best_auc)
        return FitResult(
            total,
            state.best_step,
            state.best_auc if has_auc else None,
            state.history,
            state.tokens,
            state.seconds,
            state.resumed_from,
            getattr(loss_fn, "radius", None),
            notes,
        )

    def _encode(self, texts: list[str]) -> Encoded:
        return encode(self.tokenizer, texts, self.config.max_length)

    def _trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _step(
        self,
        enc: Encoded,
        lengths: np.ndarray,
        rows: np.ndarray,
        targets: torch.Tensor,
        loss_fn,
        optimizer,
        scheduler,
        step: int,
    ) -> float:
        """One optimizer step over a batch, accumulating gradients over its micro-batches.

        Each micro-batch backpropagates the *sum* of its loss terms; the summed gradient is then
        divided once by the batch's count (examples, or window's in-window examples, over all
        micro-batches and ranks), so the step is the whole batch's mean gradient whatever the
        split.  A loss that needs the whole batch's predictions first (logconf's threshold) gets
        them from a no-grad pass over the micro-batches when there is more than one piece.
        """
        self.model.train()
        optimizer.zero_grad(set_to_none=True)
        micros = micro_batches(rank_rows(rows, lengths, self.env), lengths, self.config.minibatch)
        one_piece = len(micros) == 1 and not self.env.enabled
        if loss_fn.needs_batch_predictions and not one_piece:
            loss_fn.begin_batch(
                self._batch_predictions(enc, rows, micros), targets[self._index(rows)]
            )
        total, count = 0.0, 0
        for micro in micros:
            input_ids, mask = collate(enc, micro, self.device)
            logits = self.model(input_ids, mask)
            micro_targets = targets[self._index(micro)]
            if loss_fn.needs_batch_predictions and one_piece:  # the micro-batch is the whole batch
                loss_fn.begin_batch(torch.sigmoid(logits.detach().float()), micro_targets)
            loss_sum, n = loss_fn.terms(logits, micro_targets, step - 1)
            loss_sum.backward()
            total, count = total + float(loss_sum.detach()), count + n
        if self.env.enabled:  # the whole batch's count; only window's needs the other ranks' share
            count = (
                len(rows) if loss_fn.counts_every_example else sum(gather_objects(count, self.env))
            )
        scale = 1.0 / max(count, 1)  # count 0: an empty window, every gradient is already 0
        for p in self._trainable():
            if p.grad is not None:
                p.grad.mul_(scale)
        total = sum_gradients(self._trainable(), self.env, total * scale)
        optimizer.step()
        scheduler.step()
        return total

    def _index(self, rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(rows, device=self.device)

    @torch.no_grad()
    def _batch_predictions(
        self, enc: Encoded, rows: np.ndarray, micros: list[np.ndarray]
    ) -> torch.Tensor:
        """P(label = 1) of every row of the batch, in ``rows`` order, from all ranks.

        Run in training mode under a forked RNG that is then restored, so the gradient pass
        that follows draws the very same dropout masks and sees the very same predictions.
        """
        # Every CUDA device: with --device-map dropout also draws on the other devices' generators.
        devices = list(range(torch.cuda.device_count())) if self.device.type == "cuda" else []
        mine: dict[int, float] = {}
        with torch.random.fork_rng(devices=devices):
            for micro in micros:
                probs = torch.sigmoid(self.model(*collate(enc, micro, self.device)).float()).cpu()
                mine.update(zip(micro.tolist(), probs.tolist()))
        merged: dict[int, float] = {}
        for shard in gather_objects(mine, self.env):  # every rank's rows of the batch
            merged.update(shard)
        return torch.tensor([merged[row] for row in rows.tolist()], dtype=torch.float32)

    def _evaluate(self, enc_val: Encoded, val_targets: np.ndarray, state: TrainingState) -> dict:
        """Val AUC against the training labels (hardened at 1/2); keep the best weights."""
        if len(enc_val) == 0:
            state.best, state.best_step = self.model.trainable_state(), state.step
            return {}
        auc = val_auc(val_targets, self._predict(enc_val))
        keep_if_best(state, auc, self.model.trainable_state)
        return {"val_auc": auc}

    # ------------------------------------------------------------------ checkpoints

    def _save(self, state: TrainingState, optimizer, scheduler, loss_fn) -> None:
        if self.checkpoint is None:
            return
        # What differs between ranks (dropout RNG, logconf buffer) is saved for each rank.
        ranks = gather_objects(
            {"loss": loss_fn.state_dict(), "rng": torch.get_rng_state()}, self.env
        )
        if not self.env.is_main:
            return
        save_checkpoint(
            self.checkpoint,
            {
                "config": self.config.describe(),
                "state": state,
                "model": self.model.trainable_state(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "loss": loss_fn.state_dict(),
                "rng": torch.get_rng_state(),
                "ranks": ranks,
            },
        )

    def _resume(self, optimizer, scheduler, loss_fn) -> TrainingState:
        saved = load_checkpoint(self.checkpoint) if self.checkpoint else None
        if saved is None or saved["config"] != self.config.describe():
            return TrainingState()
        self.model.load_trainable_state(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        ranks = saved.get("ranks") or []
        # Same world size: each rank continues its own streams; otherwise rank 0's are the best
        # guess.
        mine = ranks[self.env.rank] if len(ranks) == self.env.world_size else saved
        loss_fn.load_state_dict(mine["loss"])
        torch.set_rng_state(mine["rng"])
        state: TrainingState = saved["state"]
        state.resumed_from = state.step
        return state

    # ------------------------------------------------------------------ prediction

    def predict(self, texts: list[str]) -> np.ndarray:
        """P(label = 1) for each text, in order."""
        return self._predict(self._encode(texts))

    @torch.inference_mode()
    def _predict(self, enc: Encoded) -> np.ndarray:
        """Each rank predicts its shard; every rank returns all predictions."""
        self.model.eval()
        out = np.zeros(len(enc), dtype=np.float32)
        mine = inference_rows(enc.lengths, self.env)
        max_rows = 4 * self.config.batch_size
        for batch in inference_batches(
            enc.lengths[mine], max_tokens=max_rows * 64, max_rows=max_rows
        ):
            rows = mine[batch]
            input_ids, mask = collate(enc, rows, self.device)
            out[rows] = torch.sigmoid(self.model(input_ids, mask).float()).cpu().numpy()
        return combine_shards(out, self.env, self.device)
