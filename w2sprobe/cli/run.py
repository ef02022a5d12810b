"""``w2sprobe run``: every experiment of the study on one or more datasets, every stage cached."""

from __future__ import annotations

import sys
from typing import Any

from ..options import Options
from .common import (
    GraphReporter,
    aligned,
    emit_json,
    fmt,
    graph_reporter,
    plan_summary,
    stderr,
    stdout,
)
from .params import DATA, Control, group, options_command
from .progress import notice

#: Tables printed as they are: no markup, no highlighting, never wrapped.
PLAIN = {"markup": False, "highlight": False, "soft_wrap": True}

MODELS = ("weak_model", "strong_model", "dtype", "device_map")
EXTRACT = ("layers", "pooling", "max_length", "extract_batch_size")
PROBES = group("probe", without=("probe", "labels"))
TRAINING = group("train", without=("loss",))


@options_command(
    DATA + MODELS + EXTRACT + PROBES + TRAINING + group("run") + ("min_gap",),
    graph=True,
    panels={"min_gap": "Study plan"},
)
def run(opts: Options, ctl: Control) -> None:
    """Run every experiment of the study (weak, ceiling, losses, s2s, probes) with PGR.

    Every stage is a cached artifact: a rerun trains nothing, --plan lists what would run.
    --dataset repeats (or takes a comma list) for several datasets.
    """
    from ..graph import parse_shard
    from ..models import set_cpu_threads
    from ..pipeline import check_plan, run_plan
    from ..probes.search import check_backend
    from ..tracking import check_tracker
    from ..workspace import ensure_writable_dir

    datasets, _, _ = check_plan(opts)  # a typo fails before any work (and before the banner)
    parse_shard(opts.run.shard)
    check_backend(opts.probe.knn_backend, opts.workspace.device)
    check_tracker(opts.workspace.tracker)
    set_cpu_threads()
    if not ctl.plan:
        ensure_writable_dir(opts.cache_dir)
    notice(
        f"{'plan' if ctl.plan else 'run'}: {', '.join(datasets)}; "
        f"weak {opts.model.weak_model} -> "
        f"strong {opts.model.strong_model}; cache {opts.cache_dir}"
    )
    # Progress goes to stderr with or without --json (stdout keeps its one object).
    reporter = graph_reporter(opts, ctl, GraphReporter(quiet=ctl.quiet or ctl.plan, log_done=True))
    results = run_plan(opts, mode=ctl.mode, reporter=reporter)
    _show(results, ctl, opts.run.shard, opts.report.min_gap)
    if any(r.error for r in results):
        sys.exit(1)


def _show(results, ctl: Control, shard: str | None, min_gap: float) -> None:
    from ..pgr_rule import show_pgr

    sharded = shard is not None and not shard.endswith("/1")
    if ctl.as_json:
        emit_json(
            {
                "command": "run",
                "plan": ctl.plan,
                "shard": shard or "0/1",
                "datasets": [_dataset_summary(r, min_gap) for r in results],
                "failed": [r.dataset for r in results if r.error],
            }
        )
        return
    several_seeds = len({r.seed for r in results}) > 1
    headers = ["stage", "status", "test AUC", "PGR", "key", *(["shard"] if sharded else [])]
    rows = [
        [
            o.stage,
            o.status,
            fmt(o.metrics.get("auc")),
            show_pgr(o.metrics or {}, min_gap),
            o.key or "—",
            *([str(o.shard)] if sharded else []),
        ]
        for result in results
        for o in result.stages
    ]
    # one set of column widths for every dataset's table, so they line up with each other too
    header, *lines = aligned(headers, rows, right=(2, 3)).splitlines()
    for i, result in enumerate(results):
        title = f"{result.dataset} (seed {result.seed})" if several_seeds else result.dataset
        table = [header, *lines[: len(result.stages)]]
        lines = lines[len(result.stages) :]
        stdout.print(("\n" if i else "") + "\n".join([title, *table]), **PLAIN)
    for result in (r for r in results if r.error):
        stderr.print(f"failed: {result.dataset}: {result.error}", highlight=False)
    if ctl.plan:
        stdout.print(plan_summary([o.status for r in results for o in r.stages]))


def _dataset_summary(result, min_gap: float) -> dict[str, Any]:
    from ..pgr_rule import RECORDED, rejudged

    keep = ("auc", "accuracy", "n", "pgr", "val_auc", "experiment", "error", *RECORDED)
    return {
        "dataset": result.dataset,
        "seed": result.seed,
        "error": result.error,
        "notes": result.notes,
        "stages": [
            {
                "stage": o.stage,
                "status": o.status,
                "key": o.key,
                "shard": o.shard,
                "seconds": round(o.seconds, 2),
                **{k: v for k, v in rejudged(o.metrics, min_gap).items() if k in keep},
            }
            for o in result.stages
        ],
    }
