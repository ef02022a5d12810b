"""From options to training requests: the recipe of a stage and the model it trains."""

from __future__ import annotations

from ..data import SplitSet
from ..options import Options
from .configs import HeadConfig, LoraSettings, TrainConfig
from .loss_config import XentConfig, loss_config
from .plans import StageRequest


def train_config(options: Options, stage: str, loss: str | None = None) -> TrainConfig:
    """The training recipe of ``stage`` (lr: ``lr`` if set, else the stage's weak/strong lr).

    A student trains with ``loss`` (default ``--loss``) configured from the options; the weak
    model and the ceiling learn ground truth with xent.
    """
    t = options.train
    lora = LoraSettings(
        enabled=t.lora,
        rank=t.lora_rank,
        alpha=t.lora_alpha,
        dropout=t.lora_dropout,
        targets=tuple(t.lora_targets) or None,
    )
    lr = t.lr if t.lr is not None else (t.weak_lr if stage == "weak" else t.strong_lr)
    return TrainConfig(
        lr=lr,
        minibatch=t.minibatch,
        max_length=options.extract.max_length,
        lora=lora,
        pooling=options.extract.pooling,
        **_recipe(options, stage, loss),
    )


def head_config(options: Options, stage: str, loss: str | None = None) -> HeadConfig:
    """The head recipe of ``stage``: the study's recipe with the head's learning rate and shape;
    a student learns with ``loss`` (default ``--loss``), weak and ceiling heads with xent."""
    t = options.train
    return HeadConfig(lr=t.head_lr, hidden=t.head_hidden, **_recipe(options, stage, loss))


def _recipe(options: Options, stage: str, loss: str | None) -> dict:
    """The recipe fields LoRA and head runs share: epochs, batch, AdamW, schedule, evaluation,
    the loss (a student's ``loss`` or ``--loss``; weak and ceiling runs learn with xent), seed."""
    t = options.train
    return {
        "epochs": t.epochs,
        "batch_size": t.batch_size,
        "beta2": t.beta2,
        "warmup_steps": t.warmup_steps,
        "weight_decay": t.weight_decay,
        "eval_every": t.eval_every,
        "loss": loss_config(loss or t.loss, t) if stage == "student" else XentConfig(),
        "seed": options.workspace.seed,
    }


def stage_request(options: Options, splits: SplitSet, stage: str, **fields) -> StageRequest:
    """A request for ``stage`` with the model the stage uses (the weak model for ``weak``)."""
    model = options.model.weak_model if stage == "weak" else options.model.strong_model
    config = train_config(options, stage, fields.pop("loss", None))
    return StageRequest(
        stage,
        model,
        splits,
        config,
        device=options.workspace.device,
        dtype=options.model.dtype,
        device_map=options.model.device_map,
        **fields,
    )
