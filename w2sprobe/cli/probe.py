"""``w2sprobe probe | filter | relabel | sweep``: probes on cached activations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..options import SPECS, Options
from .common import aligned, emit_json, fmt, open_study, request, show_plan, show_table, stdout
from .params import DATA, Control, group, options_command

ACTIVATIONS = (
    "strong_model",
    "weak_model",
    "layers",
    "pooling",
    "max_length",
    "extract_batch_size",
    "dtype",
)
PROBE = group("probe", without=("contamination",))
#: The shared training flags: they make the weak labels (a prerequisite of the default
#: --labels weak) and, with ``probe --pgr``, the ceiling; the same flags as ``run`` and
#: ``train`` take, so every command with the same flags addresses the same weak run and ceiling.
TRAINING = group("train")
FIELDS = DATA + ACTIVATIONS + PROBE + TRAINING
#: Here the training options only train prerequisites, when they must be built.
WEAK_ONLY = {
    "train": "Training of the weak model and ceiling (when --labels weak, or probe --pgr, "
    "must be built)"
}

PgrOpt = Annotated[
    bool,
    typer.Option(
        "--pgr",
        help="Build the ceiling when it is missing, for PGR [default: off: PGR is shown when the "
        "weak run and the ceiling are cached, else what PGR needs and the command that builds it]",
    ),
]

NameOpt = Annotated[
    Optional[str],
    typer.Option(
        "--name",
        metavar="TEXT",
        help="Name of the label set to write [default: <probe>-<kind>@<parent>, e.g. "
        "knn-relabel@weak]",
    ),
]


@options_command(FIELDS + ("min_gap",), graph=True, panels={**WEAK_ONLY, "min_gap": "Probes"})
def probe(opts: Options, ctl: Control, pgr: PgrOpt = False) -> None:
    """Fit a probe on strong_train against a label set; report its test AUC vs ground truth.

    The run (predictions, then metrics) is written to cache/runs/<dataset>/<key>/, where
    w2sprobe report reads it. No ceiling is trained unless --pgr asks for one.
    """
    from ..probes.inputs import check_probe
    from ..vocabulary import check_predicts

    check_predicts(opts.probe.probe)
    check_probe(opts, opts.probe.probe)  # a bad parameter or backend: before anything is made
    study = open_study(opts, ctl)
    study.build_ceiling = pgr
    run = request(lambda: study.probe_run(opts.probe.probe, opts.probe.labels, target=True))
    if ctl.plan:
        return show_plan(study.graph.outcomes, ctl.as_json, "probe")
    from ..pgr_rule import RECORDED, rejudged

    m = rejudged({**run.metrics, **study.probe_pgr(run)}, opts.report.min_gap)
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
                *RECORDED,
                "pgr_needs",
                "chosen",
                "layer_choice",
                "key",
                "probe_key",  # the fitted probe's cache entry: load_probe, w2sprobe apply
            )
        },
        "path": str(run.folder),
        "notes": study.notes,
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
            "probe_key",
        ),
    )
    _show_chosen(summary, ctl.as_json)
    if summary.get("pgr_needs") and not ctl.as_json:
        stdout.print(f"PGR: {summary['pgr_needs']}", highlight=False, soft_wrap=True, markup=False)


@options_command(FIELDS + ("contamination",), graph=True, panels=WEAK_ONLY)
def filter(opts: Options, ctl: Control, name: NameOpt = None) -> None:  # noqa: A001 - the command is filter
    """Write a label set without the rows the probe disagrees with most (train and val)."""
    from rich.table import Column, Table

    from ..vocabulary import FILTER

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
        # the fitted probe's cache entry (load_probe, w2sprobe apply); none for TopoFilter's
        # filter and the baselines, and for sets made before probes were saved
        "probe_key": labels.manifest.get("probe_key"),
        "contamination": labels.manifest.get("contamination"),
        "chosen": labels.manifest.get("chosen"),
        "layer_choice": labels.manifest.get("layer_choice"),
        "sizes": labels.sizes(),
        "report": report,
        "notes": study.notes,
    }
    if ctl.as_json:
        return emit_json(summary)
    # short headers and an unwrapped split column: the table fits 80 columns whole
    table = Table(
        Column("split", no_wrap=True),
        "before",
        "kept",
        "removed",
        "wrong removed",
        "precision",
        "mislabel rate",
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
    show_table(table)
    _show_probe_key(summary)
    _show_chosen(summary, False)
    if labels.manifest["probe"].get("uses_ground_truth"):
        stdout.print(
            f"{summary['probe']} uses ground truth: an upper bound for the filters, not a method",
            highlight=False,
        )


@options_command(FIELDS, graph=True, panels=WEAK_ONLY)
def relabel(opts: Options, ctl: Control, name: NameOpt = None) -> None:
    """Write a label set whose train and val labels are the probe's soft predictions."""
    from ..vocabulary import RELABEL

    labels, study = _derive(opts, ctl, RELABEL, name)
    if labels is None:
        return
    summary = {
        "command": "relabel",
        "label_set": labels.name,
        "key": labels.key,
        "parent": labels.manifest.get("parent_name"),
        **labels.manifest["probe"],
        # the fitted probe's cache entry (load_probe, w2sprobe apply); none for TopoFilter's
        # filter and the baselines, and for sets made before probes were saved
        "probe_key": labels.manifest.get("probe_key"),
        "chosen": labels.manifest.get("chosen"),
        "layer_choice": labels.manifest.get("layer_choice"),
        "sizes": labels.sizes(),
        "notes": study.notes,
    }
    _show_chosen(summary, ctl.as_json)
    _show_changes(summary, labels, study.label_set(opts.probe.labels), ctl.as_json)


