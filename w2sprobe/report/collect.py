"""Find and validate result files; pair each student/probe run with its weak and ceiling runs.

Reads only what the training and probe stages write (see the README's result-file contract):
``<cache>/runs/<dataset>/<key>/{manifest.json, predictions.csv, metrics.json}``, through
:mod:`w2sprobe.runs`, the one reader of that format (which checks each file against what the
run recorded writing).  A folder
without ``metrics.json`` is an unfinished run: listed as incomplete, never used.  Whatever a
report cannot use (a student without a ceiling, a dataset with only a weak run) becomes an
entry of ``missing`` instead of an exception; only an unreadable finished run is an error.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..runs import (
    PREDICTIONS,
    finished_at,
    read_manifest,
    read_metrics,
    read_predictions,
    run_folders,
)
from ..vocabulary import LORA
from ..workspace import kind_root

#: Stages whose runs are the references PGR is measured against.
REFERENCE_STAGES = ("weak", "ceiling")


@dataclass
class RunResult:
    """One finished run, as its ``metrics.json`` describes it."""

    key: str
    stage: str
    experiment: str
    dataset: str
    seed: int
    model: str | None
    auc: float | None
    accuracy: float | None
    n: int | None
    folder: Path
    metrics: dict = field(repr=False)
    manifest: dict = field(default_factory=dict, repr=False)

    @property
    def recorded_pgr(self) -> float | None:
        """The PGR the run itself recorded (None when absent or not finite)."""
        value = self.metrics.get("pgr")
        return float(value) if _is_number(value) and math.isfinite(value) else None

    @property
    def kind(self) -> str:
        """``lora`` or ``head``: what the run trained (runs from before heads are LoRA runs)."""
        return str(self.metrics.get("student_kind") or LORA)

    def reference_key(self, stage: str) -> str | None:
        """The key of the weak/ceiling run this run says it was measured against, if any."""
        ref = self.metrics.get(stage)
        if isinstance(ref, dict) and isinstance(ref.get("key"), str):
            return ref["key"]
        return None

    def describe(self) -> dict:
        """What a report lists to trace a number back to its inputs."""
        return {
            "key": self.key,
            "dataset": self.dataset,
            "stage": self.stage,
            "experiment": self.experiment,
            "seed": self.seed,
            "model": self.model,
            "labels": self.metrics.get("labels"),
            "labels_key": self.metrics.get("labels_key"),
            "path": str(self.folder),
            "command": self.manifest.get("command"),
            "config": self.metrics.get("config"),
        }


@dataclass
class Pairing:
    """The weak and ceiling runs a student/probe run's PGR is measured against (None = missing)."""

    weak: RunResult | None
    ceiling: RunResult | None


@dataclass
class Collection:
    """Every finished run under a workspace, plus what could not be used and why."""

    root: Path
    runs: list[RunResult]
    pairs: dict[str, Pairing]
    incomplete: list[dict]
    missing: list[dict]
    #: The kind of ceiling and students compared: ``lora`` or ``head``.
    kind: str = "lora"

    @property
    def datasets(self) -> list[str]:
        return sorted({run.dataset for run in self.runs})

    def of(self, dataset: str) -> list[RunResult]:
        return [run for run in self.runs if run.dataset == dataset]


def runs_root(cache_dir: Path) -> Path:
    return kind_root(cache_dir, "runs")


def collect_results(
    cache_dir: Path, datasets: list[str] | None = None, kind: str | None = None
) -> Collection:
    """Read every run under ``<cache_dir>/runs`` (optionally only ``datasets``) and pair students.

    ``kind``: the kind of ceiling and students compared (``lora`` or ``head``; None: the one
    kind the workspace holds).  A report compares one kind: a head student's gain is never
    divided by a LoRA ceiling's gap, nor a LoRA student set beside a head one.

    Raises UsageError when nothing finished is found, when a requested dataset has no runs,
    when the workspace holds both kinds and ``kind`` is None, or when a finished run's
    ``metrics.json`` is unreadable (the message names the file).
    """
    root = runs_root(cache_dir)
    runs, incomplete = [], []
    for folder in run_folders(cache_dir):
        if (folder / "metrics.json").is_file():
            runs.append(read_run(folder))
        else:
            incomplete.append(_incomplete(folder))
    # a saved probe scored on another dataset: the transfer table's (report/transfer.py)
    runs = [run for run in runs if run.stage != "transfer"]
    if datasets:
        runs, incomplete = _only(datasets, runs, incomplete, root)
    if not runs:
        what = (
            f"{len(incomplete)} unfinished run(s) (no metrics.json) and no finished ones"
            if incomplete
            else "no finished runs (<dataset>/<key>/metrics.json)"
        )
        raise UsageError(f"no results found in {root.absolute()}: {what}")
    runs, kind = _of_kind(runs, kind, root)
    missing: list[dict] = []
    runs = _drop_duplicates(runs, missing)
    pairs = {
        run.key: _pair(run, runs, missing) for run in runs if run.stage not in REFERENCE_STAGES
    }
    missing += _dataset_gaps(runs)
    return Collection(Path(cache_dir), runs, pairs, incomplete, missing, kind)


