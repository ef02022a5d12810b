"""Everything a workspace holds, as one inventory: what ``cache ls``, ``cache rm`` and
``cache gc`` read and act on.

Seven kinds of artifact live under the cache dir (roots: :func:`w2sprobe.workspace.kind_root`),
each written and read by its own module, through which this one reads them:

* ``acts``: ``acts/<model>/<dataset>/<key>.h5`` (:mod:`w2sprobe.cache`), complete when the file
  is marked complete (a ``.partial`` or ``.rankR-of-W.partial`` shard is not); lock
  ``<key>.h5.lock``;
* ``tokens``: ``tokens/<model>/<dataset>/<key>.h5`` (:mod:`w2sprobe.cache.tokens`), token-level
  activations written by the same writer as ``acts`` files, so listed, locked, removed,
  collected and verified exactly like them;
* ``runs``: ``runs/<dataset>/<key>/`` (:mod:`w2sprobe.runs`), complete when ``metrics.json``
  exists (``checkpoint.pt`` while training); lock ``<dir>/.lock``;
* ``labels``: ``labels/<dataset>/<key>/`` (:mod:`w2sprobe.labels`), filled in a staging folder
  ``.labels-<key>.staging-<host>-<pid>`` and renamed in whole, so always complete; no lock;
* ``probes``: ``probes/<dataset>/<key>/`` (:mod:`w2sprobe.probes.artifact`), fitted probes,
  filled in a staging folder and renamed in whole like label sets; no lock;
* ``sweeps``: ``sweeps/<dataset>/<key>/`` (:mod:`w2sprobe.report.sweep_files`), complete with
  ``sweep.json``;
* ``reports``: ``reports/<key>/`` (:mod:`w2sprobe.report.files`), complete with ``report.json``.

A staging folder (any ``.<kind>-<key>.staging-<host>-<pid>``) or temporary file
(``.<name>.<host>-<pid>.tmp``) whose process is gone is garbage at once; one of another host
(a shared cache), or of an older version without a pid in its name, once untouched for
:data:`GRACE_S`.

A lock is *held* when it cannot be acquired with timeout 0.  Nothing here removes a file whose
lock another process holds; artifacts without a lock are only garbage once untouched for
:data:`GRACE_S` seconds, since a writer may be producing them right now.

This module imports no torch and no report code: ``cache ls`` must stay instant.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from . import labels as label_files
from . import runs as run_files
from .atomic import owner_alive, parse_staging, parse_temp
from .cache.layout import PARTIAL_SUFFIX, lock_path, shard_files
from .cache.store import CacheEntry, list_entries, serving_order
from .errors import UsageError
from .probes import artifact as probe_files
from .report import files as report_files
from .report import sweep_files
from .workspace import KINDS, cache_of, kind_root, rm_hint

#: Seconds an unfinished artifact of a lockless kind (a sweep or report folder without its
#: final file, a label set's staging folder) must be untouched before ``gc`` calls it garbage.
GRACE_S = 3600.0

#: Shortest key prefix ``cache rm`` accepts (shorter ones match too much to be typed safely).
MIN_PREFIX = 4


def kind_roots(cache_dir: Path) -> dict[str, Path]:
    """The top folder of each kind under ``cache_dir`` (:func:`w2sprobe.workspace.kind_root`,
    which every writer's path function uses)."""
    return {kind: kind_root(cache_dir, kind) for kind in KINDS}


# --------------------------------------------------------------------------- artifacts


@dataclass
class Artifact:
    """One keyed artifact of the workspace, complete or not."""

    kind: str
    key: str
    path: Path  # the activation file, or the artifact's folder
    dataset: str
    model: str | None = None
    name: str | None = None  # experiment, label-set name, probe, report formats
    made_from: dict = field(default_factory=dict)  # parent label set, probe, layer, run ...
    details: dict = field(default_factory=dict)  # kind-specific fields (layers, rows, auc ...)
    files: list[Path] = field(default_factory=list)  # what removing the artifact deletes
    leftovers: list[tuple[Path, str]] = field(default_factory=list)  # (file, why it is garbage)
    lock: Path | None = None
    complete: bool = False
    status: str = "complete"
    locked: bool = False
    mtime: float = 0.0
    parents: list[str] = field(default_factory=list)  # keys of the artifacts it was made from
    manifest: dict = field(default_factory=dict, repr=False)  # acts: the file's manifest
    #: What made it (the manifest its key hashes, flattened: ``config.minibatch``); two
    #: artifacts that look alike in ``cache ls`` are told apart by where these differ.
    inputs: dict = field(default_factory=dict, repr=False)
    #: The inputs in which it differs from the artifacts that look like it (empty: none does).
    variant: dict = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return sum(_disk_size(p) for p in self.files)

    def as_dict(self, now: float | None = None) -> dict:
        """JSON form; the kind-specific ``details`` are top-level fields (acts: ``layers``,
        ``rows``, ``problem``, as ``cache ls`` has always printed them)."""
        now = time.time() if now is None else now
        return {
            "kind": self.kind,
            "key": self.key,
            "path": str(self.path),
            "dataset": self.dataset,
            "model": self.model,
            "name": self.name,
            "made_from": self.made_from,
            "origin": self.origin(),
            **self.details,
            "size_bytes": self.size_bytes,
            "mtime": self.mtime,
            "age_s": max(0.0, now - self.mtime),
            "complete": self.complete,
            "status": self.status,
            "locked": self.locked,
            "leftovers": [{"path": str(p), "reason": why} for p, why in self.leftovers],
            "parents": self.parents,
            "variant": self.variant,
        }

    def origin(self) -> str:
        """What it was made from, in one short line (``filter of weak b7cfaf07 by knn k=50 on
        layer 2``)."""
        m = self.made_from
        parts = []
        if m.get("kind"):
            parts.append(str(m["kind"]))
        if m.get("labels") or m.get("labels_name"):
            label = f"labels {m.get('labels_name') or '?'} {(m.get('labels') or '')[:8]}"
            parts.append(label.rstrip())
        if m.get("parent"):
            parts.append(f"of {m.get('parent_name') or '?'} {m['parent'][:8]}")
        if m.get("run"):
            parts.append(f"run {m['run'][:8]}")
        if m.get("probe"):
            parts.append(f"by {m['probe']}")
        if m.get("layer") is not None:
            parts.append(f"layer {m['layer']}")
        if m.get("layers"):
            parts.append(f"layers {','.join(map(str, m['layers']))}")
        if m.get("runs") is not None:
            parts.append(f"{m['runs']} runs")
        return " ".join(parts) or "-"


@dataclass
class Inventory:
    """Every artifact under one cache dir, plus loose garbage that belongs to none."""

    cache_dir: Path
    artifacts: list[Artifact]
    strays: list[Garbage] = field(default_factory=list)  # e.g. dead writers' staging folders
    writing: list[Path] = field(default_factory=list)  # staging folders of live writers

    def of(self, kind: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.kind == kind]

    def dependents(self, key: str) -> list[Artifact]:
        """Artifacts made from the one with ``key`` (students of a label set, sets derived
        from a run, probes on an activation file, ...)."""
        return [a for a in self.artifacts if key in a.parents and a.key != key]

    def find(self, key: str, kind: str | tuple[str, ...] | None = None) -> Artifact:
        """The one artifact (of ``kind``, or of one of several kinds) whose key is ``key`` or
        starts with it; else a UsageError that says what matched."""
        kinds = (kind,) if isinstance(kind, str) else kind
        for name in kinds or ():
            check_kind(name)
        pool = [a for a in self.artifacts if kinds is None or a.kind in kinds]
        exact = [a for a in pool if a.key == key]
        matches = exact or (
            [a for a in pool if a.key.startswith(key)] if len(key) >= MIN_PREFIX else []
        )
        if len(matches) == 1:
            return matches[0]
        root = Path(self.cache_dir).absolute()
        where = f"{' or '.join(kinds)} under {root}" if kinds else f"artifact under {root}"
        if not matches:
            hint = "" if len(key) >= MIN_PREFIX else f" (a prefix needs {MIN_PREFIX}+ characters)"
            raise UsageError(f"no {where} has key '{key}'{hint}; w2sprobe cache ls lists them")
        listed = ", ".join(f"{a.kind} {a.key}" for a in matches[:6])
        more = "" if len(matches) <= 6 else f" and {len(matches) - 6} more"
        advice = "give the whole key" if kind else "give the whole key or --kind"
        raise UsageError(f"key '{key}' is ambiguous: {listed}{more}; {advice}")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UsageError(f"unknown artifact kind '{kind}'; use one of {', '.join(KINDS)}")
    return kind


def scan(cache_dir: Path, now: float | None = None) -> Inventory:
    """Read the whole workspace: every artifact, its metadata, size, completeness and lock."""
    cache_dir = Path(cache_dir)
    now = time.time() if now is None else now
    roots = kind_roots(cache_dir)
    artifacts = [
        *_scan_acts(cache_dir),
        *_scan_acts(cache_dir, "tokens"),
        *map(_describe_run, run_files.run_folders(cache_dir)),
        *map(_describe_labels, label_files.label_set_folders(cache_dir)),
        *map(_describe_probe, probe_files.probe_folders(cache_dir)),
        *map(_describe_sweep, sweep_files.sweep_folders(cache_dir)),
        *map(_describe_report, report_files.report_folders(cache_dir)),
    ]
    _link_activations(artifacts)
    mark_variants(artifacts)
    staging, writing = _staging_leftovers(roots, now)
    return Inventory(cache_dir, artifacts, staging, writing)


# --------------------------------------------------------------------------- acts


#: The kinds stored as HDF5 activation files (one writer, one lock and completion rule).
H5_KINDS = ("acts", "tokens")


def _scan_acts(cache_dir: Path, kind: str = "acts") -> list[Artifact]:
    """One artifact per key: the complete file or its partial, plus its shards and lock
    (``kind``: activation files, or token-level files)."""
    by_key: dict[Path, list[CacheEntry]] = {}
    for entry in list_entries(cache_dir, kind):
        final = entry.path.with_name(entry.path.name.removesuffix(PARTIAL_SUFFIX))
        by_key.setdefault(final, []).append(entry)
    return [_describe_acts(final, entries, kind) for final, entries in sorted(by_key.items())]


def _describe_acts(final: Path, entries: list[CacheEntry], kind: str = "acts") -> Artifact:
    main = next((e for e in entries if e.path == final), entries[0])
    partial = next((e for e in entries if e.path != final), None)
    shards = shard_files(final)
    lock = lock_path(final)
    locked = lock_held(lock)
    complete = main.path == final and main.complete
    if complete:
        status = "complete"
    elif main.path == final:
        status = main.problem or "not marked complete"
    else:
        status = "extracting" if locked else "partial"
    leftovers: list[tuple[Path, str]] = []
    if complete:
        leftovers += [(s, "shard of a finished extraction") for s in shards]
        if partial is not None:
            leftovers.append((partial.path, "partial file beside the complete one"))
    files = [e.path for e in entries] + shards + ([lock] if lock.exists() else [])
    manifest, stored_as = _acts_file_meta(main.path)
    return Artifact(
        kind=kind,
        key=main.key,
        path=main.path,
        dataset=main.dataset if main.dataset != "?" else final.parent.name,
        model=main.model if main.model != "?" else final.parent.parent.name,
        name=None,
        made_from={"layers": main.layers},
        details={
            "layers": main.layers,
            "rows": main.rows,
            "problem": main.problem,
            # what tells two files of one model and dataset apart (all in the key)
            "split_sizes": manifest.get("split_sizes"),
            "pooling": manifest.get("pooling"),
            "tokens": manifest.get("tokens"),
            "max_length": manifest.get("max_length"),
            "compute_dtype": manifest.get("compute_dtype"),
            "store_dtype": stored_as,
            "dataset_fingerprint": manifest.get("dataset_fingerprint"),
            "model_revision": manifest.get("model_revision"),
        },
        files=files,
        leftovers=leftovers,
        lock=lock,
        complete=complete,
        status=status,
        locked=locked,
        mtime=_mtime(main.path),
        manifest=manifest if complete else {},
        inputs=flatten({k: v for k, v in manifest.items() if k != "layers"}),
    )


def _acts_file_meta(path: Path) -> tuple[dict, str | None]:
    """(manifest, dtype the activations are stored in) of an activation file, as far as it
    can be read."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            manifest = json.loads(handle.attrs["manifest"])
            stored = next(
                (
                    str(group[name].dtype)
                    for group in handle.values()
                    if isinstance(group, h5py.Group)
                    for name in group
                    if name.startswith("layer_")
                ),
                None,
            )
            return (manifest if isinstance(manifest, dict) else {}), stored
    except (OSError, KeyError, ValueError, TypeError):
        return {}, None


def _link_activations(artifacts: list[Artifact]) -> None:
    """Point probe runs and probe-made label sets at the activation file they read.

    Their manifests keep the activation manifest, not its key; the file that serves is the
    complete one made the same way that stores the probe's layer and comes first in
    :func:`~w2sprobe.cache.store.serving_order` (most layers, then newest), as
    :func:`w2sprobe.cache.lookup.cached_layers` picks it.
    """
    acts = sorted(
        (a for a in artifacts if a.kind == "acts" and a.manifest),
        key=lambda a: serving_order((a.path, a.details["layers"])),
    )
    for artifact in artifacts:
        wanted = artifact.made_from.pop("_activations", None)
        layer = artifact.made_from.get("layer")
        if not isinstance(wanted, dict) or layer is None:
            continue
        for candidate in acts:
            if (
                _without_layers(candidate.manifest) == _without_layers(wanted)
                and layer in (candidate.details["layers"])
            ):
                artifact.parents.append(candidate.key)
                artifact.made_from["activations"] = candidate.key
                artifact.model = artifact.model or candidate.model
                break


def _without_layers(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "layers"}


# --------------------------------------------------------------------------- variants

#: Manifest fields that record how or when an artifact was made, not what: never a variant.
NOT_INPUTS = ("command", "key", "finished", "created", "report", "w2sprobe_version")
#: A run's inputs, read from its metrics when its manifest.json is missing (older caches).
RUN_INPUTS = (
    "stage",
    "model",
    "model_revision",
    "dataset",
    "dataset_fingerprint",
    "split_sizes",
    "seed",
    "config",
    "compute_dtype",
    "labels_key",
    "probe",
)


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"config": {"lr": 1e-4}}`` -> ``{"config.lr": 1e-4}`` (lists stay values)."""
    flat: dict = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


#: The fields of an activation file that ``cache ls`` shows as columns.
ACTS_SHOWN = ("layers", "split_sizes", "pooling", "max_length", "compute_dtype", "store_dtype")
#: The fields of a token-level file that ``cache ls`` shows (its token spec for the pooling).
TOKENS_SHOWN = ("layers", "split_sizes", "tokens", "max_length", "compute_dtype", "store_dtype")


def look(a: Artifact) -> tuple:
    """What ``cache ls`` shows of an artifact besides its key, size, age and status: two
    artifacts that look the same here are variants, told apart by :attr:`Artifact.variant`."""
    d = a.details
    shown: tuple = (a.kind, a.dataset, a.model, a.name, a.origin())
    if a.kind == "acts":
        shown += tuple(json.dumps(d.get(k), sort_keys=True) for k in ACTS_SHOWN)
    elif a.kind == "tokens":
        shown += tuple(json.dumps(d.get(k), sort_keys=True) for k in TOKENS_SHOWN)
    elif a.kind == "runs":
        shown += (d.get("seed"),)
    elif a.kind == "labels":
        shown += (json.dumps(d.get("sizes"), sort_keys=True),)
    elif a.kind == "probes":
        shown += (d.get("seed"), d.get("storage"))
    return shown


def mark_variants(artifacts: list[Artifact]) -> None:
    """Set each artifact's :attr:`~Artifact.variant`: the inputs in which it differs from the
    others that :func:`look` the same (``config.minibatch: 8`` against 32)."""
    groups: dict[tuple, list[Artifact]] = {}
    for a in artifacts:
        groups.setdefault(look(a), []).append(a)
    for group in (g for g in groups.values() if len(g) > 1):
        names = sorted({name for a in group for name in a.inputs})
        differ = [
            name
            for name in names
            if len({json.dumps(a.inputs.get(name), sort_keys=True, default=str) for a in group}) > 1
        ]
        for a in group:
            a.variant = {name: a.inputs.get(name) for name in differ}


# --------------------------------------------------------------------------- folders


def _folder_artifact(kind: str, folder: Path, meta: dict, complete: bool) -> Artifact:
    return Artifact(
        kind=kind,
        key=folder.name,
        path=folder,
        dataset=str(meta.get("dataset") or folder.parent.name),
        files=[folder],
        complete=complete,
        status="complete" if complete else "unfinished",
        mtime=_mtime(folder),
    )


def _describe_run(folder: Path) -> Artifact:
    metrics = run_files.read_metrics_or_none(folder)
    complete = metrics is not None
    meta = metrics if complete else run_files.read_manifest(folder)
    run = _folder_artifact("runs", folder, meta, complete)
    run.lock = folder / ".lock"
    run.locked = lock_held(run.lock)
    run.model = meta.get("model")
    run.name = meta.get("experiment") or meta.get("stage")
    run.made_from, run.parents = _run_origin(meta)
    run.details = {
        "stage": meta.get("stage"),
        "experiment": meta.get("experiment"),
        "auc": meta.get("auc"),
        "pgr": meta.get("pgr"),
        "pgr_unstable": meta.get("pgr_unstable"),
        "seed": meta.get("seed"),
        "split_sizes": meta.get("split_sizes"),
        "dataset_fingerprint": meta.get("dataset_fingerprint"),
        "model_revision": meta.get("model_revision"),
        "compute_dtype": meta.get("compute_dtype"),
        "config": meta.get("config"),
    }
    made = run_files.read_manifest(folder)  # what the key hashes (metrics add results)
    made = made or {k: meta[k] for k in RUN_INPUTS if k in meta}
    run.inputs = flatten({k: v for k, v in made.items() if k not in NOT_INPUTS})
    checkpoint = folder / run_files.CHECKPOINT
    if not complete:
        run.status = (
            "in use" if run.locked else ("orphaned" if checkpoint.exists() else "unfinished")
        )
    else:
        if checkpoint.exists():
            run.leftovers.append((checkpoint, "checkpoint of a finished run"))
        run.leftovers += [(p, _GONE) for p in _dead_tmp(folder)]
    if not complete and (folder / run_files.METRICS).exists():
        run.status = "unreadable metrics.json"
    return run


def _run_origin(meta: dict) -> tuple[dict, list[str]]:
    """(made_from, parent keys) of a run from its metrics or manifest."""
    labels = meta.get("labels")
    labels_key = meta.get("labels_key") or (labels.get("key") if isinstance(labels, dict) else None)
    labels_name = labels.get("name") if isinstance(labels, dict) else labels
    probe = meta.get("probe") if isinstance(meta.get("probe"), dict) else None
    made = {"labels": labels_key, "labels_name": labels_name}
    if probe:
        made.update(probe=_probe_text(probe), layer=probe.get("layer"))
        made["_activations"] = meta.get("activations")
    parents = [labels_key] if labels_key else []
    if meta.get("stage") == "transfer" and meta.get("probe_key"):  # the saved probe it scored
        parents.append(meta["probe_key"])
    for ref in ("weak", "ceiling"):  # PGR was computed against these runs
        if isinstance(meta.get(ref), dict) and meta[ref].get("key"):
            made[f"{ref}_run"] = meta[ref]["key"]
            parents.append(meta[ref]["key"])
    return {k: v for k, v in made.items() if v is not None}, parents


def _probe_text(probe: dict) -> str:
    """``knn k=50`` from a probe spec (its layer is shown separately)."""
    params = " ".join(
        f"{k}={v}" for k, v in sorted(probe.items()) if k not in ("probe", "layer", "backend")
    )
    return f"{probe.get('probe', '?')} {params}".strip()


def _describe_labels(folder: Path) -> Artifact:
    meta = label_files.read_label_meta(folder)
    complete = meta is not None and (folder / label_files.LABELS_CSV).is_file()
    meta = meta or {}
    made = dict(meta.get("manifest") or {})
    labels = _folder_artifact("labels", folder, meta, complete)
    labels.name = meta.get("name")
    labels.model = made.get("model")
    probe = made.get("probe") if isinstance(made.get("probe"), dict) else None
    labels.made_from = {
        k: v
        for k, v in {
            "kind": made.get("kind"),
            "parent": made.get("parent"),
            "parent_name": made.get("parent_name"),
            "run": made.get("run"),
            "probe": _probe_text(probe) if probe else None,
            "layer": probe.get("layer") if probe else None,
            "contamination": made.get("contamination"),
            "_activations": made.get("activations"),
        }.items()
        if v is not None
    }
    # the probe it was filtered or relabeled by, saved as a cache entry of its own
    labels.parents = [k for k in (made.get("parent"), made.get("run"), made.get("probe_key")) if k]
    labels.details = {
        "label_kind": made.get("kind"),
        "sizes": meta.get("sizes"),
        "seed": made.get("seed"),
        "split_sizes": made.get("split_sizes"),
        "dataset_fingerprint": made.get("dataset_fingerprint"),
    }
    labels.inputs = flatten({k: v for k, v in made.items() if k not in NOT_INPUTS})
    if not complete:
        labels.status = "unreadable"
    return labels


def _describe_probe(folder: Path) -> Artifact:
    """A fitted probe (:mod:`w2sprobe.probes.artifact`): complete iff its probe.json reads."""
    meta = probe_files.read_probe_meta(folder)
    complete = meta is not None
    meta = meta or {}
    probe = _probe_text(meta["probe"]) if isinstance(meta.get("probe"), dict) else None
    chosen = meta.get("chosen") if isinstance(meta.get("chosen"), dict) else None
    if probe and chosen:  # --k auto / --l2 auto: the value it was fit with
        probe += f" ({chosen.get('param')}={chosen.get('value')} chosen)"
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    entry = _folder_artifact("probes", folder, meta, complete)
    entry.name = meta["probe"].get("probe") if isinstance(meta.get("probe"), dict) else None
    entry.model = meta.get("model")
    entry.made_from = {
        k: v
        for k, v in {
            "labels": labels.get("key"),
            "labels_name": labels.get("name"),
            "probe": probe,
            "layer": meta.get("layer"),
            "_activations": meta.get("activations"),
        }.items()
        if v is not None
    }
    entry.parents = [labels["key"]] if labels.get("key") else []
    entry.details = {
        k: meta.get(k) for k in ("seed", "storage", "hidden_size", "train_n", "chosen", "layer")
    }
    made = {k: v for k, v in meta.items() if k not in ("files", "check", "train_ids_sha256")}
    entry.inputs = flatten({k: v for k, v in made.items() if k not in NOT_INPUTS})
    if not complete:
        entry.status = "unreadable"
    entry.leftovers += [(p, _GONE) for p in _dead_tmp(folder)]
    return entry


def _describe_sweep(folder: Path) -> Artifact:
    rows = sweep_files.sweep_rows_or_none(folder)
    complete = rows is not None
    rows = rows or []
    first = rows[0] if rows else {}
    sweep = _folder_artifact("sweeps", folder, first, complete)
    layers = sorted({r["layer"] for r in rows if "layer" in r})
    sweep.name = first.get("probe")
    sweep.made_from = {
        k: v
        for k, v in {
            "labels_name": first.get("labels"),
            "probe": first.get("probe"),
            "layers": layers,
        }.items()
        if v
    }
    sweep.details = {"points": len(rows)}
    sweep.leftovers += [(p, _GONE) for p in _dead_tmp(folder)]
    return sweep


def _describe_report(folder: Path) -> Artifact:
    summary = report_files.read_summary(folder)
    complete = summary is not None
    summary = summary or {}
    datasets = [str(d) for d in summary.get("datasets") or []]
    report = _folder_artifact("reports", folder, {"dataset": ",".join(datasets) or "-"}, complete)
    runs = [r for r in summary.get("runs") or [] if isinstance(r, dict) and r.get("key")]
    report.name = ",".join(sorted(summary.get("files") or {})) or None
    report.made_from = {"runs": len(runs)} if complete else {}
    report.parents = [r["key"] for r in runs]
    report.details = {"datasets": datasets}
    report.leftovers += [(p, _GONE) for p in [*_dead_tmp(folder), *_dead_tmp(folder / "figures")]]
    return report


# --------------------------------------------------------------------------- locks and files


def lock_held(lock: Path) -> bool:
    """Whether another process holds ``lock`` (a ``filelock.FileLock`` file).

    No lock file means nobody holds it, and none is created to find out.  A lock file that
    cannot be opened counts as held: never remove what may be in use.
    """
    if not lock.exists():
        return False
    probe = FileLock(str(lock), timeout=0)
    try:
        probe.acquire()
    except (Timeout, OSError):
        return True
    probe.release()
    return False


@contextmanager
def _holding(lock: Path | None, what: str, note: str = "") -> Iterator[None]:
    """Hold ``lock`` (timeout 0) for the block; held elsewhere -> UsageError."""
    if lock is None:
        yield
        return
    try:
        held = FileLock(str(lock), timeout=0)
        held.acquire()
    except (Timeout, OSError):
        raise UsageError(f"{what} is in use: another process holds {lock}{note}") from None
    try:
        yield
    finally:
        held.release()


def _disk_size(path: Path) -> int:
    """Bytes of a file, or of every file below a folder (links are not followed)."""
    try:
        if path.is_symlink() or path.is_file():
            return path.lstat().st_size
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_symlink() or p.is_file())
    except OSError:  # vanished while we looked: a writer finished or removed it
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


