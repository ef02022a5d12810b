"""``w2sprobe report`` end to end on synthetic result files: files, figures, --json, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from report_fixtures import make_study, noisy_scores, write_run

BOOT = ["--n-boot", "100"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three datasets with a sweep and filtered label sets, plus a dataset with only a weak run."""
    root = tmp_path_factory.mktemp("cache")
    written = make_study(root, datasets=("alpha", "beta", "gamma"), n=100)
    y = (np.arange(50) % 2).astype(float)
    write_run(
        root,
        "lonely",
        "w",
        "weak",
        "weak",
        0,
        [f"l{i}" for i in range(50)],
        y,
        noisy_scores(y, 1.0, np.random.default_rng(0)),
    )
    sweep = root / "sweeps" / "alpha" / "s1"
    sweep.mkdir(parents=True)
    sweep.joinpath("sweep.json").write_text(
        json.dumps(
            [
                {
                    "dataset": "alpha",
                    "probe": "knn",
                    "layer": layer,
                    "k": k,
                    "labels": "weak",
                    "auc": 0.8,
                    "labels_auc": 0.75,
                    "auc_minus_labels_auc": 0.05 - 0.0002 * k - 0.01 * (layer == 2),
                    "accuracy": 0.7,
                    "n": 100,
                    "train_n": 100,
                    "sweep_key": "s1",
                }
                for layer in (2, 4)
                for k in (5, 50, 200)
            ]
        )
    )
    for i, (probe, contamination) in enumerate([("knn", 0.1), ("logreg", 0.1), ("knn", 0.2)]):
        folder = root / "labels" / "beta" / f"f{i}"
        folder.mkdir(parents=True)
        folder.joinpath("manifest.json").write_text(
            json.dumps(
                {
                    "name": f"{probe}-filter",
                    "dataset": "beta",
                    "key": f"f{i}",
                    "sizes": {},
                    "manifest": {
                        "kind": "filter",
                        "probe": {"probe": probe, "layer": 4},
                        "contamination": contamination,
                        "report": {
                            "strong_train": {
                                "precision": 0.4 + 0.1 * i,
                                "mislabel_rate_before": 0.25,
                                "mislabel_rate_after": 0.2,
                                "removed": 10,
                                "kept": 90,
                                "before": 100,
                            }
                        },
                    },
                }
            )
        )
    return root, written


def test_html_report_with_every_figure(capsys, study, tmp_path):
    root, written = study
    code, out, err = run_cli(
        capsys, "report", "--cache-dir", str(root), "--out", str(tmp_path / "r"), *BOOT
    )
    assert code == 0, err
    html = (tmp_path / "r" / "report.html").read_text()
    assert f"report: {tmp_path / 'r' / 'report.html'}" in " ".join(out.split())
    assert html.count("data:image/png;base64,") == 4  # self-contained: every figure embedded
    for name in ("pgr_by_dataset", "auc_by_dataset", "probe_sweeps", "filter_precision"):
        png, svg = (
            tmp_path / "r" / "figures" / f"{name}.png",
            tmp_path / "r" / "figures" / f"{name}.svg",
        )
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert "<svg" in svg.read_text()[:2000]
    # Traceability: every run's key and folder is listed; what is missing is said.
    for metrics in written.values():
        assert metrics["key"] in html
    assert "lonely: no ceiling run" in html and "lonely: no student or probe runs" in html
    assert "logconf better than xent on" in html


