"""``w2sprobe extract``: cache a model's per-layer activations for a dataset (one forward pass)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..options import Options
from .common import emit_json, layer_summary, open_study, request, show_plan, stderr
from .launch import relaunch_under_torchrun
from .params import DATA, Control, LauncherOpt, NprocOpt, options_command

#: --pool is extract's own option here: it takes a comma list (one pass, one file per pooling).
EXTRACT = (
    "strong_model",
    "layers",
    "max_length",
    "extract_batch_size",
    "dtype",
    "store_dtype",
    "compression",
    "tokens",
    "max_bytes",
)


@options_command(
    DATA + EXTRACT,
    graph=True,
    # here --layer is the one layer to cache, not the probe layer
    docs={"layer": ("One layer to cache, instead of --layers.", "none: --layers")},
    panels={"layer": "Extraction"},
)
def extract(
    opts: Options,
    ctl: Control,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            metavar="MODEL",
            help="Model to extract: alias, HF folder or hub id [default: the strong model, "
            "--strong]",
            rich_help_panel="Models",
        ),
    ] = None,
    layer: Annotated[
        Optional[int],
        typer.Option(
            "--layer",
            metavar="N",
            help=(
                "Extract this one layer (HF hidden_states numbering: 0 = embeddings, "
                "i = block i); instead of --layers"
            ),
            show_default=False,
        ),
    ] = None,
    pooling: Annotated[
        Optional[str],
        typer.Option(
            "--pool",
            metavar="[last|mean|first][,...]",
            help="Token pooling of the activations; a comma list (mean,last) caches each "
            "pooling's file from one forward pass [default: last for decoders, mean for "
            "encoders]",
            rich_help_panel="Extraction",
            show_default=False,
        ),
    ] = None,
    launcher: LauncherOpt = None,
    nproc: NprocOpt = None,
) -> None:
    """Run MODEL once over every split of DATASET and cache the requested layers in HDF5.

    --layer N extracts that layer; --layers takes a comma list or all (the default).
    Under torchrun the rows are split across the processes.
    """
    from ..distributed import current, shutdown, validate_launcher

    if model is not None:
        opts = opts.replace(strong_model=model)
    poolings = parse_poolings(pooling, opts.extract.pooling)
    if pooling is not None and len(poolings) == 1:
        opts = opts.replace(pooling=poolings[0])
        opts.sources["pooling"] = "command line"
    layers = _requested_layers(opts, layer)
    if len(poolings) > 1 or opts.extract.tokens:
        if launcher not in (None, "none"):
            raise UsageError("several poolings or --tokens run in one process; drop --launcher")
        _extract_pass(opts, ctl, layers, poolings)
        return
    if validate_launcher(launcher, nproc, opts.workspace.device):
        study = open_study(opts, ctl, quiet=True)
        study.extraction_plan(layers)  # bad input is one error line here, not one per worker
        relaunch_under_torchrun(ctl.context, nproc)
    study = open_study(opts, ctl)
    try:
        plan = request(lambda: study.extraction(layers, target=True))
        is_main = current().is_main
    finally:
        shutdown()  # under torchrun: leave the group cleanly before the process exits
    if ctl.plan:
        show_plan(study.graph.outcomes, ctl.as_json, "extract")
        return
    if not is_main:
        return  # rank 0 speaks for the whole group
    summary = {
        "command": "extract",
        **study.graph.outcomes[-1].metrics,
        "model": plan.ref.name,
        "dataset": study.dataset,
    }
    if ctl.as_json:
        emit_json(summary)
    else:
        verb = (
            "cache hit"
            if summary["cache_hit"]
            else f"extracted {sum(summary['rows'].values())} rows"
        )
        if summary["world_size"] > 1:
            verb += f" on {summary['world_size']} processes"
        stderr.print(
            f"{verb}: {summary['path']} (layers {layer_summary(summary['layers'])})",
            highlight=False,
            soft_wrap=True,  # the path stays whole, copyable
        )


def _requested_layers(opts: Options, layer: int | None) -> str | list[int]:
    """``--layer N`` -> [N]; otherwise ``--layers`` (default all)."""
    if layer is not None:
        if opts.sources.get("layers") == "command line":
            raise UsageError("give either --layer or --layers, not both")
        return [layer]
    return opts.extract.layers


def parse_poolings(text: str | None, configured: str | None) -> list[str | None]:
    """``--pool mean,last`` -> ["mean", "last"] (each checked, repeats dropped); without the
    option the configured pooling (None: the model's default)."""
    from ..pooling import POOLINGS

    if text is None or text.strip().lower() == "none":
        return [configured]
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("--pool is empty; give last, mean or first (or a comma list)")
    for name in names:
        if name not in POOLINGS:  # the wording of every other choice option's refusal
            raise UsageError(f"option --pool: '{name}' is not one of {', '.join(POOLINGS)}")
    return list(dict.fromkeys(names))


def _extract_pass(opts: Options, ctl: Control, layers, poolings: list[str | None]) -> None:
    """Several files from one forward pass: a file per pooling, and the token-level file."""
    study = open_study(opts, ctl)
    extract = opts.extract
    request(lambda: study.extraction_pass(layers, poolings, extract.tokens, extract.max_bytes))
    if ctl.plan:
        show_plan(study.graph.outcomes, ctl.as_json, "extract")
        return
    files = [{**o.metrics, "stage": o.stage} for o in study.graph.outcomes if o.metrics.get("path")]
    if ctl.as_json:
        model = opts.model.strong_model
        emit_json({"command": "extract", "model": model, "dataset": study.dataset, "files": files})
        return
    for info in files:
        verb = "cache hit" if info["cache_hit"] else f"extracted {sum(info['rows'].values())} rows"
        stderr.print(
            f"{verb}: {info['path']} ({info['stage']}, layers {layer_summary(info['layers'])})",
            highlight=False,
            soft_wrap=True,
        )
