"""Display groups of experiments.

They are the blog's sections: losses, s2s, probe predictions, filter, relabel.

Experiment names are free strings (``knn-filter+logconf`` is valid), so a group is decided by
pattern, with the pipeline's own names first in a fixed order and anything unknown last.
"""

from __future__ import annotations

#: Groups in display order, with their members as the pipeline names them (display order too).
GROUPS: dict[str, tuple[str, ...]] = {
    "reference": ("weak", "ceiling"),
    "losses": ("xent", "kl", "logconf", "entropy", "window"),
    "s2s": ("s2s-1", "s2s-2"),
    "probe predictions": ("knn-probe", "logreg-probe", "topo-probe"),
    "filter": ("knn-filter", "logreg-filter", "topo-filter"),
    "relabel": ("knn-relabel", "logreg-relabel", "topo-relabel"),
    "other": (),
}
GROUP_TITLES = {
    "reference": "Weak and ceiling",
    "losses": "Loss functions",
    "s2s": "Strong-to-strong",
    "probe predictions": "Probe predictions",
    "filter": "Probe filtering",
    "relabel": "Probe relabeling",
    "other": "Other experiments",
}


def experiment_group(experiment: str) -> str:
    """The display group of an experiment name (``other`` when no pattern fits)."""
    for group, members in GROUPS.items():
        if experiment in members:
            return group
    # Filter/relabel before s2s and losses: "knn-filter+logconf" is a filter experiment first.
    if "-filter" in experiment or experiment.endswith("filter"):
        return "filter"
    if "-relabel" in experiment or experiment.endswith("relabel"):
        return "relabel"
    if experiment.endswith("-probe"):
        return "probe predictions"
    if experiment.startswith("s2s"):
        return "s2s"
    return "other"


def experiment_order(experiment: str) -> tuple[int, int, str]:
    """Sort key: by group, then the pipeline's order within it, then by name."""
    group = experiment_group(experiment)
    members = GROUPS[group]
    rank = members.index(experiment) if experiment in members else len(members)
    return list(GROUPS).index(group), rank, experiment
