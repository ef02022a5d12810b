"""The typed recipes of training runs: what changes what a LoRA or head run learns.

A run's key is computed from its recipe before anything is trained (a cache hit trains nothing),
so these dataclasses import no torch: planning a stage, or a probe that only reads label sets,
does not pay torch's import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields

from ..errors import UsageError
from ..options import ExtractOptions, TrainOptions
from .loss_config import LossConfig, XentConfig

_TRAIN = TrainOptions()


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter shape.

    ``targets=None`` means every linear projection inside the transformer blocks.
    """

    enabled: bool = TrainOptions().lora
    rank: int = TrainOptions().lora_rank
    alpha: float = TrainOptions().lora_alpha
    dropout: float = TrainOptions().lora_dropout
    targets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that changes what training produces (it is part of the run's key)."""

    # Defaults are the options' (w2sprobe.options), so the library and the CLI agree.
    lr: float = _TRAIN.strong_lr
    epochs: int = _TRAIN.epochs
    batch_size: int = _TRAIN.batch_size
    minibatch: int = _TRAIN.minibatch
    beta2: float = _TRAIN.beta2
    warmup_steps: int = _TRAIN.warmup_steps
    weight_decay: float = _TRAIN.weight_decay
    eval_every: int = _TRAIN.eval_every
    max_length: int = ExtractOptions().max_length
    #: The student's loss, with its own parameters (weak and ceiling runs: xent).
    loss: LossConfig = field(default_factory=XentConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    pooling: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise UsageError(f"--lr must be > 0, got {self.lr}")
        for name in ("epochs", "batch_size", "minibatch", "eval_every", "max_length"):
            if int(getattr(self, name)) < 1:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.warmup_steps < 0:
            raise UsageError("warmup steps must be >= 0")
        if self.lora.enabled and self.lora.rank < 1:
            raise UsageError(f"--lora-rank must be >= 1, got {self.lora.rank}")
        if not isinstance(self.loss, LossConfig):
            raise TypeError(
                f"loss must be a LossConfig (w2sprobe.train.loss_config), got {self.loss!r}"
            )

    def describe(self) -> dict:
        """What a run's key records: the recipe, the loss by name with its own parameters
        (:meth:`LossConfig.key_fields`), and the LoRA settings when LoRA is on."""
        config = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "loss"}
        config["lora"] = asdict(self.lora) if self.lora.enabled else {"enabled": False}
        config.update(loss=self.loss.name, **self.loss.key_fields())
        if self.loss.whole_batch and self.minibatch < self.batch_size:
            # Their batch gradient changed when accumulation became split-independent (window:
            # the in-window mean over the whole batch; logconf: one threshold per batch): their
            # accumulated runs got a new key, so a result of the old arithmetic is never reused.
            config["accumulation"] = "whole-batch"
        return config


@dataclass(frozen=True)
class HeadConfig:
    """Everything that changes what a head learns (the recipe and shape; part of the run's key).

    Defaults are the options' (:mod:`w2sprobe.options`): the LoRA recipe's epochs, batch,
    AdamW and schedule, with the head's own learning rate.
    """

    lr: float = _TRAIN.head_lr
    epochs: int = _TRAIN.epochs
    batch_size: int = _TRAIN.batch_size
    beta2: float = _TRAIN.beta2
    warmup_steps: int = _TRAIN.warmup_steps
    weight_decay: float = _TRAIN.weight_decay
    eval_every: int = _TRAIN.eval_every
    #: 0: a linear head; N: one hidden layer of N ReLU units.
    hidden: int = _TRAIN.head_hidden
    loss: LossConfig = field(default_factory=XentConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise UsageError(f"--head-lr must be > 0, got {self.lr}")
        for name in ("epochs", "batch_size", "eval_every"):
            if int(getattr(self, name)) < 1:
                flag = name.replace("_", "-")
                raise UsageError(f"--{flag} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise UsageError("warmup steps must be >= 0")
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 0:
            raise UsageError(f"--head-hidden must be an integer >= 0, got {self.hidden!r}")

    def describe(self) -> dict:
        """What a head run's key records: the recipe, the shape, the loss and its parameters."""
        config = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "loss"
        }
        config.update(loss=self.loss.name, **self.loss.key_fields())
        return config
