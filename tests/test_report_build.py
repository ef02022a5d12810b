"""``build_report`` on synthetic result files.

Tables, pairing, seeds, saturation, what is missing.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from report_fixtures import make_study, noisy_scores, write_run
from scipy import stats

from w2sprobe.errors import UsageError
from w2sprobe.metrics import pgr, roc_auc
from w2sprobe.report import build_report
from w2sprobe.report.build import compare_auc_to_baseline
from w2sprobe.report.document import report_blocks
from w2sprobe.report.render import to_markdown
from w2sprobe.report.stats import id_set_seed, resample_indices
from w2sprobe.vocabulary import display_group as experiment_group

DATASETS = ("alpha", "beta", "gamma", "delta")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    return root, make_study(root, datasets=DATASETS, n=120)


def test_tables_hold_the_written_aucs_and_pgrs(study):
    root, written = study
    report = build_report(root, n_boot=100)
    assert report.datasets == sorted(DATASETS) and report.experiments == [
        "weak",
        "ceiling",
        "xent",
        "logconf",
        "knn-filter",
    ]
    for (dataset, experiment, _), metrics in written.items():
        row = report.row(dataset, experiment)
        assert row["auc"] == pytest.approx(metrics["auc"]) and row["n"] == 120
        if experiment not in ("weak", "ceiling"):
            expected = pgr(
                metrics["auc"],
                written[dataset, "weak", 0]["auc"],
                written[dataset, "ceiling", 0]["auc"],
            )
            assert row["pgr"] == pytest.approx(expected)
            low, high = row["pgr_ci"]
            assert low < row["pgr"] < high


def test_summary_and_comparisons_match_an_independent_computation(study):
    root, written = study
    report = build_report(root, n_boot=0)
    xent = np.array([written[d, "xent", 0]["pgr"] for d in sorted(DATASETS)])
    logconf = np.array([written[d, "logconf", 0]["pgr"] for d in sorted(DATASETS)])
    summary = {s["experiment"]: s for s in report.summary}
    assert summary["logconf"]["mean_pgr"] == pytest.approx(logconf.mean())
    assert summary["logconf"]["median_pgr"] == pytest.approx(np.median(logconf))
    assert summary["logconf"]["positive"] == int((logconf > 0).sum())
    comparison = next(c for c in report.comparisons if c["experiment"] == "logconf")
    assert comparison["wins"] == int((logconf > xent).sum()) and comparison["losses"] == int(
        (logconf < xent).sum()
    )
    assert comparison["mean_diff"] == pytest.approx((logconf - xent).mean())
    assert comparison["t_test_p"] == pytest.approx(
        stats.ttest_rel(logconf, xent, alternative="greater").pvalue
    )
    assert comparison["wilcoxon_p"] == pytest.approx(
        stats.wilcoxon(logconf, xent, alternative="greater").pvalue
    )
    assert comparison["statement"].startswith(
        f"logconf better than xent on {comparison['wins']} of 4 datasets"
    )
    assert [c["experiment"] for c in report.comparisons] == ["logconf", "knn-filter"]
    assert all(r["auc_ci"] is None for r in report.rows)  # --n-boot 0: no intervals


def test_pgr_interval_is_a_paired_bootstrap_over_shared_ids(tmp_path):
    rng = np.random.default_rng(9)
    ids = [f"r{i:03d}" for i in range(60)]
    y = (np.arange(60) % 2).astype(float)
    weak = write_run(tmp_path, "d", "w", "weak", "weak", 0, ids, y, noisy_scores(y, 0.7, rng))
    ceiling = write_run(
        tmp_path, "d", "c", "ceiling", "ceiling", 0, ids, y, noisy_scores(y, 3.0, rng)
    )
    # The student predicted its rows in another order, and two extra ids the others lack.
    order = rng.permutation(60)
    s_ids = [ids[i] for i in order] + ["extra1", "extra2"]
    s_y = np.r_[y[order], 0.0, 1.0]
    s_pred = noisy_scores(s_y, 1.5, rng)
    write_run(
        tmp_path,
        "d",
        "s",
        "student",
        "xent",
        0,
        s_ids,
        s_y,
        s_pred,
        weak=weak,
        ceiling=ceiling,
        pgr=None,
    )
    row = build_report(tmp_path, n_boot=200, seed=3).seed_rows[-1]
    assert row["n_shared"] == 60
    # Brute force: join by id, resample the sorted shared ids, loop.
    student_by_id = dict(zip(s_ids, s_pred))
    preds = {"w": _column(tmp_path, "w"), "c": _column(tmp_path, "c")}
    shared = sorted(ids)
    idx = resample_indices(60, 200, np.random.default_rng(id_set_seed(shared, 3)))
    truth = np.array([y[ids.index(i)] for i in shared])
    s_vec = np.array([student_by_id[i] for i in shared])
    w_vec, c_vec = (np.array([preds[k][i] for i in shared]) for k in ("w", "c"))
    loop = [
        pgr(roc_auc(truth[i], s_vec[i]), roc_auc(truth[i], w_vec[i]), roc_auc(truth[i], c_vec[i]))
        for i in idx
    ]
    assert row["pgr_ci"] == pytest.approx(list(np.percentile(loop, [2.5, 97.5])), abs=1e-12)
    # No recorded PGR: it is computed from the paired runs' AUCs.
    assert row["pgr"] == pytest.approx(pgr(roc_auc(s_y, s_pred), weak["auc"], ceiling["auc"]))


def _column(root, key):
    lines = (root / "runs" / "d" / key / "predictions.csv").read_text().splitlines()[1:]
    return {
        parts[1]: float(parts[2])
        for parts in (line.split(",") for line in lines)
        if parts[0] == "test"
    }


def test_seeds_are_aggregated_and_tests_use_per_dataset_means(tmp_path):
    written = make_study(tmp_path, datasets=("a", "b", "c"), seeds=(0, 1, 2), n=80)
    report = build_report(tmp_path, n_boot=0)
    for dataset in ("a", "b", "c"):
        values = [written[dataset, "logconf", s]["pgr"] for s in (0, 1, 2)]
        row = report.row(dataset, "logconf")
        assert row["seeds"] == [0, 1, 2] and row["n_seeds"] == 3
        assert row["pgr"] == pytest.approx(np.mean(values))
        assert row["pgr_se"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(3))
    means = {
        e: np.array(
            [np.mean([written[d, e, s]["pgr"] for s in (0, 1, 2)]) for d in ("a", "b", "c")]
        )
        for e in ("xent", "logconf")
    }
    comparison = next(c for c in report.comparisons if c["experiment"] == "logconf")
    assert comparison["n"] == 3
    assert comparison["t_test_p"] == pytest.approx(
        stats.ttest_rel(means["logconf"], means["xent"], alternative="greater").pvalue
    )
    assert len(report.seed_rows) == 3 * 3 * 5


def saturated_study(tmp_path):
    """Three datasets; on "easy" weak, ceiling and xent are all perfect (AUC 1)."""
    make_study(tmp_path, datasets=("easy", "hard1", "hard2"), n=100)
    y = (np.arange(100) % 2).astype(float)
    ids = [f"easy-{i:04d}" for i in range(100)]
    perfect = y * 0.9 + 0.05
    for key in ("weak0s0", "ceil0s0", "xent0s0"):  # make weak, ceiling and xent perfect on "easy"
        folder = tmp_path / "runs" / "easy" / key
        metrics = json.loads((folder / "metrics.json").read_text())
        shutil.rmtree(folder)
        weak = {"key": "weak0s0", "auc": 1.0} if metrics["stage"] == "student" else None
        write_run(
            tmp_path,
            "easy",
            key,
            metrics["stage"],
            metrics["experiment"],
            0,
            ids,
            y,
            perfect,
            weak=weak,
            ceiling={"key": "ceil0s0", "auc": 1.0} if weak else None,
            pgr=None,
        )


def test_saturated_datasets_are_listed_and_excluded(tmp_path):
    saturated_study(tmp_path)
    report = build_report(tmp_path, n_boot=0)
    assert [s["dataset"] for s in report.saturated] == ["easy"]
    assert report.included == ["hard1", "hard2"]
    assert all(s["n_datasets"] == 2 for s in report.summary)
    assert all(c["n"] == 2 for c in report.comparisons)
    # A lower bar than perfect does not saturate the others; a threshold of 1 saturates none.
    assert build_report(tmp_path, n_boot=0, saturation=1.0).saturated == []


def test_an_experiment_only_on_left_out_datasets_is_named_not_tabulated(tmp_path):
    """kl ran only on the saturated dataset: no summary or comparison row of zero datasets
    (it would read as a measurement), one line naming it under each section instead."""
    saturated_study(tmp_path)
    y = (np.arange(100) % 2).astype(float)
    ids = [f"easy-{i:04d}" for i in range(100)]
    weak, ceiling = {"key": "weak0s0", "auc": 1.0}, {"key": "ceil0s0", "auc": 1.0}
    write_run(tmp_path, "easy", "kl0s0", "student", "kl", 0, ids, y, y * 0.9 + 0.05, weak, ceiling)
    report = build_report(tmp_path, n_boot=0)
    summary = {s["experiment"]: s for s in report.summary}
    assert summary["kl"]["n_datasets"] == 0 and summary["xent"]["n_datasets"] == 2
    markdown = to_markdown(report_blocks(report, [], []), tmp_path)
    summary_part = markdown.split("## Summary")[1].split("On test AUC")[0]
    assert "\n| kl |" not in summary_part and "kl better than" not in summary_part
    assert "\n| logconf |" in summary_part and "logconf better than xent on" in summary_part
    line = "Not summarised (run only on datasets left out of the summary): kl."
    assert summary_part.count(line) == 2  # Summary and Comparisons
    # on test AUC it is compared where it ran: one dataset, too few for a p-value
    auc = next(c for c in report.auc_comparisons if c["experiment"] == "kl")
    assert auc["n"] == 1 and auc["t_test_p"] is None
    assert "| xent | kl | logconf |" in summary_part  # its PGR column per dataset stays


def test_a_dataset_without_a_ceiling_yet_is_not_counted_among_the_summarised(tmp_path):
    make_study(tmp_path, datasets=("hard1", "hard2"))
    ids = [f"late-{i:04d}" for i in range(50)]
    labels = (np.arange(50) % 2).astype(float)
    write_run(tmp_path, "late", "weak9s0", "weak", "weak", 0, ids, labels, labels * 0.6 + 0.2)
    report = build_report(tmp_path, n_boot=0)
    assert "late" in report.datasets  # listed, with what is missing for it
    assert report.included == ["hard1", "hard2"]  # a study still running: no PGR to summarise
    assert all(s["n_datasets"] == 2 for s in report.summary)


def tiny_gap_study(root):
    """Three datasets; on "flat" the ceiling's AUC is within 0.01 of the weak model's, so a
    student an ordinary amount worse than weak gets a PGR far below -1."""
    make_study(root, datasets=("flat", "hard1", "hard2"), n=200)
    folder = root / "runs" / "flat"
    weak = json.loads((folder / "weak0s0" / "metrics.json").read_text())
    rows = [
        line.split(",") for line in (folder / "weak0s0" / "predictions.csv").read_text().split()[1:]
    ]
    test = [r for r in rows if r[0] == "test"]
    ids, preds, labels = (
        [r[1] for r in test],
        np.array([float(r[2]) for r in test]),
        np.array([float(r[3]) for r in test]),
    )
    ceiling_preds = preds.copy()
    ceiling_preds[:4] = labels[:4]  # a nudge: AUC moves by well under 0.02
    shutil.rmtree(folder / "ceil0s0")
    ceiling = write_run(
        root, "flat", "ceil0s0", "ceiling", "ceiling", 0, ids, labels, ceiling_preds
    )
    gap = ceiling["auc"] - weak["auc"]
    assert 0 < gap < 0.01
    for name in ("xent", "logconf", "knn-filter"):
        student = json.loads((folder / f"{name}0s0" / "metrics.json").read_text())
        shutil.rmtree(folder / f"{name}0s0")
        worse = noisy_scores(labels, 0.3, np.random.default_rng(7))
        auc = roc_auc(labels, worse)
        write_run(
            root,
            "flat",
            f"{name}0s0",
            "student",
            student["experiment"],
            0,
            ids,
            labels,
            worse,
            weak=weak,
            ceiling=ceiling,
            pgr=pgr(auc, weak["auc"], ceiling["auc"]),
        )
    return weak, ceiling


def test_unstable_pgr_is_flagged_and_excluded(tmp_path):
    weak, ceiling = tiny_gap_study(tmp_path)
    report = build_report(tmp_path, n_boot=0)
    assert report.options["min_gap"] == 0.02
    assert [u["dataset"] for u in report.unstable] == ["flat"]
    assert report.unstable[0]["gap"] == pytest.approx(ceiling["auc"] - weak["auc"])
    assert report.included == ["hard1", "hard2"]
    assert all(s["n_datasets"] == 2 for s in report.summary)
    assert all(c["n"] == 2 and "flat" in c["excluded_datasets"] for c in report.comparisons)
    row = report.row("flat", "xent")
    assert row["pgr"] < -1 and row["pgr_unstable"] is True  # still shown, flagged
    assert report.row("hard1", "xent")["pgr_unstable"] is False


def test_auc_comparisons_count_every_dataset_unstable_included(tmp_path):
    """On test AUC the unstable dataset counts: the comparison equals scipy's one-sided paired
    tests on the AUCs the run files hold, over all three datasets."""
    tiny_gap_study(tmp_path)
    report = build_report(tmp_path, n_boot=0)
    datasets = ["flat", "hard1", "hard2"]
    xent = np.array([report.row(d, "xent")["auc"] for d in datasets])
    for c in report.auc_comparisons:
        other = np.array([report.row(d, c["experiment"])["auc"] for d in datasets])
        assert c["metric"] == "auc" and c["n"] == 3 and not c["datasets_without_pair"]
        assert [p["dataset"] for p in c["per_dataset"]] == datasets
        assert c["wins"] == int((other > xent).sum()) and c["losses"] == int((other < xent).sum())
        assert c["mean_diff"] == pytest.approx((other - xent).mean())
        assert c["t_test_p"] == pytest.approx(
            stats.ttest_rel(other, xent, alternative="greater").pvalue
        )
        assert c["statement"].startswith(
            f"{c['experiment']} has a higher test AUC than xent on {c['wins']} of 3 datasets"
        )
    assert report.auc_comparisons  # the study has interventions to compare
    text = to_markdown(report_blocks(report, [], []), tmp_path)
    assert "On test AUC" in text and "Interventions vs xent on test AUC" in text
    assert all(r["pgr_unstable"] for r in report.seed_rows if r["dataset"] == "flat" and "pgr" in r)
    # The threshold is a parameter: 0 flags nothing.
    assert build_report(tmp_path, n_boot=0, min_gap=0.0).unstable == []
    with pytest.raises(UsageError, match="min-gap"):
        build_report(tmp_path, n_boot=0, min_gap=-0.1)


def test_unstable_pgr_is_said_in_the_rendered_report(tmp_path):
    from w2sprobe.report import write_report

    tiny_gap_study(tmp_path)
    summary = write_report(build_report(tmp_path, n_boot=0), tmp_path / "out", fmt="md")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Unstable PGR" in text and "ceiling − weak AUC does not lie above 0.02" in text
    assert "flat †" in text  # the PGR matrix marks it
    assert "(unstable: gap +0.0" in text  # the per-dataset table flags its PGRs, saying why
    assert [u["dataset"] for u in summary["unstable"]] == ["flat"]
    captions = {f["name"]: f["caption"] for f in summary["figures"]}
    assert "unstable PGR" in captions["pgr_by_dataset"] and "flat" in captions["pgr_by_dataset"]


def test_missing_runs_are_listed_not_fatal(tmp_path):
    make_study(tmp_path, datasets=("full",), n=60)
    y = (np.arange(60) % 2).astype(float)
    rng = np.random.default_rng(0)
    ids = [f"x{i}" for i in range(60)]
    # A student whose weak run exists but whose ceiling was never trained.
    weak = write_run(tmp_path, "nockpt", "w", "weak", "weak", 0, ids, y, noisy_scores(y, 1, rng))
    write_run(
        tmp_path, "nockpt", "s", "student", "xent", 0, ids, y, noisy_scores(y, 2, rng), weak=weak
    )
    # A dataset with only a weak run, and an unfinished run (no metrics.json).
    write_run(tmp_path, "weakonly", "w", "weak", "weak", 0, ids, y, noisy_scores(y, 1, rng))
    write_run(tmp_path, "full", "unfinished", "student", "kl", 0, ids, y, y, finished=False)
    report = build_report(tmp_path, n_boot=50)
    messages = [m["message"] for m in report.missing]
    assert "nockpt xent seed 0 (run s): no ceiling run for seed 0" in messages
    assert "nockpt: no ceiling run" in messages
    # "full" has logconf and knn-filter students too: nockpt's blank cells are said
    assert "nockpt: no knn-filter, logconf run (other datasets have one)" in messages
    assert not any(m.startswith("full:") for m in messages)
    assert (
        "weakonly: no ceiling run" in messages and "weakonly: no student or probe runs" in messages
    )
    assert [(i["dataset"], i["key"], i["experiment"]) for i in report.incomplete] == [
        ("full", "unfinished", "kl")
    ]
    assert "kl" not in report.experiments
    row = report.row("nockpt", "xent")
    assert row["pgr"] is None and row["pgr_ci"] is None and row["auc"] is not None


def test_ambiguous_and_named_references(tmp_path):
    y = (np.arange(40) % 2).astype(float)
    rng = np.random.default_rng(1)
    ids = [f"x{i}" for i in range(40)]
    w1 = write_run(
        tmp_path, "d", "w1", "weak", "weak", 0, ids, y, noisy_scores(y, 1, rng), model="small"
    )
    write_run(tmp_path, "d", "w2", "weak", "weak", 0, ids, y, noisy_scores(y, 1, rng), model="tiny")
    ceiling = write_run(
        tmp_path, "d", "c", "ceiling", "ceiling", 0, ids, y, noisy_scores(y, 3, rng)
    )
    write_run(
        tmp_path,
        "d",
        "guess",
        "student",
        "xent",
        0,
        ids,
        y,
        noisy_scores(y, 2, rng),
        ceiling=ceiling,
    )
    named = write_run(
        tmp_path,
        "d",
        "named",
        "student",
        "kl",
        0,
        ids,
        y,
        noisy_scores(y, 2, rng),
        weak=w1,
        ceiling=ceiling,
    )
    report = build_report(tmp_path, n_boot=0)
    assert any(
        "2 weak runs for seed 0" in m["message"] and "ambiguous" in m["message"]
        for m in report.missing
    )
    assert report.row("d", "xent")["pgr"] is None
    assert report.row("d", "kl")["pgr"] == pytest.approx(
        pgr(named["auc"], w1["auc"], ceiling["auc"])
    )


def test_unknown_or_absent_baseline(study, tmp_path):
    root, _ = study
    with pytest.raises(
        UsageError, match="unknown baseline experiment 'nope'; known: xent, logconf, knn-filter"
    ):
        build_report(root, baseline="nope", n_boot=0)
    make_study(tmp_path, datasets=("a", "b"), experiments={"kl": 1.0, "entropy": 1.2}, n=40)
    report = build_report(
        tmp_path, n_boot=0
    )  # default xent absent: no comparisons, and a note says so
    assert report.comparisons == [] and "pass --baseline (one of kl, entropy)" in report.notes[0]
    assert [
        c["experiment"] for c in build_report(tmp_path, baseline="kl", n_boot=0).comparisons
    ] == ["entropy"]


def test_dataset_subset_and_errors(study, tmp_path):
    root, _ = study
    report = build_report(root, datasets=["beta", "alpha"], n_boot=0)
    assert report.datasets == ["alpha", "beta"] and {r["dataset"] for r in report.runs} == {
        "alpha",
        "beta",
    }
    with pytest.raises(UsageError, match="no results for dataset"):
        build_report(root, datasets=["zeta"], n_boot=0)
    with pytest.raises(UsageError, match=f"no results found in {tmp_path / 'runs'}"):
        build_report(tmp_path, n_boot=0)


def test_experiment_groups():
    assert [
        experiment_group(e)
        for e in (
            "xent",
            "window",
            "s2s-2",
            "logreg-probe",
            "topo-filter",
            "knn-filter+logconf",
            "logreg-relabel",
            "mystery",
        )
    ] == ["losses", "losses", "s2s", "probe predictions", "filter", "filter", "relabel", "other"]


def test_reads_what_the_training_side_writes(tmp_path):
    """The contract from the writer's side: files made by ``w2sprobe.runs`` are read as written."""
    from w2sprobe.runs import (
        SplitPredictions,
        run_dir,
        write_manifest,
        write_metrics,
        write_predictions,
    )

    rng = np.random.default_rng(2)
    ids = np.array([f"t{i}" for i in range(50)])
    y = (np.arange(50) % 2).astype(np.float32)
    records = {}
    for key, stage, experiment, signal in (
        ("wk", "weak", "weak", 0.5),
        ("cl", "ceiling", "ceiling", 3.0),
        ("st", "student", "logconf", 1.5),
    ):
        folder = run_dir(tmp_path, "my/data", key)  # a dataset name that needs a slug
        identity = {
            "key": key,
            "stage": stage,
            "experiment": experiment,
            "dataset": "my/data",
            "seed": 0,
            "model": "m",
            "config": {"loss": experiment},
        }
        write_manifest(folder, identity)
        soft = noisy_scores(y, signal, rng).astype(np.float32)
        write_predictions(folder, {"test": SplitPredictions(ids, soft, y)})
        metrics = {**identity, "auc": roc_auc(y, soft), "accuracy": 0.5, "n": 50, "labels": None}
        if stage == "student":
            metrics.update(
                {
                    "weak": records["wk"].ref(),
                    "ceiling": records["cl"].ref(),
                    "pgr": pgr(metrics["auc"], records["wk"].auc, records["cl"].auc),
                }
            )
        records[key] = write_metrics(folder, metrics)
    report = build_report(tmp_path, baseline="logconf", n_boot=50)
    row = report.row("my/data", "logconf")
    assert row["pgr"] == pytest.approx(records["st"].metrics["pgr"]) and row["pgr_ci"] is not None
    assert report.seed_rows[-1]["weak_key"] == "wk" and report.missing == []


