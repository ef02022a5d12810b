"""BENCHMARKS.md's table of the blog-size study, from the study's report.json.

One row per dataset: weak, head ceiling and each experiment's test AUC, with the PGR in
brackets where the PGR rule calls it stable; a dataset the rule flags is marked † (gap) or ‡
(a weak model below chance) and its flags are listed under the table, as the report states
them:

    python bench/blog_table.py docs/results/blog/report.json
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the study's report.json")
    args = parser.parse_args()
    print("\n".join(table(json.loads(args.report.read_text()))))


if __name__ == "__main__":
    main()
