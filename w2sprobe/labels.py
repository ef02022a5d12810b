"""Label sets: ``id -> soft label`` tables, per split, with a manifest saying how they were made.

Weak labels, probe-filtered sets (which simply omit ids) and probe-relabeled sets are all one
kind of thing, stored as ``<cache>/labels/<dataset>/<key>/`` holding ``labels.csv``
(``split,id,soft_label``) and ``manifest.json``.  The key is a hash of the manifest, so a set
made from different inputs never overwrites another; ``name`` is the human handle
(``weak``, ``knn-filter@weak``, ...) that ``--labels NAME`` resolves when it is unambiguous.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError
from .hashing import short_hash
from .workspace import slug_dir


@dataclass
class LabelSet:
    """Soft labels per split: ``soft[split]`` aligned with ``ids[split]``."""

    name: str
    dataset: str
    ids: dict[str, np.ndarray]
    soft: dict[str, np.ndarray]
    manifest: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in self.ids:
            self.ids[split] = np.asarray(self.ids[split], dtype=str)
            self.soft[split] = np.asarray(self.soft[split], dtype=np.float32)
            if len(self.ids[split]) != len(self.soft[split]):
                raise ValueError(
                    f"label set {self.name}: {split} has {len(self.ids[split])} ids "
                    f"but {len(self.soft[split])} labels"
                )
            if len(set(self.ids[split].tolist())) != len(self.ids[split]):
                raise ValueError(f"label set {self.name}: duplicated ids in {split}")

    @property
    def key(self) -> str:
        """Hash of name, dataset and manifest: what made this set."""
        return short_hash({"name": self.name, "dataset": self.dataset, "manifest": self.manifest})

    @property
    def splits(self) -> list[str]:
        return list(self.ids)

    def sizes(self) -> dict[str, int]:
        return {split: len(ids) for split, ids in self.ids.items()}

    def align(self, split: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask, soft): which of ``ids`` this set labels, and their labels in ``ids`` order.

        Ids the set omits (a filtered set) get ``mask=False``; ids the set has that are not
        in ``ids`` mean it belongs to other data, which is a UsageError.
        """
        if split not in self.ids:
            raise UsageError(
                f"label set {self.name} has no '{split}' split; it has {', '.join(self.splits)}"
            )
        position = {id_: i for i, id_ in enumerate(np.asarray(ids, dtype=str).tolist())}
        rows = np.array([position.get(id_, -1) for id_ in self.ids[split].tolist()], dtype=np.int64)
        if (rows < 0).any():
            raise UsageError(
                f"label set {self.name} does not match the activations: "
                f"{int((rows < 0).sum())} of its "
                f"{len(rows)} {split} ids are not among the {len(position)} activation ids"
            )
        mask = np.zeros(len(position), dtype=bool)
        soft = np.full(len(position), np.nan, dtype=np.float32)
        mask[rows] = True
        soft[rows] = self.soft[split]
        return mask, soft


#: Manifest fields a derived set inherits from its parent: which weak run it descends from and
#: which splits it labels (so students find their weak run for PGR, and mismatches are caught).
LINEAGE_FIELDS = ("weak_run", "dataset_fingerprint", "split_sizes", "seed")


def lineage(labels: LabelSet) -> dict:
    """The lineage fields of ``labels`` (absent ones omitted), for a set derived from it."""
    return {k: labels.manifest[k] for k in LINEAGE_FIELDS if labels.manifest.get(k) is not None}


def label_changes(new: LabelSet, parent: LabelSet) -> dict[str, dict]:
    """How ``new`` (a relabeled set) differs from the set it was made from (relabel's table).

    Per split that both label: ``n`` shared ids, ``changed`` hard labels (and
    ``changed_fraction``), ``mean_abs_change`` of the soft labels, ``positive_before`` /
    ``positive_after`` (fraction of the positive class) and ``mean_before`` / ``mean_after``
    (mean soft label).  A label above 0.5 is the positive class (:mod:`w2sprobe.metrics`).
    Nothing of this is stored: a set's key hashes its manifest.
    """
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


def labels_root(cache_dir: Path, dataset: str) -> Path:
    return slug_dir(Path(cache_dir) / "labels", dataset)


