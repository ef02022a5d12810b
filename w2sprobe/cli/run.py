"""``w2sprobe run``: every experiment of the study on one or more datasets, every stage cached."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..data import get_spec, is_user_file
from ..models import set_cpu_threads
from ..errors import UsageError
from ..pipeline import DatasetResult, Reporter, StageOutcome, parse_experiments, parse_shard, run_plan
from ..workspace import ensure_writable_dir, resolve_cache_dir
from .common import (
    CacheDirOpt, ConfigOpt, DataDirOpt, DeviceOpt, JsonOpt, NTestOpt, NTrainOpt, NValOpt, PresetOpt, SeedOpt,
    StepProgress, emit_json, settings_from, stderr, stdout,
)
from .train import (
    BatchOpt, EpochsOpt, EvalOpt, LrOpt, MaxLenOpt, MinibatchOpt, PoolOpt, RankOpt, StrongModelOpt, WarmupOpt,
    WeakModelOpt, DtypeOpt,
)

Opt = typer.Option


class ConsoleReporter(Reporter):
    """One line per finished stage on stderr, a progress bar while a stage trains."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar: StepProgress | None = None

    def stage_started(self, dataset: str, stage: str) -> None:
        self.bar = StepProgress(f"{dataset} {stage}")

    def progress(self, done: int, total: int, info: dict | None = None) -> None:
        if self.bar is not None and not self.quiet:
            self.bar.update(done, total, info)

    def stage_done(self, outcome: StageOutcome) -> None:
        if self.bar is not None:
            self.bar.__exit__()
        if self.quiet:
            return
        m = outcome.metrics
        scores = "" if "auc" not in m else f"  AUC {m['auc']:.4f}"
        if m.get("pgr") is not None:
            scores += f"  PGR {m['pgr']:+.3f}"
        error = f"  {m['error']}" if "error" in m else ""
        stderr.print(f"{outcome.dataset:<14} {outcome.stage:<15} {outcome.status:<7} {outcome.seconds:7.1f}s"
                     f"{scores}{error}", highlight=False)


def run(
    dataset: Annotated[Optional[list[str]], Opt("--dataset", help="Dataset (repeat for several; default sst2).")] = None,
    weak: WeakModelOpt = None, strong: StrongModelOpt = None,
    experiments: Annotated[Optional[str], Opt("--experiments", help="all | losses | s2s | probes | a comma list "
                                                                   "of experiment names (default all).")] = None,
    plan: Annotated[bool, Opt("--plan", help="List the stages and which are cached; run nothing.")] = False,
    shard: Annotated[Optional[str], Opt("--shard", help="i/n: run the i-th of n round-robin shares of the "
                                                       "stages (a job array; workers share the cache).")] = None,
    seeds: Annotated[Optional[str], Opt("--seeds", help="Comma list of seeds to run every stage with "
                                                       "(default: --seed).")] = None,
    preset: PresetOpt = None,
    layer: Annotated[Optional[int], Opt("--layer", help="Probe layer (default (L+1)//2).")] = None,
    layers: Annotated[Optional[str], Opt("--layers", help="Layers to cache (default all).")] = None,
    k: Annotated[Optional[int], Opt("--k", help="kNN neighbours (50).")] = None,
    l2: Annotated[Optional[float], Opt("--l2", help="Logistic L2 penalty (1e-2).")] = None,
    k_cc: Annotated[Optional[int], Opt("--k-cc", help="TopoFilter graph neighbours (50).")] = None,
    k_zeta: Annotated[Optional[int], Opt("--k-zeta", help="TopoFilter label neighbours (50).")] = None,
    contamination: Annotated[Optional[float], Opt("--contamination", help="Filtered fraction (0.1).")] = None,
    s2s_iters: Annotated[Optional[int], Opt("--s2s-iters", help="Strong-to-strong iterations (2).")] = None,
    lr: LrOpt = None, epochs: EpochsOpt = None, batch_size: BatchOpt = None, minibatch: MinibatchOpt = None,
    warmup_steps: WarmupOpt = None, eval_every: EvalOpt = None, lora_rank: RankOpt = None, pool: PoolOpt = None,
    max_length: MaxLenOpt = None, dtype: DtypeOpt = None, data_dir: DataDirOpt = None, n_train: NTrainOpt = None,
    n_val: NValOpt = None, n_test: NTestOpt = None, cache_dir: CacheDirOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = None, as_json: JsonOpt = False, config: ConfigOpt = None,
) -> None:
    """Run every experiment of the study (weak, ceiling, losses, s2s, probes) with PGR; cached stages are skipped."""
    cli = {k: v for k, v in locals().items() if k not in ("dataset", "weak", "strong", "plan", "as_json", "config",
                                                          "pool", "shard", "seeds")}
    settings = settings_from(config, **cli, weak_model=weak, strong_model=strong, pooling=pool,
                             datasets=list(dataset) if dataset else None)
    datasets = _datasets(settings)
    parse_experiments(settings["experiments"])  # a typo fails before any work
    worker, seed_list = parse_shard(shard), _seeds(seeds, settings)
    set_cpu_threads()
    root = ensure_writable_dir(resolve_cache_dir(settings["cache_dir"]))
    if not as_json:
        stderr.print(f"{'plan' if plan else 'run'}: {', '.join(datasets)}; weak {settings['weak_model']} -> strong "
                     f"{settings['strong_model']}; cache {root}", highlight=False)
    results = run_plan(settings, datasets, root, dry_run=plan, reporter=ConsoleReporter(quiet=as_json or plan),
                       seeds=seed_list, shard=worker)
    _show(results, plan, as_json, worker)
    if any(r.error for r in results):
        sys.exit(1)