SIZES = {"weak_train": 600, "strong_train": 600, "val": 100, "test": 120}


def _provenance_study(root):
    """Two datasets x two seeds whose runs record the command and split sizes that made them."""
    make_study(
        root,
        datasets=("alpha", "beta"),
        seeds=(0, 1),
        n=60,
        manifest_extra={
            "command": "w2sprobe run --dataset alpha --seeds 0,1",
            "split_sizes": SIZES,
        },
    )


def test_the_top_says_what_was_compared(tmp_path):
    from w2sprobe.report import write_report

    _provenance_study(tmp_path)
    report = build_report(tmp_path, n_boot=0)
    assert report.setup["weak_models"] == ["m"] and report.setup["seeds"] == [0, 1]
    assert report.setup["commands"] == [
        {"command": "w2sprobe run --dataset alpha --seeds 0,1", "runs": 20}
    ]
    write_report(report, tmp_path / "out", fmt="md")
    text = (tmp_path / "out" / "report.md").read_text()
    setup = text[text.index("## Setup") : text.index("## Summary")]
    assert "| weak model | m |" in setup and "| strong model | m |" in setup
    assert (
        "| examples per split | weak_train 600 · strong_train 600 · val 100 · test 120 |" in setup
    )
    assert "| seeds | 2 (0, 1) |" in setup and "| datasets | 2: alpha, beta |" in setup
    assert "w2sprobe run --dataset alpha --seeds 0,1    # 20 runs" in setup
    # The per-dataset tables' "seeds" column is a count.
    assert "| logconf | 2 | 60 |" in text