def test_json_has_the_numbers(capsys, study, tmp_path):
    root, written = study
    code, out, err = run_cli(
        capsys,
        "report",
        "--cache-dir",
        str(root),
        "--out",
        str(tmp_path / "j"),
        "--format",
        "json",
        "--json",
        *BOOT,
    )
    assert code == 0, err
    assert out.count("\n") == 1
    summary = json.loads(out)
    assert summary["command"] == "report" and summary["datasets"] == [
        "alpha",
        "beta",
        "gamma",
        "lonely",
    ]
    rows = {(r["dataset"], r["experiment"]): r for r in summary["rows"]}
    for dataset in ("alpha", "beta", "gamma"):
        assert rows[dataset, "logconf"]["pgr"] == pytest.approx(
            written[dataset, "logconf", 0]["pgr"]
        )
        assert rows[dataset, "weak"]["auc"] == pytest.approx(written[dataset, "weak", 0]["auc"])
        assert rows[dataset, "weak"]["pgr"] is None  # NaN-free JSON: no PGR for a reference run
        low, high = rows[dataset, "xent"]["auc_ci"]
        assert low < rows[dataset, "xent"]["auc"] < high
    xent = np.array([written[d, "xent", 0]["pgr"] for d in ("alpha", "beta", "gamma")])
    logconf = np.array([written[d, "logconf", 0]["pgr"] for d in ("alpha", "beta", "gamma")])
    comparison = next(c for c in summary["comparisons"] if c["experiment"] == "logconf")
    assert comparison["wins"] == int((logconf > xent).sum()) and comparison["n"] == 3
    assert comparison["mean_diff"] == pytest.approx((logconf - xent).mean())
    assert {m["message"] for m in summary["missing"]} >= {
        "lonely: no ceiling run",
        "lonely: no student or probe runs",
    }
    assert Path(summary["files"]["json"]).is_file() and "html" not in summary["files"]
    assert json.loads(Path(summary["files"]["json"]).read_text())["rows"] == summary["rows"]
    assert {f["name"] for f in summary["figures"]} == {
        "pgr_by_dataset",
        "auc_by_dataset",
        "probe_sweeps",
        "filter_precision",
    }
    assert {r["key"] for r in summary["runs"]} >= {m["key"] for m in written.values()}
    assert any(f["precision"] == pytest.approx(0.4) for f in summary["filters"])


def test_markdown_default_folder_subset_and_skipped_figures(capsys, study):
    root, _ = study
    code, out, err = run_cli(
        capsys,
        "report",
        "--cache-dir",
        str(root),
        "--dataset",
        "gamma,alpha",
        "--format",
        "md",
        "--json",
        "--n-boot",
        "0",
        "--seed",
        "4",
    )
    assert code == 0, err
    summary = json.loads(out)
    folder = Path(summary["out_dir"])
    assert (
        folder.parent == root / "reports" and len(folder.name) == 12
    )  # <cache>/reports/<short hash>
    markdown = (folder / "report.md").read_text()
    assert "![PGR per dataset and intervention](figures/pgr_by_dataset.png)" in markdown
    assert "| xent | losses | 2 |" in markdown and "### beta" not in markdown
    # beta holds the filtered label sets: with beta left out that figure has no inputs.
    assert summary["skipped_figures"] == [
        {
            "name": "filter_precision",
            "reason": "no filtered label sets with a precision (w2sprobe filter writes them)",
        },
        {
            "name": "misfit_vs_gain",
            "reason": "no student or probe runs with diagnostics (misfit and gain)",
        },
        {
            "name": "alignment_vs_pgr",
            "reason": "no dataset with a PGR and the weak model's activations cached beside "
            "the strong ones",
        },
    ]
    assert "filter_precision skipped" in markdown
    assert summary["options"]["seed"] == 4 and summary["datasets"] == ["alpha", "gamma"]


def test_bootstrap_is_seeded(capsys, study, tmp_path):
    root, _ = study
    cis = []
    for seed, name in ((0, "a"), (0, "b"), (1, "c")):
        code, out, err = run_cli(
            capsys,
            "report",
            "--cache-dir",
            str(root),
            "--dataset",
            "alpha",
            "--seed",
            str(seed),
            "--out",
            str(tmp_path / name),
            "--format",
            "json",
            "--json",
            *BOOT,
        )
        assert code == 0, err
        cis.append([r["pgr_ci"] for r in json.loads(out)["rows"]])
    assert cis[0] == cis[1] and cis[0] != cis[2]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_no_results_names_the_folder(capsys, tmp_path):
    code, out, err = run_cli(capsys, "report", "--cache-dir", str(tmp_path / "empty"))
    assert code == 2 and out == ""
    assert f"no results found in {tmp_path / 'empty' / 'runs'}" in _one_error_line(err)


def test_unknown_baseline_lists_known_experiments(capsys, study):
    root, _ = study
    code, _, err = run_cli(
        capsys, "report", "--cache-dir", str(root), "--baseline", "xnet", "--n-boot", "0"
    )
    assert code == 2
    assert (
        _one_error_line(err)
        == "error: unknown baseline experiment 'xnet'; known: xent, logconf, knn-filter"
    )


@pytest.mark.parametrize(
    "text", ["{not json", json.dumps({"key": "s", "stage": "student"}), json.dumps([1, 2])]
)
def test_corrupt_metrics_file_is_named(capsys, tmp_path, text):
    make_study(tmp_path, datasets=("a",), n=30)
    bad = tmp_path / "runs" / "a" / "xent0s0" / "metrics.json"
    bad.write_text(text)
    code, _, err = run_cli(capsys, "report", "--cache-dir", str(tmp_path), "--n-boot", "0")
    assert code == 2 and f"corrupt metrics file {bad}" in _one_error_line(err)


