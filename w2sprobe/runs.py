"""Result files of trained and probe runs — the contract ``w2sprobe report`` reads.

One run lives in ``<cache>/runs/<dataset>/<key>/``:

* ``manifest.json`` — written first: stage, experiment, model, dataset, seed, full config, and
  ``command`` (the ``w2sprobe ...`` command line that wrote it, when it came from the CLI);
* ``predictions.csv`` — ``split,id,soft_pred,label`` (``label`` = ground truth), for every
  split the run predicted (always ``test``);
* ``metrics.json`` — written last, atomically: the run is complete iff it exists.  Test
  ``auc``/``accuracy``/``n`` against ground truth; students and probes add ``pgr`` with the
  ``weak`` and ``ceiling`` runs (``{"key", "auc"}``) it was computed against; ``finished`` is
  when it was written (Unix seconds), which orders runs of one experiment however the cache
  was copied since (a clone or a plain ``cp`` resets file times).
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UsageError
from .jsonutil import finite
from .workspace import slug_dir

STAGES = ("weak", "ceiling", "student", "probe")

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
        return read_predictions(self.folder / "predictions.csv")

    def ref(self) -> dict:
        """How a student's metrics point at this run."""
        return {"key": self.key, "auc": self.auc}


def runs_root(cache_dir: Path, dataset: str) -> Path:
    return slug_dir(Path(cache_dir) / "runs", dataset)


def run_dir(cache_dir: Path, dataset: str, key: str) -> Path:
    return runs_root(cache_dir, dataset) / key


def load_run(folder: Path) -> RunRecord | None:
    """The finished run in ``folder``, or None if it has not finished (no metrics.json)."""
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    try:
        return RunRecord(folder, json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise UsageError(f"corrupt metrics file {path}: {exc}") from None


def find_runs(cache_dir: Path, dataset: str, **match) -> list[RunRecord]:
    """Finished runs of ``dataset`` whose metrics equal ``match`` on every given field.

    Newest first.
    """
    root = runs_root(cache_dir, dataset)
    found = []
    for metrics_file in root.glob("*/metrics.json") if root.is_dir() else []:
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
        return (folder / "metrics.json").stat().st_mtime
    except OSError:
        return 0.0


def write_manifest(folder: Path, manifest: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if _command is not None and "command" not in manifest:
        manifest = {**manifest, "command": _command}  # not part of the key: how, not what
    atomic_write(
        folder / "manifest.json",
        json.dumps(finite(manifest), indent=2, sort_keys=True, default=str),
    )


def write_predictions(folder: Path, predictions: dict[str, SplitPredictions]) -> None:
    lines = ["split,id,soft_pred,label"]
    for split, p in predictions.items():
        lines += [
            f"{split},{i},{float(s)!r},{float(y)!r}"
            for i, s, y in zip(p.ids.tolist(), p.soft.tolist(), p.labels.tolist())
        ]
    atomic_write(folder / "predictions.csv", "\n".join(lines) + "\n")


def write_metrics(folder: Path, metrics: dict) -> RunRecord:
    """Write the file that marks the run complete (after everything else)."""
    metrics = {**metrics, "finished": time.time()}  # not part of the key: orders reruns
    atomic_write(
        folder / "metrics.json", json.dumps(finite(metrics), indent=2, sort_keys=True, default=str)
    )
    return RunRecord(folder, json.loads((folder / "metrics.json").read_text()), fresh=True)


def read_predictions(path: Path) -> dict[str, SplitPredictions]:
    rows: dict[str, tuple[list, list, list]] = {}
    try:
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                ids, soft, labels = rows.setdefault(row["split"], ([], [], []))
                ids.append(row["id"])
                soft.append(float(row["soft_pred"]))
                labels.append(float(row["label"]))
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"unreadable predictions file {path}: {exc}") from None
    return {
        split: SplitPredictions(
            np.array(i, dtype=str), np.array(s, dtype=np.float32), np.array(y, dtype=np.float32)
        )
        for split, (i, s, y) in rows.items()
    }


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