def test_tables_have_headings_and_come_before_the_figures(tmp_path):
    from w2sprobe.report import write_report

    _provenance_study(tmp_path)
    write_report(build_report(tmp_path, n_boot=0), tmp_path / "out", fmt="md")
    text = (tmp_path / "out" / "report.md").read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections.index("## Setup") == 0
    assert sections.index("## Results per dataset") < sections.index("## Figures")
    assert text.index("**Table 1. What was compared**") < text.index("## Summary")
    # Every table is headed: "**Table N. title**" right above its header row.
    lines = text.splitlines()
    header_rows = [i for i, line in enumerate(lines) if line.startswith("| --- ")]
    assert header_rows and all(lines[i - 3].startswith("**Table ") for i in header_rows)
    numbers = [int(line.split()[1].rstrip(".")) for line in lines if line.startswith("**Table ")]
    assert numbers == list(range(1, len(header_rows) + 1))
    assert "*Figure 1. PGR = (student" in text


def test_html_and_md_coexist_and_report_json_lists_every_file(tmp_path):
    from w2sprobe.report import write_report

    _provenance_study(tmp_path)
    report, out = build_report(tmp_path, n_boot=0), tmp_path / "out"
    first = write_report(report, out, fmt="html")
    on_disk = {str(p) for p in out.rglob("*") if p.is_file()}
    assert set(first["all_files"]) == on_disk
    second = write_report(report, out, fmt="md")
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    on_disk = {str(p) for p in out.rglob("*") if p.is_file()}
    listed = json.loads((out / "report.json").read_text())
    assert set(listed["all_files"]) == on_disk == set(second["all_files"])
    assert set(listed["files"]) == {"json", "md", "html"}
    # A document made from other inputs is left alone, but not listed as this report's.
    (out / "report.json").write_text(json.dumps({**listed, "key": "other"}))
    third = write_report(report, out, fmt="md")
    assert (out / "report.html").is_file() and "html" not in third["files"]