def test_corrupt_predictions_file_is_named(capsys, tmp_path):
    make_study(tmp_path, datasets=("a",), n=30)
    bad = tmp_path / "runs" / "a" / "weak0s0" / "predictions.csv"
    bad.write_text("split,id,soft_pred,label\ntest,x,oops,1.0\n")
    code, _, err = run_cli(capsys, "report", "--cache-dir", str(tmp_path), "--n-boot", "0")
    assert code == 2 and f"corrupt predictions file {bad}" in _one_error_line(err)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "pdf"], "'pdf' is not one of html, md, json"),
        (["--n-boot", "-1"], "--n-boot must be >= 0"),
        (["--saturation", "1.5"], "--saturation must be in (0, 1]"),
        (["--dataset", "alpha,zeta"], "no results for dataset(s) zeta"),
    ],
)
def test_bad_options(capsys, study, args, message):
    root, _ = study
    code, _, err = run_cli(capsys, "report", "--cache-dir", str(root), *args)
    assert code == 2 and message in _one_error_line(err)


def test_an_old_cache_still_reports_and_says_what_it_compared(capsys, tmp_path):
    """tests/fixtures/cache_v1 predates recorded commands: the report falls back, and names the
    command of the report itself (the CLI records it)."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(Path(__file__).parent / "fixtures" / "cache_v1" / "cache", cache)
    code, _, err = run_cli(
        capsys, "report", "--cache-dir", str(cache), "--out", str(tmp_path / "r"),
        "--format", "md", "--n-boot", "0",
    )  # fmt: skip
    assert code == 0, err
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| weak model | tiny-bert |" in text and "| strong model | tiny-llama |" in text
    assert "| examples per split | weak_train 40 · strong_train 40 · val 20 · test 30 |" in text
    assert "15 run(s) do not record the command that made them" in text
    assert f"w2sprobe report --cache-dir {cache} --out {tmp_path / 'r'} --format md" in text


def test_terminal_summary_says_which_datasets_it_left_out_and_why(capsys, tmp_path):
    from test_report_build import tiny_gap_study

    weak, ceiling = tiny_gap_study(tmp_path / "cache")
    code, out, _ = run_cli(
        capsys, "report", "--cache-dir", str(tmp_path / "cache"), "--n-boot", "0",
        "--out", str(tmp_path / "out"), "--format", "md",
    )  # fmt: skip
    assert code == 0
    assert "2 of 3 datasets (1 with unstable PGR excluded)" in out
    gap = ceiling["auc"] - weak["auc"]
    assert f"excluded flat: PGR unstable (ceiling − weak AUC {gap:+.4f} < 0.02)" in out
    # on test AUC every dataset counts, the unstable one too
    assert "AUC won/lost" in out
    summary = json.loads(
        run_cli(capsys, "report", "--cache-dir", str(tmp_path / "cache"), "--n-boot", "0",
                "--out", str(tmp_path / "out"), "--format", "md", "--json")[1]
    )  # fmt: skip
    for c in summary["auc_comparisons"]:
        line = next(x for x in out.splitlines() if x.split() and x.split()[0] == c["experiment"])
        assert f"{c['wins']}/{c['losses']} of 3" in line


def test_terminal_summary_names_a_saturated_dataset(capsys, tmp_path):
    from test_report_build import saturated_study

    saturated_study(tmp_path)
    code, out, _ = run_cli(capsys, "report", "--cache-dir", str(tmp_path), "--n-boot", "0")
    assert code == 0
    assert "2 of 3 datasets (1 saturated excluded)" in out
    assert "excluded easy: saturated (weak 1.0000, ceiling 1.0000, student 1.0000 AUC" in out


def test_terminal_summary_does_not_count_a_dataset_without_students(capsys, tmp_path):
    make_study(tmp_path, datasets=("alpha", "beta"), n=60)
    y = (np.arange(60) % 2).astype(float)
    ids = [f"late-{i}" for i in range(60)]
    write_run(
        tmp_path,
        "late",
        "w",
        "weak",
        "weak",
        0,
        ids,
        y,
        noisy_scores(y, 1.0, np.random.default_rng(1)),
    )
    code, out, _ = run_cli(capsys, "report", "--cache-dir", str(tmp_path), "--n-boot", "0")
    assert code == 0
    assert "2 of 3 datasets (none excluded; 1 without PGRs yet)" in out
