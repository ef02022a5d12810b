"""``w2sprobe extract``: cache a model's per-layer activations for a dataset (one forward pass)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..cache import ExtractRequest, extract as run_extraction, plan_extraction
from ..data import splits_from_settings
from ..distributed import check_nproc, current, env_world_size, launch_torchrun
from ..errors import UsageError
from ..models import set_cpu_threads
from ..workspace import ensure_writable_dir, resolve_cache_dir
from .common import (
    CacheDirOpt, ConfigOpt, DataDirOpt, DatasetOpt, DeviceOpt, JsonOpt, LabelFieldOpt, NTestOpt,
    NTrainOpt, NValOpt, SeedOpt, TextFieldOpt, RowProgress, emit_json, layer_summary, settings_from, stderr,
)


LAUNCHERS = ("torchrun",)


def extract(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Option("--model", help="Alias (minilm, mpnet, smollm2), folder or hub id; default: strong_model.")] = None,
    dataset: DatasetOpt = None,
    layer: Annotated[Optional[int], typer.Option("--layer", help="One layer (HF hidden_states numbering: 0 = embeddings).")] = None,
    layers: Annotated[Optional[str], typer.Option("--layers", help="Comma list (4,8,16) or 'all' (default).")] = None,
    pool: Annotated[Optional[str], typer.Option("--pool", help="last | mean | first (default: last for decoders, mean for encoders).")] = None,
    max_length: Annotated[Optional[int], typer.Option("--max-length", help="Truncate texts to this many tokens (512).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Examples per forward pass (32).")] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="auto | float32 | float16 | bfloat16 (compute dtype; stored as float16).")] = None,
    data_dir: DataDirOpt = None,
    text_field: TextFieldOpt = None,
    label_field: LabelFieldOpt = None,
    n_train: NTrainOpt = None,
    n_val: NValOpt = None,
    n_test: NTestOpt = None,
    cache_dir: CacheDirOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    launcher: Annotated[Optional[str], typer.Option("--launcher", help="torchrun: run as --nproc data-parallel processes on this machine (the same file as one process).")] = None,
    nproc: Annotated[Optional[int], typer.Option("--nproc", help="Processes for --launcher torchrun (on CUDA at most the visible GPUs).")] = None,
) -> None:
    """Run MODEL once over every split of DATASET and cache the requested layers in HDF5.

    Under torchrun (or with --launcher torchrun --nproc N) the rows are split across the processes.
    """
    if layer is not None and layers is not None:
        raise UsageError("give either --layer or --layers, not both")
    settings = settings_from(
        config, strong_model=model, dataset=dataset, layers=str(layer) if layer is not None else layers,
        pooling=pool, max_length=max_length, batch_size=batch_size, dtype=dtype, data_dir=data_dir,
        text_field=text_field, label_field=label_field, n_train=n_train, n_val=n_val, n_test=n_test,
        cache_dir=cache_dir, seed=seed, device=device,
    )
    if launcher is not None or nproc is not None:
        _check_launcher(launcher, nproc)
        check_nproc(nproc, settings["device"])
    root = ensure_writable_dir(resolve_cache_dir(settings["cache_dir"]))
    set_cpu_threads()
    request = ExtractRequest(
        model=settings["strong_model"], splits=splits_from_settings(settings), layers=settings["layers"],
        pooling=settings["pooling"], max_length=int(settings["max_length"]),
        batch_size=int(settings["batch_size"]), dtype=settings["dtype"], device=settings["device"],
    )
    if launcher is not None:
        plan_extraction(request, root)  # bad input is one error line here, not one per worker
        raise typer.Exit(launch_torchrun(nproc, _worker_argv(ctx)))
    with RowProgress("extract") as progress:
        result = run_extraction(request, root, progress=progress.update)
    if not current().is_main:
        return  # rank 0 speaks for the whole group
    summary = {
        "command": "extract", "key": result.key, "path": str(result.path), "cache_hit": result.cache_hit,
        "model": request.model, "dataset": request.splits.dataset, "layers": result.layers,
        "rows": result.rows, "tokens": result.tokens, "seconds": round(result.seconds, 3),
        "tokens_per_second": round(result.tokens_per_second, 1), "resumed_rows": result.resumed_rows,
        "world_size": result.world_size,
    }
    if as_json:
        emit_json(summary)
    else:
        verb = "cache hit" if result.cache_hit else f"extracted {sum(result.rows.values())} rows"
        if result.world_size > 1:
            verb += f" on {result.world_size} processes"
        stderr.print(f"{verb}: {result.path} (layers {layer_summary(result.layers)})")


def _check_launcher(launcher: str | None, nproc: int | None) -> None:
    if launcher is None:
        raise UsageError("--nproc needs --launcher torchrun")
    if launcher not in LAUNCHERS:
        raise UsageError(f"unknown launcher '{launcher}'; use {' or '.join(LAUNCHERS)} "
                         "(or start w2sprobe under torchrun yourself)")
    if nproc is None:
        raise UsageError(f"--launcher {launcher} needs --nproc N")
    if env_world_size() > 1:
        raise UsageError("--launcher is for starting a run, not for a process torchrun already started")


def _worker_argv(ctx: typer.Context) -> list[str]:
    """This command line as the workers get it: every option given, minus the launcher's own."""
    argv = ["extract"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in ("launcher", "nproc") or value is None or value is False:
            continue
        argv += [param.opts[0]] if value is True else [param.opts[0], str(value)]
    return argv