#: The stages whose runs have a kind: a report compares the ceiling and students of one kind.
KINDED_STAGES = ("ceiling", "student")


def _of_kind(runs: list[RunResult], kind: str | None, root: Path) -> tuple[list[RunResult], str]:
    """The runs a report of ``kind`` compares: that kind's ceilings and students, every weak run
    (a head study's supervisor is LoRA by default) and every probe run; and the kind."""
    present = sorted({run.kind for run in runs if run.stage in KINDED_STAGES})
    if kind is None:
        if len(present) > 1:
            raise UsageError(
                f"{root.absolute()} holds {' and '.join(present)} students: a report compares "
                "one kind (a head student's PGR needs a head ceiling); choose one with "
                f"{' or '.join(f'--student {k}' for k in present)}"
            )
        kind = present[0] if present else LORA
    elif present and kind not in present:
        raise UsageError(
            f"no {kind} ceiling or students under {root.absolute()}: it holds "
            f"{', '.join(present)} ones (--student {present[0]})"
        )
    kept = [run for run in runs if run.stage not in KINDED_STAGES or run.kind == kind]
    return kept, kind


def read_run(folder: Path) -> RunResult:
    """A finished run from its ``metrics.json``; a malformed file is a UsageError naming it."""
    metrics = read_metrics(folder)
    return RunResult(
        key=metrics["key"],
        stage=metrics["stage"],
        experiment=metrics["experiment"],
        dataset=metrics["dataset"],
        seed=int(metrics["seed"]),
        model=metrics.get("model"),
        auc=_float(metrics.get("auc")),
        accuracy=_float(metrics.get("accuracy")),
        n=metrics.get("n"),
        folder=folder,
        metrics=metrics,
        manifest=read_manifest(folder),
    )


