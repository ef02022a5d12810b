"""``w2sprobe report``: tables, statistics and figures across datasets, from result files only."""

from __future__ import annotations

from ..options import Options
from .common import RowProgress, emit_json, show_table, stdout
from .params import Control, options_command


@options_command(
    (
        "report_datasets",
        "student",
        "baseline",
        "n_boot",
        "saturation",
        "min_gap",
        "format",
        "out",
        "tracker",
    ),
    preset=False,
    inert=("device",),
    docs={"seed": ("Seed of the bootstrap resamples.", "0")},
)
def report(opts: Options, ctl: Control) -> None:
    """Summarise finished runs: per-dataset AUC/PGR with CIs, tests vs a baseline, figures.

    Reads only result files under the cache; --seed seeds the bootstrap.
    """
    from pathlib import Path

    from ..report import build_report, write_report
    from ..tracking import check_tracker, open_tracker
    from ..workspace import check_out_dir

    check_tracker(opts.workspace.tracker)
    r = opts.report
    if r.out:
        check_out_dir(Path(r.out), "report")  # before the bootstrap's work
    baseline = (
        None if opts.sources.get("baseline") == "default" else r.baseline
    )  # absent default: skipped
    # Not set: the one kind of students the workspace holds (both: an error asking for one).
    kind = None if opts.sources.get("student") == "default" else opts.train.student
    with RowProgress("bootstrap", unit="dataset") as bar:
        built = build_report(
            opts.cache_dir,
            datasets=r.report_datasets or None,
            baseline=baseline,
            n_boot=r.n_boot,
            saturation=r.saturation,
            seed=opts.workspace.seed,
            progress=bar.update,
            min_gap=r.min_gap,
            kind=kind,
            data_dir=opts.data.data_dir,
        )
    summary = {"command": "report", **write_report(built, Path(r.out) if r.out else None, r.format)}
    tracker = open_tracker(opts.workspace.tracker, opts.cache_dir)
    if tracker is not None:  # the figures and headline numbers, as one tracker run
        tracker.log_report([Path(f) for f in summary.get("all_files", [])], summary)
    if ctl.as_json:
        emit_json(summary)
        return
    _print(summary)


def _print(summary: dict) -> None:
    """The headline numbers on the terminal; the full tables are in the written report."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{_summarised(summary)} of {len(summary['datasets'])} datasets "
        f"({_excluded(summary)}); baseline {summary['options']['baseline'] or 'none'}",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("experiment", no_wrap=True)
    headers = ("n", "median PGR", "mean PGR [95% CI]", "won/lost", "t-test p", "Wilcoxon p")
    for header in (*headers, "AUC won/lost", "AUC t-test p"):
        table.add_column(header, justify="right")
    versus = {c["experiment"]: c for c in summary["comparisons"]}
    # on test AUC over every dataset, unstable PGR or not (the written report says more)
    on_auc = {c["experiment"]: c for c in summary.get("auc_comparisons", []) if c["n"]}
    for row in summary["summary"]:
        c, a = versus.get(row["experiment"]), on_auc.get(row["experiment"])
        table.add_row(
            row["experiment"],
            str(row["n_datasets"]),
            _num(row["median_pgr"]),
            _num(row["mean_pgr"]) + _ci(row.get("mean_pgr_ci")),
            f"{c['wins']}/{c['losses']}" if c else "—",
            _num(c and c["t_test_p"]),
            _num(c and c["wilcoxon_p"]),
            f"{a['wins']}/{a['losses']} of {a['n']}" if a else "—",
            _num(a and a["t_test_p"]),
        )
    show_table(table)
    for item in summary["saturated"]:
        stdout.print(
            f"excluded {item['dataset']}: saturated (weak {item['weak_auc']:.4f}, ceiling "
            f"{item['ceiling_auc']:.4f}, student {item['student_auc']:.4f} AUC, all above "
            f"{item['threshold']})",
            highlight=False,
        )
    for item in _unstable_only(summary):
        ci = item.get("gap_ci")
        why = (
            f"ceiling − weak AUC {item['gap']:+.4f}, 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}] "
            f"not above {item['min_gap']}"
            if ci
            else f"ceiling − weak AUC {item['gap']:+.4f} < {item['min_gap']}"
        )
        stdout.print(f"excluded {item['dataset']}: PGR unstable ({why})", highlight=False)
    for row in summary["summary"]:
        if row.get("dominated_by"):
            stdout.print(
                f"{row['experiment']}: mean PGR dominated by {row['dominated_by']} "
                f"({row['dominant_share']:.0%} of Σ|PGR|; without it "
                f"{row['mean_without_dominant']:+.3f})",
                highlight=False,
            )
    for item in summary["missing"]:
        stdout.print(f"missing: {item['message']}", highlight=False)
    if summary["incomplete"]:
        stdout.print(
            f"{len(summary['incomplete'])} incomplete run(s) (no metrics.json) not used",
            highlight=False,
        )
    for skipped in summary["skipped_figures"]:
        stdout.print(f"figure {skipped['name']} skipped: {skipped['reason']}", highlight=False)
    main = summary["files"].get(summary["format"]) or summary["files"]["json"]
    stdout.print(f"report: {main}", highlight=False, soft_wrap=True)


def _excluded(summary: dict) -> str:
    """What the summary leaves out, e.g. ``1 saturated and 2 with unstable PGR excluded``."""
    counts = {
        "saturated": len(summary["saturated"]),
        "with unstable PGR": len(_unstable_only(summary)),
    }
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    text = " and ".join(parts) + " excluded" if parts else "none excluded"
    left_out = len(summary["included_datasets"]) + sum(counts.values())
    unfinished = len(summary["datasets"]) - left_out  # no student PGR yet: neither kind applies
    return text + (f"; {unfinished} without PGRs yet" if unfinished > 0 else "")


def _summarised(summary: dict) -> int:
    """Datasets the summary's PGRs come from."""
    return max((row["n_datasets"] for row in summary["summary"]), default=0)


def _unstable_only(summary: dict) -> list[dict]:
    """Unstable-PGR datasets that are not saturated (a saturated one has no gap either; it is
    named once, as saturated)."""
    saturated = {item["dataset"] for item in summary["saturated"]}
    return [item for item in summary["unstable"] if item["dataset"] not in saturated]


def _ci(ci) -> str:
    return "" if not ci else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _num(value) -> str:
    return "—" if value is None else f"{value:.3g}"