def test_runs_record_the_cli_command_and_old_runs_say_it_is_not_recorded(tmp_path):
    from w2sprobe.runs import current_command, record_command, write_manifest

    record_command(["run", "--dataset", "my data"])
    try:
        write_manifest(tmp_path / "r", {"key": "r"})
    finally:
        record_command(None)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["command"] == "w2sprobe run --dataset 'my data'"
    write_manifest(tmp_path / "q", {"key": "q"})  # no CLI: nothing invented
    assert "command" not in json.loads((tmp_path / "q" / "manifest.json").read_text())
    assert current_command() is None
    make_study(tmp_path / "old", datasets=("a",), n=30)  # manifests without a command
    report = build_report(tmp_path / "old", n_boot=0)
    assert report.setup["commands"] == [] and report.setup["runs_without_command"] == 5
    assert report.setup["sizes"] == {"a": {"test": 30}}  # no split_sizes: the test size only


def test_the_pgr_rule_is_the_gaps_ci_not_its_point(tmp_path):
    """mc_taco's case: a gap whose point clears 0.02 but whose paired-bootstrap CI reaches below
    it is unstable (and left out of the summary); the run-time rule's CI is the report's."""
    from w2sprobe.pgr_rule import bootstrap_gap

    make_study(tmp_path, datasets=("clear",))
    n = 120
    ids = np.array([f"shaky-{i:04d}" for i in range(n)])
    labels = (np.arange(n) % 2).astype(float)
    rng = np.random.default_rng(0)
    weak_preds, ceiling_preds = noisy_scores(labels, 1.0, rng), noisy_scores(labels, 1.3, rng)
    weak = write_run(tmp_path, "shaky", "w", "weak", "weak", 0, ids, labels, weak_preds)
    ceiling = write_run(tmp_path, "shaky", "c", "ceiling", "ceiling", 0, ids, labels, ceiling_preds)
    student = noisy_scores(labels, 1.5, rng)
    flat = np.full(n, 0.5)  # a constant predictor (kNN with k above the training rows)
    for key, preds in (("xent", student), ("knn-probe", flat)):
        auc = roc_auc(labels, preds)
        stage = "probe" if key.endswith("probe") else "student"
        write_run(
            tmp_path,
            "shaky",
            key,
            stage,
            key,
            0,
            ids,
            labels,
            preds,
            weak=weak,
            ceiling=ceiling,
            pgr=pgr(auc, weak["auc"], ceiling["auc"]),
        )
    gap, _ = bootstrap_gap((ids, weak_preds, labels), (ids, ceiling_preds, labels), 1000, 0)
    assert gap.value > 0.02 and gap.ci[0] < 0.02  # the point rule would keep it

    report = build_report(tmp_path, n_boot=1000, seed=0)
    assert report.point_rule_unstable == []
    [item] = report.unstable
    assert item["dataset"] == "shaky" and item["gap_ci"] == pytest.approx(gap.ci)
    assert item["reason"].startswith(f"gap {gap.value:+.3f} [")
    assert report.included == ["clear"]
    xent = next(
        r for r in report.seed_rows if r["dataset"] == "shaky" and r["experiment"] == "xent"
    )
    assert xent["pgr_gap_ci"] == pytest.approx(gap.ci)  # the same resamples as the rule's
    assert report.row("shaky", "knn-probe")["pgr_flag"] == "constant predictor"
    assert {r["experiment"]: r["n_datasets"] for r in report.summary} == {
        "xent": 1,
        "logconf": 1,
        "knn-filter": 1,
        "knn-probe": 0,
    }


