"""Label sets made from runs (the weak labels, a student's predictions for strong-to-strong),
and the check that a label set labels the rows of these splits.

Apart from the training stages (:mod:`.stages`) so that a probe on cached activations, which
reads label sets, imports no torch.
"""

from __future__ import annotations

from ..data import SplitSet
from ..errors import UsageError
from ..labels import LabelSet, lineage
from ..runs import RunRecord


def check_labels_match(labels: LabelSet, splits: SplitSet) -> None:
    """A label set must label rows of these very splits (same dataset, same ids)."""
    if labels.dataset != splits.dataset:
        raise UsageError(
            f"label set {labels.name} ({labels.key}) was made for dataset {labels.dataset}, "
            f"not {splits.dataset}"
        )
    for split in ("strong_train", "val"):
        if split in labels.ids:
            known = set(splits.splits[split].ids)
            stray = sum(1 for id_ in labels.ids[split].tolist() if id_ not in known)
            if stray:
                raise UsageError(
                    f"label set {labels.name} ({labels.key}) does not match {splits.dataset}'s "
                    f"splits: {stray} of its {len(labels.ids[split])} {split} ids are not there "
                    "(other split sizes or seed?)"
                )
    if "strong_train" not in labels.ids or not len(labels.ids["strong_train"]):
        raise UsageError(f"label set {labels.name} has no strong_train labels to train on")


def weak_label_set(run: RunRecord, dataset: str) -> LabelSet:
    """The weak model's predictions on strong_train, val and test, as the ``weak`` label set."""
    preds = run.predictions()
    manifest = {
        "kind": "weak",
        "run": run.key,
        "model": run.metrics["model"],
        "model_revision": run.metrics["model_revision"],
        "dataset_fingerprint": run.metrics["dataset_fingerprint"],
        "split_sizes": run.metrics["split_sizes"],
        "seed": run.metrics["seed"],
        "weak_run": run.key,
    }
    return LabelSet(
        "weak",
        dataset,
        {s: p.ids for s, p in preds.items()},
        {s: p.soft for s, p in preds.items()},
        manifest,
    )


def student_label_set(run: RunRecord, parent: LabelSet, name: str) -> LabelSet:
    """A student's predictions on strong_train and val as labels (strong-to-strong).

    Test stays the parent's.
    """
    preds = run.predictions()
    ids = {s: preds[s].ids for s in ("strong_train", "val")}
    soft = {s: preds[s].soft for s in ("strong_train", "val")}
    if "test" in parent.ids:
        ids["test"], soft["test"] = parent.ids["test"], parent.soft["test"]
    manifest = {
        "kind": "s2s",
        "run": run.key,
        "parent": parent.key,
        "parent_name": parent.name,
        **lineage(parent),
    }
    return LabelSet(name, parent.dataset, ids, soft, manifest)
