"""The numbers of a report: per-run and per-dataset tables, saturation, comparisons to a baseline.

``build_report`` turns the result files under a workspace into a :class:`Report`; rendering
(figures, Markdown/HTML/JSON) lives in ``figures.py`` and ``render.py`` and only reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UsageError
from ..hashing import short_hash
from ..metrics import pgr as pgr_of
from ..options import ReportOptions
from ..pgr_rule import CI, POINT, Gap, assess, bootstrap_gap, is_constant, rule_text
from ..runs import current_command
from ..vocabulary import display_group as experiment_group
from ..vocabulary import display_order as experiment_order
from .collect import REFERENCE_STAGES, Collection, RunResult, collect_results, read_test_predictions
from .diagnose import COLUMNS as DIAGNOSTICS
from .diagnose import Diagnoser, cross_dataset, flat
from .probe_inputs import collect_filters, collect_sweeps
from .setup import study_setup
from .stats import (
    bootstrap_pgr,
    is_saturated,
    mean_se,
    paired_comparison,
    percentile_ci,
    resample_counts,
    weighted_auc,
)
from .transfer import collect_transfers
from .views import alignment_vs_pgr, collect_views

# The defaults are the report options' (w2sprobe.options): one place for the CLI and the library.
_DEFAULTS = ReportOptions()
DEFAULT_BASELINE = _DEFAULTS.baseline
DEFAULT_N_BOOT = _DEFAULTS.n_boot
DEFAULT_SATURATION = _DEFAULTS.saturation
#: PGR divides by ceiling - weak AUC; below this gap it is noise, flagged and left out of summaries.
DEFAULT_MIN_GAP = _DEFAULTS.min_gap

Progress = Callable[[int, int, str], None]


@dataclass
class Report:
    """Everything a rendered report shows, as plain data (``to_dict`` is the ``--json`` object).

    ``seed_rows``: one per run (AUC, accuracy, PGR, 95% bootstrap CIs); ``rows``: one per
    (dataset, experiment), mean ± standard error over seeds; ``summary``: per experiment across
    the included datasets (neither saturated nor ``unstable``: ceiling − weak AUC below
    ``options["min_gap"]``); ``comparisons``: each intervention vs the baseline on PGR over
    those datasets, ``auc_comparisons`` on test AUC over every dataset.  Rows with a
    PGR carry ``pgr_unstable``; ``run_warnings`` are the warnings the runs recorded; ``setup``
    is what was compared (models, split sizes, seeds, the commands that made the runs).
    """

    cache_dir: Path
    key: str
    options: dict
    datasets: list[str]
    experiments: list[str]
    runs: list[dict]
    seed_rows: list[dict]
    rows: list[dict]
    saturated: list[dict]
    summary: list[dict]
    comparisons: list[dict]
    missing: list[dict]
    incomplete: list[dict]
    sweeps: list[dict] = field(default_factory=list)
    filters: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unstable: list[dict] = field(default_factory=list)
    run_warnings: list[dict] = field(default_factory=list)
    setup: dict = field(default_factory=dict)
    #: Misfit vs gain and weak–ceiling error κ vs PGR across datasets (report/diagnose.py).
    diagnostics: dict = field(default_factory=dict)
    #: Datasets the old point rule (ceiling − weak < min_gap) would flag, beside ``unstable``.
    point_rule_unstable: list[str] = field(default_factory=list)
    #: Saved probes scored on other datasets (``w2sprobe apply``): report/transfer.py.
    transfers: list[dict] = field(default_factory=list)
    #: Views of the cache (report/views.py): per dataset disputed examples and weak-strong
    #: alignment, and alignment vs PGR across datasets.
    views: dict = field(default_factory=dict)
    #: Each intervention vs the baseline on test AUC over every dataset (compare_auc_to_baseline).
    auc_comparisons: list[dict] = field(default_factory=list)

    @property
    def included(self) -> list[str]:
        """Datasets the summary and comparisons use: with a PGR (a weak and a ceiling run), and
        neither saturated nor with unstable PGR."""
        gone = {item["dataset"] for item in self.saturated + self.unstable}
        with_pgr = {r["dataset"] for r in self.rows if r.get("pgr") is not None}
        return [d for d in self.datasets if d in with_pgr and d not in gone]

    def row(self, dataset: str, experiment: str) -> dict | None:
        return next(
            (r for r in self.rows if r["dataset"] == dataset and r["experiment"] == experiment),
            None,
        )

    def to_dict(self) -> dict:
        return {
            "cache_dir": str(self.cache_dir),
            "key": self.key,
            "options": self.options,
            "setup": self.setup,
            "datasets": self.datasets,
            "included_datasets": self.included,
            "experiments": self.experiments,
            "saturated": self.saturated,
            "unstable": self.unstable,
            "point_rule_unstable": self.point_rule_unstable,
            "diagnostics": self.diagnostics,
            "summary": self.summary,
            "comparisons": self.comparisons,
            "auc_comparisons": self.auc_comparisons,
            "rows": self.rows,
            "seed_rows": self.seed_rows,
            "missing": self.missing,
            "incomplete": self.incomplete,
            "runs": self.runs,
            "sweeps": self.sweeps,
            "filters": self.filters,
            "notes": self.notes,
            "run_warnings": self.run_warnings,
            "transfers": self.transfers,
            "views": self.views,
        }


def build_report(
    cache_dir: Path | str,
    datasets: list[str] | None = None,
    baseline: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    saturation: float = DEFAULT_SATURATION,
    seed: int = 0,
    progress: Progress | None = None,
    min_gap: float = DEFAULT_MIN_GAP,
    kind: str | None = None,
    data_dir: str | None = None,
) -> Report:
    """Read the results under ``cache_dir`` and compute every table of the report.

    ``baseline`` None means the default ``xent``, silently skipped when absent; a baseline the
    caller names must exist. ``n_boot`` 0 skips the bootstrap (no CIs). ``seed`` seeds it.
    ``min_gap``: a dataset whose ceiling − weak AUC is below it has unstable PGRs: they are
    shown flagged and left out of the summary and comparisons, like a saturated dataset's.
    ``kind``: the students compared, ``lora`` or ``head`` (None: the one kind there is).
    ``data_dir``: where the disputed examples' texts are rebuilt from (None: ids only).
    """
    if n_boot < 0:
        raise UsageError(f"--n-boot must be >= 0, got {n_boot}")
    if not 0 < saturation <= 1:
        raise UsageError(f"--saturation must be in (0, 1], got {saturation}")
    if not (isinstance(min_gap, (int, float)) and 0 <= min_gap < 1):
        raise UsageError(f"--min-gap must be in [0, 1), got {min_gap}")
    root = Path(cache_dir)
    found = collect_results(root, datasets, kind)
    notes: list[str] = []
    chosen = _check_baseline(found, baseline, notes)
    seed_rows = []
    diagnoser = Diagnoser(root)
    for done, dataset in enumerate(found.datasets):
        if progress:
            progress(done, len(found.datasets), dataset)
        seed_rows += dataset_seed_rows(found, dataset, n_boot, seed, found.missing, diagnoser)
    if progress:
        progress(len(found.datasets), len(found.datasets), "")
    rows = aggregate_seeds(seed_rows)
    saturated = saturated_datasets(rows, found.datasets, chosen or DEFAULT_BASELINE, saturation)
    gaps = {d: reference_gap(found, d, n_boot, seed) for d in found.datasets}
    unstable = unstable_datasets(rows, found.datasets, min_gap, gaps)
    flag_unstable(seed_rows, rows, unstable, min_gap)
    gone = {item["dataset"] for item in saturated + unstable}
    included = [d for d in found.datasets if d not in gone]
    sweeps, sweep_notes = collect_sweeps(root, datasets)
    filters = collect_filters(root, datasets)
    transfers = collect_transfers(root, datasets, n_boot, seed)
    options = {
        "datasets": datasets,
        "baseline": chosen,
        "n_boot": n_boot,
        "saturation": saturation,
        "min_gap": min_gap,
        "pgr_rule": rule_text(min_gap, CI if n_boot > 0 else POINT),
        "seed": seed,
        "ci_level": 0.95,
        "student_kind": found.kind,
    }
    experiments = sorted({r["experiment"] for r in rows}, key=experiment_order)
    views = collect_views(root, found.datasets, data_dir)
    return Report(
        cache_dir=root,
        key=_inputs_key(found, sweeps, filters, options, transfers),
        options=options,
        datasets=found.datasets,
        experiments=experiments,
        # in the tables' order (dataset, then experiment order, then seed), not key order
        runs=[
            run.describe()
            for run in sorted(
                found.runs, key=lambda r: (r.dataset, experiment_order(r.experiment), r.seed)
            )
        ],
        seed_rows=seed_rows,
        rows=rows,
        saturated=saturated,
        summary=experiment_summary(rows, included, seed),
        comparisons=compare_to_baseline(rows, included, chosen, found.datasets) if chosen else [],
        auc_comparisons=compare_auc_to_baseline(rows, found.datasets, chosen) if chosen else [],
        missing=found.missing,
        incomplete=found.incomplete,
        sweeps=sweeps,
        filters=filters,
        notes=notes + sweep_notes,
        unstable=unstable,
        point_rule_unstable=point_rule_unstable(gaps, min_gap),
        diagnostics=cross_dataset(rows, included, chosen),
        run_warnings=recorded_warnings(found),
        setup={**study_setup(found), "report_command": current_command()},
        transfers=transfers,
        views={
            "datasets": views,
            "alignment_vs_pgr": alignment_vs_pgr(views, rows, included, chosen),
        },
    )


# --------------------------------------------------------------------------- per run


class _Bootstrap:
    """Bootstrap AUC vectors, memoised per (run, id set): the weak and ceiling runs are shared
    by every student of a dataset, and runs on the same ids share one counts matrix."""

    def __init__(self, n_boot: int, seed: int):
        self.n_boot, self.seed = n_boot, seed
        self._counts: dict[str, np.ndarray] = {}
        self._aucs: dict[tuple[str, str], np.ndarray] = {}

    def auc(self, key: str, ids: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        id_hash = short_hash(ids.tolist(), 32)
        if (key, id_hash) not in self._aucs:
            if id_hash not in self._counts:
                self._counts[id_hash] = resample_counts(ids.tolist(), self.n_boot, self.seed)
            self._aucs[key, id_hash] = weighted_auc(labels, scores, self._counts[id_hash])
        return self._aucs[key, id_hash]


def dataset_seed_rows(
    found: Collection,
    dataset: str,
    n_boot: int,
    seed: int,
    missing: list[dict],
    diagnoser: Diagnoser | None = None,
) -> list[dict]:
    """One row per run of ``dataset``: AUC, accuracy, PGR and their bootstrap CIs, and (with a
    ``diagnoser``) its diagnostics flattened under ``diag``."""
    runs = sorted(found.of(dataset), key=lambda r: (experiment_order(r.experiment), r.seed))
    predictions = {run.key: read_test_predictions(run) for run in runs}
    for run in runs:
        if predictions[run.key] is None:
            missing.append(
                {
                    "dataset": dataset,
                    "experiment": run.experiment,
                    "seed": run.seed,
                    "run": run.key,
                    "reason": "no predictions.csv: no confidence intervals",
                    "message": f"{dataset} {run.experiment} seed {run.seed}: no predictions.csv: "
                    "no confidence intervals",
                }
            )
    boot = _Bootstrap(n_boot, seed) if n_boot > 0 else None
    rows = []
    for run in runs:
        row = _run_row(run)
        own = predictions[run.key]
        if boot and own is not None:
            row["auc_ci"] = percentile_ci(boot.auc(run.key, *own))
        if run.stage not in REFERENCE_STAGES:
            row.update(_pgr_fields(run, found.pairs[run.key], predictions, boot))
        if diagnoser is not None:
            pair = found.pairs.get(run.key)
            row["diag"] = flat(
                diagnoser.of(run, pair and pair.weak, pair and pair.ceiling)
                if run.stage not in REFERENCE_STAGES
                else diagnoser.of(run, None, None)
            )
        rows.append(row)
    return rows


def _run_row(run: RunResult) -> dict:
    return {
        "dataset": run.dataset,
        "experiment": run.experiment,
        "group": experiment_group(run.experiment),
        "stage": run.stage,
        "seed": run.seed,
        "key": run.key,
        "model": run.model,
        "labels": run.metrics.get("labels"),
        "n": run.n,
        "auc": run.auc,
        "auc_ci": None,
        "accuracy": run.accuracy,
    }


def _pgr_fields(run: RunResult, pairing, predictions: dict, boot: _Bootstrap | None) -> dict:
    """PGR (recorded by the run against these very weak and ceiling runs, else from their AUCs)
    and its paired CI."""
    weak, ceiling = pairing.weak, pairing.ceiling
    recorded_against = (run.reference_key("weak"), run.reference_key("ceiling"))
    paired = (weak.key if weak else None, ceiling.key if ceiling else None)
    point = run.recorded_pgr if recorded_against == paired else None
    if point is None and weak and ceiling and None not in (run.auc, weak.auc, ceiling.auc):
        point = pgr_of(run.auc, weak.auc, ceiling.auc)
    out = {
        "pgr": point if point is None or math.isfinite(point) else None,
        "pgr_ci": None,
        "n_shared": None,
        "weak_key": weak.key if weak else None,
        "ceiling_key": ceiling.key if ceiling else None,
        "weak_auc": weak.auc if weak else None,
        "ceiling_auc": ceiling.auc if ceiling else None,
    }
    triple = [predictions.get(r.key) if r else None for r in (run, weak, ceiling)]
    out["pgr_constant"] = triple[0] is not None and is_constant(triple[0][1])
    if weak and ceiling and None not in (weak.auc, ceiling.auc):
        out["pgr_gap"], out["pgr_gap_ci"] = ceiling.auc - weak.auc, None
        out["pgr_weak_auc"], out["pgr_weak_ci"] = weak.auc, None
    if boot is None or any(p is None for p in triple):
        return out
    # Paired: join the three runs by test id and resample those shared ids once for all three.
    shared = np.intersect1d(np.intersect1d(triple[0][0], triple[1][0]), triple[2][0])
    out["n_shared"] = int(shared.size)
    if shared.size < 2:
        return out
    aucs = []
    for source, (ids, scores, labels) in zip((run, weak, ceiling), triple):
        rows = np.searchsorted(ids, shared)  # ids are sorted by read_test_predictions
        aucs.append(boot.auc(source.key, shared, scores[rows], labels[rows]))
    out["pgr_ci"] = percentile_ci(bootstrap_pgr(*aucs))
    out["pgr_gap_ci"] = percentile_ci(aucs[2] - aucs[1])  # the PGR rule's intervals, same resamples
    out["pgr_weak_ci"] = percentile_ci(aucs[1])
    return out


def reference_gap(found: Collection, dataset: str, n_boot: int, seed: int) -> Gap | None:
    """Ceiling − weak test AUC of ``dataset`` and its paired-bootstrap CI (the PGR rule's input).

    Weak and ceiling runs are paired by seed; over several seeds the gap is the seed mean and
    each resample's gap is the mean of the seeds' gaps on that resample.  None without a weak
    and a ceiling run; no CI without their predictions (or with ``n_boot`` 0).
    """
    runs = {(r.stage, r.seed): r for r in found.of(dataset) if r.stage in REFERENCE_STAGES}
    pairs = [
        (runs["weak", s], runs["ceiling", s])
        for stage, s in sorted(runs)
        if stage == "weak" and ("ceiling", s) in runs
    ]
    if not pairs:  # a weak and a ceiling of different seeds: their recorded AUCs
        weak = [r for (stage, _), r in runs.items() if stage == "weak" and r.auc is not None]
        ceiling = [r for (stage, _), r in runs.items() if stage == "ceiling" and r.auc is not None]
        if not weak or not ceiling:
            return None
        weak_auc = float(np.mean([r.auc for r in weak]))
        return Gap(float(np.mean([r.auc for r in ceiling])) - weak_auc, weak_auc=weak_auc)
    points, weak_points, resamples = [], [], []
    for weak, ceiling in pairs:
        preds = [read_test_predictions(r) for r in (weak, ceiling)]
        if n_boot > 0 and None not in preds:
            gap, resampled = bootstrap_gap(preds[0], preds[1], n_boot, seed)
            points.append(gap.value)
            weak_points.append(gap.weak_auc)
            resamples.append(resampled)
        elif None not in (weak.auc, ceiling.auc):
            points.append(ceiling.auc - weak.auc)
            weak_points.append(weak.auc)
            resamples.append(None)
    if not points:
        return None
    point, weak_auc = float(np.mean(points)), float(np.mean(weak_points))
    if not all(r is not None for r in resamples):
        return Gap(point, weak_auc=weak_auc)
    gap_ci = percentile_ci(np.mean([r.gap for r in resamples], axis=0))
    weak_ci = percentile_ci(np.mean([r.weak for r in resamples], axis=0))
    return Gap(point, gap_ci, weak_auc=weak_auc, weak_ci=weak_ci)


# ------------------------------------------------------------------ across seeds and datasets


def aggregate_seeds(seed_rows: list[dict]) -> list[dict]:
    """One row per (dataset, experiment): mean ± standard error over seeds.

    With a single seed the row also carries that run's bootstrap CIs; with several, the spread
    over seeds (``*_se``) is the honest uncertainty and the per-seed CIs stay in ``seed_rows``.
    """
    cells: dict[tuple[str, str], list[dict]] = {}
    for row in seed_rows:
        cells.setdefault((row["dataset"], row["experiment"]), []).append(row)
    rows = []
    for (dataset, experiment), runs in sorted(
        cells.items(), key=lambda kv: (kv[0][0], experiment_order(kv[0][1]))
    ):
        out = {
            "dataset": dataset,
            "experiment": experiment,
            "group": experiment_group(experiment),
            "stage": runs[0]["stage"],
            "seeds": sorted(r["seed"] for r in runs),
            "n_seeds": len(runs),
            "keys": [r["key"] for r in runs],
        }
        ns = sorted({r["n"] for r in runs if r["n"] is not None})
        out["n"] = ns[0] if len(ns) == 1 else ns or None
        for metric in ("auc", "accuracy", "pgr"):
            summary = mean_se(r.get(metric) for r in runs)
            out[metric], out[f"{metric}_se"] = summary.mean, summary.se
        single = runs[0] if len(runs) == 1 else {}
        out["auc_ci"], out["pgr_ci"] = single.get("auc_ci"), single.get("pgr_ci")
        out["pgr_constant"] = any(r.get("pgr_constant") for r in runs)
        if any("diag" in r for r in runs):  # seed means of each diagnostic
            out["diag"] = {
                name: mean_se(r.get("diag", {}).get(name) for r in runs).mean
                for name in DIAGNOSTICS
            }
        rows.append(out)
    return rows


def saturated_datasets(
    rows: list[dict], datasets: list[str], baseline: str, threshold: float
) -> list[dict]:
    """Datasets where weak, ceiling and student AUC all exceed ``threshold`` (the study drops them).

    "Student" is the baseline experiment's student when the dataset has one, else every student
    run of the dataset; a dataset lacking weak, ceiling or any student is never called saturated.
    """
    out = []
    for dataset in datasets:
        cells = {r["experiment"]: r for r in rows if r["dataset"] == dataset}
        students = (
            [cells[baseline]]
            if baseline in cells
            else [r for r in cells.values() if r["stage"] == "student"]
        )
        if "weak" not in cells or "ceiling" not in cells or not students:
            continue
        aucs = [cells["weak"]["auc"], cells["ceiling"]["auc"], *(r["auc"] for r in students)]
        if is_saturated(aucs, threshold):
            out.append(
                {
                    "dataset": dataset,
                    "weak_auc": aucs[0],
                    "ceiling_auc": aucs[1],
                    "student_auc": min(aucs[2:]),
                    "student": ",".join(r["experiment"] for r in students),
                    "threshold": threshold,
                }
            )
    return out


def unstable_datasets(
    rows: list[dict], datasets: list[str], min_gap: float, gaps: dict | None = None
) -> list[dict]:
    """Datasets whose PGRs the PGR rule (:mod:`w2sprobe.pgr_rule`) calls unstable: the 95 %
    paired-bootstrap CI of ceiling − weak test AUC (``gaps``, from :func:`reference_gap`) does
    not lie above ``min_gap`` -- or, without a CI, the (seed-mean) point gap is below it -- or
    the weak model is credibly below chance (:func:`w2sprobe.pgr_rule.below_chance`).

    A negative gap (ceiling below weak) is unstable too. A dataset lacking weak or ceiling AUC is
    not flagged (it has no PGRs to flag).
    """
    out = []
    for dataset in datasets:
        gap = (gaps or {}).get(dataset)
        if gap is None:
            weak, ceiling = (
                next((r for r in rows if r["dataset"] == dataset and r["experiment"] == s), None)
                for s in ("weak", "ceiling")
            )
            if not weak or not ceiling or weak["auc"] is None or ceiling["auc"] is None:
                continue
            gap = Gap(ceiling["auc"] - weak["auc"], weak_auc=weak["auc"])
        verdict = assess(gap, min_gap)
        if verdict.unstable:
            aucs = {
                stage: next(
                    (
                        r["auc"]
                        for r in rows
                        if r["dataset"] == dataset and r["experiment"] == stage
                    ),
                    None,
                )
                for stage in ("weak", "ceiling")
            }
            out.append(
                {
                    "dataset": dataset,
                    "weak_auc": aucs["weak"],
                    "ceiling_auc": aucs["ceiling"],
                    "gap": gap.value,
                    "gap_ci": gap.ci,
                    "weak_auc_ci": gap.weak_ci,
                    "min_gap": min_gap,
                    "reason": verdict.reason,
                }
            )
    return out


def point_rule_unstable(gaps: dict, min_gap: float) -> list[str]:
    """Datasets the old point rule (ceiling − weak < ``min_gap``) would flag: for comparison."""
    return sorted(d for d, gap in gaps.items() if gap is not None and gap.value < min_gap)


def flag_unstable(
    seed_rows: list[dict], rows: list[dict], unstable: list[dict], min_gap: float
) -> None:
    """``pgr_unstable`` (and ``pgr_flag``, why) on every row with a PGR: a seed row by its own
    weak/ceiling pair's gap and CI, a per-dataset row by its dataset's; a constant predictor is
    flagged whatever the gap."""
    flagged = {item["dataset"]: item for item in unstable}
    for row in seed_rows:
        if "pgr" in row:
            gap = None
            if row.get("pgr_gap") is not None:
                gap = Gap(
                    row["pgr_gap"],
                    row.get("pgr_gap_ci"),
                    weak_auc=row.get("pgr_weak_auc"),
                    weak_ci=row.get("pgr_weak_ci"),
                )
            verdict = assess(gap, min_gap, bool(row.get("pgr_constant")))
            row["pgr_unstable"], row["pgr_flag"] = verdict.unstable, verdict.reason
    for row in rows:
        if row["stage"] not in REFERENCE_STAGES:
            item = flagged.get(row["dataset"])
            reason = "constant predictor" if row.get("pgr_constant") else None
            reason = reason or (item and item["reason"])
            row["pgr_unstable"], row["pgr_flag"] = reason is not None, reason


def recorded_warnings(found: Collection) -> list[dict]:
    """The warnings runs recorded in their metrics.json (``{"code", "message"}`` each)."""
    out = []
    for run in found.runs:
        for warning in run.metrics.get("warnings") or []:
            if isinstance(warning, dict):
                out.append(
                    {
                        "dataset": run.dataset,
                        "experiment": run.experiment,
                        "seed": run.seed,
                        "run": run.key,
                        "code": warning.get("code"),
                        "message": warning.get("message"),
                    }
                )
    return out


#: Resamples of datasets behind the CI of a mean PGR across datasets.
SUMMARY_BOOT = 10_000
#: A mean of ratios is "dominated" when one dataset carries more than this share of Σ|PGR|.
DOMINANT_SHARE = 0.5


def experiment_summary(rows: list[dict], included: list[str], seed: int = 0) -> list[dict]:
    """Per experiment over the included datasets (unstable PGRs left out): how many have a PGR,
    the median, the mean with a 95% bootstrap CI over datasets (datasets resampled), how many
    are > 0, the per-dataset values and their range, and the dataset that dominates the mean
    (more than half of Σ|PGR|; None when none does or fewer than 3 datasets)."""
    out = []
    for experiment in sorted(
        {r["experiment"] for r in rows if r["stage"] not in REFERENCE_STAGES}, key=experiment_order
    ):
        cells = [
            r
            for r in rows
            if r["experiment"] == experiment
            and r["dataset"] in included
            and r["pgr"] is not None
            and not r.get("pgr_unstable")
        ]
        values = [r["pgr"] for r in cells]
        out.append(
            {
                "experiment": experiment,
                "group": experiment_group(experiment),
                "n_datasets": len(values),
                "mean_pgr": float(np.mean(values)) if values else None,
                "mean_pgr_ci": mean_ci(values, seed),
                "median_pgr": float(np.median(values)) if values else None,
                "positive": sum(v > 0 for v in values),
                "min_pgr": min(values) if values else None,
                "max_pgr": max(values) if values else None,
                "per_dataset": {r["dataset"]: r["pgr"] for r in cells},
                **dominance(cells),
            }
        )
    return out


def mean_ci(values: list[float], seed: int = 0, n_boot: int = SUMMARY_BOOT) -> list[float] | None:
    """95% percentile bootstrap CI of the mean over datasets (None with fewer than 3)."""
    if len(values) < 3:
        return None
    rng = np.random.default_rng([int(seed), len(values)])
    x = np.asarray(values, dtype=np.float64)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return percentile_ci(means)


def dominance(cells: list[dict]) -> dict:
    """The dataset whose |PGR| is more than half of Σ|PGR| (it alone sets the mean), and the
    mean without it; None with fewer than 3 datasets or when none dominates."""
    total = sum(abs(r["pgr"]) for r in cells)
    if len(cells) < 3 or total == 0:
        return {"dominated_by": None, "dominant_share": None, "mean_without_dominant": None}
    top = max(cells, key=lambda r: abs(r["pgr"]))
    share = abs(top["pgr"]) / total
    if share <= DOMINANT_SHARE:
        return {"dominated_by": None, "dominant_share": share, "mean_without_dominant": None}
    rest = [r["pgr"] for r in cells if r is not top]
    return {
        "dominated_by": top["dataset"],
        "dominant_share": share,
        "mean_without_dominant": float(np.mean(rest)),
    }


def compare_to_baseline(
    rows: list[dict], included: list[str], baseline: str, datasets: list[str] | None = None
) -> list[dict]:
    """Each intervention vs ``baseline``, paired by dataset on the per-dataset (seed-mean) PGR.

    ``datasets`` (all of them) lets each comparison list the ones left out (``excluded_datasets``).
    """
    pgr = {
        (r["dataset"], r["experiment"]): None if r.get("pgr_unstable") else r["pgr"] for r in rows
    }
    left_out = [d for d in datasets or [] if d not in included]
    return [
        {**c, "excluded_datasets": left_out} for c in _paired(rows, included, baseline, pgr, "pgr")
    ]


def compare_auc_to_baseline(rows: list[dict], datasets: list[str], baseline: str) -> list[dict]:
    """Each intervention vs ``baseline``, paired by dataset on the (seed-mean) test AUC over
    every dataset where both ran: an AUC difference needs no ceiling − weak gap, so a dataset
    whose PGR is unstable or saturated counts here, as every dataset does in the blog's own
    comparison (a study whose gap is stable on few datasets can still say this much)."""
    auc = {(r["dataset"], r["experiment"]): r.get("auc") for r in rows}
    return _paired(rows, datasets, baseline, auc, "auc")


def _paired(
    rows: list[dict], datasets: list[str], baseline: str, values: dict, metric: str
) -> list[dict]:
    """The comparisons of every intervention with ``baseline`` on ``values[(dataset,
    experiment)]`` (None: no value), over ``datasets``."""
    interventions = sorted(
        {r["experiment"] for r in rows if r["stage"] not in REFERENCE_STAGES} - {baseline},
        key=experiment_order,
    )
    out = []
    for experiment in interventions:
        paired = [(d, values.get((d, experiment)), values.get((d, baseline))) for d in datasets]
        both = [(d, x, y) for d, x, y in paired if x is not None and y is not None]
        lacking = [d for d, x, y in paired if x is None or y is None]
        stats = paired_comparison([x for _, x, _ in both], [y for _, _, y in both])
        out.append(
            {
                "experiment": experiment,
                "group": experiment_group(experiment),
                "baseline": baseline,
                "metric": metric,
                **stats,
                "datasets_without_pair": lacking,
                "per_dataset": [
                    {"dataset": d, metric: x, f"baseline_{metric}": y, "diff": x - y}
                    for d, x, y in both
                ],
                "statement": comparison_statement(experiment, baseline, stats, metric),
            }
        )
    return out


def comparison_statement(experiment: str, baseline: str, stats: dict, metric: str = "pgr") -> str:
    """The blog's sentence.

    For example: "logconf better than xent on 16 of 21 datasets; t-test p = .135, ..."; on
    test AUC: "logconf has a higher test AUC than xent on 5 of 16 datasets (lower on 11); ...".
    """

    def p(value, note):
        return f"{value:.3g}" if value is not None else f"n/a ({note})"

    if metric == "auc":
        versus = f"has a higher test AUC than {baseline} on {stats['wins']} of {stats['n']} "
        versus += f"datasets (lower on {stats['losses']}); "
    else:
        versus = f"better than {baseline} on {stats['wins']} of {stats['n']} datasets "
        versus += f"(worse on {stats['losses']}); "
    return (
        f"{experiment} {versus}"
        f"one-sided paired t-test p = {p(stats['t_test_p'], stats['t_test_note'])}, "
        f"Wilcoxon signed-rank p = {p(stats['wilcoxon_p'], stats['wilcoxon_note'])}"
    )


# --------------------------------------------------------------------------- helpers


def _check_baseline(found: Collection, baseline: str | None, notes: list[str]) -> str | None:
    """The baseline to compare against; a named one must be a student/probe experiment."""
    known = sorted(
        {r.experiment for r in found.runs if r.stage not in REFERENCE_STAGES}, key=experiment_order
    )
    name = baseline or DEFAULT_BASELINE
    if name in known:
        return name
    if baseline is not None:
        raise UsageError(
            f"unknown baseline experiment '{baseline}'; "
            f"known: {', '.join(known) if known else 'none'}"
        )
    notes.append(
        f"no '{DEFAULT_BASELINE}' runs, so no comparisons; pass --baseline "
        + (f"(one of {', '.join(known)})" if known else "once student runs exist")
    )
    return None


def _inputs_key(
    found: Collection,
    sweeps: list[dict],
    filters: list[dict],
    options: dict,
    transfers: list[dict] = (),
) -> str:
    """Short hash of every input file's content and the options: the default output folder name."""
    inputs = {
        "runs": sorted((r.key, short_hash(r.metrics)) for r in found.runs),
        "sweeps": sorted({r["path"] for r in sweeps}),
        "filters": sorted(f["key"] or "" for f in filters),
        "options": options,
    }
    if transfers:  # only then: the key of a report without any stays what it was
        inputs["transfers"] = sorted(t["key"] for t in transfers)
    return short_hash(inputs, 12)
