"""Output shared by the commands: the JSON summary, progress bars and the graph reporter."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..jsonutil import finite

#: Progress bars and messages go to stderr; tables to stdout unless ``--json`` claims it.
stderr = Console(stderr=True)
stdout = Console()


def emit_json(summary: dict[str, Any]) -> None:
    """Write the command's one JSON object to stdout."""
    sys.stdout.write(json.dumps(finite(summary), default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def layer_summary(layers: list[int]) -> str:
    """``4,8,16`` for a few layers, ``0..12 (13)`` for many."""
    return (
        ",".join(map(str, layers))
        if len(layers) <= 6
        else f"{layers[0]}..{layers[-1]} ({len(layers)})"
    )


class RowProgress:
    """A progress bar on stderr that appears only once work starts.

    Cache hits and errors print none.
    """

    def __init__(self, description: str):
        self.description = description
        self._bar: Progress | None = None
        self._task = None

    def update(self, done: int, total: int, *_: Any) -> None:
        if self._bar is None:
            # Off when stderr is not a terminal: logs get the commands' summary lines instead.
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=stderr,
                transient=True,
                disable=not stderr.is_terminal,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=total)
        self._bar.update(self._task, completed=done, total=total)

    def __enter__(self) -> "RowProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()


class StepProgress(RowProgress):
    """A training progress bar: steps, plus the latest loss and val AUC in its description."""

    def update(self, done: int, total: int, info: dict | None = None) -> None:
        super().update(done, total)
        if info and self._bar is not None:
            extra = f" loss {info['loss']:.3f}" if "loss" in info else ""
            if info.get("val_auc") is not None:
                self.last_val = f" val AUC {info['val_auc']:.3f}"
            self._bar.update(
                self._task, description=f"{self.description}{extra}{getattr(self, 'last_val', '')}"
            )

    def reset(self, description: str) -> None:
        """Start a fresh bar for the next stage."""
        self.__exit__()
        self._bar, self.description = None, description


class GraphReporter:
    """Says on stderr what a command builds (prerequisites included) and shows its progress."""

    def __init__(self, quiet: bool = False, log_done: bool = False):
        self.quiet, self.log_done = quiet, log_done
        self.bar: StepProgress | None = None

    def building(self, dataset: str, stage: str, what: str, prerequisite: bool) -> None:
        if not self.quiet:
            stderr.print(f"building {what} ...", highlight=False)
        self.bar = StepProgress(f"{dataset} {stage}")

    def progress(self, done: int, total: int, info: dict | None = None) -> None:
        if self.bar is not None and not self.quiet:
            self.bar.update(
                done, total, info if isinstance(info, dict) else None
            )  # extraction passes tokens

    def done(self, outcome) -> None:
        if self.bar is not None:
            self.bar.__exit__()
            self.bar = None
        if self.quiet or not self.log_done or outcome.status == "to run":
            return
        m = outcome.metrics
        scores = "" if m.get("auc") is None else f"  AUC {m['auc']:.4f}"
        if m.get("pgr") is not None:
            scores += f"  PGR {m['pgr']:+.3f}"
        error = f"  {m['error']}" if "error" in m else ""
        stderr.print(
            f"{outcome.dataset:<14} {outcome.stage:<15} {outcome.status:<7} {outcome.seconds:7.1f}s"
            f"{scores}{error}",
            highlight=False,
        )


def fmt(value: Any) -> str:
    """A table cell: 4 decimals for floats, a dash for missing values."""
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def show_plan(outcomes: list, as_json: bool, command: str) -> None:
    """What ``--plan`` found: each node cached or to run."""
    rows = [
        {"dataset": o.dataset, "seed": o.seed, "stage": o.stage, "status": o.status, "key": o.key}
        for o in outcomes
    ]
    if as_json:
        emit_json({"command": command, "plan": True, "nodes": rows})
        return
    for row in rows:
        stdout.print(
            f"{row['status']:<7} {row['dataset']:<14} {row['stage']:<18} {row['key'] or '—'}",
            highlight=False,
        )
    todo = sum(row["status"] == "to run" for row in rows)
    stdout.print(f"{todo} to build; the rest are cached")


def open_study(opts, ctl, quiet: bool = False):
    """The study of the command's one dataset, on a graph in the command's mode."""
    from ..graph import Graph
    from ..models import set_cpu_threads
    from ..study import Study
    from ..workspace import ensure_writable_dir

    if not ctl.plan:
        ensure_writable_dir(opts.cache_dir)
    set_cpu_threads()
    return Study(opts, opts.dataset, Graph(ctl.mode, GraphReporter(quiet=quiet)))


def request(study, stage: str, build):
    """Ask the study for the command's target node; None when a ``--plan`` cannot reach it."""
    from ..graph import Blocked

    study.graph.target(study.dataset, study.seed, stage)
    try:
        return build()
    except Blocked:
        return None