def save_label_set(labels: LabelSet, cache_dir: Path) -> Path:
    """Write ``labels`` under its key (atomically; an existing identical set is left as is)."""
    target = labels_root(cache_dir, labels.dataset) / labels.key
    if (target / "manifest.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".labels-", dir=target.parent))
    try:
        with (staging / "labels.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["split", "id", "soft_label"])
            for split in labels.splits:
                writer.writerows(
                    (split, id_, repr(float(value)))
                    for id_, value in zip(labels.ids[split].tolist(), labels.soft[split].tolist())
                )
        meta = {
            "name": labels.name,
            "dataset": labels.dataset,
            "key": labels.key,
            "created": time.time(),  # not part of the key: only shown to tell sets apart
            "sizes": labels.sizes(),
            "manifest": labels.manifest,
        }
        (staging / "manifest.json").write_text(
            json.dumps(meta, indent=2, sort_keys=True, default=str)
        )
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "manifest.json").is_file():  # lost a race to an identical writer: fine
            raise
    return target


def load_label_set(folder: Path) -> LabelSet:
    """Read one stored label set."""
    try:
        meta = json.loads((folder / "manifest.json").read_text())
        ids: dict[str, list[str]] = {}
        soft: dict[str, list[float]] = {}
        with (folder / "labels.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                ids.setdefault(row["split"], []).append(row["id"])
                soft.setdefault(row["split"], []).append(float(row["soft_label"]))
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"label set {folder} is unreadable: {exc}") from None
    return LabelSet(
        meta["name"],
        meta["dataset"],
        {s: np.array(v) for s, v in ids.items()},
        {s: np.array(v) for s, v in soft.items()},
        meta.get("manifest", {}),
    )


def list_label_sets(cache_dir: Path, dataset: str) -> list[dict]:
    """Manifests (name, key, sizes, manifest) of every label set stored for ``dataset``."""
    root = labels_root(cache_dir, dataset)
    found = []
    for manifest in sorted(root.glob("*/manifest.json")) if root.is_dir() else []:
        try:
            found.append(json.loads(manifest.read_text()))
        except (OSError, ValueError):
            continue
    return found


def sets_named(stored: list[dict], name: str) -> list[dict]:
    """The stored sets ``name`` refers to: that exact name, or for a name without ``@`` (like
    ``knn-relabel``) also every ``knn-relabel@<parent>``."""
    return [
        m
        for m in stored
        if m["name"] == name or ("@" not in name and m["name"].startswith(f"{name}@"))
    ]


def find_label_set(cache_dir: Path, dataset: str, name_or_key: str) -> LabelSet:
    """The label set of ``dataset`` with this key, or the one set this name refers to."""
    root = labels_root(cache_dir, dataset)
    if (root / name_or_key / "manifest.json").is_file():
        return load_label_set(root / name_or_key)
    stored = list_label_sets(cache_dir, dataset)
    matches = sets_named(stored, name_or_key)
    exact = [m for m in matches if m["name"] == name_or_key]
    if len(exact) == 1 or len(matches) == 1:
        return load_label_set(root / (exact or matches)[0]["key"])
    if not matches:
        known = sorted({m["name"] for m in stored})
        raise UsageError(
            f"no label set '{name_or_key}' for dataset {dataset} under {root.absolute()}"
            + (f"; stored: {', '.join(known)}" if known else "; none stored yet")
        )
    raise UsageError(
        f"label set name '{name_or_key}' is ambiguous for {dataset}; pass one of these keys "
        f"(or its full name): {'; '.join(_describe(m, root) for m in matches)}"
    )


def _describe(meta: dict, root: Path) -> str:
    """``3f2a... = knn-relabel@weak (from weak, made 2026-12-02 01:40)``."""
    parent = meta.get("manifest", {}).get("parent_name") or meta.get("manifest", {}).get("parent")
    return (
        f"{meta['key']} = {meta['name']}"
        f" (from {parent or 'the weak run'}, made {_created(meta, root)})"
    )


def _created(meta: dict, root: Path) -> str:
    stamp = meta.get("created")
    if stamp is None:  # sets saved before creation times were recorded: the file's time
        try:
            stamp = (root / meta["key"] / "manifest.json").stat().st_mtime
        except OSError:
            return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))