_GONE = "temporary file of a process that is gone"


def _dead_tmp(folder: Path) -> list[Path]:
    """Temporary files of :mod:`w2sprobe.atomic` (``.<name>.<host>-<pid>.tmp``; older
    ``.<name>.<pid>.tmp``) whose process on this host is gone."""
    found = []
    for path in folder.glob(".*.tmp"):
        owner = parse_temp(path)
        if owner is not None and owner_alive(*owner) is False:
            found.append(path)
    return found


# --------------------------------------------------------------------------- rm


@dataclass
class Removal:
    """What ``cache rm`` took away, and what was made from it (kept)."""

    artifact: Artifact
    size_bytes: int
    dependents: list[Artifact]

    def as_dict(self) -> dict:
        a = self.artifact
        return {
            "kind": a.kind,
            "key": a.key,
            "path": str(a.path),
            "dataset": a.dataset,
            "name": a.name,
            "size_bytes": self.size_bytes,
            "dependents": [
                {"kind": d.kind, "key": d.key, "name": d.name, "path": str(d.path)}
                for d in self.dependents
            ],
        }


def remove(inventory: Inventory, keys: Iterable[str], kind: str | None = None) -> list[Removal]:
    """Remove the artifacts with these keys (or unique key prefixes), each under its lock.

    Every key is resolved and every lock checked before anything is deleted: an unknown or
    ambiguous key, or an artifact another process holds, is a UsageError and nothing is
    removed.  Artifacts made from a removed one are kept (and listed): removal never cascades.
    """
    chosen: dict[tuple[str, str], Artifact] = {}
    for key in keys:
        artifact = inventory.find(key, kind)
        chosen[artifact.kind, artifact.key] = artifact
    targets = list(chosen.values())
    for artifact in targets:
        if artifact.lock is not None and lock_held(artifact.lock):
            raise UsageError(
                f"{artifact.kind} {artifact.key} is in use: another process holds "
                f"{artifact.lock}; nothing removed"
            )
    gone = {(a.kind, a.key) for a in targets}
    removals = [
        Removal(
            a,
            a.size_bytes,
            [d for d in inventory.dependents(a.key) if (d.kind, d.key) not in gone],
        )
        for a in targets
    ]
    with ExitStack() as held:
        for a in targets:  # all locks first: one taken in the meantime stops everything
            held.enter_context(_holding(a.lock, f"{a.kind} {a.key}", "; nothing removed"))
        for a in targets:
            _remove_files(a)
    return removals


