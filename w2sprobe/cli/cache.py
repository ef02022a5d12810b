"""``w2sprobe cache ls|verify``: what is cached, and whether it is intact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..options import Options
from .common import emit_json, layer_summary, stdout
from .params import Control, options_command

app = typer.Typer(
    help="List and verify cached activation files.", no_args_is_help=True, rich_markup_mode=None
)


@app.command("ls")
@options_command((), preset=False, inert=("seed", "device"))
def ls(opts: Options, ctl: Control) -> None:
    """List activation files: key, model, dataset, layers, rows, size, complete?"""
    from rich.table import Table

    from ..cache.store import list_entries

    root = opts.cache_dir
    entries = list_entries(root)
    if ctl.as_json:
        emit_json(
            {
                "command": "cache ls",
                "cache_dir": str(root),
                "entries": [e.as_dict() for e in entries],
            }
        )
        return
    table = Table("key", "model", "dataset", "layers", "rows", "size", "complete")
    table.columns[0].no_wrap = table.columns[0].min_width = 16  # a key must stay copyable
    for e in entries:
        table.add_row(
            e.key,
            e.model,
            e.dataset,
            layer_summary(e.layers),
            str(e.rows),
            f"{e.size_bytes / 2**20:.1f} MiB",
            "yes" if e.complete else (e.problem or "no (partial)"),
        )
    stdout.print(table if entries else f"no activation files under {root}")


@app.command("verify")
@options_command((), preset=False, inert=("seed", "device"))
def verify(
    opts: Options,
    ctl: Control,
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="[PATH]...", help="Files to check [default: every activation file in the cache]"
        ),
    ] = None,
) -> None:
    """Check files for truncation, corruption, missing rows or layers; exit 1 if any has a
    problem."""
    from ..cache.store import list_entries
    from ..cache.store import verify as verify_file

    root = opts.cache_dir
    files = [Path(p) for p in paths] if paths else [e.path for e in list_entries(root)]
    report = {
        str(path): (verify_file(path) if path.exists() else ["does not exist"]) for path in files
    }
    if ctl.as_json:
        emit_json(
            {
                "command": "cache verify",
                "cache_dir": str(root),
                "files": report,
                "ok": not any(report.values()),
            }
        )
    else:
        for path, problems in report.items():
            stdout.print(
                f"{'ok' if not problems else 'BAD'}  {path}"
                + "".join(f"\n    - {p}" for p in problems)
            )
        if not report:
            stdout.print(f"no activation files under {root}")
    if any(report.values()):
        raise typer.Exit(1)
