"""``w2sprobe apply KEY --dataset OTHER``: a saved probe scored on another dataset's test split.

A command of its own, not ``probe apply``: ``probe`` is one command with options
(``w2sprobe probe --probe logreg``), which a sub-command group would break.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..options import Options
from .common import emit_json, fmt, open_study, stdout
from .params import DATA, Control, options_command


@options_command(
    DATA + ("n_boot",),
    preset=False,
    docs={"seed": ("Seed of the splits and of the bootstrap resamples.", "0")},
)
def apply(
    opts: Options,
    ctl: Control,
    key: Annotated[
        str,
        typer.Argument(metavar="KEY", help="A fitted probe's key (or prefix): cache ls probes"),
    ],
) -> None:
    """Score a saved probe on another dataset's test split: test AUC with its bootstrap 95% CI.

    Reads --dataset's activations of the probe's model and layer (made as the probe's were;
    when missing, says the extract command that makes them) and writes a transfer run to
    cache/runs/<dataset>/<key>/, which w2sprobe report shows in its transfer table.
    """
    from ..probes import load_probe

    saved = load_probe(key, opts.cache_dir)  # an unknown key or a damaged entry: nothing made
    study = open_study(opts, ctl, quiet=True)
    record = study.transfer(saved)
    m = record.metrics
    summary = {
        "command": "apply",
        "probe_key": saved.key,
        "probe": saved.meta["probe"],
        "layer": saved.layer,
        "fit_dataset": saved.dataset,
        "dataset": study.dataset,
        "auc": m["auc"],
        "auc_ci": m.get("auc_ci"),
        "accuracy": m.get("accuracy"),
        "n": m.get("n"),
        "key": m["key"],
        "path": str(record.folder),
    }
    if ctl.as_json:
        return emit_json(summary)
    ci = summary["auc_ci"]
    interval = f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
    stdout.print(
        f"probe {saved.key} ({saved.name}, layer {saved.layer}, fit on {saved.dataset}) on "
        f"{study.dataset} test: AUC {fmt(m['auc'])}{interval} (95% bootstrap CI, n={m.get('n')})"
        f"\nrun: {record.folder}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