def _remove_files(artifact: Artifact) -> None:
    """Delete the artifact's files, its lock file last (still held, so no writer can slip in
    between the data going and the lock going)."""
    for path in artifact.files:
        if path != artifact.lock:
            _delete(path)
    if artifact.lock is not None and artifact.lock.exists():
        artifact.lock.unlink(missing_ok=True)


# --------------------------------------------------------------------------- gc


@dataclass
class Garbage:
    """One thing ``cache gc`` removes: a whole unfinished artifact or a leftover file."""

    kind: str
    key: str | None
    path: Path
    reason: str
    size_bytes: int
    lock: Path | None = None
    artifact: Artifact | None = None  # set when the whole (unfinished) artifact goes

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "key": self.key,
            "path": str(self.path),
            "reason": self.reason,
            "size_bytes": self.size_bytes,
        }


@dataclass
class Collection:
    """``cache gc``'s findings: what goes (or went), and what it kept because it is in use."""

    garbage: list[Garbage]
    in_use: list[Artifact]
    skipped: list[Garbage] = field(default_factory=list)  # locked between the scan and removal

    @property
    def size_bytes(self) -> int:
        return sum(g.size_bytes for g in self.garbage)


def find_garbage(inventory: Inventory, now: float | None = None) -> Collection:
    """What ``gc`` would remove: unfinished artifacts nobody is writing (partial activation
    files, runs that stopped — orphaned checkpoints —, lockless folders older than
    :data:`GRACE_S`) and leftovers of finished ones (shards, checkpoints, dead temp files).

    Complete artifacts are never garbage, and nothing whose lock is held is.
    """
    now = time.time() if now is None else now
    garbage: list[Garbage] = list(inventory.strays)
    in_use: list[Artifact] = []
    for a in inventory.artifacts:
        if a.locked:
            if not a.complete or a.leftovers:
                in_use.append(a)
            continue
        whole = _unfinished_reason(a, now)
        if whole:
            garbage.append(Garbage(a.kind, a.key, a.path, whole, a.size_bytes, a.lock, a))
            continue
        garbage += [
            Garbage(a.kind, a.key, path, why, _disk_size(path), a.lock) for path, why in a.leftovers
        ]
    return Collection(garbage, in_use)


