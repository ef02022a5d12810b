"""``w2sprobe config show``: the effective value of every option and where it came from."""

from __future__ import annotations

from rich.table import Table

import typer

from .common import ConfigOpt, JsonOpt, emit_json, settings_from, stdout

app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@app.command("show")
def show(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print every option's effective value and its source (default, env, config file)."""
    settings = settings_from(config)
    if as_json:
        emit_json({"config_file": settings.config_path, "options": {
            name: {"value": value, "source": source} for name, value, source in settings.rows()}})
        return
    table = Table("option", "value", "source")
    for name, value, source in settings.rows():
        table.add_row(name, repr(value), source)
    stdout.print(f"config file: {settings.config_path or '(none)'}")
    stdout.print(table)
