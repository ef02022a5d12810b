"""Options every command shares, and the helpers that turn them into settings and output."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..config import Settings, resolve
from ..jsonutil import finite

#: Progress bars and messages go to stderr; tables to stdout unless ``--json`` claims it.
stderr = Console(stderr=True)
stdout = Console()

CacheDirOpt = Annotated[
    Optional[str], typer.Option("--cache-dir", help="Workspace root (default ./cache, env W2SPROBE_CACHE).")
]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed for splits and anything random (default 0).")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda (default auto).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object summarising what was done on stdout.")]
ConfigOpt = Annotated[
    Optional[str], typer.Option("--config", help="Config file (default ./w2sprobe.toml when present).")
]
DataDirOpt = Annotated[
    Optional[str],
    typer.Option("--data-dir", help="Local dataset mirror (<folder>/<split>.jsonl); env W2SPROBE_DATA_DIR."),
]
DatasetOpt = Annotated[
    Optional[str],
    typer.Option("--dataset", help="Registry name (w2sprobe data list) or a .jsonl/.csv/.parquet file."),
]
TextFieldOpt = Annotated[Optional[str], typer.Option("--text-field", help="Text column of a dataset file.")]
LabelFieldOpt = Annotated[Optional[str], typer.Option("--label-field", help="0/1 label column of a dataset file.")]
NTrainOpt = Annotated[Optional[int], typer.Option("--n-train", help="Train pool size before halving (1200; 10000 in --preset blog).")]
NValOpt = Annotated[Optional[int], typer.Option("--n-val", help="Validation size (100; 1000 in --preset blog).")]
NTestOpt = Annotated[Optional[int], typer.Option("--n-test", help="Test size (400; 5000 in --preset blog).")]
PresetOpt = Annotated[
    Optional[str], typer.Option("--preset", help="demo (the defaults) | blog (the study's models, sizes, settings).")
]


def settings_from(config: str | None, **cli_values: Any) -> Settings:
    """Resolve the effective options of one command invocation."""
    return resolve(cli_values, config)


def emit_json(summary: dict[str, Any]) -> None:
    """Write the command's one JSON object to stdout."""
    sys.stdout.write(json.dumps(finite(summary), default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def layer_summary(layers: list[int]) -> str:
    """``4,8,16`` for a few layers, ``0..12 (13)`` for many."""
    return ",".join(map(str, layers)) if len(layers) <= 6 else f"{layers[0]}..{layers[-1]} ({len(layers)})"


class RowProgress:
    """A progress bar on stderr that appears only once work starts (cache hits and errors print none)."""

    def __init__(self, description: str):
        self.description = description
        self._bar: Progress | None = None
        self._task = None

    def update(self, done: int, total: int, *_: Any) -> None:
        if self._bar is None:
            # Off when stderr is not a terminal: logs get the commands' summary lines instead.
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=stderr, transient=True,
                                 disable=not stderr.is_terminal)
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
            self._bar.update(self._task, description=f"{self.description}{extra}{getattr(self, 'last_val', '')}")

    def reset(self, description: str) -> None:
        """Start a fresh bar for the next stage."""
        self.__exit__()
        self._bar, self.description = None, description
