"""How a derived label set differs from the set it was made from (what ``relabel`` reports).

Computed on the ids both sets label, per split: how many hard labels flipped (a label above
0.5 is the positive class, as in :mod:`w2sprobe.metrics`), the mean absolute change of the
soft labels, and the class balance before and after.  Nothing here is stored: a set's key
hashes its manifest, so adding numbers to it would change the keys of sets already made.
"""

from __future__ import annotations

import numpy as np

from .labels import LabelSet


def label_changes(new: LabelSet, parent: LabelSet) -> dict[str, dict]:
    """Per split that both label: ``n`` shared ids, ``changed`` hard labels (and
    ``changed_fraction``), ``mean_abs_change`` of the soft labels, ``positive_before`` /
    ``positive_after`` (fraction of the positive class) and ``mean_before`` / ``mean_after``
    (mean soft label)."""
    changes: dict[str, dict] = {}
    for split in new.splits:
        if split not in parent.ids:
            continue
        position = {id_: i for i, id_ in enumerate(parent.ids[split].tolist())}
        pairs = [
            (i, position[id_]) for i, id_ in enumerate(new.ids[split].tolist()) if id_ in position
        ]
        if not pairs:
            continue
        after = new.soft[split][[i for i, _ in pairs]].astype(np.float64)
        before = parent.soft[split][[j for _, j in pairs]].astype(np.float64)
        flipped = (after > 0.5) != (before > 0.5)
        changes[split] = {
            "n": len(pairs),
            "changed": int(flipped.sum()),
            "changed_fraction": float(flipped.mean()),
            "mean_abs_change": float(np.abs(after - before).mean()),
            "positive_before": float((before > 0.5).mean()),
            "positive_after": float((after > 0.5).mean()),
            "mean_before": float(before.mean()),
            "mean_after": float(after.mean()),
        }
    return changes