def _unfinished_reason(a: Artifact, now: float) -> str | None:
    """Why the whole artifact is garbage, or None (complete, unreadable, or maybe in progress)."""
    if a.complete:
        return None
    if a.kind in H5_KINDS and a.status == "partial":
        return "partial extraction nobody is running (its lock is free)"
    if a.kind == "runs" and a.status in ("orphaned", "unfinished"):
        what = "orphaned checkpoint" if a.status == "orphaned" else "unfinished run"
        return f"{what}: no metrics.json and its lock is free"
    if a.kind in ("sweeps", "reports") and now - a.mtime > GRACE_S:
        final = "sweep.json" if a.kind == "sweeps" else "report.json"
        return f"unfinished {a.kind[:-1]}: no {final} for over {GRACE_S / 3600:g} h"
    return None


def _staging_leftovers(roots: dict[str, Path], now: float) -> tuple[list[Garbage], list[Path]]:
    """(garbage, in progress): writers' staging folders (``.<kind>-<key>.staging-<host>-<pid>``
    beside the artifact folders of every kind; ``.labels-*`` of older versions).

    One whose process on this host is gone is garbage at once; one of another host or of an
    older version once untouched for :data:`GRACE_S` (a live writer renames its folder within
    seconds); one of a live process here is in progress.
    """
    garbage, writing = [], []
    for kind, root in roots.items():
        if kind in H5_KINDS or not root.is_dir():
            continue
        for path in sorted([*root.glob(".*"), *root.glob("*/.*")]):
            if not path.is_dir() or path.name.startswith(".lock"):
                continue
            staging = parse_staging(path)
            alive = staging.alive if staging else None
            if alive:
                writing.append(path)
            elif alive is False:
                why = f"staging folder of a writer that is gone (pid {staging.pid})"
                garbage.append(Garbage(kind, staging.key, path, why, _disk_size(path)))
            elif now - _mtime(path) > GRACE_S:
                why = "staging folder of a writer that never finished"
                key = staging.key if staging else None
                garbage.append(Garbage(kind, key, path, why, _disk_size(path)))
    return garbage, writing