def test_a_weak_model_below_chance_makes_the_dataset_unstable(tmp_path):
    """ETHICS-virtue's case at the blog's sizes: the weak model ranks test rows credibly below
    chance, so the gap is mostly its anti-signal and a chance-level student scores PGR > 0;
    the dataset is flagged (why: its weak AUC and CI on the rule's resamples) and left out."""
    from w2sprobe.pgr_rule import bootstrap_gap

    make_study(tmp_path, datasets=("clear",))
    n = 600
    ids = np.array([f"inverted-{i:04d}" for i in range(n)])
    labels = (np.arange(n) % 2).astype(float)
    rng = np.random.default_rng(1)
    weak_preds, ceiling_preds = noisy_scores(labels, -0.4, rng), noisy_scores(labels, 0.4, rng)
    weak = write_run(tmp_path, "inverted", "w", "weak", "weak", 0, ids, labels, weak_preds)
    ceiling = write_run(
        tmp_path, "inverted", "c", "ceiling", "ceiling", 0, ids, labels, ceiling_preds
    )
    chance = rng.random(n)  # a student that learnt nothing
    auc = roc_auc(labels, chance)
    write_run(
        tmp_path,
        "inverted",
        "xent",
        "student",
        "xent",
        0,
        ids,
        labels,
        chance,
        weak,
        ceiling,
        pgr(auc, weak["auc"], ceiling["auc"]),
    )
    gap, _ = bootstrap_gap((ids, weak_preds, labels), (ids, ceiling_preds, labels), 1000, 0)
    assert gap.ci[0] > 0.02 and gap.weak_ci[1] < 0.5  # the gap alone would pass
    assert pgr(auc, weak["auc"], ceiling["auc"]) > 0.2  # chance looks like generalisation

    report = build_report(tmp_path, n_boot=1000, seed=0)
    [item] = report.unstable
    assert item["dataset"] == "inverted" and item["weak_auc_ci"] == pytest.approx(gap.weak_ci)
    low, high = gap.weak_ci
    assert item["reason"] == f"weak below chance: AUC {weak['auc']:.3f} [{low:.3f}, {high:.3f}]"
    assert report.row("inverted", "xent")["pgr_unstable"]
    [seed_row] = [r for r in report.seed_rows if r["dataset"] == "inverted" and "pgr" in r]
    assert seed_row["pgr_flag"] == item["reason"]  # a seed row by its own pair, same verdict
    assert report.included == ["clear"]


