"""``w2sprobe view``'s inputs, gathered from one dataset's study, and the view written.

strong_train as the cache holds it at the probe layer, and beside each row: its ground
truth, its label in ``--labels`` (default: the weak labels), the probe's out-of-sample score
(the ``<probe>-relabel@<labels>`` set: the same scores relabeling writes) and whether the
``<probe>-filter@<labels>`` set keeps it. Missing label sets and activations are built first,
as every command does. The math is :mod:`w2sprobe.views`.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .study import Study
from .views.build import AlignmentInputs, View, ViewInputs, compute_view
from .views.files import write_view
from .vocabulary import FILTER, RELABEL, WEAK, DerivedSet

SPLIT = "strong_train"
#: The held-out rows the ridge maps weak -> strong are scored on.
HELD_OUT = "test"


def gather_alignment(study: Study, strong) -> tuple[AlignmentInputs, object]:
    """The weak model's activations of every layer beside the strong file's (the weak model
    is extracted on the same splits when missing), and the weak store (the caller closes it)."""
    from .cache import ActivationStore, find_cached_layer

    plan = study.extraction(role=WEAK)  # --layers (all) of the weak model
    weak = ActivationStore.open(find_cached_layer(plan, plan.layers[0]))
    for split in (SPLIT, HELD_OUT):
        if weak.ids(split).tolist() != strong.ids(split).tolist():
            weak.close()
            raise UsageError(
                f"the weak and strong activation files hold other {split} rows; "
                "extract both on the same splits"
            )

    def layers(store, split):
        return {layer: store.get(split, layer) for layer in store.layers}

    alignment = AlignmentInputs(
        layers(weak, SPLIT),
        layers(strong, SPLIT),
        layers(weak, HELD_OUT),
        layers(strong, HELD_OUT),
        weak_model=study.options.model.weak_model,
    )
    return alignment, weak


def gather_view_inputs(study: Study):
    """strong_train's rows with every labeling the view colours them by (built when missing),
    and the open activation store they read (the caller closes it)."""
    opts = study.options
    probe, parent = opts.probe.probe, opts.probe.labels
    layer = study.probe_layer()
    labels = study.label_set(parent)
    relabeled = study.derived(DerivedSet(probe, RELABEL, parent))
    filtered = study.derived(DerivedSet(probe, FILTER, parent))
    store = study.store(layer)
    ids, truth = store.ids(SPLIT), store.labels(SPLIT)
    mask, weak = labels.align(SPLIT, ids)
    if not mask.all():
        raise UsageError(
            f"label set {labels.name} labels {int(mask.sum())} of {len(ids)} strong_train rows; "
            "the view needs a label on every row (a filtered set cannot be the parent)"
        )
    _, scores = relabeled.align(SPLIT, ids)
    kept, _ = filtered.align(SPLIT, ids)
    split = study.splits.splits[SPLIT]
    if list(split.ids) != ids.tolist():
        raise UsageError(
            f"the activation file's strong_train ids differ from the splits of these options; "
            f"{store.path.name} was made on other data"
        )
    inputs = ViewInputs(
        dataset=study.dataset,
        layer=layer,
        ids=ids,
        texts=list(split.texts),
        truth=truth,
        weak=weak,
        probe=scores,
        kept=kept,
        activations=lambda layer_: store.get(SPLIT, layer_),
        layers=store.layers,
        names={"weak": labels.name, "probe": relabeled.name, "filter": filtered.name},
    )
    return inputs, store


def build_view(
    study: Study,
    out: Path,
    method: str = "pca",
    top: int = 20,
    folds: int = 5,
    align: bool = False,
) -> tuple[View, dict]:
    """Gather, compute and write the view of ``study``'s dataset into ``out`` (``align``: also
    the weak model's activations against the strong ones)."""
    inputs, store = gather_view_inputs(study)
    seed = study.options.workspace.seed
    with store:
        weak = None
        if align:
            inputs.alignment, weak = gather_alignment(study, store)
        try:
            view = compute_view(inputs, method=method, seed=seed, top=top, folds=folds)
        finally:
            if weak is not None:
                weak.close()
    removed = ~inputs.kept
    summary = {
        "dataset": study.dataset,
        "layer": inputs.layer,
        "model": study.options.model.strong_model,
        "rows": int(len(inputs.ids)),
        "seed": seed,
        "label_sets": inputs.names,
        "weak_label_wrong": int(view.wrong.sum()),
        "filter_removed": int(removed.sum()),
        "filter_removed_wrong": int((removed & view.wrong).sum()),
        "top": top,
        "folds": folds,
    }
    return view, write_view(view, out, summary)


def default_out(dataset: str, layer: int) -> Path:
    """``views/<dataset>-layer<NNN>`` under the working directory."""
    return Path("views") / f"{dataset}-layer{layer:03d}"