def collect(found: Collection) -> Collection:
    """Remove ``found.garbage``, each item under its artifact's lock (timeout 0).

    An item whose lock was taken since the scan is skipped, not removed; a run that finished
    since the scan (``metrics.json`` appeared) is skipped too.  Returns what was removed.
    """
    removed, skipped = [], []
    for item in found.garbage:
        try:
            with _holding(item.lock, f"{item.kind} {item.key}"):
                if item.kind == "runs" and item.artifact and (item.path / "metrics.json").exists():
                    skipped.append(item)
                    continue
                if item.artifact is not None:
                    _remove_files(item.artifact)
                else:
                    _delete(item.path)
        except UsageError:
            skipped.append(item)
            continue
        removed.append(item)
    return Collection(removed, found.in_use, skipped)


# --------------------------------------------------------------------------- verify


@dataclass
class Check:
    """``cache verify``'s verdict on one artifact (or leftover): ``ok``, ``bad`` or ``in use``
    (a writer holds it or is filling it now), what is wrong, and what clears it."""

    kind: str
    key: str | None
    path: Path
    status: str
    problems: list[str] = field(default_factory=list)
    fix: str | None = None

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "key": self.key,
            "path": str(self.path),
            "status": self.status,
            "problems": self.problems,
            "fix": self.fix,
        }


