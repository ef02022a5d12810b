"""Choosing among scored candidates without ground truth: the one rule, for values and layers.

Every choice the toolkit makes for a probe -- ``--k auto``, ``--l2 auto``, ``--layer auto`` and
the point a ``sweep`` calls *chosen* -- minimises a *weak-label criterion* computed on the fit
split (strong_train) against the labels the probe is fit on (:mod:`w2sprobe.probes.auto`
computes it: kNN's leave-one-out Brier score, everyone else's k-fold cross-validated
cross-entropy).  Lower is better; ties go to the smoother model (the larger k, l2 or k_zeta),
then to the lower layer.  Test AUC never enters a choice: a sweep shows the best-in-hindsight
point beside the chosen one only so a reader sees what peeking would have bought.

This module imports nothing heavy (no torch): the sweep's files and the report use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

#: The per-row columns a sweep records for the choice (absent in sweeps made before it).
CRITERION, CRITERION_NAME = "criterion", "criterion_name"
AUC_LOW, AUC_HIGH = "auc_low", "auc_high"
#: A sweep row's marks: chosen in its layer on the fit labels, best test AUC of its layer
#: (hindsight), chosen overall on the fit labels.
LAYER_CHOICE, HINDSIGHT, CHOSEN = "layer_choice", "layer_hindsight", "chosen"


def smoother_first(score: float, value: Any = None, layer: int | None = None) -> tuple:
    """Sort key of a candidate: least criterion, then the larger (smoother) value, then the
    lower layer.  ``value`` None (a layer-only choice) ties on the layer alone."""
    numeric = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
    return (score, -numeric, layer if layer is not None else 0)


def pick(scores: dict) -> Any:
    """The key of ``scores`` (value -> criterion) the rule chooses."""
    return min(scores, key=lambda value: smoother_first(scores[value], value))


@dataclass(frozen=True)
class SweepChoice:
    """A sweep's choices: per layer the weak-label-chosen row and the best-in-hindsight row
    (highest test AUC), and overall the same two."""

    by_layer: dict[int, tuple[dict, dict]]
    chosen: dict
    best: dict
    criterion_name: str | None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sweep_choice(rows: Iterable[dict], param: str | None) -> SweepChoice | None:
    """The choices in a sweep's rows (None: rows without a criterion, e.g. an old sweep)."""
    scored = [r for r in rows if _finite(r.get(CRITERION)) and _finite(r.get("auc"))]
    if not scored:
        return None

    def rule(row: dict) -> tuple:
        return smoother_first(row[CRITERION], row.get(param) if param else None, row["layer"])

    def hindsight(row: dict) -> tuple:
        return (-row["auc"], *rule(row))

    by_layer = {}
    for layer in sorted({r["layer"] for r in scored}):
        mine = [r for r in scored if r["layer"] == layer]
        by_layer[layer] = (min(mine, key=rule), min(mine, key=hindsight))
    names = {r.get(CRITERION_NAME) for r in scored}
    return SweepChoice(
        by_layer,
        min(scored, key=rule),
        min(scored, key=hindsight),
        next(iter(names)) if len(names) == 1 else None,
    )


def marked(rows: list[dict], param: str | None) -> list[dict]:
    """``rows`` with their marks (:data:`LAYER_CHOICE`, :data:`HINDSIGHT`, :data:`CHOSEN`),
    for the sweep's table; rows without a criterion get none."""
    choice = sweep_choice(rows, param)
    if choice is None:
        return rows
    picked = {id(row) for row, _ in choice.by_layer.values()}
    best = {id(row) for _, row in choice.by_layer.values()}
    return [
        {
            **row,
            LAYER_CHOICE: id(row) in picked,
            HINDSIGHT: id(row) in best,
            CHOSEN: row is choice.chosen,
        }
        for row in rows
    ]


def auc_text(row: dict) -> str:
    """``0.712 [0.655, 0.768]``: a row's test AUC with its bootstrap CI where it has one."""
    text = f"{row['auc']:.3f}"
    if _finite(row.get(AUC_LOW)) and _finite(row.get(AUC_HIGH)):
        text += f" [{row[AUC_LOW]:.3f}, {row[AUC_HIGH]:.3f}]"
    return text


def point_text(row: dict, param: str | None) -> str:
    """``layer 2, k=10``."""
    return f"layer {row['layer']}" + (f", {param}={row.get(param)}" if param else "")


def summary_line(choice: SweepChoice, param: str | None, labels: str = "weak") -> str:
    """What ``sweep`` prints: the choice on the fit labels, then the best in hindsight."""
    chosen, best = choice.chosen, choice.best
    return (
        f"chosen on {labels} labels: {point_text(chosen, param)}, test AUC {auc_text(chosen)}; "
        f"best in hindsight: {point_text(best, param)}, test AUC {auc_text(best)}"
    )
