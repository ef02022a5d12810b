"""A report's honest statistics and diagnostics: the mean's CI over datasets against a plain
bootstrap loop, dominance by hand, diagnostics computed from stored files against sklearn,
the cross-dataset correlations against scipy, the misfit-vs-gain figure drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import make_study
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss, cohen_kappa_score

from w2sprobe.report import build_report
from w2sprobe.report.build import dominance, mean_ci
from w2sprobe.report.diagnose import spearman


def test_mean_ci_is_a_bootstrap_over_datasets():
    values = [0.93, 0.25, -0.05, -0.32, -0.15]
    rng = np.random.default_rng([3, len(values)])
    loop = [np.mean(np.array(values)[rng.integers(0, 5, size=5)]) for _ in range(2000)]
    assert mean_ci(values, seed=3, n_boot=2000) == pytest.approx(
        list(np.percentile(loop, [2.5, 97.5]))
    )
    assert mean_ci([0.1, 0.2], seed=0) is None  # too few datasets for an interval


def test_a_mean_dominated_by_one_dataset_is_called_out():
    cells = [
        {"dataset": d, "pgr": v}
        for d, v in (("sst2", 0.93), ("a", 0.25), ("b", -0.05), ("c", -0.32), ("d", -0.15))
    ]
    out = dominance(cells)
    # |0.93| / (0.93 + 0.25 + 0.05 + 0.32 + 0.15) = 0.547 > 1/2
    assert out["dominated_by"] == "sst2" and out["dominant_share"] == pytest.approx(0.93 / 1.70)
    assert out["mean_without_dominant"] == pytest.approx(np.mean([0.25, -0.05, -0.32, -0.15]))
    even = [{"dataset": d, "pgr": v} for d, v in (("a", 0.3), ("b", -0.3), ("c", 0.3))]
    assert dominance(even)["dominated_by"] is None


def test_spearman_matches_scipy():
    x, y = [0.1, 0.4, 0.2, 0.9, 0.5], [1.0, 0.2, 0.3, 0.8, -0.1]
    ref = spearmanr(x, y)
    assert spearman(x, y) == {
        "n": 5,
        "rho": pytest.approx(ref.statistic),
        "p": pytest.approx(ref.pvalue),
    }
    assert spearman([1, 2], [2, 1])["rho"] is None  # too few to say


def test_report_diagnostics_from_stored_predictions(tmp_path):
    make_study(tmp_path, datasets=("alpha", "beta", "gamma"))
    report = build_report(tmp_path, n_boot=200, seed=0)

    def test_rows(key):
        lines = Path(tmp_path / "runs" / "alpha" / key / "predictions.csv").read_text().splitlines()
        rows = [line.split(",") for line in lines[1:] if line.startswith("test,")]
        return np.array([float(r[2]) for r in rows]), np.array([float(r[3]) for r in rows])

    xent = report.row("alpha", "xent")
    (s, y), (w, _), (c, _) = (test_rows(k) for k in ("xent0s0", "weak0s0", "ceil0s0"))
    assert xent["diag"]["brier"] == pytest.approx(brier_score_loss(y, s))
    assert xent["diag"]["gain_squared"] == pytest.approx(
        brier_score_loss(y, w) - brier_score_loss(y, s)
    )
    kappa = cohen_kappa_score((w > 0.5) != (y > 0.5), (c > 0.5) != (y > 0.5))
    assert xent["diag"]["weak_ceiling_error_kappa"] == pytest.approx(kappa)
    assert xent["diag"]["misfit_squared"] is None  # no strong_train predictions stored here
    assert report.row("alpha", "weak")["diag"]["brier"] == pytest.approx(brier_score_loss(y, w))
    # the cross-dataset kappa-vs-PGR correlation is over the included datasets' baseline rows
    base = [report.row(d, "xent") for d in report.included]
    ref = spearmanr([r["diag"]["weak_ceiling_error_kappa"] for r in base], [r["pgr"] for r in base])
    assert report.diagnostics["kappa_vs_pgr"]["rho"] == pytest.approx(ref.statistic)
    assert json.loads(json.dumps(report.to_dict()))["diagnostics"]["kappa_vs_pgr"]["n"] == 3


def test_recorded_diagnostics_are_used_and_drawn(tmp_path):
    from w2sprobe.report import write_report

    make_study(tmp_path, datasets=("alpha", "beta", "gamma"))
    misfits = {}
    for i, path in enumerate(sorted(tmp_path.glob("runs/*/*/metrics.json"))):
        metrics = json.loads(path.read_text())
        if metrics["stage"] in ("student", "probe"):
            misfits[metrics["dataset"], metrics["experiment"]] = 0.01 * (i + 1)
            metrics["diagnostics"] = {
                "misfit_squared": 0.01 * (i + 1),
                "gain_squared": 0.02 * (i + 1) - 0.05,
                "test": {"ece": 0.1, "brier": 0.2},
            }
            path.write_text(json.dumps(metrics))
    report = build_report(tmp_path, n_boot=0)
    assert report.row("beta", "logconf")["diag"]["misfit_squared"] == misfits["beta", "logconf"]
    assert report.diagnostics["misfit_vs_gain"]["rho"] == pytest.approx(1.0)  # gain rises with it
    summary = write_report(report, tmp_path / "out", fmt="md")
    figure = next(f for f in summary["figures"] if f["name"] == "misfit_vs_gain")
    assert Path(figure["png"]).is_file() and "ρ over the filled points = +1.00" in figure["caption"]
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Diagnostics" in text and "| misfit² |" in text.replace(
        "misfit² | gain²", "misfit² |"
    )


def test_runs_are_listed_in_experiment_order_not_key_order(tmp_path):
    make_study(tmp_path, datasets=("alpha",))
    listed = [r["experiment"] for r in build_report(tmp_path, n_boot=0).runs]
    # keys sort as ceil0s0, knn-filter0s0, logconf0s0, weak0s0, xent0s0
    assert listed == ["weak", "ceiling", "xent", "logconf", "knn-filter"]


def test_html_tables_wrap_and_never_widen_the_page(tmp_path):
    """Checked at 1280 px in headless Chromium on the MPNet report (issue 31): nothing wider
    than the page. Here, what makes it so: every table in a box of its own that scrolls, cells
    that break long keys and paths, command blocks that wrap."""
    import re

    from w2sprobe.report import write_report

    make_study(tmp_path, datasets=("alpha",))
    write_report(build_report(tmp_path, n_boot=0), tmp_path / "out", fmt="html")
    page = (tmp_path / "out" / "report.html").read_text()
    tables = re.findall(r"(.{18})<table>", page)
    assert tables and all(t.endswith('<div class="wide">') for t in tables)
    assert ".wide{overflow-x:auto" in page and "td{overflow-wrap:anywhere}" in page
    assert "white-space:pre-wrap" in page
