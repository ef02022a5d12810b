"""``w2sprobe train weak|ceiling|student|s2s``: one training stage (cached, resumable).

Data-parallel under ``torchrun --nproc-per-node N -m w2sprobe train ...``, or with
``--launcher torchrun --nproc N``, which re-executes the same command through torchrun.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import UsageError
from ..options import Options
from . import help as cli_help
from .common import emit_json, fmt, open_study, request, show_plan, show_table
from .launch import relaunch_under_torchrun
from .params import DATA, Control, LauncherOpt, NprocOpt, group, options_command

MODELS = ("weak_model", "strong_model", "dtype", "device_map", "pooling", "max_length")
TRAINING = group("train")
STAGES = ("weak", "ceiling", "student", "s2s")


@options_command(
    DATA + MODELS + TRAINING + ("labels", "min_gap"), graph=True, panels={"min_gap": "Training"}
)
def train(
    opts: Options,
    ctl: Control,
    stage: Annotated[
        str,
        typer.Argument(
            metavar="{weak|ceiling|student|s2s}",
            help="The stage to train (see above).",
            show_default=False,
            autocompletion=cli_help.completer(STAGES),
        ),
    ],
    launcher: LauncherOpt = None,
    nproc: NprocOpt = None,
) -> None:
    """Train one stage: weak (weak model, ground truth), ceiling (strong model, ground truth),
    student (strong model on --labels with --loss) or s2s (the --loss student of the weak labels,
    then --s2s-iters strong-to-strong iterations). Missing inputs are built first."""
    from ..distributed import (
        env_world_size,
        init_from_env,
        shutdown,
        validate_launcher,
    )
    from ..models import check_device_map, resolve_device

    if stage not in STAGES:
        raise UsageError(f"unknown stage '{stage}'; use one of {', '.join(STAGES)}")
    if stage == "s2s" and opts.train.s2s_iters < 1:
        raise UsageError(f"train s2s needs --s2s-iters >= 1, got {opts.train.s2s_iters}")
    if validate_launcher(launcher, nproc, opts.workspace.device):
        if opts.model.device_map:
            raise UsageError(
                "--device-map spreads one model over devices in a single process; it cannot be "
                "combined with --launcher torchrun"
            )
        _check_recipe(opts)
        relaunch_under_torchrun(ctl.context, nproc)
    if opts.model.device_map:
        if env_world_size() > 1:
            raise UsageError(
                "--device-map spreads one model over devices in a single process; it cannot run "
                "under torchrun (data-parallel workers each hold a whole model)"
            )
        check_device_map(opts.model.device_map)
    _check_recipe(opts)
    env = init_from_env(resolve_device(opts.workspace.device))  # a no-op unless started by torchrun
    try:
        study = open_study(opts, ctl, quiet=not env.is_main)
        runs = _request(study, stage)
        if not env.is_main:  # one table / JSON object, not one per worker
            return
        if ctl.plan:
            return show_plan(study.graph.outcomes, ctl.as_json, "train")
        _show(
            [run for run in runs if run is not None],
            ctl.as_json,
            study.notes,
            opts.report.min_gap,
        )
    finally:
        shutdown()


def _check_recipe(opts: Options) -> None:
    """Every stage's recipe is valid before any work (TrainConfig checks ranges and names)."""
    from ..train.inputs import head_config, train_config

    for stage in ("weak", "ceiling", "student"):
        train_config(opts, stage)
        head_config(opts, stage)


def _request(study, stage: str) -> list:
    """The runs a stage command produces (a plan may reach none of them); each is marked as
    the command's target by the study itself."""
    opts = study.options
    loss = opts.train.loss
    if stage == "weak":
        return [request(lambda: study.weak(target=True))]
    if stage == "ceiling":
        return [request(lambda: study.ceiling(target=True))]
    if stage == "student":
        return [
            request(lambda: study.student(study.label_set(opts.probe.labels), loss, target=True))
        ]
    runs = [request(lambda: study.student(study.weak_labels(), loss, target=True))]
    return runs + [
        request(lambda i=i: study.s2s(i, loss, target=True))
        for i in range(1, opts.train.s2s_iters + 1)
    ]


def _show(runs: list, as_json: bool, notes: list[str], min_gap: float) -> None:
    from rich.table import Table

    from ..pgr_rule import show_pgr

    rows = [_summary(run, min_gap) for run in runs]
    if as_json:
        emit_json({"command": "train", "runs": rows, "notes": notes})
        return
    table = Table(
        "experiment",
        "kind",
        "model",
        "test AUC",
        "accuracy",
        "n",
        "PGR",
        "weak AUC",
        "ceiling AUC",
        "run",
    )
    for row in rows:
        table.add_row(
            row["experiment"],
            row["student_kind"] or "lora",
            row["model"],
            fmt(row["auc"]),
            fmt(row["accuracy"]),
            str(row["n"]),
            show_pgr(row) if row["stage"] == "student" else "—",
            fmt((row.get("weak") or {}).get("auc")),
            fmt((row.get("ceiling") or {}).get("auc")),
            row["key"],
        )
    show_table(table)


def _summary(run, min_gap: float) -> dict[str, Any]:
    from ..pgr_rule import RECORDED, rejudged

    keep = (
        "key",
        "stage",
        "experiment",
        "dataset",
        "model",
        "auc",
        "accuracy",
        "n",
        "val_auc",
        "pgr",
        *RECORDED,
        "weak",
        "ceiling",
        "labels",
        "labels_key",
        "train_n",
        "best_step",
        "steps",
        "resumed_from",
        "tokens_per_second",
        "radius",
        "student_kind",
        "layer",
    )
    metrics = rejudged(run.metrics, min_gap)
    return {**{k: metrics.get(k) for k in keep}, "path": str(run.folder)}
