"""The study's training steps on one dataset: weak, ceiling, a student, strong-to-strong.

Each step is a cached stage (:mod:`.stages`); these functions find its inputs (label set, the
weak and ceiling runs PGR is computed against) and run it.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..data import SplitSet
from ..errors import UsageError
from ..labels import LabelSet, save_label_set
from ..runs import RunRecord
from .inputs import ceiling_run, stage_request, weak_run_of
from .stages import ProgressFn, plan_stage, run_stage, student_label_set


def train_weak(settings: Settings, splits: SplitSet, cache_dir: Path, progress: ProgressFn | None = None) -> RunRecord:
    """The weak model on weak_train ground truth; its predictions become the ``weak`` label set."""
    return run_stage(plan_stage(stage_request(settings, splits, "weak"), cache_dir), progress)


def train_ceiling(settings: Settings, splits: SplitSet, cache_dir: Path,
                  progress: ProgressFn | None = None) -> RunRecord:
    """The strong model on strong_train ground truth."""
    return run_stage(plan_stage(stage_request(settings, splits, "ceiling"), cache_dir), progress)


def train_student(settings: Settings, splits: SplitSet, cache_dir: Path, labels: LabelSet, *,
                  loss: str | None = None, experiment: str | None = None,
                  progress: ProgressFn | None = None) -> RunRecord:
    """The strong model on ``labels``; PGR against the weak run behind them and the ceiling."""
    weak = weak_run_of(labels, cache_dir)
    if weak is None:
        raise UsageError(f"the weak run behind label set {labels.name} ({labels.key}) is missing; make it with: "
                         f"w2sprobe train weak --dataset {splits.dataset}")
    request = stage_request(settings, splits, "student", labels=labels, loss=loss, experiment=experiment,
                            weak=weak, ceiling=ceiling_run(settings, splits, cache_dir))
    return run_stage(plan_stage(request, cache_dir), progress)


def strong_to_strong(settings: Settings, splits: SplitSet, cache_dir: Path, student: RunRecord,
                     labels: LabelSet, iterations: int, *, loss: str | None = None,
                     progress: ProgressFn | None = None) -> list[RunRecord]:
    """Train a fresh student on the previous student's strong_train predictions, ``iterations`` times."""
    if iterations < 0:
        raise UsageError(f"--s2s-iters must be >= 0, got {iterations}")
    base = student.metrics["experiment"]
    runs = []
    for i in range(1, iterations + 1):
        name = f"s2s-{i}" if base == "xent" else f"{base}+s2s-{i}"
        labels = student_label_set(student, labels, name)
        save_label_set(labels, cache_dir)
        student = train_student(settings, splits, cache_dir, labels, loss=loss, experiment=name, progress=progress)
        runs.append(student)
    return runs