def _seeds(spec: str | None, settings) -> list[int]:
    if spec is None:
        return [int(settings["seed"])]
    try:
        seeds = sorted({int(part) for part in spec.split(",") if part.strip()})
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise UsageError(f"--seeds must be a comma list of non-negative integers, got '{spec}'")
    return seeds


def _datasets(settings) -> list[str]:
    """The datasets to run, each checked before any work starts (a typo fails fast)."""
    names = settings["datasets"] or [settings["dataset"]]
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if not is_user_file(name):
            get_spec(name)
    return names


def _show(results: list[DatasetResult], plan: bool, as_json: bool, shard: tuple[int, int]) -> None:
    if as_json:
        emit_json({"command": "run", "plan": plan, "shard": f"{shard[0]}/{shard[1]}",
                   "datasets": [_dataset_summary(r) for r in results],
                   "failed": [r.dataset for r in results if r.error]})
        return
    several_seeds = len({r.seed for r in results}) > 1
    for result in results:
        title = f"{result.dataset} (seed {result.seed})" if several_seeds else result.dataset
        table = Table("stage", "status", "test AUC", "PGR", "key", *(["shard"] if shard[1] > 1 else []), title=title)
        for o in result.stages:
            table.add_row(o.stage, o.status, _fmt(o.metrics.get("auc")), _fmt(o.metrics.get("pgr")), o.key or "—",
                          *([str(o.shard)] if shard[1] > 1 else []))
        stdout.print(table)
    failed = [r for r in results if r.error]
    for result in failed:
        stderr.print(f"failed: {result.dataset}: {result.error}", highlight=False)
    if plan:
        todo = sum(o.status == "to run" for r in results for o in r.stages)
        stdout.print(f"{todo} stage(s) to run; the rest are cached")


def _dataset_summary(result: DatasetResult) -> dict[str, Any]:
    keep = ("auc", "accuracy", "n", "pgr", "val_auc", "experiment", "error")
    return {"dataset": result.dataset, "seed": result.seed, "error": result.error, "stages": [
        {"stage": o.stage, "status": o.status, "key": o.key, "shard": o.shard, "seconds": round(o.seconds, 2),
         **{k: o.metrics[k] for k in keep if k in o.metrics}} for o in result.stages]}


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
