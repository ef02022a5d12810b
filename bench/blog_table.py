"""BENCHMARKS.md's table of the blog-size study, from the study's report.json.

One row per dataset: weak, head ceiling and each experiment's test AUC, with the PGR in
brackets where the PGR rule calls it stable; a dataset the rule flags is marked † (gap) or ‡
(a weak model below chance) and its flags are listed under the table, as the report states
them; with ``--summary``, the headline counts (PGR > 0 per experiment) and paired tests
against the baseline over the datasets the summary counts, and the report's same tests on test
AUC over every dataset (closer to the blog's own comparison, and not limited to the few datasets
with a stable gap); with ``--times``, the wall time per
dataset and step from the study's progress log (each logged attempt summed: an attempt killed
with its session is not logged):

    python bench/blog_table.py docs/results/blog/report.json \
        --times docs/results/blog/logs/progress.log
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

COLUMNS = (
    "xent",
    "logconf",
    "entropy",
    "product",
    "adaptive",
    "s2s-2",
    "knn-filter",
    "knn-relabel",
    "logreg-relabel",
)


def cell(row: dict | None, stable: bool) -> str:
    """``0.608 (+0.03)``: the AUC, and the PGR where it means something."""
    if row is None or row.get("auc") is None:
        return "—"
    text = f"{row['auc']:.3f}"
    if stable and row.get("pgr") is not None:
        text += f" ({row['pgr']:+.2f})".replace("-", "−")
    return text


def mark(item: dict | None) -> str:
    if item is None:
        return ""
    return " ‡" if str(item.get("reason", "")).startswith("weak below chance") else " †"


def table(report: dict) -> list[str]:
    rows = {(r["dataset"], r["experiment"]): r for r in report["rows"]}
    flagged = {u["dataset"]: u for u in report["unstable"]}
    head = ["dataset", "weak", "head ceiling", *COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    # stable datasets first (the ones the summary counts), then the flagged ones, by name
    for dataset in sorted(report["datasets"], key=lambda d: (d in flagged, d)):
        stable = dataset not in flagged
        cells = [cell(rows.get((dataset, "weak")), False)]
        cells.append(cell(rows.get((dataset, "ceiling")), False))
        cells += [cell(rows.get((dataset, e)), stable) for e in COLUMNS]
        lines.append(f"| {dataset}{mark(flagged.get(dataset))} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {d}{mark(u)}: {u['reason']}" for d, u in sorted(flagged.items())]
    return lines


def summary(report: dict) -> list[str]:
    """The issue's headline numbers over the datasets the summary counts (stable, not
    saturated): PGR > 0 per experiment, and each intervention against the baseline with the
    report's one-sided paired t-test and Wilcoxon signed-rank p-values."""
    included = report["included_datasets"]
    lines = [f"Datasets counted ({len(included)}): {', '.join(included) or 'none'}", ""]
    for s in report["summary"]:
        if s["n_datasets"]:
            median = s["median_pgr"]
            lines.append(
                f"- {s['experiment']}: PGR > 0 on {s['positive']} of {s['n_datasets']} "
                f"(median {median:+.3f})"
            )
    lines.append("")
    lines += [f"- {c['statement']}" for c in report["comparisons"] if c["n"]]
    return lines


def auc_comparisons(report: dict) -> list[str]:
    """The report's comparisons with the baseline on test AUC over every dataset
    (``auc_comparisons``), one line each for this table's experiments."""
    lines = []
    for c in report.get("auc_comparisons", []):
        if c["experiment"] not in COLUMNS or not c["n"]:
            continue
        lines.append(
            f"- {c['experiment']} vs {c['baseline']}, test AUC over {c['n']} datasets: better "
            f"on {c['wins']}, worse on {c['losses']} (mean {c['mean_diff']:+.4f}); one-sided "
            f"paired t p = {_p(c['t_test_p'])}, Wilcoxon p = {_p(c['wilcoxon_p'])}"
        )
    return lines


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


STEPS = ("extract-strong", "weak", "extract-weak", "heads")
LOGGED = re.compile(r"^(\S+) (\S+): exit 0 after (\d+) s$")


def times(log: str) -> list[str]:
    """Seconds per dataset and step (``bench/blog_study.sh``'s log lines), in study order."""
    seconds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in log.splitlines():
        found = LOGGED.match(line.strip())
        if found:
            seconds[found[1]][found[2]] += int(found[3])
    head = ["dataset", *STEPS, "total", "extraction share"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dataset, steps in seconds.items():
        total = sum(steps.values())
        extraction = steps.get("extract-strong", 0) + steps.get("extract-weak", 0)
        cells = [f"{steps[s]:,}" if s in steps else "—" for s in STEPS]
        share = f"{extraction / total:.0%}" if total else "—"
        lines.append(f"| {dataset} | " + " | ".join(cells) + f" | {total:,} | {share} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the study's report.json")
    parser.add_argument("--times", type=Path, help="the study's progress.log")
    parser.add_argument("--summary", action="store_true", help="the headline counts and tests")
    args = parser.parse_args()
    report = json.loads(args.report.read_text())
    print("\n".join(table(report)))
    if args.summary:
        print("\n" + "\n".join(summary(report)))
        print("\n" + "\n".join(auc_comparisons(report)))
    if args.times:
        print("\n" + "\n".join(times(args.times.read_text())))


if __name__ == "__main__":
    main()
