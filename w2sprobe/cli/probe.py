"""``w2sprobe probe | filter | relabel | sweep``: probes on cached activations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..config import Settings
from ..labels import save_label_set
from ..models import set_cpu_threads
from ..probes.experiment import evaluate_probe, filter_label_set, relabel_label_set
from ..probes.inputs import activation_plan, load_labels, open_store, probe_spec, resolve_layers
from ..probes.results import save_probe_outcome, write_sweep
from ..workspace import ensure_writable_dir, resolve_cache_dir
from .common import (
    CacheDirOpt, ConfigOpt, DataDirOpt, DatasetOpt, DeviceOpt, JsonOpt, LabelFieldOpt, NTestOpt, NTrainOpt,
    NValOpt, SeedOpt, TextFieldOpt, emit_json, settings_from, stdout,
)

ProbeOpt = Annotated[Optional[str], typer.Option("--probe", help="knn | logreg | topo (default knn).")]
LayerOpt = Annotated[Optional[int], typer.Option("--layer", help="Layer to probe (default (L+1)//2).")]
LabelsOpt = Annotated[Optional[str], typer.Option("--labels", help="Label set name or key to fit on (default weak; gt = ground truth).")]
KOpt = Annotated[Optional[int], typer.Option("--k", help="kNN neighbours (50).")]
MetricOpt = Annotated[Optional[str], typer.Option("--metric", help="euclidean | cosine (kNN, TopoFilter).")]
BackendOpt = Annotated[Optional[str], typer.Option("--knn-backend", help="auto | torch | faiss | cuml.")]
L2Opt = Annotated[Optional[float], typer.Option("--l2", help="Logistic L2 penalty (1e-2).")]
StandardizeOpt = Annotated[Optional[bool], typer.Option("--standardize/--no-standardize", help="Standardise features (logreg).")]
KccOpt = Annotated[Optional[int], typer.Option("--k-cc", help="TopoFilter graph neighbours (50).")]
KzetaOpt = Annotated[Optional[int], typer.Option("--k-zeta", help="TopoFilter label neighbours (50).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="Strong model whose activations to probe (default strong_model).")]
PoolOpt = Annotated[Optional[str], typer.Option("--pool", help="Pooling the activations were extracted with.")]
MaxLenOpt = Annotated[Optional[int], typer.Option("--max-length", help="Max length the activations were extracted with.")]
DtypeOpt = Annotated[Optional[str], typer.Option("--dtype", help="Compute dtype the activations were extracted with.")]
NameOpt = Annotated[Optional[str], typer.Option("--name", help="Name of the label set to write (default <probe>-<kind>).")]


def _settings(config: Optional[str], **cli: Any) -> tuple[Settings, Path]:
    """Resolved options and the (writable) workspace root."""
    settings = settings_from(config, **cli)
    set_cpu_threads()
    return settings, ensure_writable_dir(resolve_cache_dir(settings["cache_dir"]))


def _single(settings: Settings, root: Path):
    plan = activation_plan(settings, root)
    layer = resolve_layers(plan, settings["layer"])[0]
    store = open_store(plan, layer)
    return store, load_labels(settings, store, root), probe_spec(settings, settings["probe"], layer)


def probe(
    probe: ProbeOpt = None, layer: LayerOpt = None, labels: LabelsOpt = None, k: KOpt = None,
    metric: MetricOpt = None, knn_backend: BackendOpt = None, l2: L2Opt = None, standardize: StandardizeOpt = None,
    k_cc: KccOpt = None, k_zeta: KzetaOpt = None, model: ModelOpt = None, dataset: DatasetOpt = None,
    pool: PoolOpt = None, max_length: MaxLenOpt = None, dtype: DtypeOpt = None, data_dir: DataDirOpt = None,
    text_field: TextFieldOpt = None, label_field: LabelFieldOpt = None, n_train: NTrainOpt = None,
    n_val: NValOpt = None, n_test: NTestOpt = None, cache_dir: CacheDirOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = None, as_json: JsonOpt = False, config: ConfigOpt = None,
) -> None:
    """Fit a probe on strong_train against a label set; report test AUC vs ground truth."""
    settings, root = _settings(**locals_of(locals()))
    store, label_set, spec = _single(settings, root)
    with store:
        outcome = evaluate_probe(store, label_set, spec)
        folder = save_probe_outcome(outcome, label_set, store.manifest, root)
    summary = {"command": "probe", "dataset": label_set.dataset, "labels": label_set.name,
               **spec.describe(), **outcome.metrics, "path": str(folder)}
    _show(summary, as_json, ("probe", "layer", "labels", "auc", "labels_auc", "auc_minus_labels_auc", "accuracy", "n"))


def filter(  # noqa: A001 - the command is called filter
    probe: ProbeOpt = None, contamination: Annotated[Optional[float], typer.Option(
        "--contamination", help="Fraction of train and val to drop (0.1).")] = None,
    name: NameOpt = None, layer: LayerOpt = None, labels: LabelsOpt = None, k: KOpt = None,
    metric: MetricOpt = None, knn_backend: BackendOpt = None, l2: L2Opt = None, standardize: StandardizeOpt = None,
    k_cc: KccOpt = None, k_zeta: KzetaOpt = None, model: ModelOpt = None, dataset: DatasetOpt = None,
    pool: PoolOpt = None, max_length: MaxLenOpt = None, dtype: DtypeOpt = None, data_dir: DataDirOpt = None,
    text_field: TextFieldOpt = None, label_field: LabelFieldOpt = None, n_train: NTrainOpt = None,
    n_val: NValOpt = None, n_test: NTestOpt = None, cache_dir: CacheDirOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = None, as_json: JsonOpt = False, config: ConfigOpt = None,
) -> None:
    """Write a label set without the rows the probe disagrees with most (train and val)."""
    settings, root = _settings(**locals_of(locals(), skip=("name",)))
    store, label_set, spec = _single(settings, root)
    with store:
        outcome = filter_label_set(store, label_set, spec, float(settings["contamination"]),
                                   name or f"{spec.name}-filter")
    folder = save_label_set(outcome.labels, root)
    summary = {"command": "filter", "label_set": outcome.labels.name, "key": outcome.labels.key,
               "path": str(folder), "parent": label_set.name, **spec.describe(),
               "contamination": settings["contamination"], "sizes": outcome.labels.sizes(), "report": outcome.report}
    if as_json:
        emit_json(summary)
        return
    table = Table("split", "before", "kept", "removed", "mislabeled removed", "precision", "mislabel rate before → after")
    for split, r in outcome.report.items():
        table.add_row(split, str(r["before"]), str(r["kept"]), str(r["removed"]),
                      f"{r['mislabeled_removed']}/{r['mislabeled_before']}", f"{r['precision']:.3f}",
                      f"{r['mislabel_rate_before']:.3f} → {r['mislabel_rate_after']:.3f}")
    stdout.print(f"label set {outcome.labels.name} ({outcome.labels.key}) at {folder}")
    stdout.print(table)


def relabel(
    probe: ProbeOpt = None, name: NameOpt = None, layer: LayerOpt = None, labels: LabelsOpt = None, k: KOpt = None,
    metric: MetricOpt = None, knn_backend: BackendOpt = None, l2: L2Opt = None, standardize: StandardizeOpt = None,
    k_cc: KccOpt = None, k_zeta: KzetaOpt = None, model: ModelOpt = None, dataset: DatasetOpt = None,
    pool: PoolOpt = None, max_length: MaxLenOpt = None, dtype: DtypeOpt = None, data_dir: DataDirOpt = None,
    text_field: TextFieldOpt = None, label_field: LabelFieldOpt = None, n_train: NTrainOpt = None,
    n_val: NValOpt = None, n_test: NTestOpt = None, cache_dir: CacheDirOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = None, as_json: JsonOpt = False, config: ConfigOpt = None,
) -> None:
    """Write a label set whose train and val labels are the probe's soft predictions."""
    settings, root = _settings(**locals_of(locals(), skip=("name",)))
    store, label_set, spec = _single(settings, root)
    with store:
        new = relabel_label_set(store, label_set, spec, name or f"{spec.name}-relabel")
    folder = save_label_set(new, root)
    summary = {"command": "relabel", "label_set": new.name, "key": new.key, "path": str(folder),
               "parent": label_set.name, **spec.describe(), "sizes": new.sizes()}
    _show(summary, as_json, ("label_set", "key", "parent", "probe", "layer", "sizes", "path"))


