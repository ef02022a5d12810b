"""``w2sprobe probe | filter | relabel | sweep``: probes on cached activations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..options import SPECS, Options
from .common import aligned, emit_json, fmt, open_study, request, show_plan, stdout
from .params import DATA, Control, options_command

ACTIVATIONS = (
    "strong_model",
    "weak_model",
    "layers",
    "pooling",
    "max_length",
    "extract_batch_size",
    "dtype",
)
PROBE = (
    "probe",
    "layer",
    "labels",
    "k",
    "metric",
    "knn_backend",
    "l2",
    "standardize",
    "k_cc",
    "k_zeta",
)
#: What building the weak labels (a prerequisite of the default --labels weak) reads.
WEAK_TRAINING = ("weak_lr", "epochs", "batch_size", "minibatch", "warmup_steps", "eval_every")
FIELDS = DATA + ACTIVATIONS + PROBE + WEAK_TRAINING
#: Here the training options only train the weak model, when --labels weak must be built.
WEAK_ONLY = {"train": "Training of the weak model (when --labels weak must be built)"}

NameOpt = Annotated[
    Optional[str],
    typer.Option(
        "--name",
        metavar="TEXT",
        help="Name of the label set to write [default: <probe>-<kind>@<parent>, e.g. "
        "knn-relabel@weak]",
    ),
]


@options_command(FIELDS, graph=True, panels=WEAK_ONLY)
def probe(opts: Options, ctl: Control) -> None:
    """Fit a probe on strong_train against a label set; report its test AUC vs ground truth.

    The run (predictions, then metrics) is written to cache/runs/<dataset>/<key>/, where
    w2sprobe report reads it.
    """
    study = open_study(opts, ctl)
    name = opts.probe.probe
    labels = opts.probe.labels
    stage = f"{name}-probe" if labels == "weak" else f"{name}-probe@{labels}"
    run = request(study, stage, lambda: study.probe_run(name, labels))
    if ctl.plan:
        return show_plan(study.graph.outcomes, ctl.as_json, "probe")
    m = run.metrics
    summary = {
        "command": "probe",
        "dataset": study.dataset,
        "labels": m["labels"],
        **m["probe"],
        **{
            k: m.get(k)
            for k in (
                "auc",
                "accuracy",
                "n",
                "train_n",
                "labels_auc",
                "auc_minus_labels_auc",
                "pgr",
                "key",
            )
        },
        "path": str(run.folder),
    }
    _show(
        summary,
        ctl.as_json,
        (
            "probe",
            "layer",
            "labels",
            "auc",
            "labels_auc",
            "auc_minus_labels_auc",
            "accuracy",
            "n",
            "pgr",
            "path",
        ),
    )


@options_command(FIELDS + ("contamination",), graph=True, panels=WEAK_ONLY)
def filter(opts: Options, ctl: Control, name: NameOpt = None) -> None:  # noqa: A001 - the command is filter
    """Write a label set without the rows the probe disagrees with most (train and val)."""
    from rich.table import Table

    from ..study import FILTER

    labels, study = _derive(opts, ctl, FILTER, name)
    if labels is None:
        return
    report = labels.manifest.get("report", {})
    summary = {
        "command": "filter",
        "label_set": labels.name,
        "key": labels.key,
        "parent": labels.manifest.get("parent_name"),
        **labels.manifest["probe"],
        "contamination": labels.manifest.get("contamination"),
        "sizes": labels.sizes(),
        "report": report,
    }
    if ctl.as_json:
        return emit_json(summary)
    table = Table(
        "split",
        "before",
        "kept",
        "removed",
        "mislabeled removed",
        "precision",
        "mislabel rate before → after",
    )
    for split, r in report.items():
        table.add_row(
            split,
            str(r["before"]),
            str(r["kept"]),
            str(r["removed"]),
            f"{r['mislabeled_removed']}/{r['mislabeled_before']}",
            fmt(r["precision"]),
            f"{r['mislabel_rate_before']:.3f} → {r['mislabel_rate_after']:.3f}",
        )
    stdout.print(f"label set {labels.name} ({labels.key})")
    stdout.print(table)


@options_command(FIELDS, graph=True, panels=WEAK_ONLY)
def relabel(opts: Options, ctl: Control, name: NameOpt = None) -> None:
    """Write a label set whose train and val labels are the probe's soft predictions."""
    from ..study import RELABEL

    labels, study = _derive(opts, ctl, RELABEL, name)
    if labels is None:
        return
    summary = {
        "command": "relabel",
        "label_set": labels.name,
        "key": labels.key,
        "parent": labels.manifest.get("parent_name"),
        **labels.manifest["probe"],
        "sizes": labels.sizes(),
    }
    _show_changes(summary, labels, study.label_set(opts.probe.labels), ctl.as_json)


def _derive(opts: Options, ctl: Control, kind: str, name: str | None):
    from ..study import LabelRecipe, check_label_set_name

    recipe = LabelRecipe(kind, opts.probe.probe, opts.probe.labels, name)
    check_label_set_name(recipe.name or recipe.default_name)
    study = open_study(opts, ctl)
    labels = request(
        study, f"labels:{recipe.name or recipe.default_name}", lambda: study.derived(recipe)
    )
    if ctl.plan:
        show_plan(study.graph.outcomes, ctl.as_json, kind)
        return None, study
    return labels, study


