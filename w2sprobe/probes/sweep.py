"""Parameter x layer grids of probe evaluations.

They are read from the activation cache (no forward pass).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError
from ..hashing import short_hash
from ..report.sweep_files import sweep_dir  # noqa: F401 - where sweeps go, owned by their writer

if TYPE_CHECKING:
    from ..study import Study

#: The parameter a sweep varies for each probe.
GRID_PARAM = {"knn": "k", "logreg": "l2", "topo": "k_zeta"}


def parse_grid(text: str | None, param: str, default) -> list:
    """``"5,10,25"`` -> [5, 10, 25] (floats for l2); no text -> just the configured value."""
    if text is None:
        return [default]
    cast = float if param == "l2" else int
    try:
        values = [cast(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"--{param.replace('_', '-')} grid must be comma-separated numbers; got '{text}'"
        ) from None
    if not values:
        raise UsageError(f"--{param.replace('_', '-')} grid is empty")
    return sorted(set(values))


def run_sweep(
    study: Study, probe: str, layers: list[int], param: str | None, grid: list
) -> list[dict]:
    """One tidy row per (layer, value): test AUC, the labels' AUC and the difference."""
    from .experiment import evaluate_probe
    from .inputs import probe_spec

    labels = study.label_set(study.options.probe.labels)
    plan = study.extraction(need=layers)
    sweep_key = short_hash(
        {
            "plan": plan.manifest,
            "probe": probe,
            "layers": layers,
            "param": param,
            "grid": grid,
            "labels": labels.key,
        }
    )
    rows = []
    for layer in layers:
        with study.store(layer) as store:
            for value in grid:
                spec = probe_spec(study.options, probe, layer, {param: value} if param else None)
                metrics = evaluate_probe(store, labels, spec).metrics
                rows.append(
                    {
                        "dataset": labels.dataset,
                        "probe": probe,
                        "layer": layer,
                        **({param: value} if param else {}),
                        "labels": labels.name,
                        **{
                            k: metrics.get(k)
                            for k in (
                                "auc",
                                "labels_auc",
                                "auc_minus_labels_auc",
                                "accuracy",
                                "n",
                                "train_n",
                            )
                        },
                        "sweep_key": sweep_key,
                    }
                )
    return rows