def _derive(opts: Options, ctl: Control, derive: str, name: str | None):
    from ..errors import UsageError
    from ..probes.inputs import check_probe
    from ..study import check_label_set_name
    from ..vocabulary import DerivedSet, check_derive

    recipe = DerivedSet(opts.probe.probe, derive, opts.probe.labels)
    if name is not None and not name.strip():  # '' must not fall back to the default name
        raise UsageError(
            f"--name is empty; name the label set, or leave --name out for {recipe.name}"
        )
    check_derive(recipe.probe, derive)
    check_label_set_name(recipe.name if name is None else name)
    check_probe(opts, recipe.probe)  # a bad parameter or backend: before anything is made
    study = open_study(opts, ctl)
    labels = request(lambda: study.derived(recipe, name, target=True))
    if ctl.plan:
        show_plan(study.graph.outcomes, ctl.as_json, derive)
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

    from ..probes.choice import summary_line, sweep_choice
    from ..probes.inputs import check_probe
    from ..probes.sweep import parse_grid
    from ..report.sweep_files import write_sweep
    from ..vocabulary import check_predicts, probe_kind
    from ..workspace import check_out_dir

    name = opts.probe.probe
    check_predicts(name)
    param = probe_kind(name).grid_param
    grid_text = {"k": k, "l2": l2, "k_zeta": k_zeta}.get(param)
    grid = parse_grid(grid_text, param, default=getattr(opts.probe, param)) if param else [None]
    for value in grid:  # a bad parameter or backend: before anything is made
        check_probe(opts, name, **({param: value} if param else {}))
    if out:
        check_out_dir(Path(out), "sweep")
    study = open_study(opts, ctl)
    rows = request(lambda: study.sweep(name, layers, grid, target=True))
    if ctl.plan:
        return show_plan(study.graph.outcomes, ctl.as_json, "sweep")
    folder = Path(study.graph.outcomes[-1].metrics["path"])
    if out:  # a copy where the user asked, besides the cached one
        folder = Path(out)
        write_sweep(rows, folder, param or "layer")
    paths = {kind: folder / f"sweep.{kind}" for kind in ("csv", "json", "png")}
    choice = sweep_choice(rows, param)
    line = summary_line(choice, param, opts.probe.labels) if choice else None
    summary = {
        "command": "sweep",
        "probe": name,
        "param": param,
        "grid": grid,
        "layers": sorted({r["layer"] for r in rows}),
        "rows": rows,
        "choice": line,
        "files": {key: str(value) for key, value in paths.items()},
    }
    if ctl.as_json:
        return emit_json(summary)
    columns = [
        "layer",
        *([param] if param else []),
        "criterion",
        "auc",
        "labels_auc",
        "auc_minus_labels_auc",
    ]
    table = Table(*columns, "95% CI", "")
    for row in rows:
        ci = row.get("auc_low"), row.get("auc_high")
        marks = " ".join(
            word
            for key, word in (
                ("layer_choice", "chosen"),
                ("layer_hindsight", "hindsight"),
                ("chosen", "(overall)"),
            )
            if row.get(key)
        )
        table.add_row(
            *(fmt(row.get(c)) for c in columns),
            f"[{fmt(ci[0])}, {fmt(ci[1])}]" if None not in ci else "",
            marks,
        )
    show_table(table)
    if choice:
        stdout.print(
            f"criterion (lower is better, no test labels): {choice.criterion_name}; per layer, "
            "'chosen' = least criterion, 'hindsight' = best test AUC; (overall): the choice",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        stdout.print(line, highlight=False, soft_wrap=True, markup=False)
    stdout.print(f"table: {paths['csv']}  plot: {paths['png']}")


def _show_chosen(summary: dict, as_json: bool) -> None:
    """``--k auto`` / ``--l2 auto`` / ``--layer auto``: the value chosen and by which criterion
    (no ground truth); a chosen layer with every layer's score."""
    if as_json:
        return
    for chosen in (summary.get("layer_choice"), summary.get("chosen")):
        if not chosen:
            continue
        scores = ""
        if chosen["param"] == "layer":
            # numeric order: the scores' JSON keys are strings, and "10" sorts before "2"
            by_layer = sorted(chosen["scores"].items(), key=lambda item: int(item[0]))
            scores = "; " + ", ".join(f"layer {k}: {v:.4f}" for k, v in by_layer)
        stdout.print(
            f"chosen: {chosen['param']}={chosen['value']} ({chosen['criterion']}{scores})",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


def _show(summary: dict, as_json: bool, keys: tuple[str, ...]) -> None:
    if as_json:
        emit_json(summary)
        return
    from rich.table import Table

    from ..pgr_rule import show_pgr

    table = Table("", "")
    for key in keys:
        if key in summary:
            # PGR as every output shows it: flagged when the PGR rule says it is unstable
            table.add_row(key, show_pgr(summary, digits=4) if key == "pgr" else fmt(summary[key]))
    show_table(table)


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
    _show_probe_key(summary)


def _show_probe_key(summary: dict) -> None:
    """The saved probe a derived set was made with, when there is one."""
    if summary.get("probe_key"):
        stdout.print(f"probe_key {summary['probe_key']}", highlight=False, markup=False)
