"""Optional experiment tracking: each built stage's config and metrics, and the report's figures.

``--tracker mlflow`` (extra ``[mlflow]``) or ``--tracker wandb`` (extra ``[wandb]``); off by
default, and then neither library is imported.  Each stage that a command *builds* becomes one
tracker run named ``<dataset>/<stage>`` with the artifact's manifest as its parameters (what the
cache key hashes) and its numeric metrics; cached stages are not logged again.  Where runs go is
each library's own business: MLflow reads ``MLFLOW_TRACKING_URI`` (without it, a file store under
``<cache>/mlruns``) and ``MLFLOW_EXPERIMENT_NAME`` (default ``w2sprobe``); W&B reads
``WANDB_PROJECT`` (default ``w2sprobe``), ``WANDB_MODE=offline`` and the rest of its settings.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from .errors import UsageError

EXTRAS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}  # name -> (module, extra)
PROJECT = "w2sprobe"


def check_tracker(kind: str) -> None:
    """A named tracker must be installed; say which extra provides it."""
    if kind == "none":
        return
    module, extra = EXTRAS[kind]
    if importlib.util.find_spec(module) is None:
        raise UsageError(
            f"--tracker {kind} needs the {module} package: pip install 'w2sprobe[{extra}]'"
        )


def open_tracker(kind: str, cache_dir: Path) -> "Tracker | None":
    """The tracker ``--tracker`` names, or None when it is ``none``."""
    check_tracker(kind)
    if kind == "mlflow":
        return MlflowTracker(cache_dir)
    if kind == "wandb":
        return WandbTracker(cache_dir)
    return None


def flat_params(manifest: dict, prefix: str = "") -> dict[str, str]:
    """A nested manifest as ``a.b.c -> value`` strings (trackers take flat parameters)."""
    params: dict[str, str] = {}
    for name, value in manifest.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            params.update(flat_params(value, f"{key}."))
        else:
            params[key] = value if isinstance(value, str) else json.dumps(value, default=str)
    return params


def numeric_metrics(metrics: dict) -> dict[str, float]:
    """The finite numbers among a stage's metrics (``weak.auc`` for a nested one)."""
    found: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and value == value:  # not nan
            found[name] = float(value)
        elif isinstance(value, dict):
            found.update({f"{name}.{k}": v for k, v in numeric_metrics(value).items()})
    return found


def tracked_metrics(metrics: dict) -> dict[str, float]:
    """A stage's numbers for a tracker: :func:`numeric_metrics`, plus ``pgr_unstable`` as 0/1
    (a bool, which trackers do not plot) so an unstable PGR is never charted unmarked."""
    found = numeric_metrics(metrics)
    if isinstance(metrics.get("pgr_unstable"), bool):
        found["pgr_unstable"] = float(metrics["pgr_unstable"])
    return found


class Tracker:
    """What a tracker is told: one finished stage at a time, then the report's files."""

    def log_stage(self, name: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def log_report(self, files: list[Path], summary: dict[str, Any]) -> None:
        raise NotImplementedError


def report_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The report's headline numbers: mean and median PGR of each experiment across datasets."""
    return {
        f"{row['experiment']}.{name}": float(row[name])
        for row in summary.get("summary", [])
        for name in ("mean_pgr", "median_pgr")
        if isinstance(row.get(name), (int, float))
    }


class MlflowTracker(Tracker):
    def __init__(self, cache_dir: Path):
        import mlflow

        self.mlflow = mlflow
        if os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        else:
            # MLflow 3 keeps its file store only on request; it needs no server or database.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((Path(cache_dir) / "mlruns").resolve().as_uri())
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT))

    def log_stage(self, name: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        with self.mlflow.start_run(run_name=name):
            # MLflow caps a parameter value at 6000 characters; a manifest's long lists fit.
            self.mlflow.log_params({k: v[:6000] for k, v in params.items()})
            self.mlflow.log_metrics(metrics)

    def log_report(self, files: list[Path], summary: dict[str, Any]) -> None:
        with self.mlflow.start_run(run_name="report"):
            self.mlflow.log_metrics(report_metrics(summary))
            for path in files:
                self.mlflow.log_artifact(str(path))


class WandbTracker(Tracker):
    def __init__(self, cache_dir: Path):
        import wandb

        self.wandb = wandb
        self.project = os.environ.get("WANDB_PROJECT", PROJECT)
        self.folder = Path(cache_dir)  # wandb/ (offline runs, logs) under the workspace

    def _init(self, name: str, config: dict):
        return self.wandb.init(
            project=self.project,
            name=name,
            config=config,
            dir=str(self.folder),
            reinit="finish_previous",
        )

    def log_stage(self, name: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        run = self._init(name, params)
        run.log(metrics)
        run.finish()

    def log_report(self, files: list[Path], summary: dict[str, Any]) -> None:
        run = self._init("report", {})
        images = {p.stem: self.wandb.Image(str(p)) for p in files if p.suffix == ".png"}
        run.log({**report_metrics(summary), **images})
        run.finish()


class TrackingReporter:
    """A graph reporter that also logs every stage the command built to a tracker."""

    def __init__(self, inner, tracker: Tracker, cache_dir: Path):
        self.inner, self.tracker, self.cache_dir = inner, tracker, Path(cache_dir)

    def __getattr__(self, name: str):  # building, progress, stage: the inner reporter's
        return getattr(self.inner, name)

    def done(self, outcome) -> None:
        self.inner.done(outcome)
        if outcome.status != "ran":
            return
        params = {"dataset": outcome.dataset, "stage": outcome.stage, "seed": str(outcome.seed)}
        params.update(flat_params(self._manifest(outcome)))
        if outcome.metrics.get("pgr_flag"):  # the PGR rule's verdict travels with the PGR
            params["pgr_flag"] = str(outcome.metrics["pgr_flag"])
        self.tracker.log_stage(
            f"{outcome.dataset}/{outcome.stage}", params, tracked_metrics(outcome.metrics)
        )

    def _manifest(self, outcome) -> dict:
        """The run's manifest (what its key hashes), when the stage wrote a run."""
        from .runs import run_dir

        if not outcome.key:
            return {}
        path = run_dir(self.cache_dir, outcome.dataset, outcome.key) / "manifest.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