def sweep(
    probe: ProbeOpt = None,
    layers: Annotated[Optional[str], typer.Option("--layers", help="Comma list and/or 'all' (every cached layer).")] = None,
    k: Annotated[Optional[str], typer.Option("--k", help="kNN k grid, e.g. 5,10,25,50,100,200.")] = None,
    l2: Annotated[Optional[str], typer.Option("--l2", help="Logistic L2 grid, e.g. 1e-4,1e-3,1e-2,1e-1.")] = None,
    k_zeta: Annotated[Optional[str], typer.Option("--k-zeta", help="TopoFilter k_zeta grid.")] = None,
    out: Annotated[Optional[str], typer.Option("--out", help="Folder for sweep.csv/json/png (default in the cache).")] = None,
    labels: LabelsOpt = None, metric: MetricOpt = None, knn_backend: BackendOpt = None,
    standardize: StandardizeOpt = None, model: ModelOpt = None, dataset: DatasetOpt = None,
    pool: PoolOpt = None, max_length: MaxLenOpt = None, dtype: DtypeOpt = None, data_dir: DataDirOpt = None,
    text_field: TextFieldOpt = None, label_field: LabelFieldOpt = None, n_train: NTrainOpt = None,
    n_val: NValOpt = None, n_test: NTestOpt = None, cache_dir: CacheDirOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = None, as_json: JsonOpt = False, config: ConfigOpt = None,
) -> None:
    """Evaluate a probe over a parameter grid and layers from the cache: table + plot."""
    from ..probes.sweep import GRID_PARAM, parse_grid, run_sweep

    settings, root = _settings(**locals_of(locals(), skip=("layers", "k", "l2", "k_zeta", "out")))
    name = settings["probe"]
    param = GRID_PARAM.get(name)
    grid_text = {"k": k, "l2": l2, "k_zeta": k_zeta}.get(param)
    grid = parse_grid(grid_text, param, default=settings[param]) if param else [None]
    plan = activation_plan(settings, root)
    layer_list = resolve_layers(plan, layers if layers is not None else settings["layer"])
    rows = run_sweep(settings, plan, root, name, layer_list, param, grid)
    out_dir = Path(out) if out else root / "sweeps" / rows[0]["dataset"] / rows[0]["sweep_key"]
    paths = write_sweep(rows, out_dir, param or "layer")
    summary = {"command": "sweep", "probe": name, "param": param, "grid": grid, "layers": layer_list,
               "rows": rows, "files": {k: str(v) for k, v in paths.items()}}
    if as_json:
        emit_json(summary)
        return
    columns = ["layer", *([param] if param else []), "auc", "labels_auc", "auc_minus_labels_auc"]
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    stdout.print(table)
    stdout.print(f"table: {paths['csv']}  plot: {paths['png']}")


def locals_of(values: dict, skip: tuple[str, ...] = ()) -> dict:
    """Command parameters as settings keys (CLI-only parameters removed)."""
    renamed = {"model": "strong_model", "pool": "pooling"}
    drop = {"as_json", *skip}
    out = {renamed.get(k, k): v for k, v in values.items() if k not in drop}
    return {"config": out.pop("config"), **out}


def _show(summary: dict, as_json: bool, keys: tuple[str, ...]) -> None:
    if as_json:
        emit_json(summary)
        return
    table = Table("", "")
    for key in keys:
        if key in summary:
            table.add_row(key, _fmt(summary[key]))
    stdout.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)

