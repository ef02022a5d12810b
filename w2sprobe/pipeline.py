"""Every experiment of the study for a list of datasets, each stage cached by its key.

Per dataset the plan is: ``weak`` -> ``ceiling`` -> students on the weak labels with each loss
-> strong-to-strong iterations of the xent student -> one activation extraction of the strong
model -> probe predictions, probe-filtered and probe-relabeled label sets, each training a
student.  A stage whose result is cached is read, never recomputed, so a rerun of a finished
plan trains nothing; a failing dataset is recorded and the next one runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .cache import ExtractRequest, ActivationStore, cached_layers, extract, find_cached_layer, plan_extraction
from .config import Settings
from .data import SplitSet, splits_from_settings
from .errors import UsageError
from .hashing import short_hash
from .labels import LabelSet, save_label_set
from .metrics import accuracy, roc_auc
from .probes.experiment import evaluate_probe, filter_label_set, relabel_label_set
from .probes.inputs import probe_spec
from .runs import RunRecord, SplitPredictions, load_run, run_dir, write_manifest, write_metrics, write_predictions
from .train.inputs import stage_request
from .train.losses import LOSSES
from .train.stages import pgr_fields, plan_stage, run_stage, student_label_set, weak_label_set

PROBE_EXPERIMENTS = ("knn-probe", "logreg-probe")
FILTER_EXPERIMENTS = ("knn-filter", "logreg-filter", "topo-filter")
RELABEL_EXPERIMENTS = ("knn-relabel", "logreg-relabel")
GROUPS = {
    "losses": LOSSES,
    "s2s": ("s2s",),
    "probes": PROBE_EXPERIMENTS + FILTER_EXPERIMENTS + RELABEL_EXPERIMENTS,
}
EXPERIMENTS = ("weak", "ceiling", *LOSSES, "s2s", *GROUPS["probes"])


def parse_experiments(spec: str | list | None) -> list[str]:
    """``all`` / a comma list of experiments and groups -> ordered names (weak, ceiling always)."""
    items = spec if isinstance(spec, list) else str(spec or "all").split(",")
    chosen: set[str] = {"weak", "ceiling"}
    for item in (str(i).strip() for i in items if str(i).strip()):
        if item == "all":
            chosen.update(EXPERIMENTS)
        elif item in GROUPS:
            chosen.update(GROUPS[item])
        elif item in EXPERIMENTS:
            chosen.add(item)
        else:
            raise UsageError(f"unknown experiment '{item}'; known: all, {', '.join(GROUPS)}, {', '.join(EXPERIMENTS)}")
    return [name for name in EXPERIMENTS if name in chosen]


@dataclass
class StageOutcome:
    """What happened to one stage of one dataset."""

    dataset: str
    stage: str
    status: str  # cached | ran | to run | failed
    key: str | None = None
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)
    shard: int = 0  # the worker that owns it (``--shard i/n``); others only wait for it


class Reporter:
    """Hooks for progress display; the CLI subclasses it, the library stays silent."""

    def stage_started(self, dataset: str, stage: str) -> None: ...

    def progress(self, done: int, total: int, info: dict | None = None) -> None: ...

    def stage_done(self, outcome: StageOutcome) -> None: ...


@dataclass
class DatasetResult:
    dataset: str
    seed: int
    stages: list[StageOutcome]
    error: str | None = None


def stage_names(experiments: list[str], s2s_iters: int) -> list[str]:
    """The stages of one dataset, in an order that respects every dependency."""
    names = ["weak", "ceiling"]
    names += [loss for loss in LOSSES if loss in experiments or (loss == "xent" and "s2s" in experiments)]
    if "s2s" in experiments:
        names += [f"s2s-{i}" for i in range(1, s2s_iters + 1)]
    probe_work = [name for name in experiments if name in GROUPS["probes"]]
    return names + (["extract", *probe_work] if probe_work else [])


def prerequisites(stage: str) -> set[str]:
    """Every stage that must be finished before ``stage`` can run (transitively)."""
    if stage in ("weak", "ceiling", "extract"):
        return set()
    if stage.startswith("s2s-"):
        iteration = int(stage.removeprefix("s2s-"))
        parent = "xent" if iteration == 1 else f"s2s-{iteration - 1}"
        return {parent} | prerequisites(parent)
    if stage in LOSSES:
        return {"weak", "ceiling"}
    return {"weak", "ceiling", "extract"}


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if spec is None:
        return 0, 1
    try:
        index, count = (int(part) for part in str(spec).split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise UsageError(f"--shard must be i/n with 0 <= i < n (e.g. 0/4), got '{spec}'")
    return index, count


def run_plan(settings: Settings, datasets: list[str], cache_dir: Path, *, dry_run: bool = False,
             reporter: Reporter | None = None, seeds: list[int] | None = None,
             shard: tuple[int, int] = (0, 1)) -> list[DatasetResult]:
    """Run (or, with ``dry_run``, only list) every selected experiment on every dataset and seed.

    With ``shard=(i, n)`` the independent stages (datasets x seeds x stages, in plan order) are
    dealt round-robin to n workers and this one runs the i-th share plus whatever those stages
    need; shared prerequisites are taken under the stage's file lock, so between all workers
    every stage runs once and the others read it from the cache.
    """
    experiments = parse_experiments(settings["experiments"])
    names = stage_names(experiments, int(settings["s2s_iters"]))
    seeds = seeds if seeds is not None else [int(settings["seed"])]
    units = [(dataset, seed, name) for dataset in datasets for seed in seeds for name in names]
    owner = {unit: position % shard[1] for position, unit in enumerate(units)}
    results = []
    for dataset in datasets:
        for seed in seeds:
            mine = {name for name in names if owner[(dataset, seed, name)] == shard[0]}
            if not mine:
                continue
            needed = mine.union(*(prerequisites(name) for name in mine))
            shards = {name: owner[(dataset, seed, name)] for name in names}
            scoped = Settings({**settings.values, "dataset": dataset, "seed": seed}, settings.sources,
                              settings.config_path)
            pipeline = DatasetPipeline(scoped, cache_dir, reporter or Reporter(), dry_run, shards)
            try:
                pipeline.run([name for name in names if name in needed])
                results.append(DatasetResult(dataset, seed, pipeline.outcomes))
            except Exception as exc:  # noqa: BLE001 - one dataset's failure must not stop the others
                results.append(DatasetResult(dataset, seed, pipeline.outcomes, _first_line(exc)))
    return results


class DatasetPipeline:
    """The stages of one dataset, run in dependency order with their outputs kept in memory."""

    def __init__(self, settings: Settings, cache_dir: Path, reporter: Reporter, dry_run: bool,
                 shards: dict[str, int] | None = None):
        self.settings, self.cache_dir = settings, cache_dir
        self.reporter, self.dry_run, self.shards = reporter, dry_run, shards or {}
        self.outcomes: list[StageOutcome] = []
        self.splits: SplitSet | None = None
        self.weak: RunRecord | None = None
        self.weak_labels: LabelSet | None = None
        self.ceiling: RunRecord | None = None
        self.students: dict[str, tuple[RunRecord, LabelSet]] = {}

    @property
    def dataset(self) -> str:
        return str(self.settings["dataset"])

    def run(self, stages: list[str]) -> None:
        """Run ``stages`` (names from :func:`stage_names`, in that order)."""
        self.splits = splits_from_settings(self.settings)
        for name in stages:
            self._stage(name, self._work(name))

    def _work(self, name: str) -> Callable[[bool], tuple]:
        if name == "weak":
            return self._weak
        if name == "ceiling":
            return self._ceiling
        if name in LOSSES:
            return lambda dry: self._student(name, self.weak_labels, name, dry)
        if name.startswith("s2s-"):
            return lambda dry: self._s2s(int(name.removeprefix("s2s-")), dry)
        if name == "extract":
            return self._extract
        return lambda dry: self._probe_experiment(name, dry)

    # ------------------------------------------------------------------ bookkeeping

    def _stage(self, name: str, work: Callable[[bool], tuple[str | None, RunRecord | None]]) -> None:
        """Run one stage (or in a dry run, see whether it is cached) and record the outcome."""
        self.reporter.stage_started(self.dataset, name)
        started = time.perf_counter()
        key, cached, record = None, False, None
        try:
            key, cached, record = work(self.dry_run)
        except _Blocked:
            pass  # dry run: an input is not cached yet, so neither is this stage
        except Exception as exc:
            self._record(StageOutcome(self.dataset, name, "failed", seconds=time.perf_counter() - started,
                                      metrics={"error": _first_line(exc)}, shard=self.shards.get(name, 0)))
            raise
        status = "cached" if cached else ("to run" if self.dry_run else "ran")
        self._record(StageOutcome(self.dataset, name, status, key, time.perf_counter() - started,
                                  dict(record.metrics) if record else {}, self.shards.get(name, 0)))

    def _record(self, outcome: StageOutcome) -> None:
        self.outcomes.append(outcome)
        self.reporter.stage_done(outcome)

    def _train(self, request, dry: bool):
        plan = plan_stage(request, self.cache_dir)
        cached = plan.cached
        if dry or cached:
            return plan.key, cached is not None, cached
        record = run_stage(plan, self.reporter.progress)
        return plan.key, not record.fresh, record  # another worker may have run it while we waited

    # ------------------------------------------------------------------ stages

    def _weak(self, dry: bool):
        key, cached, record = self._train(stage_request(self.settings, self.splits, "weak"), dry)
        if record is not None:
            self.weak, self.weak_labels = record, weak_label_set(record, self.dataset)
        return key, cached, record

    def _ceiling(self, dry: bool):
        key, cached, record = self._train(stage_request(self.settings, self.splits, "ceiling"), dry)
        self.ceiling = record
        return key, cached, record

    def _student(self, experiment: str, labels: LabelSet | None, loss: str, dry: bool):
        if labels is None or self.weak is None:
            raise _Blocked
        request = stage_request(self.settings, self.splits, "student", labels=labels, loss=loss,
                                experiment=experiment, weak=self.weak, ceiling=self.ceiling)
        key, cached, record = self._train(request, dry)
        if record is not None:
            self.students[experiment] = (record, labels)
        return key, cached, record

    def _s2s(self, iteration: int, dry: bool):
        parent = self.students.get("xent" if iteration == 1 else f"s2s-{iteration - 1}")
        if parent is None:
            raise _Blocked
        name = f"s2s-{iteration}"
        labels = student_label_set(parent[0], parent[1], name)
        if not dry:
            save_label_set(labels, self.cache_dir)
        return self._student(name, labels, "xent", dry)

    def _extraction_request(self) -> ExtractRequest:
        layers = self.settings["layers"]
        return ExtractRequest(model=self.settings["strong_model"], splits=self.splits, layers=layers,
                              pooling=self.settings["pooling"], max_length=int(self.settings["max_length"]),
                              batch_size=int(self.settings["batch_size"]), dtype=self.settings["dtype"],
                              device=self.settings["device"])

    def _probe_layer(self) -> int:
        plan = plan_extraction(self._extraction_request(), self.cache_dir)
        layer = self.settings["layer"]
        return (plan.num_layers + 1) // 2 if layer is None else int(layer)

    def _extract(self, dry: bool):
        request = self._extraction_request()
        plan = plan_extraction(request, self.cache_dir)
        layer = self._probe_layer()
        if layer not in plan.layers:
            request.layers = sorted({*plan.layers, layer})
            plan = plan_extraction(request, self.cache_dir)
        cached = layer in cached_layers(plan)
        if dry or cached:
            return plan.key, cached, None
        result = extract(request, self.cache_dir, progress=lambda done, total, *_: self.reporter.progress(done, total))
        return plan.key, result.cache_hit, None

    def _store(self) -> ActivationStore:
        plan = plan_extraction(self._extraction_request(), self.cache_dir)
        try:
            return ActivationStore.open(find_cached_layer(plan, self._probe_layer()))
        except UsageError:
            if self.dry_run:
                raise _Blocked from None
            raise

    def _probe_experiment(self, name: str, dry: bool):
        if self.weak_labels is None:
            raise _Blocked
        probe, kind = name.split("-")
        spec = probe_spec(self.settings, probe, self._probe_layer())
        with self._store() as store:
            if kind == "probe":
                return self._probe_predictions(name, store, spec, dry)
            if kind == "filter":
                labels = filter_label_set(store, self.weak_labels, spec, float(self.settings["contamination"]),
                                          name).labels
            else:
                labels = relabel_label_set(store, self.weak_labels, spec, name)
        if not dry:
            save_label_set(labels, self.cache_dir)
        return self._student(name, labels, "xent", dry)

    def _probe_predictions(self, name: str, store: ActivationStore, spec, dry: bool):
        """The probe's own test predictions as a run, with PGR like a student's."""
        manifest = {"stage": "probe", "experiment": name, "dataset": self.dataset, "probe": spec.describe(),
                    "labels": {"name": self.weak_labels.name, "key": self.weak_labels.key},
                    "activations": store.manifest, "seed": self.splits.report.get("seed")}
        key = short_hash({k: v for k, v in manifest.items() if k != "experiment"})
        folder = run_dir(self.cache_dir, self.dataset, key)
        cached = load_run(folder)
        if dry or cached:
            return key, cached is not None, cached
        outcome = evaluate_probe(store, self.weak_labels, spec)
        write_manifest(folder, {"key": key, **manifest})
        predictions = {split: SplitPredictions(outcome.ids[split], outcome.predictions[split], store.labels(split))
                       for split in outcome.predictions}
        write_predictions(folder, predictions)
        test = predictions["test"]
        metrics = {"key": key, **manifest, "model": self.settings["strong_model"],
                   "auc": roc_auc(test.labels, test.soft), "accuracy": accuracy(test.labels, test.soft),
                   "n": len(test.ids), "labels": self.weak_labels.name, "labels_key": self.weak_labels.key,
                   "train_n": outcome.metrics.get("train_n"), "config": spec.describe(),
                   **pgr_fields(roc_auc(test.labels, test.soft), self.weak, self.ceiling)}
        return key, False, write_metrics(folder, metrics)


class _Blocked(Exception):
    """A dry run reached a stage whose inputs are not cached yet."""


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