def read_test_predictions(run: RunResult) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(ids, soft_pred, label)`` of the run's test split, sorted by id.

    None if the file is absent.

    A present but malformed or damaged ``predictions.csv`` of a finished run is a UsageError
    naming it (rows and checksum are checked against what the run recorded writing).
    """
    path = run.folder / PREDICTIONS
    if not path.is_file():
        return None
    files = run.metrics.get("files")
    predicted = read_predictions(path, files.get(PREDICTIONS) if isinstance(files, dict) else None)
    if "test" not in predicted or not len(predicted["test"].ids):
        raise UsageError(f"corrupt predictions file {path}: no 'test' rows")
    test = predicted["test"]
    order = np.argsort(test.ids, kind="stable")
    sorted_ids = test.ids[order]
    if (sorted_ids[1:] == sorted_ids[:-1]).any():
        raise UsageError(f"corrupt predictions file {path}: duplicated test ids")
    scores = test.soft[order].astype(np.float64)
    truth = test.labels[order].astype(np.float64)
    if not (np.isfinite(scores).all() and np.isfinite(truth).all()):
        raise UsageError(f"corrupt predictions file {path}: non-finite soft_pred or label")
    return sorted_ids, scores, truth


# --------------------------------------------------------------------------- validation


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _float(value) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _incomplete(folder: Path) -> dict:
    """What we know about an unfinished run folder (its manifest, if readable)."""
    manifest = read_manifest(folder)
    return {
        "dataset": manifest.get("dataset", folder.parent.name),
        "key": manifest.get("key", folder.name),
        "stage": manifest.get("stage"),
        "experiment": manifest.get("experiment"),
        "seed": manifest.get("seed"),
        "path": str(folder),
        "reason": "no metrics.json (unfinished)",
    }


def _only(datasets: list[str], runs: list[RunResult], incomplete: list[dict], root: Path):
    """Keep the requested datasets (by name or folder name); unknown names are an error."""
    wanted = set(datasets)
    known = {run.dataset for run in runs} | {run.folder.parent.name for run in runs}
    unknown = sorted(wanted - known - {item["dataset"] for item in incomplete})
    if unknown:
        have = sorted({run.dataset for run in runs})
        raise UsageError(
            f"no results for dataset(s) {', '.join(unknown)} in {root.absolute()}; "
            f"found: {', '.join(have) if have else 'none'}"
        )
    keep = [run for run in runs if run.dataset in wanted or run.folder.parent.name in wanted]
    return keep, [item for item in incomplete if item["dataset"] in wanted]


def _drop_duplicates(runs: list[RunResult], missing: list[dict]) -> list[RunResult]:
    """One run per (dataset, stage, experiment, seed, model); the others are listed.

    Two finished runs of the same experiment and seed differ in config; averaging them as if
    they were seeds would be wrong, so the report keeps one and says so: of students and probes
    the newest (by the time each recorded), of weak and ceiling runs the one the kept students
    and probes were measured against (the most of them), then the newest — so a table's weak
    AUC is the one its PGRs used, however the files' times were reset by a copy.
    """
    measured = [run for run in runs if run.stage not in REFERENCE_STAGES]
    kept = _newest_per_slot(measured, missing, lambda run: 0)
    used = Counter(
        key for run in kept for stage in REFERENCE_STAGES if (key := run.reference_key(stage))
    )
    references = [run for run in runs if run.stage in REFERENCE_STAGES]
    kept += _newest_per_slot(references, missing, lambda run: used[run.key])
    chosen = set(map(id, kept))
    return [run for run in runs if id(run) in chosen]


def _newest_per_slot(runs: list[RunResult], missing: list[dict], used) -> list[RunResult]:
    """The best run of each slot by (``used(run)``, finish time, key); the others -> missing."""

    def rank(run: RunResult) -> tuple:
        return used(run), finished_at(run.folder, run.metrics), run.key

    best: dict[tuple, RunResult] = {}
    for run in sorted(runs, key=rank):
        slot = (
            run.dataset,
            run.stage,
            run.experiment,
            run.seed,
            run.model if run.stage in REFERENCE_STAGES else "",
        )
        if slot in best:
            old = best[slot]
            why = (
                f"the kept students and probes were measured against run {run.key}"
                if used(run) > used(old)
                else f"superseded by the newer run {run.key} of the same experiment and seed"
            )
            missing.append(_gap(old.dataset, old.experiment, old.seed, old.key, why))
        best[slot] = run
    return list(best.values())


def _pair(run: RunResult, runs: list[RunResult], missing: list[dict]) -> Pairing:
    """The weak and ceiling runs of ``run``: the keys it names, else the one run of that stage
    for the same dataset and seed."""
    found = {}
    for stage in REFERENCE_STAGES:
        key = run.reference_key(stage) or run.manifest.get(f"{stage}_run")
        same_dataset = [r for r in runs if r.dataset == run.dataset and r.stage == stage]
        if run.stage == "probe" and stage == "ceiling" and key not in {r.key for r in same_dataset}:
            # A probe has no kind: against this report's ceiling (its PGR is recomputed).
            key = None
        if isinstance(key, str):
            match = [r for r in same_dataset if r.key == key]
            reason = f"its {stage} run {key} is not among the finished runs"
        else:
            match = [r for r in same_dataset if r.seed == run.seed]
            reason = (
                f"no {stage} run for seed {run.seed}"
                if not match
                else (
                    f"{len(match)} {stage} runs for seed {run.seed} "
                    f"({', '.join(r.key for r in match)}): ambiguous"
                )
            )
        found[stage] = match[0] if len(match) == 1 else None
        if found[stage] is None:
            missing.append(_gap(run.dataset, run.experiment, run.seed, run.key, reason))
    return Pairing(found["weak"], found["ceiling"])


def _dataset_gaps(runs: list[RunResult]) -> list[dict]:
    """Datasets that lack a whole stage (only a weak run, no ceiling, no student ...) or an
    experiment that other datasets have (a study still running: its cells are blank)."""
    compared = [run for run in runs if run.stage in ("student", "probe")]
    everywhere = sorted({run.experiment for run in compared})
    gaps = []
    for dataset in sorted({run.dataset for run in runs}):
        stages = {run.stage for run in runs if run.dataset == dataset}
        for stage, what in (("weak", "no weak run"), ("ceiling", "no ceiling run")):
            if stage not in stages:
                gaps.append(_gap(dataset, None, None, None, what))
        have = {run.experiment for run in compared if run.dataset == dataset}
        if not have:
            gaps.append(_gap(dataset, None, None, None, "no student or probe runs"))
        elif lacking := [name for name in everywhere if name not in have]:
            reason = f"no {', '.join(lacking)} run (other datasets have one)"
            gaps.append(_gap(dataset, None, None, None, reason))
    return gaps


def _gap(
    dataset: str, experiment: str | None, seed: int | None, key: str | None, reason: str
) -> dict:
    subject = " ".join(
        str(x)
        for x in (
            dataset,
            experiment,
            f"seed {seed}" if seed is not None else None,
            f"(run {key})" if key else None,  # which folder the line is about
        )
        if x
    )
    return {
        "dataset": dataset,
        "experiment": experiment,
        "seed": seed,
        "run": key,
        "reason": reason,
        "message": f"{subject}: {reason}",
    }
