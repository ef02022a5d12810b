"""``w2sprobe report``: tables, statistics and figures across datasets, from result files only."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich import box
from rich.table import Table

from ..report import DEFAULT_N_BOOT, DEFAULT_SATURATION, FORMATS, build_report, write_report
from ..workspace import resolve_cache_dir
from .common import (CacheDirOpt, ConfigOpt, DeviceOpt, JsonOpt, RowProgress, SeedOpt, emit_json, settings_from,
                     stdout)


def report(
    out: Annotated[Optional[str], typer.Option(
        "--out", help="Report folder (default <cache>/reports/<hash of the inputs>).")] = None,
    datasets: Annotated[Optional[str], typer.Option(
        "--datasets", help="Comma list of datasets to include (default: every dataset with results).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="html (self-contained) | md (+ image files) | json; report.json is always written.")] = "html",
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="Experiment the interventions are compared with (default xent).")] = None,
    n_boot: Annotated[int, typer.Option(
        "--n-boot", help="Bootstrap resamples for the 95% CIs (0: none).")] = DEFAULT_N_BOOT,
    saturation: Annotated[float, typer.Option(
        "--saturation", help="Drop datasets whose weak, ceiling and student AUC all exceed this.",
    )] = DEFAULT_SATURATION,
    cache_dir: CacheDirOpt = None, seed: SeedOpt = None, device: DeviceOpt = None, as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Summarise finished runs: per-dataset AUC/PGR with CIs, tests vs a baseline, figures."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"'{fmt}' is not one of {', '.join(FORMATS)}", param_hint="'--format'")
    # --device is accepted for uniformity with every other command; a report needs no accelerator.
    settings = settings_from(config, cache_dir=cache_dir, seed=seed, device=device)
    wanted = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    with RowProgress("bootstrap") as bar:
        built = build_report(resolve_cache_dir(settings["cache_dir"]), datasets=wanted, baseline=baseline,
                             n_boot=n_boot, saturation=saturation, seed=int(settings["seed"]), progress=bar.update)
    summary = {"command": "report", **write_report(built, out, fmt)}
    if as_json:
        emit_json(summary)
        return
    _print(summary)


def _print(summary: dict) -> None:
    """The headline numbers on the terminal; the full tables are in the written report."""
    table = Table(title=f"{len(summary['included_datasets'])} of {len(summary['datasets'])} datasets "
                        f"(saturated excluded); baseline {summary['options']['baseline'] or 'none'}",
                  box=box.SIMPLE_HEAD)
    table.add_column("experiment", no_wrap=True)
    for header in ("n", "mean PGR", "median PGR", "won/lost", "t-test p", "Wilcoxon p"):
        table.add_column(header, justify="right")
    versus = {c["experiment"]: c for c in summary["comparisons"]}
    for row in summary["summary"]:
        c = versus.get(row["experiment"])
        table.add_row(row["experiment"], str(row["n_datasets"]), _num(row["mean_pgr"]), _num(row["median_pgr"]),
                      f"{c['wins']}/{c['losses']}" if c else "—", _num(c and c["t_test_p"]),
                      _num(c and c["wilcoxon_p"]))
    stdout.print(table)
    for item in summary["missing"]:
        stdout.print(f"missing: {item['message']}", highlight=False)
    if summary["incomplete"]:
        stdout.print(f"{len(summary['incomplete'])} incomplete run(s) (no metrics.json) not used", highlight=False)
    for skipped in summary["skipped_figures"]:
        stdout.print(f"figure {skipped['name']} skipped: {skipped['reason']}", highlight=False)
    main = summary["files"].get("html") or summary["files"].get("md") or summary["files"]["json"]
    stdout.print(f"report: {main}", highlight=False, soft_wrap=True)


def _num(value) -> str:
    return "—" if value is None else f"{value:.3g}"