RESUME = "run the same command again to finish it, or remove it with: w2sprobe cache gc"


def verify(inventory: Inventory, now: float | None = None) -> list[Check]:
    """Check every artifact of every kind, through its format's own module: activation files
    (structure, rows committed, finite values), runs (metrics follow the contract, predictions
    match the rows and SHA-256 they recorded), label sets (rows per split, SHA-256), sweeps and
    reports (every file against its recorded size and SHA-256); and report leftovers.
    """
    now = time.time() if now is None else now
    checks = [_check(inventory.cache_dir, a, now) for a in inventory.artifacts]
    checks += [
        Check(g.kind, g.key, g.path, "bad", [f"leftover: {g.reason}"], "w2sprobe cache gc")
        for g in inventory.strays
    ]
    checks += [
        Check(_kind_of(path, inventory.cache_dir), None, path, "in use")
        for path in inventory.writing
    ]
    return checks


def verify_path(path: Path) -> Check:
    """Check one file or folder named on the command line (an activation file or an artifact
    folder of any kind, found by what it holds)."""
    path = Path(path)
    if not path.exists():
        return Check("?", None, path, "bad", ["does not exist"])
    if path.name.endswith((".h5", ".h5" + PARTIAL_SUFFIX)):
        return _acts_check(path, kind=_h5_kind(path))
    folder = path if path.is_dir() else path.parent
    for kind, marker in _MARKERS:
        if any((folder / name).exists() for name in marker):
            return _check_folder(kind, folder)
    what = "not an artifact: no activation file, run, label set, probe, sweep or report here"
    return Check("?", None, path, "bad", [what])


