"""Result files of trained and probe runs — the contract ``w2sprobe report`` reads.

One run lives in ``<cache>/runs/<dataset>/<key>/``:

* ``manifest.json`` — written first: stage, experiment, model, dataset, seed, full config, and
  ``command`` (the ``w2sprobe ...`` command line that wrote it, when it came from the CLI);
* ``predictions.csv`` — ``split,id,soft_pred,label`` (``label`` = ground truth), for every
  split the run predicted (always ``test``);
* ``metrics.json`` — written last: the run is complete iff it exists.  ``files`` records the
  byte count, SHA-256 and rows per split of ``predictions.csv``, checked by every reader.  Test
  ``auc``/``accuracy``/``n`` against ground truth; students and probes add ``pgr`` with the
  ``weak`` and ``ceiling`` runs (``{"key", "auc"}``) it was computed against; ``finished`` is
  when it was written (Unix seconds), which orders runs of one experiment however the cache
  was copied since (a clone or a plain ``cp`` resets file times).

Every file is written atomically (:mod:`w2sprobe.atomic`).  This module is the one writer and
reader of the format: the trainer, probes, ``report`` and ``cache ls/verify`` go through it.
"""

from __future__ import annotations

import csv
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from .atomic import file_record, record_problem, write_json, write_text
from .errors import UsageError, first_line
from .jsonutil import finite
from .provenance import environment
from .workspace import cache_of, kind_root, rm_hint, slug_dir

#: ``transfer``: a saved probe scored on another dataset (:mod:`w2sprobe.probes.transfer`).
STAGES = ("weak", "ceiling", "student", "probe", "transfer")

#: The command line of this process while the CLI runs (``record_command``): every run manifest
#: written meanwhile records it, so a report can say which command produced its runs.
_command: str | None = None


def record_command(argv: list[str] | None) -> None:
    """Remember ``w2sprobe <argv>`` for the manifests written from now on; None forgets it."""
    global _command
    _command = None if argv is None else shlex.join(["w2sprobe", *argv])


def current_command() -> str | None:
    """The CLI command line this process is running (``record_command``), or None."""
    return _command


@dataclass
class SplitPredictions:
    ids: np.ndarray
    soft: np.ndarray
    labels: np.ndarray


@dataclass
class RunRecord:
    """A finished run: where it is, its metrics, and (lazily) its predictions."""

    folder: Path
    metrics: dict
    fresh: bool = False  # written by this process just now (not found in the cache)

    @property
    def key(self) -> str:
        return self.metrics["key"]

    @property
    def auc(self) -> float:
        return self.metrics["auc"]

    def predictions(self) -> dict[str, SplitPredictions]:
        """Every split it predicted, checked against what the run recorded writing."""
        files = self.metrics.get("files")
        record = files.get(PREDICTIONS) if isinstance(files, dict) else None
        return read_predictions(self.folder / PREDICTIONS, record)

    def ref(self) -> dict:
        """How a student's metrics point at this run."""
        return {"key": self.key, "auc": self.auc}


def runs_root(cache_dir: Path, dataset: str) -> Path:
    return slug_dir(kind_root(cache_dir, "runs"), dataset)


def run_dir(cache_dir: Path, dataset: str, key: str) -> Path:
    return runs_root(cache_dir, dataset) / key


def run_folders(cache_dir: Path) -> list[Path]:
    """Every run folder ``runs/<dataset>/<key>/``, finished or not (dot-named folders are
    writers' staging, not runs)."""
    root = kind_root(cache_dir, "runs")
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.glob("*/*")
        if p.is_dir() and not p.name.startswith(".") and not p.parent.name.startswith(".")
    )


#: The files of a run: the manifest first, the predictions, the metrics last (complete).
MANIFEST, PREDICTIONS, METRICS = "manifest.json", "predictions.csv", "metrics.json"
CHECKPOINT = "checkpoint.pt"


def load_run(folder: Path) -> RunRecord | None:
    """The finished run in ``folder``, or None if it has not finished (no metrics.json)."""
    if not (Path(folder) / METRICS).is_file():
        return None
    return RunRecord(Path(folder), read_metrics(folder, strict=False))


