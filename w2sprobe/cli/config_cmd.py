"""``w2sprobe config show``: the effective value of every option and where it came from."""

from __future__ import annotations

import typer

from ..options import SPECS, Options
from .common import emit_json, stdout
from .params import Control, options_command

app = typer.Typer(
    help="Inspect the effective configuration.", no_args_is_help=True, rich_markup_mode=None
)


@app.command("show")
@options_command((), inert=("cache_dir", "seed", "device"))
def show(opts: Options, ctl: Control) -> None:
    """Print every option's effective value, its source (default, preset, env, config file)
    and doc."""
    rows = opts.rows()
    if ctl.as_json:
        emit_json(
            {
                "config_file": opts.config_path,
                "preset": opts.preset,
                "options": {
                    name: {"group": group, "value": value, "source": source, "doc": SPECS[name].doc}
                    for group, name, value, source in rows
                },
            }
        )
        return
    from rich.table import Table

    table = Table("group", "option", "value", "source")
    for group, name, value, source in rows:
        table.add_row(group, name, repr(value), source)
    stdout.print(f"config file: {opts.config_path or '(none)'}; preset: {opts.preset or '(none)'}")
    stdout.print(table)
