"""``w2sprobe train weak|ceiling|student``: one training stage (cached, resumable)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..data import splits_from_settings
from ..models import set_cpu_threads
from ..runs import RunRecord
from ..train.inputs import student_labels
from ..train.workflow import strong_to_strong, train_ceiling, train_student, train_weak
from ..workspace import ensure_writable_dir, resolve_cache_dir
from .common import (
    CacheDirOpt, ConfigOpt, DataDirOpt, DatasetOpt, DeviceOpt, JsonOpt, LabelFieldOpt, NTestOpt, NTrainOpt,
    NValOpt, PresetOpt, SeedOpt, StepProgress, TextFieldOpt, emit_json, settings_from, stderr, stdout,
)

Opt = typer.Option
LrOpt = Annotated[Optional[float], Opt("--lr", help="Learning rate (default weak_lr 5e-4 / strong_lr 5e-4; blog preset 8e-5 strong).")]
EpochsOpt = Annotated[Optional[int], Opt("--epochs", help="Epochs (3).")]
BatchOpt = Annotated[Optional[int], Opt("--batch-size", help="Examples per optimizer step (32).")]
MinibatchOpt = Annotated[Optional[int], Opt("--minibatch", help="Examples per forward pass; gradients accumulate.")]
Beta2Opt = Annotated[Optional[float], Opt("--beta2", help="AdamW beta2 (0.95).")]
WarmupOpt = Annotated[Optional[int], Opt("--warmup-steps", help="Linear warmup before the cosine decay (40).")]
WdOpt = Annotated[Optional[float], Opt("--weight-decay", help="AdamW weight decay (0.1).")]
EvalOpt = Annotated[Optional[int], Opt("--eval-every", help="Evaluate on val (and checkpoint) every N steps (25).")]
LossOpt = Annotated[Optional[str], Opt("--loss", help="xent | kl | logconf | entropy | window (xent).")]
AuxWeightOpt = Annotated[Optional[float], Opt("--logconf-weight", "--aux-weight",
                                              help="Final weight of the logconf / entropy term (0.5).")]
AuxWarmupOpt = Annotated[Optional[int], Opt("--logconf-warmup", "--aux-warmup",
                                            help="Steps over which that weight rises from 0 (100).")]
BalanceOpt = Annotated[Optional[bool], Opt("--balance-batch/--no-balance-batch",
                                           help="logconf: harden at the median instead of the batch's weak prior.")]
RadiusOpt = Annotated[Optional[str], Opt("--radius", help="window: confidence radius in (0, 0.5] or midweak.")]
LoraOpt = Annotated[Optional[bool], Opt("--lora/--no-lora", help="LoRA adapters (default) or full finetuning.")]
RankOpt = Annotated[Optional[int], Opt("--lora-rank", help="LoRA rank (8).")]
AlphaOpt = Annotated[Optional[float], Opt("--lora-alpha", help="LoRA alpha (16).")]
DropoutOpt = Annotated[Optional[float], Opt("--lora-dropout", help="LoRA dropout (0).")]
TargetsOpt = Annotated[Optional[str], Opt("--lora-targets", help="Comma list of module names (default: every "
                                                                 "linear projection in the blocks).")]
PoolOpt = Annotated[Optional[str], Opt("--pool", help="Pooling for the head: last | mean | first.")]
MaxLenOpt = Annotated[Optional[int], Opt("--max-length", help="Truncate texts to this many tokens (512).")]
DtypeOpt = Annotated[Optional[str], Opt("--dtype", help="auto | float32 | bfloat16 | float16.")]
WeakModelOpt = Annotated[Optional[str], Opt("--weak", help="Weak model (alias, folder or hub id).")]
StrongModelOpt = Annotated[Optional[str], Opt("--strong", help="Strong model (alias, folder or hub id).")]

STAGES = ("weak", "ceiling", "student")


def train(
    stage: Annotated[str, typer.Argument(help="weak | ceiling | student")],
    model: Annotated[Optional[str], Opt("--model", help="The stage's model (default: weak_model for weak, "
                                                         "else strong_model).")] = None,
    labels: Annotated[Optional[str], Opt("--labels", help="student: label set name or key, or a student run's key (default weak).")] = None,
    s2s_iters: Annotated[int, Opt("--s2s-iters", help="student: then N strong-to-strong iterations.")] = 0,
    loss: LossOpt = None, lr: LrOpt = None, epochs: EpochsOpt = None, batch_size: BatchOpt = None,
    minibatch: MinibatchOpt = None, beta2: Beta2Opt = None, warmup_steps: WarmupOpt = None,
    weight_decay: WdOpt = None, eval_every: EvalOpt = None, logconf_weight: AuxWeightOpt = None,
    logconf_warmup: AuxWarmupOpt = None, balance_batch: BalanceOpt = None, radius: RadiusOpt = None,
    lora: LoraOpt = None, lora_rank: RankOpt = None, lora_alpha: AlphaOpt = None, lora_dropout: DropoutOpt = None,
    lora_targets: TargetsOpt = None, pool: PoolOpt = None, max_length: MaxLenOpt = None, dtype: DtypeOpt = None,
    weak: WeakModelOpt = None, strong: StrongModelOpt = None, dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None, text_field: TextFieldOpt = None, label_field: LabelFieldOpt = None,
    n_train: NTrainOpt = None, n_val: NValOpt = None, n_test: NTestOpt = None, preset: PresetOpt = None,
    cache_dir: CacheDirOpt = None, seed: SeedOpt = None, device: DeviceOpt = None, as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Train one stage: weak (weak model, ground truth), ceiling (strong, ground truth) or student (strong, a label set)."""
    if stage not in STAGES:
        from ..errors import UsageError

        raise UsageError(f"unknown stage '{stage}'; use weak, ceiling or student")
    cli = {k: v for k, v in locals().items() if k not in ("stage", "model", "labels", "s2s_iters", "as_json",
                                                          "config", "weak", "strong", "pool")}
    cli.update(pooling=pool, weak_model=weak, strong_model=strong, labels=labels)
    cli["weak_model" if stage == "weak" else "strong_model"] = model or cli["weak_model" if stage == "weak"
                                                                        else "strong_model"]
    settings = settings_from(config, **cli)
    set_cpu_threads()
    root = ensure_writable_dir(resolve_cache_dir(settings["cache_dir"]))
    splits = splits_from_settings(settings)
    runs = _run(stage, settings, splits, root, s2s_iters)
    _show(runs, as_json)


