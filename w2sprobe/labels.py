"""Label sets: ``id -> soft label`` tables, per split, with a manifest saying how they were made.

Weak labels, probe-filtered sets (which simply omit ids) and probe-relabeled sets are all one
kind of thing, stored as ``<cache>/labels/<dataset>/<key>/`` holding ``labels.csv``
(``split,id,soft_label``) and ``manifest.json`` (rows per split, the table's SHA-256, and how
the set was made).  The key is a hash of how it was made, so a set made from different inputs
never overwrites another; ``name`` is the human handle (``weak``, ``knn-filter@weak``, ...)
that ``--labels NAME`` resolves when it is unambiguous.  This module is the one writer and
reader of the format.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np

from .atomic import file_record, record_problem, staged_folder, write_into
from .errors import UsageError, first_line
from .hashing import short_hash
from .runs import RunRecord, float32_texts, load_run, run_dir
from .workspace import cache_of, kind_root, rm_hint, slug_dir


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
    return slug_dir(kind_root(cache_dir, "labels"), dataset)


#: The files of a label set; ``manifest.json`` is written last and marks it complete.
LABELS_CSV, MANIFEST = "labels.csv", "manifest.json"


def save_label_set(labels: LabelSet, cache_dir: Path) -> Path:
    """Write ``labels`` under its key, atomically: filled in a staging folder and renamed into
    place in one step (an existing set of the same key is left as it is).

    ``manifest.json`` records the rows per split (``sizes``) and the byte count and SHA-256 of
    ``labels.csv`` (``files``): readers check both.  Neither is part of the key.
    """
    target = labels_root(cache_dir, labels.dataset) / labels.key
    if (target / MANIFEST).is_file():
        return target
    table = _csv_bytes(labels)
    with staged_folder(target, "labels") as staging:
        write_into(staging, LABELS_CSV, table)
        meta = {
            "name": labels.name,
            "dataset": labels.dataset,
            "key": labels.key,
            "created": time.time(),  # not part of the key: only shown to tell sets apart
            "sizes": labels.sizes(),
            "files": {LABELS_CSV: file_record(staging / LABELS_CSV)},
            "manifest": labels.manifest,
        }
        write_into(
            staging, MANIFEST, json.dumps(meta, indent=2, sort_keys=True, default=str).encode()
        )
    return target


def _csv_bytes(labels: LabelSet) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["split", "id", "soft_label"])
    for split in labels.splits:
        writer.writerows(
            (split, id_, value)
            for id_, value in zip(labels.ids[split].tolist(), float32_texts(labels.soft[split]))
        )
    return out.getvalue().encode()


def load_label_set(folder: Path) -> LabelSet:
    """Read one stored label set, checked against what its manifest recorded when it was
    written (rows per split, and the SHA-256 of ``labels.csv`` when recorded); a damaged set
    is a UsageError naming it and the ``cache rm`` that clears it."""
    folder = Path(folder)
    meta = read_label_meta(folder)
    if meta is None:
        _damaged(folder, {}, f"{MANIFEST} is missing or unreadable")
    ids, soft, problem = _read_table(folder / LABELS_CSV)
    problem = problem or _integrity_problem(folder, meta, ids)
    if problem:
        _damaged(folder, meta, problem)
    try:
        return LabelSet(
            meta["name"],
            meta["dataset"],
            {s: np.array(v) for s, v in ids.items()},
            {s: np.array(v) for s, v in soft.items()},
            meta.get("manifest", {}),
        )
    except (KeyError, ValueError) as exc:
        _damaged(folder, meta, first_line(exc))


def verify_label_set(folder: Path) -> list[str]:
    """Problems of one stored label set (empty: intact): ``cache verify``'s check."""
    meta = read_label_meta(Path(folder))
    if meta is None:
        return [f"{MANIFEST} is missing or unreadable"]
    ids, _, problem = _read_table(Path(folder) / LABELS_CSV)
    problem = problem or _integrity_problem(Path(folder), meta, ids)
    return [problem] if problem else []


