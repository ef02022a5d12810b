"""Planning a training stage: its request, its key and its folder, without torch.

A stage's key hashes everything that changes its result (:mod:`.stages` for LoRA runs,
:mod:`.head_stage` for heads); it is computed before anything is trained, so a cache hit, a
``--plan``, or a probe that only needs the weak run's labels never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data import SplitSet
from ..errors import UsageError
from ..hashing import short_hash
from ..labels import LabelSet
from ..models import ModelRef, device_name, dtype_name, resolve_model
from ..pgr_rule import DEFAULT_MIN_GAP
from ..runs import RunRecord, load_run, run_dir
from ..vocabulary import HEAD, WEAK, student_experiment
from .configs import HeadConfig, TrainConfig
from .run_labels import check_labels_match

#: The study's stages, LoRA runs and heads alike.
STAGE_NAMES = (WEAK, "ceiling", "student")
TRAIN_SPLIT = {"weak": "weak_train", "ceiling": "strong_train", "student": "strong_train"}
PREDICT_SPLITS = {
    "weak": ("strong_train", "val", "test"),
    "ceiling": ("val", "test"),
    "student": ("strong_train", "val", "test"),
}


def check_stage(stage: str, labels: LabelSet | None) -> None:
    """A known stage; a student with the label set it learns from."""
    if stage not in STAGE_NAMES:
        raise UsageError(f"unknown stage '{stage}'; use one of {', '.join(STAGE_NAMES)}")
    if stage == "student" and labels is None:
        raise UsageError("a student needs a label set")


# --------------------------------------------------------------------------- LoRA stages


@dataclass
class StageRequest:
    """One stage to run: which model learns what, with which recipe."""

    stage: str
    model: str
    splits: SplitSet
    config: TrainConfig
    labels: LabelSet | None = None  # students only
    experiment: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None  # spread one model over devices (single process); not in the key
    weak: RunRecord | None = None  # the runs PGR is computed against (students)
    ceiling: RunRecord | None = None
    min_gap: float = DEFAULT_MIN_GAP  # the PGR rule's minimum gap (recorded, not in the key)


class _RunFolder:
    """What every plan has: the run folder its key names, and the run there once finished."""

    folder: Path

    @property
    def cached(self) -> RunRecord | None:
        return load_run(self.folder)


@dataclass
class StagePlan(_RunFolder):
    request: StageRequest
    ref: ModelRef
    key: str
    folder: Path
    manifest: dict


def plan_stage(request: StageRequest, cache_dir: Path) -> StagePlan:
    """Validate ``request`` and compute its key (no weights are loaded)."""
    check_stage(request.stage, request.labels)
    ref = resolve_model(request.model)
    dtype = dtype_name(request.dtype, device_name(request.device))
    splits = request.splits
    labels = request.labels if request.stage == "student" else None
    if labels is not None:
        check_labels_match(labels, splits)
    identity = {
        "stage": request.stage,
        "model_revision": ref.revision,
        "dataset": splits.dataset,
        "dataset_fingerprint": splits.fingerprint,
        "split_sizes": split_sizes(splits),
        "seed": splits.report.get("seed"),
        "config": request.config.describe(),
        "compute_dtype": dtype,
        "labels": {"name": labels.name, "key": labels.key} if labels else None,
    }
    key = short_hash(identity)
    experiment = request.experiment or default_experiment(
        request.stage, labels, request.config.loss.name
    )
    manifest = {"key": key, "experiment": experiment, "model": ref.name, **identity}
    return StagePlan(request, ref, key, run_dir(cache_dir, splits.dataset, key), manifest)


def default_experiment(stage: str, labels: LabelSet | None, loss: str) -> str:
    """``weak``/``ceiling``; a student is named by its labels and loss (the vocabulary's rule)."""
    if stage != "student":
        return stage
    return student_experiment(labels.name if labels is not None else WEAK, loss)


def split_sizes(splits: SplitSet) -> dict[str, int]:
    return {name: len(split.ids) for name, split in splits.splits.items()}


# --------------------------------------------------------------------------- head stages


@dataclass
class HeadRequest:
    """One head stage: which activations it reads, what it learns, with which recipe."""

    stage: str
    #: The manifest of the activation files it can read (an extraction's, without the layer list).
    activations: dict
    model: str
    layer: int
    config: HeadConfig
    labels: LabelSet | None = None  # students only
    experiment: str | None = None
    weak: RunRecord | None = None  # what PGR is measured against (students)
    ceiling: RunRecord | None = None
    device: str = "cpu"  # where the math runs; not in the key
    min_gap: float = DEFAULT_MIN_GAP  # the PGR rule's minimum gap (recorded, not in the key)


@dataclass
class HeadPlan(_RunFolder):
    request: HeadRequest
    key: str
    folder: Path
    manifest: dict


def plan_head(request: HeadRequest, cache_dir: Path) -> HeadPlan:
    """The run's key and folder (nothing is read or trained)."""
    check_stage(request.stage, request.labels)
    labels = request.labels if request.stage == "student" else None
    activations = request.activations
    identity = {
        "stage": request.stage,
        "student_kind": HEAD,
        "model_revision": activations["model_revision"],
        "dataset": activations["dataset"],
        "dataset_fingerprint": activations["dataset_fingerprint"],
        "split_sizes": activations["split_sizes"],
        "activations": activations,
        "layer": request.layer,
        "config": request.config.describe(),
        "labels": {"name": labels.name, "key": labels.key} if labels else None,
    }
    key = short_hash(identity)
    experiment = request.experiment or (
        student_experiment(labels.name, request.config.loss.name) if labels else request.stage
    )
    manifest = {
        "key": key,
        "experiment": experiment,
        "model": request.model,
        "seed": request.config.seed,
        **identity,
    }
    return HeadPlan(request, key, run_dir(cache_dir, activations["dataset"], key), manifest)
