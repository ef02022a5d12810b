"""One rule for when a PGR means something, used by every output that shows one.

PGR = (student − weak) / (ceiling − weak) divides by the ceiling − weak test-AUC gap, so a gap
that is small, negative or within resampling noise turns any student into a "large" PGR of
either sign (``run --experiments xent,knn-relabel`` once printed PGR +2.196 for a student
*below* its weak supervisor, whose ceiling was below the weak model too).

**The rule.** A PGR is *stable* iff the 95 % paired-bootstrap CI of ceiling − weak test AUC
lies wholly above ``min_gap`` (default 0.02).  The lower end, not the point, must clear it:
a gap whose interval reaches down to zero is not known to exist, and a ratio over it is not
known to be finite.  The resamples are the report's own (:func:`w2sprobe.report.stats.
resample_counts` over the sorted test ids weak and ceiling share, 1000 resamples, bootstrap
seed 0 — ``w2sprobe report``'s defaults), so a run and the default report reach the same
verdict on the same runs.  Besides:

* a constant predictor (every test score equal: AUC 0.5 by ties) is flagged whatever the gap —
  its PGR measures nothing learnt;
* a weak model credibly *below chance* (the 95 % CI of its test AUC, on the same resamples,
  wholly under 0.5; without a CI, its AUC under 0.5 − ``min_gap``) is flagged whatever the gap:
  the gap then counts the weak model's anti-signal, and a student that learnt nothing (AUC 0.5)
  already scores PGR (0.5 − weak) / (ceiling − weak) > 0 (ETHICS-virtue at the blog's sizes:
  weak 0.465 [0.440, 0.491], ceiling 0.527, so chance alone is PGR +0.56);
* a zero point gap gives no PGR at all (:func:`w2sprobe.metrics.pgr` returns nan -> null);
* without predictions to resample (an old run, ``--n-boot 0``), the *point* gap must reach
  ``min_gap`` (``pgr_rule`` then says ``point``).

An unstable PGR is still recorded (``pgr``), flagged (``pgr_unstable``, ``pgr_flag``) and left
out of every summary, as a saturated dataset's is.  The verdict's inputs are recorded too
(``pgr_gap``, ``pgr_gap_ci``, ``pgr_weak_auc``, ``pgr_weak_ci``, ``pgr_min_gap``,
``pgr_constant``), so an output shown later
with another ``--min-gap`` re-judges them (:func:`judge`) without re-running anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics import pgr as pgr_of

#: The minimum ceiling − weak AUC gap (its CI's lower end must lie above it).
DEFAULT_MIN_GAP = 0.02
#: The AUC of a predictor that ranks nothing: a weak model credibly below it is flagged.
CHANCE_AUC = 0.5
#: The report's bootstrap defaults: the same resamples, the same verdict.
RULE_N_BOOT = 1000
RULE_SEED = 0
CI = "ci"
POINT = "point"
#: What ``metrics.json`` records of the verdict (besides ``pgr``): what outputs pass on.
RECORDED = (
    "pgr_unstable",
    "pgr_flag",
    "pgr_gap",
    "pgr_gap_ci",
    "pgr_weak_auc",
    "pgr_weak_ci",
    "pgr_min_gap",
    "pgr_constant",
    "pgr_rule",
)


def rule_text(min_gap: float, kind: str = CI) -> str:
    """The rule in words, as ``metrics.json`` and reports state it."""
    if kind == POINT:
        return (
            f"point: ceiling - weak test AUC >= {min_gap:g} and weak AUC >= "
            f"{CHANCE_AUC - min_gap:g} (no predictions to resample)"
        )
    return (
        f"ci: 95% paired-bootstrap CI of ceiling - weak test AUC above {min_gap:g} "
        f"({RULE_N_BOOT} resamples of the shared test ids, seed {RULE_SEED}); "
        "a constant predictor and a weak model below chance (AUC CI under 0.5) are flagged"
    )


@dataclass(frozen=True)
class Gap:
    """Ceiling − weak test AUC: the point value and its paired-bootstrap CI (None: no CI);
    the weak model's AUC and its CI on the same resamples (the chance check; None: unknown)."""

    value: float
    ci: list[float] | None = None
    n_shared: int | None = None
    weak_auc: float | None = None
    weak_ci: list[float] | None = None


