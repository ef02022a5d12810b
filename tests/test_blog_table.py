"""bench/blog_table.py: BENCHMARKS' blog-study tables from a report.json and the study's log,
worked by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "bench" / "blog_table.py"
spec = importlib.util.spec_from_file_location("blog_table", SCRIPT)
blog_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(blog_table)


def row(dataset: str, experiment: str, auc: float, pgr: float | None = None) -> dict:
    return {"dataset": dataset, "experiment": experiment, "auc": auc, "pgr": pgr}


def test_stable_datasets_first_with_pgr_flagged_ones_marked_without():
    report = {
        "datasets": ["alpha", "beta", "gamma"],
        "rows": [
            row("alpha", "weak", 0.6),
            row("alpha", "ceiling", 0.8),
            row("alpha", "xent", 0.65, 0.25),
            row("beta", "weak", 0.46),
            row("beta", "ceiling", 0.53),
            row("beta", "xent", 0.48, 0.3),
            row("gamma", "weak", 0.7),
            row("gamma", "ceiling", 0.71),
            row("gamma", "xent", 0.69, -1.0),
        ],
        "unstable": [
            {"dataset": "gamma", "reason": "gap +0.010 [-0.010, +0.030]"},
            {"dataset": "beta", "reason": "weak below chance: AUC 0.460 [0.430, 0.490]"},
        ],
    }
    lines = blog_table.table(report)
    assert lines[0].startswith("| dataset | weak | head ceiling | xent | logconf |")
    body = [line for line in lines[2:] if line.startswith("| ")]
    # alpha is stable: its PGR shown, with a true minus sign where negative; the others not
    assert body[0] == "| alpha | 0.600 | 0.800 | 0.650 (+0.25) | " + " | ".join(["—"] * 8) + " |"
    assert body[1].startswith("| beta ‡ | 0.460 | 0.530 | 0.480 | —")  # below chance: ‡
    assert body[2].startswith("| gamma † | 0.700 | 0.710 | 0.690 | —")  # the gap: †
    assert lines[-2:] == [
        "- beta ‡: weak below chance: AUC 0.460 [0.430, 0.490]",
        "- gamma †: gap +0.010 [-0.010, +0.030]",
    ]
    assert blog_table.cell(row("a", "xent", 0.5, -0.126), stable=True) == "0.500 (−0.13)"


def test_times_sum_every_logged_attempt_per_step():
    log = "\n".join(
        [
            "wic extract-strong: exit 0 after 24 s",
            "wic weak: exit 0 after 17 s",
            "wic extract-strong: exit 0 after 3 s",  # a resumed rerun: both attempts count
            "wic heads: exit 1 after 9 s",  # a failed attempt is not a finished step
            "wic heads: exit 0 after 51 s",
            "sst2 extract-strong: exit 0 after 171 s",
        ]
    )
    lines = blog_table.times(log)
    assert lines[0] == (
        "| dataset | extract-strong | weak | extract-weak | heads | total | extraction share |"
    )
    assert lines[2] == "| wic | 27 | 17 | — | 51 | 95 | 28% |"
    assert lines[3] == "| sst2 | 171 | — | — | — | 171 | 100% |"


def test_summary_counts_only_what_the_report_summarised():
    report = {
        "included_datasets": ["alpha", "beta"],
        "summary": [
            {"experiment": "xent", "n_datasets": 2, "positive": 1, "median_pgr": -0.05},
            {"experiment": "kl", "n_datasets": 0, "positive": 0, "median_pgr": None},
        ],
        "comparisons": [
            {"experiment": "logconf", "n": 2, "statement": "logconf better than xent on 2 of 2"},
            {"experiment": "kl", "n": 0, "statement": "kl better than xent on 0 of 0"},
        ],
    }
    assert blog_table.summary(report) == [
        "Datasets counted (2): alpha, beta",
        "",
        "- xent: PGR > 0 on 1 of 2 (median -0.050)",
        "",
        "- logconf better than xent on 2 of 2",
    ]


def test_auc_comparisons_are_the_reports_lines_for_the_tables_experiments():
    comparison = {"baseline": "xent", "n": 3, "wins": 2, "losses": 1, "mean_diff": 0.00667,
                  "t_test_p": 0.3457, "wilcoxon_p": 0.375}  # fmt: skip
    report = {
        "auc_comparisons": [
            {**comparison, "experiment": "logconf"},
            {**comparison, "experiment": "s2s-1"},  # not a column of the table
            {**comparison, "experiment": "entropy", "n": 0},  # ran nowhere beside xent
            {**comparison, "experiment": "product", "t_test_p": None, "wilcoxon_p": None},
        ]
    }
    assert blog_table.auc_comparisons(report) == [
        "- logconf vs xent, test AUC over 3 datasets: better on 2, worse on 1 (mean +0.0067); "
        "one-sided paired t p = 0.346, Wilcoxon p = 0.375",
        "- product vs xent, test AUC over 3 datasets: better on 2, worse on 1 (mean +0.0067); "
        "one-sided paired t p = —, Wilcoxon p = —",
    ]