_MARKERS = (
    ("runs", (run_files.METRICS, run_files.PREDICTIONS, run_files.CHECKPOINT)),
    ("labels", (label_files.LABELS_CSV,)),
    ("probes", (probe_files.PROBE_JSON, probe_files.PARAMS)),
    ("sweeps", (sweep_files.SWEEP_JSON, sweep_files.SWEEP_CSV)),
    ("reports", (report_files.REPORT_JSON,)),
)


def _check(cache_dir: Path, a: Artifact, now: float) -> Check:
    if a.locked and not a.complete:
        return Check(a.kind, a.key, a.path, "in use")
    if a.kind in H5_KINDS:
        check = _acts_check(a.path, cache_dir, a.kind)
        if a.complete and a.leftovers:  # a complete file beside its own partial or shards
            check.problems += [f"leftover: {why} ({p.name})" for p, why in a.leftovers]
            check.fix = check.fix or "w2sprobe cache gc"
            check.status = "bad"
        return check
    marker = {"sweeps": sweep_files.SWEEP_JSON, "reports": report_files.REPORT_JSON}.get(a.kind)
    if marker and not (a.path / marker).exists() and now - a.mtime <= GRACE_S:
        return Check(a.kind, a.key, a.path, "in use")  # lockless: maybe being written now
    return _check_folder(a.kind, a.path, cache_dir)