@dataclass(frozen=True)
class Resampled:
    """Per bootstrap resample: the weak model's test AUC and the ceiling − weak gap."""

    weak: np.ndarray
    gap: np.ndarray


@dataclass(frozen=True)
class Verdict:
    """Whether a PGR may be shown unflagged, and if not why (``reason``, a short phrase)."""

    unstable: bool
    reason: str | None = None


def is_constant(scores: Any) -> bool:
    """Every score equal (a predictor that ranks nothing)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    return s.size > 0 and bool(np.all(s == s[0]))


def assess(gap: Gap | None, min_gap: float, constant: bool = False) -> Verdict:
    """The rule applied to one student/probe (``gap`` None: no weak/ceiling, nothing to judge)."""
    if constant:
        return Verdict(True, "constant predictor")
    if gap is None:
        return Verdict(False)
    if gap.ci is not None:
        if gap.ci[0] <= min_gap:
            return Verdict(True, f"gap {gap.value:+.3f} [{gap.ci[0]:+.3f}, {gap.ci[1]:+.3f}]")
    elif gap.value < min_gap:
        return Verdict(True, f"gap {gap.value:+.3f} < {min_gap:g}")
    below = below_chance(gap, min_gap)
    return Verdict(below is not None, below)


def below_chance(gap: Gap, min_gap: float) -> str | None:
    """Why the weak model is credibly below chance (module doc), or None when it is not (or
    its AUC is unknown): its CI wholly under 0.5, or without a CI its AUC under 0.5 − min_gap."""
    if gap.weak_ci is not None:
        if gap.weak_ci[1] >= CHANCE_AUC:
            return None
        low, high = gap.weak_ci
        return f"weak below chance: AUC {gap.weak_auc:.3f} [{low:.3f}, {high:.3f}]"
    if gap.weak_auc is None or gap.weak_auc >= CHANCE_AUC - min_gap:
        return None
    return f"weak below chance: AUC {gap.weak_auc:.3f} < {CHANCE_AUC - min_gap:g}"


def bootstrap_gap(weak: tuple, ceiling: tuple, n_boot: int = RULE_N_BOOT, seed: int = RULE_SEED):
    """``(Gap, Resampled)`` of two runs' test predictions ``(ids, scores, labels)``.

    Paired: both runs are scored on the test ids they share, each resample drawing the same
    rows for both (the report's counts matrix for that id set).  Fewer than 2 shared ids, or
    ``n_boot`` 0: the point gap only.
    """
    from .metrics import roc_auc
    from .report.stats import percentile_ci, resample_counts, weighted_auc

    shared = np.intersect1d(weak[0], ceiling[0])
    aligned = []
    for ids, scores, labels in (weak, ceiling):
        order = np.argsort(ids, kind="stable")
        rows = order[np.searchsorted(ids[order], shared)]
        aligned.append((np.asarray(scores, np.float64)[rows], np.asarray(labels)[rows]))
    weak_auc = roc_auc(aligned[0][1], aligned[0][0])
    point = roc_auc(aligned[1][1], aligned[1][0]) - weak_auc
    if shared.size < 2 or n_boot <= 0:
        return Gap(point, None, int(shared.size), weak_auc), None
    counts = resample_counts(shared.tolist(), n_boot, seed)
    w, c = (weighted_auc(labels, scores, counts) for scores, labels in aligned)
    gap = Gap(point, percentile_ci(c - w), int(shared.size), weak_auc, percentile_ci(w))
    return gap, Resampled(w, c - w)


def run_gap(weak, ceiling) -> Gap:
    """The gap between two finished runs (:class:`w2sprobe.runs.RunRecord`), from their test
    predictions; their recorded AUCs alone (point rule) when the predictions cannot be read."""
    try:
        w, c = (_test(run) for run in (weak, ceiling))
    except Exception:  # noqa: BLE001 - an unreadable file falls back to the point rule
        return Gap(ceiling.auc - weak.auc, weak_auc=weak.auc)
    return bootstrap_gap(w, c)[0]


def _test(run) -> tuple:
    test = run.predictions()["test"]
    return np.asarray(test.ids).astype(str), test.soft, test.labels


def pgr_fields(
    auc: float,
    scores: Any,
    weak,
    ceiling,
    min_gap: float = DEFAULT_MIN_GAP,
) -> dict:
    """Everything ``metrics.json`` records about a student's or probe's PGR.

    ``scores``: its test predictions (for the constant-predictor check); ``weak``/``ceiling``:
    the runs it is measured against (:class:`~w2sprobe.runs.RunRecord`, None when missing:
    then no PGR).
    """
    fields: dict[str, Any] = {
        "weak": weak.ref() if weak else None,
        "ceiling": ceiling.ref() if ceiling else None,
        "pgr": None,
    }
    constant = is_constant(scores)
    if not (weak and ceiling):
        return {**fields, "pgr_constant": constant}
    gap = run_gap(weak, ceiling)
    value = pgr_of(auc, weak.auc, ceiling.auc)
    fields["pgr"] = value if math.isfinite(value) else None
    verdict = assess(gap, min_gap, constant)
    return {
        **fields,
        "pgr_unstable": verdict.unstable,
        "pgr_flag": verdict.reason,
        "pgr_gap": gap.value,
        "pgr_gap_ci": gap.ci,
        "pgr_weak_auc": gap.weak_auc,
        "pgr_weak_ci": gap.weak_ci,
        "pgr_min_gap": min_gap,
        "pgr_constant": constant,
        "pgr_rule": rule_text(min_gap, CI if gap.ci is not None else POINT),
    }


def judge(metrics: dict, min_gap: float | None = None) -> Verdict:
    """The verdict on a recorded PGR, re-judged with ``min_gap`` (None: the one recorded).

    Works on any ``metrics.json``: one written before the rule (no ``pgr_gap``) is judged on
    its weak and ceiling AUCs by the point rule.
    """
    if metrics.get("pgr") is None and not metrics.get("pgr_constant"):
        return Verdict(False)
    if min_gap is None:
        min_gap = metrics.get("pgr_min_gap", DEFAULT_MIN_GAP)
    gap = None
    aucs = [(metrics.get(s) or {}).get("auc") for s in ("weak", "ceiling")]
    # A run recorded before the chance check has no weak CI: its weak AUC, by the point rule.
    weak_auc = metrics.get("pgr_weak_auc", aucs[0])
    if isinstance(metrics.get("pgr_gap"), (int, float)):
        gap_ci, weak_ci = metrics.get("pgr_gap_ci"), metrics.get("pgr_weak_ci")
        gap = Gap(float(metrics["pgr_gap"]), gap_ci, None, weak_auc, weak_ci)
    elif None not in aucs:
        gap = Gap(aucs[1] - aucs[0], None, None, weak_auc)
    return assess(gap, min_gap, bool(metrics.get("pgr_constant")))


def show_pgr(metrics: dict, min_gap: float | None = None, digits: int = 3) -> str:
    """How every output prints a PGR: ``+0.512``, or flagged
    ``+2.196 (unstable: gap -0.074 [-0.110, -0.030])``; ``—`` when there is none."""
    verdict = judge(metrics, min_gap)
    value = metrics.get("pgr")
    shown = "—" if value is None else f"{value:+.{digits}f}"
    return f"{shown} (unstable: {verdict.reason})" if verdict.unstable else shown


def rejudged(metrics: dict, min_gap: float | None) -> dict:
    """``metrics`` with ``pgr_unstable``/``pgr_flag`` re-judged by ``min_gap`` (for ``--json``
    and the Python API, where a cached run's recorded verdict used another minimum)."""
    if metrics.get("pgr") is None and not metrics.get("pgr_constant"):
        return metrics
    verdict = judge(metrics, min_gap)
    out = {**metrics, "pgr_unstable": verdict.unstable, "pgr_flag": verdict.reason}
    if min_gap is not None:
        out["pgr_min_gap"] = min_gap
    return out
