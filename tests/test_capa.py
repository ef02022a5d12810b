"""CAPA κp (Goel et al. 2025) for the weak–ceiling similarity: a hand-worked case, its reduction
to error consistency on hard predictions (sklearn's Cohen's κ), and the report's table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import make_study
from sklearn.metrics import cohen_kappa_score

from w2sprobe.diagnostics import capa
from w2sprobe.report import build_report, write_report


def test_capa_by_hand_on_a_tiny_case():
    y = [1, 0, 1, 0]
    first = [0.8, 0.4, 0.6, 0.2]
    second = [0.9, 0.3, 0.2, 0.5]
    # c_obs per row: .8*.9+.2*.1 = .74, .4*.3+.6*.7 = .54, .6*.2+.4*.8 = .44, .2*.5+.8*.5 = .50
    c_obs = (0.74 + 0.54 + 0.44 + 0.50) / 4  # .555
    # mean probability on the correct class: (.8+.6+.6+.8)/4 = .7 and (.9+.7+.2+.5)/4 = .575
    c_exp = 0.7 * 0.575 + 0.3 * 0.425  # .53
    assert capa(y, first, second) == pytest.approx((c_obs - c_exp) / (1 - c_exp))
    assert capa(y, first, second) == pytest.approx(0.025 / 0.47)
    # identical confident-and-right models: nothing to adjust for
    assert capa([1, 0], [1.0, 0.0], [1.0, 0.0]) is None


@pytest.mark.parametrize("seed", range(3))
def test_capa_of_hard_predictions_is_cohens_kappa_on_the_errors(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    first = np.where(rng.random(200) < 0.75, y, 1 - y).astype(float)
    second = np.where(rng.random(200) < 0.65, y, 1 - y).astype(float)
    reference = cohen_kappa_score(first != y, second != y)
    assert capa(y, first, second) == pytest.approx(reference)


def test_capa_is_symmetric_and_one_for_a_model_with_itself():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 50)
    a, b = rng.random(50), rng.random(50)
    assert capa(y, a, b) == pytest.approx(capa(y, b, a))
    hard = (a > 0.5).astype(float)
    assert capa(y, hard, hard) == pytest.approx(1.0)


def _test_rows(root: Path, key: str):
    lines = (root / "runs" / "alpha" / key / "predictions.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:] if line.startswith("test,")]
    return np.array([float(r[2]) for r in rows]), np.array([float(r[3]) for r in rows])


def test_the_report_shows_capa_beside_kappa_also_for_runs_recorded_before_it(tmp_path):
    make_study(tmp_path, datasets=("alpha", "beta", "gamma"))
    (w, y), (c, _) = (_test_rows(tmp_path, key) for key in ("weak0s0", "ceil0s0"))
    expected = capa(y, w, c)
    report = build_report(tmp_path, n_boot=0)
    assert report.row("alpha", "xent")["diag"]["weak_ceiling_capa"] == pytest.approx(expected)
    assert report.diagnostics["capa_vs_pgr"]["n"] == 3
    # a run recorded with κ but before κp: the report computes κp from the stored predictions
    for path in tmp_path.glob("runs/alpha/*/metrics.json"):
        metrics = json.loads(path.read_text())
        if metrics["stage"] == "student":
            metrics["diagnostics"] = {"weak_ceiling_error_kappa": 0.1, "test": {"ece": 0.1}}
            path.write_text(json.dumps(metrics))
    report = build_report(tmp_path, n_boot=0)
    assert report.row("alpha", "xent")["diag"]["weak_ceiling_capa"] == pytest.approx(expected)
    write_report(report, tmp_path / "out", fmt="md")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "weak–ceiling κp" in text and "CAPA κp vs" in text