def test_auc_comparison_worked_by_hand():
    """logconf − xent test AUC = +0.03, +0.01, −0.02 on three datasets. By hand: mean
    +0.00667, sd 0.025166, t = 0.45883 on 2 df, one-sided p = 1/2 − t / (2·sqrt(t² + 2)) =
    0.3457; Wilcoxon: ranks 3 and 1 positive, W+ = 4, reached by 3 of the 8 sign patterns
    (4, 5, 6): p = 0.375."""
    aucs = {("a", "xent"): 0.60, ("a", "logconf"): 0.63, ("b", "xent"): 0.70,
            ("b", "logconf"): 0.71, ("c", "xent"): 0.80, ("c", "logconf"): 0.78}  # fmt: skip
    rows = [
        {"dataset": d, "experiment": e, "stage": "student", "auc": v} for (d, e), v in aucs.items()
    ]
    rows.append({"dataset": "a", "experiment": "weak", "stage": "weak", "auc": 0.5})
    (c,) = compare_auc_to_baseline(rows, ["a", "b", "c"], "xent")
    assert (c["experiment"], c["n"], c["wins"], c["losses"]) == ("logconf", 3, 2, 1)
    assert c["mean_diff"] == pytest.approx(0.02 / 3)
    assert c["t_test_p"] == pytest.approx(0.3457, abs=1e-4)
    assert c["wilcoxon_p"] == pytest.approx(0.375)
    assert c["statement"] == (
        "logconf has a higher test AUC than xent on 2 of 3 datasets (lower on 1); one-sided "
        "paired t-test p = 0.346, Wilcoxon signed-rank p = 0.375"
    )
