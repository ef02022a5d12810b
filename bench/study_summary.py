"""The BENCHMARKS.md summary of a study record: test AUC and PGR per dataset, wall time per stage.

    python bench/study_summary.py docs/results/mpnet

Reads the record's runs (``cache/runs/<dataset>/<key>/metrics.json``, chosen as the report
chooses them) and the ``run --json`` logs bench/study.sh keeps
(``logs/<dataset>.<time>[.<experiment>].json``; a stage's time is the attempt that built it,
or a run's own ``train_seconds`` when that attempt was killed before its summary).
PGR is shown and counted only where the report's PGR rule (w2sprobe/pgr_rule.py) calls the
dataset stable: the 95 % paired-bootstrap CI of ceiling - weak test AUC (the report's resamples
of the shared test ids) lies above ``--min-gap`` (default 0.02); a run without predictions to
resample falls back to the rule's point gap.  Sweep lines choose a probe's layer and setting on
the weak-label criterion the sweep recorded (never test AUC).

    python bench/study_summary.py docs/results/mpnet --min-gap 0.02
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from w2sprobe.pgr_rule import DEFAULT_MIN_GAP, RULE_N_BOOT, RULE_SEED, assess

EXPERIMENTS = ("xent", "logconf", "knn-probe", "logreg-probe", "knn-filter", "knn-relabel")
MIN_GAP = DEFAULT_MIN_GAP


def load_metrics(record: Path) -> dict[str, dict[str, dict]]:
    """dataset -> experiment -> metrics of the runs the report keeps (one per experiment: the
    report's rule for reruns, so these tables and docs/results/<study>/report.md agree)."""
    from w2sprobe.report.collect import collect_results

    found: dict[str, dict[str, dict]] = defaultdict(dict)
    for run in collect_results(record / "cache").runs:
        found[run.dataset][run.experiment] = run.metrics
    return found


def stable_datasets(record: Path, min_gap: float = MIN_GAP) -> dict[str, tuple]:
    """dataset -> (stable, gap) by the PGR rule, exactly as ``w2sprobe report`` judges it: the
    gap's paired-bootstrap CI (its defaults: 1000 resamples, seed 0) above ``min_gap``."""
    from w2sprobe.report.build import reference_gap
    from w2sprobe.report.collect import collect_results

    found = collect_results(record / "cache")
    out = {}
    for dataset in found.datasets:
        gap = reference_gap(found, dataset, RULE_N_BOOT, RULE_SEED)
        if gap is not None:
            out[dataset] = (not assess(gap, min_gap).unstable, gap)
    return out


def stage_seconds(record: Path) -> dict[str, dict[str, float]]:
    """dataset -> stage -> seconds of the attempt that built it ("ran")."""
    seconds: dict[str, dict[str, float]] = defaultdict(dict)
    for log in sorted(record.glob("logs/*.json")):
        try:
            summary = json.loads(log.read_text())
        except ValueError:
            continue  # an attempt killed before it printed its summary
        for result in summary.get("datasets", []):
            for stage in result["stages"]:
                if stage["status"] == "ran":
                    seconds[result["dataset"]][stage["stage"]] = stage["seconds"]
    return seconds


def cell(metrics: dict | None, stable: bool) -> str:
    if not metrics or metrics.get("auc") is None:
        return "—"
    pgr = metrics.get("pgr")
    shown = f" ({pgr:+.2f})" if stable and pgr is not None else ""
    return f"{metrics['auc']:.3f}{shown}"


def gap_cell(gap: float, stable: bool, ci=None, min_gap: float = MIN_GAP) -> str:
    """The gap to 3 decimals (4 where 3 would round a point gap across the floor, 0.0197 to
    0.020), with its CI when the rule judged one; ⚠ where the rule calls it unstable."""
    shown = f"{gap:+.3f}"
    if ci is None and stable != (float(shown) >= min_gap):
        shown = f"{gap:+.4f}"
    if ci is not None:
        shown += f" [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return shown + ("" if stable else " ⚠")


def summary_tables(record: Path, min_gap: float = MIN_GAP) -> str:
    metrics, seconds = load_metrics(record), stage_seconds(record)
    verdicts = stable_datasets(record, min_gap)
    for dataset, runs in metrics.items():  # an attempt killed before its summary: train time
        for name, m in runs.items():
            if name not in seconds[dataset] and m.get("train_seconds"):
                seconds[dataset][name] = m["train_seconds"]
    head = ["dataset", "weak", "ceiling", "gap", *EXPERIMENTS, "wall time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # experiment -> [PGR > 0, stable]
    beats_xent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for dataset in sorted(metrics):
        runs = metrics[dataset]
        if "weak" not in runs or "ceiling" not in runs:
            continue
        weak, ceiling = runs["weak"]["auc"], runs["ceiling"]["auc"]
        stable, gap = verdicts[dataset]
        total = sum(seconds.get(dataset, {}).values())
        row = [
            dataset,
            f"{weak:.3f}",
            f"{ceiling:.3f}",
            gap_cell(gap.value, stable, gap.ci, min_gap),
        ]
        row += [cell(runs.get(name), stable) for name in EXPERIMENTS]
        row.append(f"{total / 60:.1f} min" if total else "—")
        lines.append("| " + " | ".join(row) + " |")
        for name in EXPERIMENTS:
            m = runs.get(name)
            if stable and m and m.get("pgr") is not None:
                counts[name][0] += m["pgr"] > 0
                counts[name][1] += 1
                if name != "xent" and runs.get("xent"):
                    beats_xent[name][0] += m["auc"] > runs["xent"]["auc"]
                    beats_xent[name][1] += 1
    lines.append("")
    lines.append(
        f"PGR > 0 (datasets whose ceiling − weak 95 % CI lies above {min_gap:g}): "
        + ", ".join(f"{name} {c[0]}/{c[1]}" for name, c in counts.items())
    )
    lines.append(
        "Test AUC above xent's: "
        + ", ".join(f"{name} {c[0]}/{c[1]}" for name, c in beats_xent.items())
    )
    for dataset, spent in sweep_seconds(record).items():
        seconds[dataset]["sweeps"] = spent
    lines += ["", *time_table(seconds)]
    sweeps = load_sweeps(record)
    if sweeps:
        lines += ["", *sweep_tables(sweeps)]
    return "\n".join(lines)


#: The blog's probe settings (k = 50, L2 = 1e-2): the sweeps' reference points.
BLOG_SETTING = {"knn": ("k", 50), "logreg": ("l2", 1e-2)}


def load_sweeps(record: Path) -> list[dict]:
    """Every row of the record's probe sweeps (``cache/sweeps/<dataset>/<key>/sweep.json``)."""
    rows: list[dict] = []
    for path in sorted(record.glob("cache/sweeps/*/*/sweep.json")):
        rows += json.loads(path.read_text())
    return rows


def sweep_tables(rows: list[dict]) -> list[str]:
    """Per probe: mean over datasets of probe AUC − weak AUC by layer at the blog's setting, and
    what choosing the layer and setting without test labels achieves: per dataset the point of
    least weak-label criterion (the sweep's, w2sprobe/probes/choice.py) beside the best in
    hindsight.  Sweeps written before the criterion have no choice to show: their line says
    the best-on-average layer is hindsight (test)."""
    from w2sprobe.probes.choice import sweep_choice

    lines: list[str] = []
    for probe, (param, blog_value) in BLOG_SETTING.items():
        mine = [r for r in rows if r["probe"] == probe and r.get("labels", "weak") == "weak"]
        if not mine:
            continue
        by_layer = _means(mine, "layer", lambda r: r[param] == blog_value)
        n = len({r["dataset"] for r in mine})
        lines.append(
            f"{probe}: probe AUC − weak AUC, mean over {n} datasets — by layer at {param}="
            f"{blog_value:g}: "
            + ", ".join(f"{layer}: {gain:+.3f}" for layer, gain in sorted(by_layer.items()))
        )
        groups: dict = defaultdict(list)
        for row in mine:
            groups[row["dataset"], row.get("sweep_key")].append(row)
        choices = [c for c in (sweep_choice(g, param) for g in groups.values()) if c]
        if choices:
            chosen = [c.chosen["auc_minus_labels_auc"] for c in choices]
            best = [c.best["auc_minus_labels_auc"] for c in choices]
            lines.append(
                f"{probe}: chosen on weak labels (least criterion, per dataset, {len(choices)} "
                f"sweeps): mean probe AUC − weak AUC {sum(chosen) / len(chosen):+.3f}; best in "
                f"hindsight (test): {sum(best) / len(best):+.3f}"
            )
            continue
        best_layer = max(by_layer, key=by_layer.get)
        by_value = _means(mine, param, lambda r: r["layer"] == best_layer)
        lines.append(
            f"{probe}: at layer {best_layer} (best test gain on average: hindsight; these "
            f"sweeps predate the weak-label criterion) by {param}: "
            + ", ".join(f"{value:g}: {gain:+.3f}" for value, gain in sorted(by_value.items()))
        )
    return lines


def _means(rows: list[dict], key: str, keep) -> dict:
    groups: dict = defaultdict(list)
    for row in rows:
        if keep(row) and row.get("auc_minus_labels_auc") is not None:
            groups[row[key]].append(row["auc_minus_labels_auc"])
    return {value: sum(gains) / len(gains) for value, gains in groups.items()}


def sweep_seconds(record: Path) -> dict[str, float]:
    """dataset -> seconds of its finished sweeps, from study.sh's ``logs/progress.log``."""
    log = record / "logs" / "progress.log"
    spent: dict[str, float] = {}
    for line in log.read_text().splitlines() if log.is_file() else []:
        match = SWEEP_LINE.match(line)
        if match:
            spent[match["dataset"]] = float(match["seconds"])
    return spent


SWEEP_LINE = re.compile(r"^\S+ (?P<dataset>\S+) sweeps: exit 0 after (?P<seconds>\d+) s$")

#: A stage under this many seconds on every dataset gets no column of its own, only a note:
#: the probes and label sets take 0.1-1.5 s, the cheapest training or extraction over 20 s.
NEGLIGIBLE_SECONDS = 5.0


def time_table(seconds: dict[str, dict[str, float]]) -> list[str]:
    every = sorted({s for per in seconds.values() for s in per}, key=_stage_order)
    small = [s for s in every if all(p.get(s, 0) < NEGLIGIBLE_SECONDS for p in seconds.values())]
    stages = [s for s in every if s not in small]
    head = ["dataset", *stages]
    lines = ["| " + " | ".join(head) + " | (seconds)", "|" + "---|" * len(head)]
    for dataset in sorted(seconds):
        per = seconds[dataset]
        lines.append(
            "| "
            + " | ".join([dataset, *(f"{per[s]:.0f}" if s in per else "—" for s in stages)])
            + " |"
        )
    if small:
        lines += ["", f"Under {NEGLIGIBLE_SECONDS:g} s on every dataset: " + ", ".join(small) + "."]
    return lines


def _stage_order(stage: str) -> tuple[int, str]:
    order = ("weak", "ceiling", "xent", "logconf", "extract")  # then the rest; sweeps last
    if stage == "sweeps":
        return (len(order) + 1, stage)
    return (order.index(stage), stage) if stage in order else (len(order), stage)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path, help="a study record, e.g. docs/results/mpnet")
    parser.add_argument(
        "--min-gap", type=float, default=MIN_GAP, help="the PGR rule's minimum gap [0.02]"
    )
    args = parser.parse_args()
    print(summary_tables(args.record, args.min_gap))
