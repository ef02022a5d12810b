"""From resolved options to stage requests: the recipe, the label set, and the runs PGR needs."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..data import SplitSet
from ..errors import UsageError
from ..labels import LabelSet, find_label_set, labels_root, list_label_sets, load_label_set, save_label_set
from ..models import resolve_model
from ..runs import RunRecord, find_runs, load_run, run_dir
from .classifier import LoraSettings
from .stages import StageRequest, check_labels_match, plan_stage, split_sizes, student_label_set
from .trainer import TrainConfig


def train_config(settings: Settings, stage: str, loss: str | None = None) -> TrainConfig:
    """The training recipe of ``stage`` from the options (lr defaults to the study's per stage)."""
    targets = settings["lora_targets"]
    if isinstance(targets, str):
        targets = tuple(t.strip() for t in targets.split(",") if t.strip()) or None
    lora = LoraSettings(enabled=bool(settings["lora"]), rank=int(settings["lora_rank"]),
                        alpha=float(settings["lora_alpha"]), dropout=float(settings["lora_dropout"]),
                        targets=tuple(targets) if targets else None)
    lr = settings["lr"] if settings["lr"] is not None else settings["weak_lr" if stage == "weak" else "strong_lr"]
    return TrainConfig(
        lr=float(lr), epochs=int(settings["epochs"]), batch_size=int(settings["batch_size"]),
        minibatch=int(settings["minibatch"]), beta2=float(settings["beta2"]),
        warmup_steps=int(settings["warmup_steps"]), weight_decay=float(settings["weight_decay"]),
        eval_every=int(settings["eval_every"]), max_length=int(settings["max_length"]),
        loss=(loss or settings["loss"]) if stage == "student" else "xent",
        aux_weight=float(settings["logconf_weight"]), aux_warmup=int(settings["logconf_warmup"]),
        balance_batch=bool(settings["balance_batch"]), radius=settings["radius"], lora=lora,
        pooling=settings["pooling"], seed=int(settings["seed"]),
    )


def stage_request(settings: Settings, splits: SplitSet, stage: str, **fields) -> StageRequest:
    """A request for ``stage`` with the model the stage uses (weak model for ``weak``)."""
    model = settings["weak_model"] if stage == "weak" else settings["strong_model"]
    config = train_config(settings, stage, fields.pop("loss", None))
    return StageRequest(stage, model, splits, config, device=settings["device"], dtype=settings["dtype"],
                        device_map=settings["device_map"], **fields)


def lineage_matches(manifest: dict, splits: SplitSet) -> bool:
    """Was a label set made on these splits (same data, sizes and seed)?"""
    return (manifest.get("dataset_fingerprint") == splits.fingerprint
            and manifest.get("split_sizes") == split_sizes(splits)
            and manifest.get("seed") == splits.report.get("seed"))


def student_labels(settings: Settings, splits: SplitSet, cache_dir: Path, name: str) -> LabelSet:
    """The label set a student trains on: ``weak`` (of these splits), any set by name or key, or
    the key of a finished student run (its strong_train and val predictions)."""
    if name == "weak":
        return weak_labels(settings, splits, cache_dir)
    run = load_run(run_dir(cache_dir, splits.dataset, name))
    if run is not None and run.metrics.get("stage") == "student":
        labels = student_label_set(run, find_label_set(cache_dir, splits.dataset, run.metrics["labels_key"]),
                                   f"student-{run.key}")
        save_label_set(labels, cache_dir)
    else:
        labels = find_label_set(cache_dir, splits.dataset, name)
    check_labels_match(labels, splits)
    return labels


def weak_labels(settings: Settings, splits: SplitSet, cache_dir: Path) -> LabelSet:
    """The weak label set made on these splits; the configured weak model's when several exist."""
    found = [m for m in list_label_sets(cache_dir, splits.dataset)
             if m["name"] == "weak" and lineage_matches(m.get("manifest", {}), splits)]
    if len(found) > 1:
        revision = resolve_model(settings["weak_model"]).revision
        found = [m for m in found if m["manifest"].get("model_revision") == revision] or found
    if not found:
        raise UsageError(f"no weak labels for {splits.dataset} at these split sizes and seed; make them "
                         f"with: w2sprobe train weak --dataset {splits.dataset}")
    if len(found) > 1:
        keys = ", ".join(m["key"] for m in found)
        raise UsageError(f"several weak label sets fit {splits.dataset} ({keys}); choose one with --labels KEY")
    return load_label_set(labels_root(cache_dir, splits.dataset) / found[0]["key"])


def weak_run_of(labels: LabelSet, cache_dir: Path) -> RunRecord | None:
    """The weak run a label set descends from (through filter / relabel / s2s parents)."""
    seen: set[str] = set()
    while labels is not None and labels.key not in seen:
        seen.add(labels.key)
        key = labels.manifest.get("weak_run")
        if key:
            return load_run(run_dir(cache_dir, labels.dataset, key))
        parent = labels.manifest.get("parent")
        folder = labels_root(cache_dir, labels.dataset) / str(parent)
        labels = load_label_set(folder) if parent and (folder / "manifest.json").is_file() else None
    return None


def ceiling_run(settings: Settings, splits: SplitSet, cache_dir: Path) -> RunRecord | None:
    """The ceiling for these splits: the one these options would train, else the newest that fits."""
    planned = plan_stage(stage_request(settings, splits, "ceiling"), cache_dir).cached
    if planned is not None:
        return planned
    matches = find_runs(cache_dir, splits.dataset, stage="ceiling", dataset_fingerprint=splits.fingerprint,
                        split_sizes=split_sizes(splits), seed=splits.report.get("seed"),
                        model_revision=resolve_model(settings["strong_model"]).revision)
    return matches[0] if matches else None
