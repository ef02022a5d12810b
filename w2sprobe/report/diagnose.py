"""Diagnostics in a report (:mod:`w2sprobe.diagnostics`): what each run recorded, or, for runs
written before they were recorded, the same numbers computed from its stored files (its
``predictions.csv``, the label set it trained on, its weak and ceiling runs' predictions).

Across datasets, the two questions the theory asks of them: does a student's misfit to its
weak labels track its gain over the weak model (Charikar et al. 2024), and does weak–ceiling
similarity -- error consistency (Cohen's κ) and CAPA κp -- predict PGR (Goel et al. 2025: less
similar mistakes, more gain)?  Both are
Spearman rank correlations over the included datasets, with their p-values and counts, so a
reader can see when there are too few datasets to tell.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..diagnostics import aligned, calibration, capa, run_diagnostics
from ..errors import UsageError
from ..labels import labels_root, load_label_set
from ..runs import PREDICTIONS, read_predictions
from .collect import REFERENCE_STAGES, RunResult

#: The diagnostics a report's tables show, flattened: name -> path in ``diagnostics``.
COLUMNS = {
    "agree_supervisor": ("train", "agree_supervisor"),
    "agree_truth": ("test", "agree_truth"),
    "misfit_squared": ("misfit_squared",),
    "misfit_kl": ("misfit_kl",),
    "gain_squared": ("gain_squared",),
    "gain_xent": ("gain_xent",),
    "ece": ("test", "ece"),
    "brier": ("test", "brier"),
    "weak_ceiling_error_kappa": ("weak_ceiling_error_kappa",),
    "weak_ceiling_capa": ("weak_ceiling_capa",),
}


class Diagnoser:
    """Diagnostics of a workspace's runs, reading each reference run's predictions once."""

    def __init__(self, cache_dir):
        self.cache_dir = cache_dir
        self._tests: dict[str, dict | None] = {}

    def of(self, run: RunResult, weak: RunResult | None, ceiling: RunResult | None) -> dict:
        """``run``'s diagnostics: recorded, else computed; {} when its files cannot be read."""
        recorded = run.metrics.get("diagnostics")
        if isinstance(recorded, dict) and recorded:
            if "weak_ceiling_error_kappa" in recorded and "weak_ceiling_capa" not in recorded:
                return {**recorded, "weak_ceiling_capa": self._capa(weak, ceiling)}
            return recorded
        predictions = self._predictions(run)
        if predictions is None or "test" not in predictions:
            return {}
        test = predictions["test"]
        if run.stage in REFERENCE_STAGES:
            return {"test": calibration(test.labels, test.soft)}
        split = "val" if run.stage == "probe" else "strong_train"
        return run_diagnostics(
            predictions,
            split,
            self._labels(run, split),
            self._test(weak),
            self._test(ceiling),
        )

    def _capa(self, weak: RunResult | None, ceiling: RunResult | None) -> float | None:
        """CAPA κp of weak and ceiling on their shared test rows, for runs recorded before it
        was (None: a run's predictions cannot be read)."""
        w, c = self._test(weak), self._test(ceiling)
        if w is None or c is None:
            return None
        w, c = w["test"], c["test"]
        rows, other = aligned(w.ids, c.ids)
        return capa(w.labels[rows], w.soft[rows], c.soft[other]) if rows.size else None

    def _predictions(self, run: RunResult) -> dict | None:
        files = run.metrics.get("files")
        record = files.get(PREDICTIONS) if isinstance(files, dict) else None
        try:
            return read_predictions(run.folder / PREDICTIONS, record)
        except (UsageError, OSError):
            return None

    def _test(self, run: RunResult | None) -> dict | None:
        if run is None:
            return None
        if run.key not in self._tests:
            predictions = self._predictions(run)
            self._tests[run.key] = (
                {"test": predictions["test"]} if predictions and "test" in predictions else None
            )
        return self._tests[run.key]

    def _labels(self, run: RunResult, split: str):
        key = run.metrics.get("labels_key")
        folder = labels_root(self.cache_dir, run.dataset) / str(key)
        if not key or not (folder / "manifest.json").is_file():
            return None
        try:
            labels = load_label_set(folder)
        except (UsageError, OSError, ValueError):
            return None
        if split not in labels.ids:
            return None
        return labels.ids[split], labels.soft[split].astype(np.float64)


def flat(diagnostics: dict) -> dict:
    """The :data:`COLUMNS` of a run's diagnostics (None where absent)."""
    out = {}
    for name, path in COLUMNS.items():
        value = diagnostics
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        out[name] = float(value) if isinstance(value, (int, float)) else None
    return out


def spearman(xs: list[float], ys: list[float]) -> dict:
    """Spearman's ρ and its two-sided p-value (scipy), with n; None where n < 3 or undefined."""
    from scipy import stats

    pairs = [(x, y) for x, y in zip(xs, ys) if _finite(x) and _finite(y)]
    out = {"n": len(pairs), "rho": None, "p": None}
    if len(pairs) < 3:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant input: rho is nan, reported as None
        result = stats.spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
    rho, p = float(result.statistic), float(result.pvalue)
    return {**out, "rho": rho if math.isfinite(rho) else None, "p": p if math.isfinite(p) else None}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def cross_dataset(rows: list[dict], included: list[str], baseline: str | None) -> dict:
    """Misfit vs gain (every student/probe row of the included datasets, unstable PGRs left
    out) and weak–ceiling error κ vs the baseline's PGR (one point per included dataset)."""
    cells = [
        r
        for r in rows
        if r["dataset"] in included
        and r["stage"] not in REFERENCE_STAGES
        and not r.get("pgr_unstable")
        and r.get("diag")
    ]
    misfit = [r["diag"]["misfit_squared"] for r in cells]
    gain = [r["diag"]["gain_squared"] for r in cells]
    both = [(m, g) for m, g in zip(misfit, gain) if _finite(m) and _finite(g)]
    out = {
        "misfit_vs_gain": {
            **spearman(misfit, gain),
            "gain_at_least_misfit": sum(g >= m for m, g in both),
            "gain_positive": sum(g > 0 for _, g in both),
        },
        "kappa_vs_pgr": {"n": 0, "rho": None, "p": None, "experiment": baseline},
        "capa_vs_pgr": {"n": 0, "rho": None, "p": None, "experiment": baseline},
    }
    if baseline:
        base = [r for r in cells if r["experiment"] == baseline]
        pgrs = [r["pgr"] for r in base]
        for name, column in (
            ("kappa_vs_pgr", "weak_ceiling_error_kappa"),
            ("capa_vs_pgr", "weak_ceiling_capa"),
        ):
            values = [r["diag"].get(column) for r in base]
            out[name] = {**spearman(values, pgrs), "experiment": baseline}
    return out
