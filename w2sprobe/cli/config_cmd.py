"""``w2sprobe config show``: the effective value of every option, where it came from and what
it does.  It takes every option itself, so ``config show --k 10`` answers "what would
``probe --k 10`` use?"."""

from __future__ import annotations

import textwrap

from ..options import SPECS, Options
from .common import emit_json, stdout
from .help import App
from .params import Control, options_command

app = App(help="Inspect the effective configuration.", no_args_is_help=True)

#: Every option but the report's --dataset (report_datasets), whose flag is the data option's.
EVERY = tuple(name for name, spec in SPECS.items() if spec.flag != "--dataset" or name == "dataset")


@app.command("show")
@options_command(EVERY)
def show(opts: Options, ctl: Control) -> None:
    """Print every option's config key, effective value, source (default, preset, config file,
    env, command line) and doc.

    Give options as a command would, to see what it would use: config show --k 10 --preset blog.
    """
    rows = opts.rows()
    config = str(opts.config_path) if opts.config_path else None
    if ctl.as_json:
        emit_json(
            {
                "config_file": config,
                "preset": opts.preset,
                "options": {
                    name: {
                        "group": group,
                        "key": SPECS[name].key,
                        "aliases": list(SPECS[name].aliases),
                        "flag": SPECS[name].flag,
                        "value": value,
                        "source": source,
                        "doc": SPECS[name].doc,
                    }
                    for group, name, value, source in rows
                },
            }
        )
        return
    from pathlib import Path

    where = config or f"none (no w2sprobe.toml in {Path.cwd()} or its parents)"
    lines = [("group", "key", "value", "source", "doc")]
    for group, name, value, source in rows:
        spec = SPECS[name]
        key = spec.key + "".join(f" ({alias})" for alias in spec.aliases)
        lines.append((group, key, _value(value), source, spec.doc))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    plain = {"markup": False, "highlight": False, "soft_wrap": True}
    stdout.print(f"config file: {where}; preset: {opts.preset or 'none'}", **plain)
    indent = sum(widths) + 2 * len(widths)
    # a terminal gets the doc folded beside its row; a pipe one greppable line per option
    room = stdout.width - indent if stdout.is_terminal else 0
    for line in lines:
        head = "  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  "
        doc = textwrap.wrap(line[4], room) if room >= 30 else [line[4]]
        stdout.print(head + ("\n" + " " * indent).join(doc), **plain)


def _value(value) -> str:
    """A value as the config file writes it (``"sst2"``, ``[4, 8]``, ``true``); unset: none."""
    import json

    return "none" if value is None else json.dumps(value)