def read_metrics(folder: Path, strict: bool = True) -> dict:
    """A finished run's ``metrics.json``; a file that is no JSON object (or, ``strict``, breaks
    the result-file contract) is a UsageError naming it and the ``cache rm`` that clears it."""
    path = Path(folder) / METRICS
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _corrupt(folder, f"corrupt metrics file {path}: {first_line(exc)}")
    problem = (
        metrics_problem(metrics)
        if strict
        else (None if isinstance(metrics, dict) else "expected a JSON object")
    )
    if problem:
        _corrupt(folder, f"corrupt metrics file {path}: {problem}")
    return metrics


def read_metrics_or_none(folder: Path) -> dict | None:
    """``metrics.json`` as a dict when it is readable JSON (for listings: no contract check)."""
    try:
        metrics = json.loads((Path(folder) / METRICS).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def read_manifest(folder: Path) -> dict:
    """A run folder's ``manifest.json`` (written first), or {} when missing or unreadable."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def metrics_problem(metrics) -> str | None:
    """Why ``metrics`` breaks the result-file contract, or None."""
    if not isinstance(metrics, dict):
        return "expected a JSON object"
    for name in ("key", "stage", "experiment", "dataset"):
        if not isinstance(metrics.get(name), str) or not metrics[name]:
            return f"field '{name}' must be a non-empty string"
    if metrics["stage"] not in STAGES:
        return f"stage '{metrics['stage']}' is not one of {', '.join(STAGES)}"
    if isinstance(metrics.get("seed"), bool) or not isinstance(metrics.get("seed"), int):
        return "field 'seed' must be an integer"
    for name in ("auc", "accuracy", "pgr"):
        if metrics.get(name) is not None and not _is_number(metrics[name]):
            return f"field '{name}' must be a number or null"
    if "auc" not in metrics:
        return "field 'auc' is missing"
    for name in ("weak", "ceiling"):
        ref = metrics.get(name)
        if ref is not None and not (isinstance(ref, dict) and isinstance(ref.get("key"), str)):
            return f'field \'{name}\' must be {{"key", "auc"}} or null'
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def find_runs(cache_dir: Path, dataset: str, **match) -> list[RunRecord]:
    """Finished runs of ``dataset`` whose metrics equal ``match`` on every given field.

    Newest first.
    """
    root = runs_root(cache_dir, dataset)
    found = []
    for metrics_file in root.glob(f"*/{METRICS}") if root.is_dir() else []:
        if metrics_file.parent.name.startswith("."):
            continue
        record = load_run(metrics_file.parent)
        if record and all(record.metrics.get(k) == v for k, v in match.items()):
            found.append(record)
    return sorted(found, key=lambda r: finished_at(r.folder, r.metrics), reverse=True)


def finished_at(folder: Path, metrics: dict) -> float:
    """When the run in ``folder`` finished: its recorded ``finished`` time, else (a run written
    before that was recorded) its ``metrics.json``'s modification time."""
    stamp = metrics.get("finished")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        return float(stamp)
    try:
        return (folder / METRICS).stat().st_mtime
    except OSError:
        return 0.0


def write_manifest(folder: Path, manifest: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if _command is not None and "command" not in manifest:
        manifest = {**manifest, "command": _command}  # not part of the key: how, not what
    if "environment" not in manifest:  # where it was made (hashed host): how, not what
        manifest = {**manifest, "environment": environment()}
    write_json(folder / MANIFEST, finite(manifest), indent=2, sort_keys=True, default=str)


def write_predictions(folder: Path, predictions: dict[str, SplitPredictions]) -> None:
    lines = ["split,id,soft_pred,label"]
    for split, p in predictions.items():
        lines += [
            f"{split},{i},{s},{y}"
            for i, s, y in zip(p.ids.tolist(), float32_texts(p.soft), float32_texts(p.labels))
        ]
    write_text(folder / PREDICTIONS, "\n".join(lines) + "\n")


def float32_texts(values) -> list[str]:
    """Each value as the shortest text that reads back to the same float32 (``0.93175167``,
    not the float64 expansion ``0.9317516803741455``): predictions and labels are float32, so
    nothing is lost, and the files are half the size."""
    return [str(v) for v in np.asarray(values, dtype=np.float32)]


def write_metrics(folder: Path, metrics: dict) -> RunRecord:
    """Write the file that marks the run complete (after everything else).

    It records ``finished`` (when) and ``files``: the byte count, SHA-256 and rows per split of
    ``predictions.csv`` as written, which every reader of the predictions checks.  Neither is
    part of the run's key.
    """
    files = {}
    if (folder / PREDICTIONS).is_file():
        files[PREDICTIONS] = {
            **file_record(folder / PREDICTIONS),
            "rows": {s: len(p.ids) for s, p in _parse_predictions(folder / PREDICTIONS).items()},
        }
    metrics = {**metrics, "finished": time.time(), "files": files}  # not part of the key
    write_json(folder / METRICS, finite(metrics), indent=2, sort_keys=True, default=str)
    return RunRecord(folder, json.loads((folder / METRICS).read_text()), fresh=True)


def read_predictions(path: Path, record: dict | None = None) -> dict[str, SplitPredictions]:
    """``predictions.csv`` per split; with ``record`` (``metrics["files"]["predictions.csv"]``
    of the run) its rows per split and checksum are checked first.  A malformed or damaged file
    is a UsageError naming it and the ``cache rm`` that clears the run."""
    path = Path(path)
    try:
        rows = _parse_predictions(path)
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        _corrupt(path.parent, f"corrupt predictions file {path}: {first_line(exc)}")
    problem = predictions_problem(path, rows, record)
    if problem:
        _corrupt(path.parent, f"corrupt predictions file {path}: {problem}")
    return rows


def predictions_problem(
    path: Path, rows: dict[str, SplitPredictions], record: dict | None
) -> str | None:
    """How ``predictions.csv`` differs from what its run recorded writing (None: it does not,
    or nothing was recorded: a run from before checksums)."""
    if not isinstance(record, dict):
        return None
    said = record.get("rows")
    if isinstance(said, dict):
        for split in sorted(set(said) | set(rows)):
            found = len(rows[split].ids) if split in rows else 0
            if found != said.get(split, 0):
                return f"{found} {split} rows, its metrics.json says {said.get(split, 0)}"
    return record_problem(path, record)


def _parse_predictions(path: Path) -> dict[str, SplitPredictions]:
    rows: dict[str, tuple[list, list, list]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        absent = {"split", "id", "soft_pred", "label"} - set(reader.fieldnames or [])
        if absent:
            raise ValueError(f"missing column(s) {', '.join(sorted(absent))}")
        for row in reader:
            if None in row or None in row.values():
                raise ValueError(f"line {reader.line_num} is cut or garbled")
            ids, soft, labels = rows.setdefault(row["split"], ([], [], []))
            ids.append(row["id"])
            soft.append(float(row["soft_pred"]))
            labels.append(float(row["label"]))
    return {
        split: SplitPredictions(
            np.array(i, dtype=str), np.array(s, dtype=np.float32), np.array(y, dtype=np.float32)
        )
        for split, (i, s, y) in rows.items()
    }


def verify_run(folder: Path) -> list[str]:
    """Problems of one finished run (empty: intact): ``cache verify``'s check.  Its metrics
    follow the contract and its predictions are what it recorded writing (rows, checksum)."""
    try:
        metrics = read_metrics(folder)
        path = Path(folder) / PREDICTIONS
        if not path.is_file():
            return [f"{PREDICTIONS} is missing"]
        read_predictions(path, (metrics.get("files") or {}).get(PREDICTIONS))
    except UsageError as exc:
        return [str(exc).split("; remove it with:")[0]]
    return []


def _corrupt(folder: Path, problem: str) -> NoReturn:
    """A damaged run: the problem, and the command that removes the run."""
    folder = Path(folder)
    hint = rm_hint(cache_of(folder, "runs"), folder.name)
    raise UsageError(f"{problem}; remove the run with: {hint}")
