"""Parameter x layer grids of probe evaluations, read from the activation cache (no forward pass).

:meth:`w2sprobe.study.Study.sweep` is the graph node (keyed, cached, with ``--plan``); this
module holds what it computes: one tidy row per (layer, grid value).  The sweep's files are
written and read by their format's module, :mod:`w2sprobe.report.sweep_files`.
"""

from __future__ import annotations

from ..cache import ActivationStore
from ..errors import UsageError
from ..labels import LabelSet
from .experiment import ProbeSpec, evaluate_probe

#: What each row keeps of a probe evaluation's metrics.
ROW_METRICS = ("auc", "labels_auc", "auc_minus_labels_auc", "accuracy", "n", "train_n")


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


def sweep_layer(
    store: ActivationStore, labels: LabelSet, specs: list[ProbeSpec], param: str | None
) -> list[dict]:
    """One row per spec (one grid value each) on one layer: test AUC, the labels' AUC, the
    difference."""
    rows = []
    for spec in specs:
        metrics = evaluate_probe(store, labels, spec).metrics
        rows.append(
            {
                "dataset": labels.dataset,
                "probe": spec.name,
                "layer": spec.layer,
                **({param: getattr(spec.config, param)} if param else {}),
                "labels": labels.name,
                **{k: metrics.get(k) for k in ROW_METRICS},
            }
        )
    return rows
