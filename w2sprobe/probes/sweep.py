"""Parameter x layer grids of probe evaluations, read from the activation cache (no forward pass).

:meth:`w2sprobe.study.Study.sweep` is the graph node (keyed, cached, with ``--plan``); this
module holds what it computes: one tidy row per (layer, grid value), with the two numbers a
choice needs kept apart -- the *weak-label criterion* on strong_train that the choice is made
by (:func:`w2sprobe.probes.auto.criteria`, the one ``--k/--l2/--layer auto`` minimise) and the
test AUC with its 95 % bootstrap CI (the report's resamples of the sorted test ids), which only
shows what the choice achieved (:mod:`.choice`).  The sweep's files are written and read by
their format's module, :mod:`w2sprobe.report.sweep_files`.
"""

from __future__ import annotations

from ..cache import ActivationStore
from ..errors import UsageError
from ..labels import LabelSet
from .choice import AUC_HIGH, AUC_LOW
from .experiment import ProbeSpec, evaluate_probe, training_data

#: What each row keeps of a probe evaluation's metrics.
ROW_METRICS = ("auc", "labels_auc", "auc_minus_labels_auc", "accuracy", "n", "train_n")
#: What a sweep's rows hold; part of its cache key, so a sweep made before the rows held the
#: criterion and the CI is made again rather than read (the report still reads old ones).
ROW_FORMAT = 2


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
    """One row per spec (one grid value each) on one layer: the weak-label criterion on
    strong_train, test AUC with its bootstrap CI, the labels' AUC, the difference."""
    from ..report.stats import auc_ci
    from .auto import criteria

    if not specs:
        return []
    acts, soft, _ = training_data(store, labels, specs[0].layer)
    scores = criteria([spec.config for spec in specs], acts, soft, specs[0].device)
    truth, test_ids = store.labels("test"), store.ids("test")
    rows = []
    for spec, score in zip(specs, scores):
        outcome = evaluate_probe(store, labels, spec)
        metrics = outcome.metrics
        ci = auc_ci(test_ids, truth, outcome.predictions["test"])
        rows.append(
            {
                "dataset": labels.dataset,
                "probe": spec.name,
                "layer": spec.layer,
                **({param: getattr(spec.config, param)} if param else {}),
                "labels": labels.name,
                **{k: metrics.get(k) for k in ROW_METRICS},
                AUC_LOW: ci[0] if ci else None,
                AUC_HIGH: ci[1] if ci else None,
                **{k: v for k, v in score.items() if k != "chosen"},
            }
        )
    return rows
