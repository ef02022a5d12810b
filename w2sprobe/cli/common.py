"""Output shared by the commands: the JSON summary, tables, plans, and opening a study."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console

from ..jsonutil import finite
from .progress import GraphReporter, StageBar, stderr

__all__ = ["GraphReporter", "RowProgress", "emit_json", "open_study", "request", "stderr", "stdout"]

#: Width of stdout when it is not a terminal (a pipe, a log file): no table is ever cut.
PIPE_WIDTH = 1000


def _stdout_console() -> Console:
    # rich lays out a pipe's output at 80 columns, so a wide table reached a log as "0.88…"
    # where the terminal showed 0.8868; COLUMNS, when set, still decides
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=PIPE_WIDTH if piped else None)


#: Tables go to stdout unless ``--json`` claims it; progress and messages go to stderr.
stdout = _stdout_console()


def show_table(table) -> None:
    """Print a rich table whose cells wrap rather than end in "…" where the terminal is narrow:
    every digit of an AUC and every character of a key stay on the screen."""
    for column in table.columns:
        column.overflow = "fold"
    stdout.print(table)


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


def RowProgress(description: str, unit: str = "step") -> StageBar:  # noqa: N802 - a bar factory
    """A progress bar on stderr for work outside the graph (the report's bootstrap)."""
    return StageBar(description, unit)


def aligned(headers: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    """Plain columns sized to their longest cell (never wrapped or cut, whatever the terminal's
    width: a long stage name widens its column instead of breaking the table); the columns
    in ``right`` (numbers) are right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))
        ).rstrip()
        for r in [headers, *rows]
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
    stdout.print(plan_summary([row["status"] for row in rows]))


def plan_summary(statuses: list[str]) -> str:
    """``3 of 22 stage(s) to run, 19 cached``: the last line of every ``--plan``."""
    todo, cached = statuses.count("to run"), statuses.count("cached")
    return f"{todo} of {len(statuses)} stage(s) to run, {cached} cached"


def open_study(opts, ctl, quiet: bool = False):
    """The study of the command's one dataset, on a graph in the command's mode."""
    from ..graph import Graph
    from ..models import set_cpu_threads
    from ..study import Study
    from ..tracking import check_tracker
    from ..workspace import ensure_writable_dir

    check_tracker(opts.workspace.tracker)  # before anything is written
    if not ctl.plan:
        ensure_writable_dir(opts.cache_dir)
    set_cpu_threads()
    reporter = graph_reporter(opts, ctl, GraphReporter(quiet=quiet))
    return Study(opts, opts.dataset, Graph(ctl.mode, reporter))


def graph_reporter(opts, ctl, reporter: GraphReporter):
    """``reporter``, also logging what is built to ``--tracker`` when one is named."""
    from ..tracking import TrackingReporter, check_tracker, open_tracker

    reporter.min_gap = opts.report.min_gap  # progress lines judge PGR by this run's --min-gap
    kind = opts.workspace.tracker
    check_tracker(kind)  # a missing package is an error even for --plan
    if kind == "none" or ctl.plan:
        return reporter
    return TrackingReporter(reporter, open_tracker(kind, opts.cache_dir), opts.cache_dir)


def request(build):
    """Ask the study for the command's target (``build`` calls a study method with
    ``target=True``: the node names itself); None when a ``--plan`` cannot reach it."""
    from ..graph import Blocked

    try:
        return build()
    except Blocked:
        return None