def _run(stage: str, settings, splits, root, s2s_iters: int) -> list[RunRecord]:
    with StepProgress(f"train {stage} on {splits.dataset}") as progress:
        if stage == "weak":
            return [train_weak(settings, splits, root, progress.update)]
        if stage == "ceiling":
            return [train_ceiling(settings, splits, root, progress.update)]
        label_set = student_labels(settings, splits, root, str(settings["labels"]))
        first = train_student(settings, splits, root, label_set, progress=progress.update)
        return [first, *strong_to_strong(settings, splits, root, first, label_set, s2s_iters,
                                         progress=progress.update)]


def _show(runs: list[RunRecord], as_json: bool) -> None:
    rows = [_summary(run) for run in runs]
    if as_json:
        emit_json({"command": "train", "runs": rows})
        return
    table = Table("experiment", "model", "test AUC", "accuracy", "n", "PGR", "weak AUC", "ceiling AUC", "run")
    for row in rows:
        table.add_row(row["experiment"], row["model"], _fmt(row["auc"]), _fmt(row["accuracy"]), str(row["n"]),
                      _fmt(row.get("pgr")), _fmt((row.get("weak") or {}).get("auc")),
                      _fmt((row.get("ceiling") or {}).get("auc")), row["key"])
    stdout.print(table)
    for row in rows:
        if row["stage"] == "student" and row.get("ceiling") is None:
            stderr.print(f"no ceiling run yet, so no PGR: w2sprobe train ceiling --dataset {row['dataset']}")
            break


def _summary(run: RunRecord) -> dict[str, Any]:
    keep = ("key", "stage", "experiment", "dataset", "model", "auc", "accuracy", "n", "val_auc", "pgr", "weak",
            "ceiling", "labels", "labels_key", "train_n", "best_step", "steps", "resumed_from", "tokens_per_second",
            "radius")
    return {**{k: run.metrics.get(k) for k in keep}, "path": str(run.folder)}


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
