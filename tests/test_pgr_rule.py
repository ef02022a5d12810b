"""The PGR rule (w2sprobe.pgr_rule): the gap's paired-bootstrap CI against a plain bootstrap loop,
the verdicts by hand, and the CLI's flag on the issue's repros (a ceiling below its weak model in
``run --experiments xent,knn-relabel``; a constant kNN predictor from ``probe --k 500``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import test_head_cli
from conftest import run_cli
from sklearn.metrics import roc_auc_score

from w2sprobe.pgr_rule import (
    Gap,
    assess,
    bootstrap_gap,
    is_constant,
    judge,
    rejudged,
    show_pgr,
)
from w2sprobe.report.stats import id_set_seed


def _runs(seed: int, n: int = 80, gap: float = 0.0):
    rng = np.random.default_rng(seed)
    ids = np.array([f"id{i:03d}" for i in range(n)])
    labels = (rng.random(n) < 0.5).astype(float)
    weak = labels * 0.3 + rng.random(n)
    ceiling = labels * (0.3 + gap) + rng.random(n)
    return ids, labels, weak, ceiling


def test_gap_ci_is_the_plain_paired_bootstrap_loop():
    ids, labels, weak, ceiling = _runs(0, gap=0.4)
    # the weak run lists its ids in another order: pairing is by id, not by position
    order = np.random.default_rng(5).permutation(ids.size)
    gap, resampled = bootstrap_gap(
        (ids[order], weak[order], labels[order]), (ids, ceiling, labels), n_boot=200, seed=3
    )
    rng = np.random.default_rng(id_set_seed(sorted(ids.tolist()), 3))
    loop, weak_loop = [], []
    for rows in rng.integers(0, ids.size, size=(200, ids.size)):
        weak_loop.append(roc_auc_score(labels[rows], weak[rows]))
        loop.append(roc_auc_score(labels[rows], ceiling[rows]) - weak_loop[-1])
    assert resampled.gap == pytest.approx(np.array(loop), abs=1e-12)
    assert resampled.weak == pytest.approx(np.array(weak_loop), abs=1e-12)
    assert gap.value == pytest.approx(roc_auc_score(labels, ceiling) - roc_auc_score(labels, weak))
    assert gap.ci == pytest.approx(list(np.percentile(loop, [2.5, 97.5])))
    assert gap.weak_auc == pytest.approx(roc_auc_score(labels, weak))
    assert gap.weak_ci == pytest.approx(list(np.percentile(weak_loop, [2.5, 97.5])))
    assert gap.n_shared == ids.size


def test_verdicts_by_hand():
    assert assess(Gap(0.10, [0.05, 0.15]), 0.02).unstable is False
    # the point clears the minimum but the interval does not: unstable (mc_taco's case)
    shaky = assess(Gap(0.030, [-0.022, 0.080]), 0.02)
    assert shaky.unstable and shaky.reason == "gap +0.030 [-0.022, +0.080]"
    assert assess(Gap(-0.074, [-0.11, -0.03]), 0.02).unstable  # ceiling below weak
    assert assess(Gap(0.10, [0.05, 0.15]), 0.06).unstable  # a stricter minimum
    # without a CI (no predictions): the point gap alone
    assert assess(Gap(0.025), 0.02).unstable is False
    assert assess(Gap(0.015), 0.02).reason == "gap +0.015 < 0.02"
    assert assess(Gap(0.3, [0.2, 0.4]), 0.02, constant=True).reason == "constant predictor"
    assert assess(None, 0.02).unstable is False
    # a weak model credibly below chance: flagged whatever the gap (ETHICS-virtue's numbers)
    virtue = Gap(0.061, [0.028, 0.095], weak_auc=0.4655, weak_ci=[0.4405, 0.4906])
    assert assess(virtue, 0.02).reason == "weak below chance: AUC 0.466 [0.441, 0.491]"
    chance = Gap(0.061, [0.028, 0.095], weak_auc=0.49, weak_ci=[0.46, 0.52])  # CI reaches 0.5
    assert assess(chance, 0.02).unstable is False
    assert assess(Gap(0.10, weak_auc=0.47), 0.02).reason == "weak below chance: AUC 0.470 < 0.48"
    assert assess(Gap(0.10, weak_auc=0.49), 0.02).unstable is False  # point rule: 0.5 - min_gap
    # the gap's own verdict comes first
    assert assess(Gap(0.01, [-0.02, 0.04], None, 0.4, [0.35, 0.45]), 0.02).reason.startswith("gap")
    assert is_constant([0.5, 0.5, 0.5]) and not is_constant([0.5, 0.5, 0.6])


def test_show_and_rejudge_a_recorded_pgr():
    metrics = {"pgr": 2.196, "pgr_gap": -0.074, "pgr_gap_ci": [-0.11, -0.03], "pgr_min_gap": 0.02}
    assert show_pgr(metrics) == "+2.196 (unstable: gap -0.074 [-0.110, -0.030])"
    fine = {"pgr": 0.5, "pgr_gap": 0.2, "pgr_gap_ci": [0.15, 0.25], "pgr_min_gap": 0.02}
    assert show_pgr(fine) == "+0.500" and not judge(fine).unstable
    assert rejudged(fine, 0.2)["pgr_unstable"] is True  # a stricter --min-gap, shown later
    # a run written before the rule: its weak/ceiling AUCs, the point rule
    old = {"pgr": 1.2, "weak": {"key": "w", "auc": 0.70}, "ceiling": {"key": "c", "auc": 0.71}}
    assert show_pgr(old) == "+1.200 (unstable: gap +0.010 < 0.02)"
    assert show_pgr({"pgr": None}) == "—"  # a zero gap gives no PGR
    below = {**fine, "pgr_weak_auc": 0.46, "pgr_weak_ci": [0.43, 0.49]}
    assert show_pgr(below) == "+0.500 (unstable: weak below chance: AUC 0.460 [0.430, 0.490])"
    # recorded before the chance check (no weak CI): its weak AUC by the point rule
    assert judge({**fine, "weak": {"key": "w", "auc": 0.45}}).unstable
    assert not judge({**fine, "weak": {"key": "w", "auc": 0.49}}).unstable


#: The head students' tiny workspace (weak BERT, strong Llama, two-epoch recipe).
workspace = test_head_cli.workspace


def _metrics(key: str) -> dict:
    return json.loads(Path(f"c/runs/sst2/{key}/metrics.json").read_text())


def test_run_flags_a_ceiling_below_its_weak_model(workspace, capsys):
    # seed 1: these tiny models' ceiling lands below their weak model (seed 0: above it)
    args = ("run", "--student", "head", "--experiments", "xent,knn-relabel", "--seed", "1")
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    stages = {s["stage"]: s for s in json.loads(out)["datasets"][0]["stages"]}
    weak, ceiling = stages["weak"]["auc"], stages["ceiling"]["auc"]
    assert ceiling < weak  # the repro's shape: these tiny models' ceiling is below the weak model
    for name in ("xent", "knn-relabel"):
        recorded = _metrics(stages[name]["key"])
        assert recorded["pgr_gap"] == pytest.approx(ceiling - weak)
        assert recorded["pgr_unstable"] is True and recorded["pgr_gap_ci"][0] < 0.02
        assert recorded["pgr_min_gap"] == 0.02 and recorded["pgr_rule"].startswith("ci: 95%")
        assert stages[name]["pgr_unstable"] is True  # --json says so too
    code, out, err = run_cli(capsys, *args)  # the table: the flag where the number is
    assert code == 0, err
    xent_line = next(line for line in out.splitlines() if line.lstrip().startswith("xent"))
    assert "(unstable: gap -" in xent_line
    assert "PGR" in err and "(unstable: gap -" in err  # the progress lines


def test_probe_flags_a_constant_predictor(workspace, capsys):
    code, out, err = run_cli(capsys, "probe", "--k", "500", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["auc"] == 0.5
    assert result["pgr_unstable"] is True and result["pgr_flag"] == "constant predictor"
    code, out, err = run_cli(capsys, "probe", "--k", "500")
    assert code == 0, err
    pgr_line = next(line for line in out.splitlines() if "pgr" in line)
    assert "(unstable: constant" in pgr_line
