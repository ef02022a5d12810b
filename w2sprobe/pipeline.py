"""The study plan of ``w2sprobe run``: which experiments, in which order, on which worker.

Per dataset and seed the plan asks the :class:`~w2sprobe.study.Study` for: ``weak``,
``ceiling``, a student per loss, the strong-to-strong iterations of the xent student, the
activation file, the probes' own predictions, and a student on each probe-filtered and
probe-relabeled label set.  Every one is a node of the artifact graph, cached by its key, so a
rerun trains nothing; a failing dataset is recorded and the next one runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UsageError, first_line
from .graph import Blocked, Graph, Mode, NodeOutcome, Reporter, deal, parse_shard
from .options import Options
from .study import Study
from .vocabulary import (
    CEILING,
    LOSSES,
    RUN_EXPERIMENTS,
    RUN_GROUPS,
    S2S,
    WEAK,
    parse_experiment,
    s2s_experiment,
)

__all__ = [
    "DatasetResult",
    "NodeOutcome",
    "Reporter",
    "parse_experiments",
    "parse_shard",
    "run_plan",
    "stage_names",
]


def parse_experiments(items: list[str] | str) -> list[str]:
    """``all``, groups and experiment names -> ordered names (weak and ceiling always).

    Any name of the vocabulary's grammar is an experiment (``knn-relabel+logconf``,
    ``logreg-probe@gt``); the study's own come first in their plan order, others after them in
    the order given.
    """
    items = items.split(",") if isinstance(items, str) else items
    chosen: list[str] = [WEAK, CEILING]
    for item in (str(i).strip() for i in items if str(i).strip()):
        if item == "all":
            names = RUN_EXPERIMENTS
        elif item in RUN_GROUPS:
            names = RUN_GROUPS[item]
        elif item == S2S:
            names = (S2S,)
        else:
            parse_experiment(item)  # a UsageError naming the grammar when it is none
            names = (item,)
        chosen += [name for name in names if name not in chosen]
    known = [name for name in RUN_EXPERIMENTS if name in chosen]
    return known + [name for name in chosen if name not in known]


def stage_names(experiments: list[str], s2s_iters: int) -> list[str]:
    """The stages of one dataset, in an order where every prerequisite comes first."""
    names = [WEAK, CEILING]
    names += [
        loss for loss in LOSSES if loss in experiments or (loss == "xent" and S2S in experiments)
    ]
    if S2S in experiments:
        names += [s2s_experiment(i) for i in range(1, s2s_iters + 1)]
    # No extraction stage of its own: a probe stage asks for the activations when its result is
    # not cached, so a workspace whose activation files were deleted reads its finished probes
    # and label sets instead of extracting again.
    return names + [name for name in experiments if name not in names and name != S2S]


@dataclass
class DatasetResult:
    dataset: str
    seed: int
    stages: list[NodeOutcome]
    error: str | None = None
    #: What the study chose other than the options say (a fallback), in its words.
    notes: list[str] = field(default_factory=list)


def check_plan(options: Options) -> tuple[list[str], list[int], list[str]]:
    """(datasets, seeds, stage names), each checked before any work starts."""
    from .study import check_datasets

    datasets = check_datasets(options)
    seeds = sorted(set(options.run.seeds)) or [options.workspace.seed]
    if min(seeds) < 0:
        raise UsageError(f"--seeds must be non-negative integers, got {options.run.seeds}")
    if options.train.s2s_iters < 0:
        raise UsageError(f"--s2s-iters must be >= 0, got {options.train.s2s_iters}")
    names = stage_names(parse_experiments(options.run.experiments), options.train.s2s_iters)
    return datasets, seeds, names


def run_plan(
    options: Options, *, mode: Mode = "build", reporter: Reporter | None = None
) -> list[DatasetResult]:
    """Run (or in ``plan`` mode, only list) every selected experiment on every dataset and seed.

    With ``--shard i/n`` the stages (datasets x seeds x stages, in plan order) are dealt
    round-robin to n workers and this one runs the i-th share; prerequisites it needs but does
    not own are built under their artifact's lock, so between all workers every stage runs once.
    """
    datasets, seeds, names = check_plan(options)
    shard = parse_shard(options.run.shard)
    owner = deal([(d, s, n) for d in datasets for s in seeds for n in names], shard)
    graph = Graph(mode, reporter)
    graph.shards.update(owner)
    results = []
    units = [(dataset, seed) for dataset in datasets for seed in seeds]
    for place, (dataset, seed) in enumerate(units, start=1):
        mine = [name for name in names if owner[(dataset, seed, name)] == shard[0]]
        if not mine:
            continue
        study = Study(options.replace(seed=seed, dataset=[dataset]), dataset, graph)
        error = _run_stages(study, mine, (place, len(units)))
        stages = [o for o in graph.outcomes if o.dataset == dataset and o.seed == seed]
        results.append(DatasetResult(dataset, seed, stages, error, study.notes))
    return results


def _run_stages(study: Study, names: list[str], place: tuple[int, int]) -> str | None:
    """Ask for each stage in order; a plan skips what it cannot key, a failure ends the dataset."""
    for step, name in enumerate(names, start=1):
        study.graph.reporter.stage(study.dataset, name, place, (step, len(names)))
        try:
            study.experiment(name, target=True)
        except Blocked:
            study.graph.unreachable(study.dataset, study.seed, name)
        except Exception as exc:  # noqa: BLE001 - one dataset's failure must not stop the others
            return first_line(exc)
    return None
