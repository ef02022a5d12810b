"""``w2sprobe extract``: cache a model's per-layer activations for a dataset (one forward pass)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..options import Options
from .common import emit_json, layer_summary, open_study, request, show_plan, stderr
from .params import DATA, Control, LauncherOpt, NprocOpt, options_command

EXTRACT = (
    "strong_model",
    "layer",
    "layers",
    "pooling",
    "max_length",
    "extract_batch_size",
    "dtype",
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
    launcher: LauncherOpt = None,
    nproc: NprocOpt = None,
) -> None:
    """Run MODEL once over every split of DATASET and cache the requested layers in HDF5.

    --layer N extracts that layer (HF hidden_states numbering: 0 = embeddings, i = block i);
    --layers takes a comma list or all. Under torchrun the rows are split across the processes.
    """
    from ..distributed import current, launch_torchrun, shutdown, validate_launcher

    if model is not None:
        opts = opts.replace(strong_model=model)
    layers = _requested_layers(opts)
    if validate_launcher(launcher, nproc, opts.workspace.device):
        study = open_study(opts, ctl, quiet=True)
        study.extraction_plan(layers)  # bad input is one error line here, not one per worker
        raise typer.Exit(
            launch_torchrun(nproc, worker_argv(ctl.context, drop=("launcher", "nproc")))
        )
    study = open_study(opts, ctl)
    try:
        plan = request(study, "extract", lambda: study.extraction(layers))
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


def _requested_layers(opts: Options) -> str | list[int]:
    """``--layer N`` alone -> [N]; otherwise ``--layers`` (default all)."""
    layer_given = opts.sources.get("layer") == "command line"
    layers_given = opts.sources.get("layers") == "command line"
    if layer_given and layers_given:
        raise UsageError("give either --layer or --layers, not both")
    if layer_given:
        return [opts.probe.layer]
    return opts.extract.layers if layers_given or opts.sources.get("layers") != "default" else None


def worker_argv(ctx: typer.Context, drop: tuple[str, ...]) -> list[str]:
    """This command line as torchrun workers get it: what the user typed, minus ``drop``.

    Options from the config file or environment are not repeated: the workers read them the
    same way.
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
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv += [param.opts[0], str(item)]
        else:
            argv += [param.opts[0], str(value)]
    return argv