@options_command(
    tuple(f for f in FIELDS if f not in ("k", "l2", "k_zeta", "layer", "layers")),
    graph=True,
    panels=WEAK_ONLY,
)
def sweep(
    opts: Options,
    ctl: Control,
    k: Annotated[
        Optional[str],
        typer.Option(
            "--k",
            metavar="INTEGERS",
            help="kNN k grid, e.g. 5,10,25,50,100,200 [default: one point, k of the config "
            f"file or preset, else {SPECS['k'].default_text()}]",
            rich_help_panel="Probes",
        ),
    ] = None,
    l2: Annotated[
        Optional[str],
        typer.Option(
            "--l2",
            metavar="FLOATS",
            help="Logistic L2 grid, e.g. 1e-4,1e-3,1e-2 [default: one point, l2 of the "
            f"config file or preset, else {SPECS['l2'].default_text()}]",
            rich_help_panel="Probes",
        ),
    ] = None,
    k_zeta: Annotated[
        Optional[str],
        typer.Option(
            "--k-zeta",
            metavar="INTEGERS",
            help="TopoFilter k_zeta grid, e.g. 10,25,50 [default: one point, k_zeta of the "
            f"config file or preset, else {SPECS['k_zeta'].default_text()}]",
            rich_help_panel="Probes",
        ),
    ] = None,
    layers: Annotated[
        Optional[str],
        typer.Option(
            "--layers",
            metavar="LAYERS",
            help=(
                "Layers to sweep: comma list and/or all "
                "(here: every cached layer; missing ones are extracted) "
                "[default: the probe layer: layer of the config file or preset, else (L+1)//2]"
            ),
            rich_help_panel="Probes",
        ),
    ] = None,
    out: Annotated[
        Optional[str],
        typer.Option(
            "--out",
            metavar="DIR",
            help=("Folder for sweep.csv/json/png [default: <cache>/sweeps/<dataset>/<key>]"),
        ),
    ] = None,
) -> None:
    """Evaluate a probe over a parameter grid and layers from the cache: table + plot."""
    from rich.table import Table

    from ..probes.inputs import check_probe
    from ..probes.results import write_sweep
    from ..probes.sweep import GRID_PARAM, parse_grid, run_sweep, sweep_dir

    name = opts.probe.probe
    param = GRID_PARAM.get(name)
    grid_text = {"k": k, "l2": l2, "k_zeta": k_zeta}.get(param)
    grid = parse_grid(grid_text, param, default=getattr(opts.probe, param)) if param else [None]
    for value in grid:
        check_probe(opts, name, {param: value} if param else None)
    study = open_study(opts, ctl)
    rows = request(
        study, "sweep", lambda: run_sweep(study, name, study.probe_layers(layers), param, grid)
    )
    if ctl.plan:
        return show_plan(study.graph.outcomes, ctl.as_json, "sweep")
    out_dir = Path(out) if out else sweep_dir(opts.cache_dir, study.dataset, rows[0]["sweep_key"])
    paths = write_sweep(rows, out_dir, param or "layer")
    summary = {
        "command": "sweep",
        "probe": name,
        "param": param,
        "grid": grid,
        "layers": sorted({r["layer"] for r in rows}),
        "rows": rows,
        "files": {key: str(value) for key, value in paths.items()},
    }
    if ctl.as_json:
        return emit_json(summary)
    columns = ["layer", *([param] if param else []), "auc", "labels_auc", "auc_minus_labels_auc"]
    table = Table(*columns)
    for row in rows:
        table.add_row(*(fmt(row.get(c)) for c in columns))
    stdout.print(table)
    stdout.print(f"table: {paths['csv']}  plot: {paths['png']}")


def _show(summary: dict, as_json: bool, keys: tuple[str, ...]) -> None:
    if as_json:
        emit_json(summary)
        return
    from rich.table import Table

    table = Table("", "")
    for key in keys:
        if key in summary:
            table.add_row(key, fmt(summary[key]))
    stdout.print(table)


def _show_changes(summary: dict, labels, parent, as_json: bool) -> None:
    """relabel's result: the set, and per split how its labels differ from its parent's (the
    numbers are :func:`w2sprobe.labels.label_changes`'), as a table or in the JSON object."""
    from ..labels import label_changes

    changes = label_changes(labels, parent)
    summary = {**summary, "parent_key": labels.manifest.get("parent"), "changes": changes}
    if as_json:
        return emit_json(summary)
    probe = labels.manifest["probe"]
    params = " ".join(
        f"{k}={v}" for k, v in probe.items() if k not in ("probe", "layer", "backend")
    )
    stdout.print(
        f"label set {labels.name} ({labels.key}): {summary['parent']} "
        f"({(summary['parent_key'] or '?')[:8]}) relabeled by {probe.get('probe')} {params} "
        f"on layer {probe.get('layer')}",
        highlight=False,
        soft_wrap=True,
    )
    rows = [
        [
            split,
            str(c["n"]),
            f"{c['changed']} ({c['changed_fraction']:.1%})",
            f"{c['mean_abs_change']:.3f}",
            f"{c['positive_before']:.1%} → {c['positive_after']:.1%}",
        ]
        for split, c in changes.items()
    ]
    headers = ["split", "ids", "labels changed", "mean |change|", "positive before → after"]
    stdout.print(aligned(headers, rows, right=(1, 2, 3)), markup=False, highlight=False)