def _acts_check(path: Path, cache_dir: Path | None = None, kind: str = "acts") -> Check:
    """An activation or token-level file (one format, :func:`w2sprobe.cache.store.verify`)."""
    from .cache.store import verify as verify_file

    key = path.name.split(".h5")[0]
    problems = verify_file(path)
    fix = None
    if problems:
        partial = path.name.endswith(PARTIAL_SUFFIX)
        fix = RESUME if partial else rm_hint(cache_dir or cache_of(path, kind), key)
    return Check(kind, key, path, "bad" if problems else "ok", problems, fix)


def _h5_kind(path: Path) -> str:
    """``tokens`` for a file under a workspace's ``tokens/<model>/<dataset>/`` or one whose
    attributes say so, else ``acts``."""
    import h5py

    if len(path.parents) > 2 and path.parents[2].name == "tokens":
        return "tokens"
    try:
        with h5py.File(path, "r") as handle:
            return "tokens" if "tokens" in handle.attrs else "acts"
    except OSError:
        return "acts"


def _check_folder(kind: str, folder: Path, cache_dir: Path | None = None) -> Check:
    key = folder.name
    if kind == "runs":
        if not (folder / run_files.METRICS).exists():
            problems = ["unfinished: no metrics.json"]
            return Check(kind, key, folder, "bad", problems, RESUME)
        problems = run_files.verify_run(folder)
    elif kind == "labels":
        problems = label_files.verify_label_set(folder)
    elif kind == "probes":
        problems = probe_files.verify_probe(folder)
    elif kind == "sweeps":
        problems = sweep_files.verify_sweep(folder)
    else:
        problems = report_files.verify_report(folder)
    if not problems:
        return Check(kind, key, folder, "ok")
    unfinished = problems[0].startswith("unfinished")
    fix = RESUME if unfinished else rm_hint(cache_dir or cache_of(folder, kind), key)
    return Check(kind, key, folder, "bad", problems, fix)


def _kind_of(path: Path, cache_dir: Path) -> str:
    staging = parse_staging(path)
    if staging is not None:
        return staging.kind
    try:
        return Path(path).relative_to(cache_dir).parts[0]
    except ValueError:
        return "?"
