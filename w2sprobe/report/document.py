"""The report as a sequence of blocks (headings, paragraphs, tables, figures) for any renderer.

Keeping the content here and the markup in ``render.py`` means Markdown and HTML show the same
tables with the same numbers, formatted once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..models.assets import GGUF_NOTE
from .build import Report
from .figures import Figure
from .setup import environment_text


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    """A table; ``title`` is its heading (renderers number it: "Table 3. ...")."""

    headers: list[str]
    rows: list[list[str]]
    title: str = ""


@dataclass
class FigureBlock:
    figure: Figure


@dataclass
class Code:
    """Preformatted text; with a ``summary`` it is collapsed behind that line (HTML details)."""

    text: str
    summary: str | None = None


def report_blocks(
    report: Report, figures: list[Figure], skipped: list[dict], views: list | None = None
) -> list:
    """Everything the rendered report shows, in order: what was compared, the numbers (summary,
    comparisons, every dataset's table), then the figures, then what is missing and the inputs.
    ``views``: the "Views of the cache" section's blocks (report/views_blocks.py), after the
    diagnostics."""
    blocks: list = [Heading(1, "Weak-to-strong report")]
    blocks += _setup(report) + _summary(report) + _comparisons(report) + _per_dataset(report)
    blocks += _transfers(report)
    blocks += _diagnostics(report) + _sweep_choices(report) + (views or [])
    blocks += _saturation(report) + _unstable(report) + _figures(figures, skipped)
    blocks += _gaps(report) + _run_warnings(report) + _inputs(report)
    return blocks


def _kind_text(kind: str) -> str:
    """What the report's ceiling and students are (every table compares this one kind)."""
    if kind == "head":
        return (
            "head: a classifier trained on the strong model's cached activations (no finetune); "
            "PGR against the head ceiling"
        )
    return "lora: LoRA finetunes of the strong model; PGR against the LoRA ceiling"


def _setup(report: Report) -> list:
    """The top of the report: models, dataset sizes, seeds, the commands that made the runs."""
    setup = report.setup
    sizes = setup.get("sizes", {})
    same = len({tuple(v.items()) for v in sizes.values()}) == 1
    seeds = setup.get("seeds", [])
    rows = [
        ["weak model", ", ".join(setup.get("weak_models") or ["—"])],
        ["strong model", ", ".join(setup.get("strong_models") or ["—"])],
        *(
            [["note", GGUF_NOTE]]
            if "smollm2" in (setup.get("weak_models") or []) + (setup.get("strong_models") or [])
            else []
        ),
        ["ceiling and students", _kind_text(setup.get("student_kind", "lora"))],
        ["datasets", f"{len(report.datasets)}: {', '.join(report.datasets)}"],
        [
            "examples per split",
            _sizes_text(next(iter(sizes.values()))) if same else "per dataset: see below",
        ],
        ["seeds", f"{len(seeds)} ({', '.join(map(str, seeds))})"],
        [
            "runs",
            f"{len(report.runs)} finished"
            + (f", {len(report.incomplete)} unfinished (not used)" if report.incomplete else ""),
        ],
    ]
    blocks: list = [
        Heading(2, "Setup"),
        Table(["setting", "value"], rows, title="What was compared"),
    ]
    if sizes and not same:
        splits = list(dict.fromkeys(s for v in sizes.values() for s in v))
        blocks.append(
            Table(
                ["dataset", *splits],
                [[d, *(fmt(v.get(s)) for s in splits)] for d, v in sizes.items()],
                title="Examples per split",
            )
        )
    blocks += _environments(setup)
    blocks += _commands(setup)
    blocks.append(Para(_intro(report)))
    return blocks


def _environments(setup: dict) -> list:
    """Which environment (versions, device, CPU, hashed host) made which runs."""
    envs = setup.get("environments") or []
    if not envs:
        return []
    rows = []
    for e in envs:
        shown = e["experiments"][:6]
        more = len(e["experiments"]) - len(shown)
        rows.append(
            [
                environment_text(e["environment"]),
                str(e["runs"]),
                ", ".join(shown) + (f" and {more} more" if more > 0 else ""),
            ]
        )
    return [
        Table(
            ["environment (host name hashed)", "runs", "dataset/experiment"],
            rows,
            title="Where the runs were made",
        )
    ]


def _sizes_text(sizes: dict) -> str:
    return " · ".join(f"{split} {n}" for split, n in sizes.items()) or "—"


def _commands(setup: dict) -> list:
    """The command lines the runs recorded (with how many runs each wrote), and this report's."""
    commands, unrecorded = setup.get("commands", []), setup.get("runs_without_command", 0)
    blocks: list = []
    if commands:
        lines = [
            f"{c['command']}    # {c['runs']} run{'s' if c['runs'] != 1 else ''}" for c in commands
        ]
        blocks += [Para("Commands that produced the runs:"), Code("\n".join(lines))]
    if unrecorded:
        blocks.append(
            Para(
                f"{unrecorded} run(s) do not record the command that made them (written before "
                "w2sprobe recorded it in run manifests); their configs are under Inputs."
            )
        )
    if setup.get("report_command"):
        blocks += [Para("This report:"), Code(setup["report_command"])]
    return blocks


def _intro(report: Report) -> str:
    opts = report.options
    return (
        f"Read from {report.cache_dir}. "
        f"Baseline: {opts['baseline'] or 'none'}; "
        f"bootstrap: {opts['n_boot']} paired resamples of the shared "
        f"test ids (seed {opts['seed']}), percentile 95% CIs; "
        f"saturation threshold: AUC > {opts['saturation']}; "
        "PGR unstable (flagged †, not summarised) unless the paired-bootstrap 95% CI of "
        f"ceiling − weak AUC lies above {opts['min_gap']} (the PGR rule; a constant predictor "
        "and a weak model whose test AUC CI lies under 0.5 are flagged too). "
        f"Report key {report.key}."
    )


def _summary(report: Report) -> list:
    counted = [s for s in report.summary if s["n_datasets"]]
    rows = [
        [
            s["experiment"],
            s["group"],
            str(s["n_datasets"]),
            fmt(s["median_pgr"]),
            fmt(s["mean_pgr"]) + _ci_text(s.get("mean_pgr_ci")),
            "—" if s.get("min_pgr") is None else f"{s['min_pgr']:+.2f} … {s['max_pgr']:+.2f}",
            f"{s['positive']}/{s['n_datasets']}",
            _dominance_text(s),
        ]
        for s in counted
    ]
    blocks: list = [Heading(2, "Summary")]
    if not report.summary:
        return blocks + [Para("No student or probe runs yet: nothing to summarise.")]
    text = f"PGR over the {len(report.included)} dataset(s) neither saturated nor with unstable PGR"
    return blocks + [
        Para(
            text + " (per-dataset means over seeds). Median, and mean with a 95% bootstrap CI "
            "over datasets (datasets resampled); range: the smallest and largest per-dataset "
            "PGR. A mean of ratios is called dominated when one dataset carries more than half "
            "of Σ|PGR|: the mean without it is given. Paired tests against the baseline are "
            "under Comparisons."
        ),
        Table(
            [
                "experiment",
                "group",
                "datasets",
                "median PGR",
                "mean PGR [95% CI]",
                "range",
                "PGR > 0",
                "dominated by",
            ],
            rows,
            title="PGR per experiment across datasets",
        ),
        Para("Saturated datasets are marked *, unstable PGR †; neither is in the summary."),
        *_left_out(report.summary, "n_datasets"),
        _pgr_matrix(report),
    ]


def _left_out(entries: list[dict], count: str) -> list:
    """One line naming the experiments that no summarised dataset has (they ran only where the
    PGR is unstable or saturated): an empty row each would read as a measurement."""
    names = [e["experiment"] for e in entries if not e[count]]
    if not names:
        return []
    return [
        Para(f"Not summarised (run only on datasets left out of the summary): {', '.join(names)}.")
    ]


def _ci_text(ci) -> str:
    return "" if not ci else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _dominance_text(summary: dict) -> str:
    if not summary.get("dominated_by"):
        return "—"
    return (
        f"{summary['dominated_by']} ({summary['dominant_share']:.0%} of Σ|PGR|; "
        f"mean without it {summary['mean_without_dominant']:+.3f})"
    )


def _diagnostics(report: Report) -> list:
    """Per-dataset gap, weak calibration and weak–ceiling error consistency; the cross-dataset
    correlations of report/diagnose.py."""
    blocks: list = [Heading(2, "Diagnostics")]
    unstable = {u["dataset"]: u for u in report.unstable}
    rows = []
    for dataset in report.datasets:
        weak, ceiling = report.row(dataset, "weak"), report.row(dataset, "ceiling")
        if weak is None or ceiling is None:
            continue
        wd, cd = weak.get("diag") or {}, ceiling.get("diag") or {}
        diags = [r.get("diag") or {} for r in report.rows if r["dataset"] == dataset]
        kappa, kappa_p = (
            next((d.get(name) for d in diags if d.get(name) is not None), None)
            for name in ("weak_ceiling_error_kappa", "weak_ceiling_capa")
        )
        verdict = unstable[dataset]["reason"] if dataset in unstable else "stable"
        rows.append(
            [
                dataset,
                verdict,
                fmt(wd.get("ece")),
                fmt(wd.get("brier")),
                fmt(cd.get("ece")),
                fmt(kappa),
                fmt(kappa_p),
            ]
        )
    blocks.append(
        Para(
            "Computed from the stored predictions (recorded by runs since issue 31). "
            "Calibration on test against ground truth: ECE over 10 equal-mass bins, Brier score. "
            "Weak–ceiling κ: Cohen's κ between the weak model's and the ceiling's errors on "
            "test; κp: Goel et al. (2025)'s CAPA, their chance-adjusted probabilistic agreement "
            "from both models' test probabilities (expected agreement from each model's mean "
            "probability on the correct class). Per student/probe (Results per dataset): "
            "agreement with its supervisor (the "
            "labels it trained on; strong_train for students, val for probes), misfit (mean "
            "squared distance to those labels there) and gain over the weak model (test Brier "
            "of weak − student's)."
        )
    )
    if rows:
        blocks.append(
            Table(
                [
                    "dataset",
                    "PGR rule",
                    "weak ECE",
                    "weak Brier",
                    "ceiling ECE",
                    "weak–ceiling κ",
                    "weak–ceiling κp",
                ],
                rows,
                title="Gap, calibration and error consistency per dataset",
            )
        )
    cross = report.diagnostics or {}
    mg, kp = cross.get("misfit_vs_gain") or {}, cross.get("kappa_vs_pgr") or {}
    cp = cross.get("capa_vs_pgr") or {}
    if mg or kp:
        blocks.append(
            Bullets(
                [
                    f"Misfit vs gain over the stable datasets' students and probes: Spearman ρ = "
                    f"{fmt(mg.get('rho'))} (p = {fmt(mg.get('p'))}, n = {mg.get('n', 0)}); gain ≥ "
                    f"misfit (the theory's inequality) on {mg.get('gain_at_least_misfit', 0)} of "
                    f"{mg.get('n', 0)}, gain > 0 on {mg.get('gain_positive', 0)}.",
                    f"Weak–ceiling error κ vs {kp.get('experiment') or 'baseline'} PGR across the "
                    f"stable datasets: Spearman ρ = {fmt(kp.get('rho'))} (p = {fmt(kp.get('p'))}, "
                    f"n = {kp.get('n', 0)}).",
                    f"Weak–ceiling CAPA κp vs {cp.get('experiment') or 'baseline'} PGR across "
                    f"the stable datasets: Spearman ρ = {fmt(cp.get('rho'))} (p = "
                    f"{fmt(cp.get('p'))}, n = {cp.get('n', 0)}).",
                ]
            )
        )
    return blocks


#: The diagnostics the per-dataset tables show, in column order.
#: (misfit and gain are small where labels sit near 1/2: 4 decimals)
DIAG_SHOWN = (
    ("agree_supervisor", 3),
    ("misfit_squared", 4),
    ("gain_squared", 4),
    ("ece", 3),
    ("brier", 3),
)


def _sweep_choices(report: Report) -> list:
    """Per stored sweep: the point chosen on the fit labels (least weak-label criterion on
    strong_train) beside the best in hindsight (test AUC), each with its 95 % CI
    (:mod:`w2sprobe.probes.choice`); sweeps made before the criterion are counted, not ranked."""
    from ..probes.choice import auc_text, point_text, sweep_choice

    if not report.sweeps:
        return []
    by_path: dict[str, list[dict]] = {}
    for row in report.sweeps:
        by_path.setdefault(row["path"], []).append(row)
    rows, old = [], 0
    for path, sweep in sorted(by_path.items(), key=lambda kv: (kv[1][0]["dataset"], kv[0])):
        param = next((p for p in ("k", "l2", "k_zeta") if p in sweep[0]), None)
        choice = sweep_choice(sweep, param)
        if choice is None:
            old += 1
            continue
        first = sweep[0]
        rows.append(
            [
                first["dataset"],
                first["probe"],
                str(first.get("labels", "weak")),
                point_text(choice.chosen, param),
                auc_text(choice.chosen),
                point_text(choice.best, param),
                auc_text(choice.best),
            ]
        )
    blocks: list = [
        Heading(2, "Probe sweeps: chosen without test labels"),
        Para(
            "Each sweep's point of least weak-label criterion on strong_train (kNN: leave-one-out "
            "Brier score, other probes: 5-fold cross-validated cross-entropy, against the labels "
            "the probe is fit on) beside the best test AUC in hindsight, each with its 95 % "
            "bootstrap CI: what choosing without ground truth achieves, and what peeking would add."
        ),
    ]
    if rows:
        head = [
            "dataset",
            "probe",
            "labels",
            "chosen on labels",
            "its test AUC [CI]",
            "best in hindsight",
            "its test AUC [CI]",
        ]
        blocks.append(Table(head, rows, title="Sweep choices"))
    if old:
        blocks.append(
            Para(
                f"{old} sweep(s) predate the weak-label criterion and show no choice; run the "
                "sweep again to rank it (its key changed, so it is made anew)."
            )
        )
    return blocks


def _pgr_matrix(report: Report) -> Table:
    """Datasets x interventions, the numbers behind the dot plot."""
    experiments = [s["experiment"] for s in report.summary]
    saturated = {s["dataset"] for s in report.saturated}
    unstable = {s["dataset"] for s in report.unstable}
    rows = []
    for dataset in report.datasets:
        cells = [fmt((report.row(dataset, e) or {}).get("pgr")) for e in experiments]
        marks = (" *" if dataset in saturated else "") + (" †" if dataset in unstable else "")
        rows.append([dataset + marks, *cells])
    return Table(["dataset", *experiments], rows, title="PGR by dataset")


def _comparisons(report: Report) -> list:
    baseline = report.options["baseline"]
    if not baseline:
        return [
            Heading(2, "Comparisons"),
            Para("; ".join(report.notes) or "No baseline experiment."),
        ]
    blocks: list = [Heading(2, f"Comparisons with {baseline}")]
    if not report.comparisons:
        return blocks + [Para(f"No other interventions to compare with {baseline}.")]
    blocks.append(
        Para(
            "Per-dataset PGR (mean over seeds) of each intervention minus the baseline's; "
            "one-sided tests of 'intervention > baseline': paired t-test (mean effect) "
            "and Wilcoxon signed-rank (median effect)."
        )
    )
    compared = [c for c in report.comparisons if c["n"]]
    blocks += _left_out(report.comparisons, "n")
    if compared:
        blocks.append(Bullets([c["statement"] for c in compared]))
        blocks.append(_comparison_table(compared, "ΔPGR", f"Interventions vs {baseline}"))
    return blocks + _auc_comparisons(report, baseline)


def _auc_comparisons(report: Report, baseline: str) -> list:
    """The same tests on test AUC over every dataset where both ran: what a study can say
    about the interventions even where few datasets have a stable PGR."""
    compared = [c for c in report.auc_comparisons if c["n"]]
    if not compared:
        return []
    left_out = len(report.datasets) - len(report.included)
    return [
        Para(
            "On test AUC (mean over seeds), over every dataset where both ran: an AUC "
            "difference needs no ceiling − weak gap, so the datasets left out of the PGR "
            f"comparisons above ({left_out} of {len(report.datasets)}) count here, as every "
            "dataset does in the blog's own comparison. Same one-sided tests."
        ),
        Bullets([c["statement"] for c in compared]),
        _comparison_table(compared, "ΔAUC", f"Interventions vs {baseline} on test AUC"),
    ]


def _comparison_table(compared: list[dict], delta: str, title: str) -> Table:
    rows = [
        [
            c["experiment"],
            str(c["n"]),
            str(c["wins"]),
            str(c["losses"]),
            str(c["ties"]),
            fmt(c["mean_diff"]),
            fmt(c["median_diff"]),
            fmt_p(c["t_test_p"], c["t_test_note"]),
            fmt_p(c["wilcoxon_p"], c["wilcoxon_note"]),
        ]
        for c in compared
    ]
    header = ["intervention", "datasets", "wins", "losses", "ties", f"mean {delta}",
              f"median {delta}", "t-test p", "Wilcoxon p"]  # fmt: skip
    return Table(header, rows, title=title)


def _saturation(report: Report) -> list:
    threshold = report.options["saturation"]
    blocks: list = [Heading(2, "Saturated datasets")]
    if not report.saturated:
        return blocks + [
            Para(f"None: no dataset has weak, ceiling and student AUC all above {threshold}.")
        ]
    rows = [
        [
            s["dataset"],
            fmt(s["weak_auc"]),
            fmt(s["ceiling_auc"]),
            fmt(s["student_auc"]),
            s["student"],
        ]
        for s in report.saturated
    ]
    return blocks + [
        Para(
            f"Weak, ceiling and student AUC all above {threshold}: excluded from the summary and "
            "comparisons, as in the study."
        ),
        Table(
            ["dataset", "weak AUC", "ceiling AUC", "student AUC", "student"],
            rows,
            title="Saturated datasets",
        ),
    ]


def _unstable(report: Report) -> list:
    min_gap = report.options["min_gap"]
    blocks: list = [Heading(2, "Unstable PGR")]
    point = report.point_rule_unstable
    compared = (
        f" The point rule (ceiling − weak < {min_gap}) alone would flag "
        + (", ".join(point) if point else "none")
        + "."
    )
    if not report.unstable:
        return blocks + [
            Para(f"None: every dataset's ceiling − weak AUC CI lies above {min_gap}." + compared)
        ]
    rows = [
        [
            u["dataset"],
            fmt(u["weak_auc"]),
            fmt(u["ceiling_auc"]),
            fmt(u["gap"], 4),
            "—" if not u.get("gap_ci") else f"[{u['gap_ci'][0]:+.3f}, {u['gap_ci'][1]:+.3f}]",
            "the gap" if u["reason"].startswith("gap ") else u["reason"],  # its CI is beside
        ]
        for u in report.unstable
    ]
    return blocks + [
        Para(
            f"The 95% paired-bootstrap CI of ceiling − weak AUC does not lie above {min_gap} "
            "(PGR divides by that gap, so a few test rows swing it by whole units), or the weak "
            "model's test AUC CI lies under 0.5 (a student that learnt nothing would score "
            "PGR > 0). "
            'Their PGRs are shown flagged (†, "(unstable: ...)") but excluded from the '
            "summary and comparisons, like saturated datasets." + compared
        ),
        Table(
            ["dataset", "weak AUC", "ceiling AUC", "gap", "gap 95% CI", "why"],
            rows,
            title="Unstable PGR",
        ),
    ]


def _run_warnings(report: Report) -> list:
    if not report.run_warnings:
        return []
    return [
        Heading(2, "Run warnings"),
        Bullets(
            [
                f"{w['dataset']} {w['experiment']} seed {w['seed']} ({w['run']}): {w['message']}"
                for w in report.run_warnings
            ]
        ),
    ]


def _figures(figures: list[Figure], skipped: list[dict]) -> list:
    blocks: list = [Heading(2, "Figures")]
    for figure in figures:
        blocks += [Heading(3, figure.title), FigureBlock(figure)]
    if skipped:
        blocks.append(Bullets([f"{s['name']} skipped: {s['reason']}" for s in skipped]))
    return blocks


def _per_dataset(report: Report) -> list:
    blocks: list = [Heading(2, "Results per dataset")]
    saturated = {s["dataset"] for s in report.saturated}
    for dataset in report.datasets:
        rows = [r for r in report.rows if r["dataset"] == dataset]
        unstable = any(u["dataset"] == dataset for u in report.unstable)
        title = (
            dataset
            + (" (saturated)" if dataset in saturated else "")
            + (" (unstable PGR)" if unstable else "")
        )
        table = [
            [
                r["experiment"],
                str(r["n_seeds"]),
                fmt_n(r["n"]),
                with_spread(r, "auc"),
                with_spread(r, "accuracy"),
                with_spread(r, "pgr")
                + (
                    f" (unstable: {r.get('pgr_flag') or 'gap'})"
                    if r.get("pgr_unstable") and r.get("pgr") is not None
                    else ""
                ),
                *(fmt((r.get("diag") or {}).get(name), digits) for name, digits in DIAG_SHOWN),
            ]
            for r in rows
        ]
        blocks += [
            Heading(3, title),
            Table(
                [
                    "experiment",
                    "seeds",
                    "test n",
                    "AUC",
                    "accuracy",
                    "PGR",
                    "agree sup.",
                    "misfit²",
                    "gain²",
                    "ECE",
                    "Brier",
                ],
                table,
                title=f"Results on {title}",
            ),
        ]
    blocks.append(
        Para(
            "seeds: how many seeds each row averages. One seed: value [95% bootstrap CI]; "
            "several seeds: mean ± standard error (per-seed values and CIs are in report.json, "
            "seed_rows). agree sup.: agreement with the labels trained on; misfit²: mean "
            "squared distance to them; gain²: test Brier of weak − this run's; ECE (10 "
            "equal-mass bins) and Brier on test (see Diagnostics)."
        )
    )
    return blocks


def _gaps(report: Report) -> list:
    blocks: list = [Heading(2, "Missing and incomplete runs")]
    items = [m["message"] for m in report.missing]
    items += [
        (
            f"{i['dataset']} {i.get('experiment') or ''} {i['key']}: "
            f"incomplete ({i['reason']}) at {i['path']}"
        )
        for i in report.incomplete
    ]
    items += [n for n in report.notes if n not in items]
    return blocks + (
        [Bullets(items)]
        if items
        else [Para("Nothing missing: every student and probe run has its weak and ceiling runs.")]
    )


def _transfers(report: Report) -> list:
    """Saved probes scored on other datasets (``w2sprobe apply``): one table per probe (kind
    and layer), fit dataset (rows) x the dataset scored (columns), test AUC [95% CI]."""
    if not report.transfers:
        return []
    blocks: list = [
        Heading(2, "Probe transfer"),
        Para(
            "A probe fit on one dataset (row), scored on another's test split (column) by "
            "w2sprobe apply: test AUC [95% bootstrap CI]. The diagonal is the probe on its own "
            "dataset's test split."
        ),
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in report.transfers:
        groups.setdefault((str(row["probe"]), str(row["layer"])), []).append(row)
    for (probe, layer), rows in sorted(groups.items()):
        columns = sorted({r["dataset"] for r in rows})
        cells = {(r["fit_dataset"], r["dataset"]): with_spread(r, "auc") for r in rows}
        table_rows = [
            [fit, *(cells.get((fit, d), "—") for d in columns)]
            for fit in sorted({r["fit_dataset"] for r in rows})
        ]
        blocks.append(
            Table(
                ["fit on / scored on", *columns],
                table_rows,
                title=f"Transfer of {probe} probes, layer {layer}",
            )
        )
    return blocks


def _inputs(report: Report) -> list:
    blocks: list = [
        Heading(2, "Inputs"),
        Para(
            "Every run this report used; its folder holds manifest.json, "
            "predictions.csv and metrics.json."
        ),
    ]
    rows = [
        [
            r["dataset"],
            r["experiment"],
            r["stage"],
            str(r["seed"]),
            r["key"],
            str(r["model"]),
            str(r["labels"] or "—"),
            r["path"],
        ]
        for r in report.runs
    ]
    blocks.append(
        Table(
            ["dataset", "experiment", "stage", "seed", "key", "model", "labels", "path"],
            rows,
            title="Runs used",
        )
    )
    blocks.append(
        Code(
            json.dumps(
                {r["key"]: r["config"] for r in report.runs}, indent=1, sort_keys=True, default=str
            ),
            summary="run configs",
        )
    )
    if report.filters:
        blocks.append(
            Table(
                [
                    "dataset",
                    "label set",
                    "key",
                    "probe",
                    "layer",
                    "contamination",
                    "precision",
                    "mislabel rate",
                ],
                [
                    [
                        f["dataset"],
                        str(f["name"]),
                        str(f["key"]),
                        str(f["probe"]),
                        str(f["layer"]),
                        fmt(f["contamination"]),
                        fmt(f["precision"]),
                        fmt(f["base_rate"]),
                    ]
                    for f in report.filters
                ],
                title="Filtered label sets",
            )
        )
    sweeps = sorted({r["path"] for r in report.sweeps})
    if sweeps:
        blocks.append(Bullets([f"sweep {path}" for path in sweeps]))
    return blocks


# --------------------------------------------------------------------------- formatting


def fmt(value, digits: int = 3) -> str:
    """A number for a table (``—`` when missing)."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_p(p, note) -> str:
    return f"{p:.3g}" if p is not None else f"— ({note})"


def fmt_n(n) -> str:
    return "—" if n is None else (str(n) if not isinstance(n, list) else "/".join(map(str, n)))


def with_spread(row: dict, metric: str) -> str:
    """The value with its spread, as text.

    ``0.864 [0.841, 0.885]`` (one seed, with a CI), ``0.864 ± 0.012`` (seeds), or just the value.
    """
    value = row.get(metric)
    if value is None:
        return "—"
    digits = 4 if metric == "auc" else 3
    ci, se = row.get(f"{metric}_ci"), row.get(f"{metric}_se")
    if ci:
        return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    if se is not None:
        return f"{value:.{digits}f} ± {se:.{digits}f}"
    return f"{value:.{digits}f}"