def read_label_meta(folder: Path) -> dict | None:
    """The stored ``manifest.json`` of a label-set folder (name, key, sizes, files, manifest),
    or None when it is missing or unreadable.  Cheap: the table is not read."""
    try:
        meta = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return None
    return meta


def label_set_folders(cache_dir: Path) -> list[Path]:
    """Every label-set folder of every dataset (staging folders, dot-named, are not sets)."""
    root = kind_root(cache_dir, "labels")
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.glob("*/*")
        if p.is_dir() and not p.name.startswith(".") and not p.parent.name.startswith(".")
    )


def _read_table(path: Path) -> tuple[dict[str, list[str]], dict[str, list[float]], str | None]:
    """(ids, soft labels) per split of ``labels.csv``, and what is wrong with it (or None)."""
    ids: dict[str, list[str]] = {}
    soft: dict[str, list[float]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header != ["split", "id", "soft_label"]:
                return ids, soft, f"{LABELS_CSV} has no split,id,soft_label header"
            for row in reader:
                if len(row) != 3:
                    return (
                        ids,
                        soft,
                        (
                            f"{LABELS_CSV} is cut or garbled at line {reader.line_num} "
                            f"({len(row)} fields, expected 3)"
                        ),
                    )
                try:
                    value = float(row[2])
                except ValueError:
                    return (
                        ids,
                        soft,
                        (
                            f"{LABELS_CSV} line {reader.line_num}: soft label {row[2]!r} is not a "
                            "number"
                        ),
                    )
                ids.setdefault(row[0], []).append(row[1])
                soft.setdefault(row[0], []).append(value)
    except FileNotFoundError:
        return ids, soft, f"{LABELS_CSV} is missing"
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return ids, soft, f"{LABELS_CSV} is unreadable ({first_line(exc)})"
    return ids, soft, None


def _integrity_problem(folder: Path, meta: dict, ids: dict[str, list[str]]) -> str | None:
    """Rows per split against the manifest's ``sizes``, then the recorded checksum."""
    sizes = meta.get("sizes")
    if isinstance(sizes, dict):
        for split in sorted(set(sizes) | set(ids)):
            found, said = len(ids.get(split, [])), sizes.get(split)
            if said is None:
                return f"{LABELS_CSV} has a '{split}' split its manifest does not list"
            if found != said:
                return f"{LABELS_CSV} has {found} {split} rows, its manifest says {said}"
    files = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    return record_problem(folder / LABELS_CSV, files.get(LABELS_CSV))


def _damaged(folder: Path, meta: dict, problem: str) -> NoReturn:
    key = str(meta.get("key") or folder.name)
    name = meta.get("name")
    what = f"label set {name} ({key})" if name else f"label set {key} ({folder})"
    hint = rm_hint(cache_of(folder, "labels"), key)
    raise UsageError(f"{what} is damaged: {problem}; remove it with: {hint}")


def list_label_sets(cache_dir: Path, dataset: str) -> list[dict]:
    """Manifests (name, key, sizes, manifest) of every label set stored for ``dataset``.

    Staging folders of writers (``.labels-<key>.staging-...``, dot-named) are never listed.
    """
    root = labels_root(cache_dir, dataset)
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        meta = read_label_meta(folder)
        if meta is not None:
            found.append(meta)
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
    if not name_or_key.startswith(".") and (root / name_or_key / MANIFEST).is_file():
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


def find_derived_set(
    cache_dir: Path, dataset: str, name: str, made_by: dict, activations: dict
) -> dict | None:
    """The stored set called ``name`` made the way ``made_by`` says (every key of it equal in
    the set's manifest: kind, probe, parent, contamination) from a file of the extraction
    ``activations`` describes (its manifest without the layer list); None when there is none."""
    for meta in list_label_sets(cache_dir, dataset):
        manifest = meta.get("manifest", {})
        stored_activations = {
            k: v for k, v in manifest.get("activations", {}).items() if k != "layers"
        }
        if (
            meta.get("name") == name
            and all(manifest.get(k) == v for k, v in made_by.items())
            and stored_activations == activations
        ):
            return meta
    return None


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
