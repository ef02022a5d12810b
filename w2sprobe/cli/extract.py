"""``w2sprobe extract``: cache a model's per-layer activations for a dataset (one forward pass)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..options import Options
from .common import emit_json, layer_summary, open_study, request, show_plan, stderr
from .launch import relaunch_under_torchrun
from .params import DATA, Control, LauncherOpt, NprocOpt, options_command

EXTRACT = (
    "strong_model",
    "layers",
    "pooling",
    "max_length",
    "extract_batch_size",
    "dtype",
    "store_dtype",
    "compression",
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
    layers = _requested_layers(opts, layer)
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
