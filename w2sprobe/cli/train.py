"""``w2sprobe train weak|ceiling|student``: one training stage (cached, resumable).

Data-parallel under ``torchrun --nproc-per-node N -m w2sprobe train ...``, or with
``--launcher torchrun --nproc N``, which re-executes the same command through torchrun.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..data import splits_from_settings
from ..distributed import check_nproc, env_world_size, init_from_env, launch_torchrun
from ..errors import UsageError
from ..models import check_device_map, resolve_device, set_cpu_threads
from ..runs import RunRecord
from ..train.distributed import shutdown
from ..train.inputs import student_labels, train_config
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
LauncherOpt = Annotated[Optional[str], Opt("--launcher", help="none | torchrun: run data-parallel as --nproc "
                                                              "torchrun workers on this machine.")]
NprocOpt = Annotated[Optional[int], Opt("--nproc", help="Workers for --launcher torchrun (at most the GPUs "
                                                        "visible; any number on CPU).")]
DeviceMapOpt = Annotated[Optional[str], Opt("--device-map", help="Spread a model too big for one device: "
                                                                 "auto | balanced | sequential | a device "
                                                                 "(from_pretrained's device_map; one process).")]

STAGES = ("weak", "ceiling", "student")


def train(
    ctx: typer.Context,
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
    config: ConfigOpt = None, launcher: LauncherOpt = None, nproc: NprocOpt = None,
    device_map: DeviceMapOpt = None,
) -> None:
    """Train one stage: weak (weak model, ground truth), ceiling (strong, ground truth) or student (strong, a label set)."""
    if stage not in STAGES:
        raise UsageError(f"unknown stage '{stage}'; use weak, ceiling or student")
    cli = {k: v for k, v in locals().items() if k not in ("ctx", "stage", "model", "labels", "s2s_iters", "as_json",
                                                          "config", "weak", "strong", "pool", "launcher", "nproc")}
    cli.update(pooling=pool, weak_model=weak, strong_model=strong, labels=labels)
    cli["weak_model" if stage == "weak" else "strong_model"] = model or cli["weak_model" if stage == "weak"
                                                                        else "strong_model"]
    settings = settings_from(config, **cli)
    if _wants_launcher(launcher, nproc):
        raise typer.Exit(_launch(ctx, stage, settings, nproc))
    if settings["device_map"]:
        if env_world_size() > 1:
            raise UsageError("--device-map spreads one model over devices in a single process; it cannot run "
                             "under torchrun (data-parallel workers each hold a whole model)")
        check_device_map(settings["device_map"])
    set_cpu_threads()
    env = init_from_env(resolve_device(settings["device"]))  # a no-op unless started by torchrun
    try:
        root = ensure_writable_dir(resolve_cache_dir(settings["cache_dir"]))
        splits = splits_from_settings(settings)
        runs = _run(stage, settings, splits, root, s2s_iters, show_progress=env.is_main)
        if env.is_main:  # one table / JSON object, not one per worker
            _show(runs, as_json)
    finally:
        shutdown()


def _wants_launcher(launcher: str | None, nproc: int | None) -> bool:
    if launcher not in (None, "none", "torchrun"):
        raise UsageError(f"unknown --launcher '{launcher}'; use none or torchrun")
    if launcher == "torchrun":
        return True
    if nproc is not None:
        raise UsageError("--nproc needs --launcher torchrun (or start the command under torchrun)")
    return False


def _launch(ctx: typer.Context, stage: str, settings, nproc: int | None) -> int:
    """Check what can be checked here (so bad input fails once, with exit 2), then exec torchrun."""
    if nproc is None:
        raise UsageError("--launcher torchrun needs --nproc N")
    check_nproc(nproc, str(settings["device"]))
    if env_world_size() > 1:
        raise UsageError("--launcher torchrun inside a torchrun worker; drop --launcher/--nproc")
    if settings["device_map"]:
        raise UsageError("--device-map spreads one model over devices in a single process; it cannot be "
                         "combined with --launcher torchrun")
    resolve_device(str(settings["device"]))
    train_config(settings, stage)  # validates the recipe
    return launch_torchrun(nproc, _relaunch_argv(ctx, drop=("launcher", "nproc")))


def _relaunch_argv(ctx: typer.Context, drop: tuple[str, ...]) -> list[str]:
    """This command's arguments as the user typed them (minus ``drop``), rebuilt from the parsed values.

    Options from the config file or environment are not repeated: the workers read them the same way.
    """
    argv = [ctx.info_name]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in drop or source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        if param.param_type_name == "argument":
            argv.append(str(value))
        elif getattr(param, "is_flag", False):
            if param.secondary_opts:
                argv.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                argv.append(param.opts[0])
        else:
            argv += [param.opts[0], str(value)]
    return argv


def _run(stage: str, settings, splits, root, s2s_iters: int, show_progress: bool = True) -> list[RunRecord]:
    with StepProgress(f"train {stage} on {splits.dataset}") as bar:
        progress = bar.update if show_progress else None
        if stage == "weak":
            return [train_weak(settings, splits, root, progress)]
        if stage == "ceiling":
            return [train_ceiling(settings, splits, root, progress)]
        label_set = student_labels(settings, splits, root, str(settings["labels"]))
        first = train_student(settings, splits, root, label_set, progress=progress)
        return [first, *strong_to_strong(settings, splits, root, first, label_set, s2s_iters,
                                         progress=progress)]


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
