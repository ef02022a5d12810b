"""``w2sprobe train`` and ``w2sprobe run`` on tiny models and the sst2 mirror.

Results, caching, errors.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from w2sprobe.labels import LabelSet, find_label_set, list_label_sets, save_label_set
from w2sprobe.options import resolve
from w2sprobe.pgr_rule import pgr_fields
from w2sprobe.runs import RunRecord, find_runs, read_predictions
from w2sprobe.study import load_options_splits
from w2sprobe.train.inputs import stage_request
from w2sprobe.train.stages import training_examples

TINY = (
    "n_train = 120\nn_val = 30\nn_test = 40\n"
    "epochs = 2\neval_every = 3\nwarmup_steps = 2\nstrong_lr = 3e-3\n"
)


def write_config(folder: Path, tiny_models, shared_data, extra: str = "") -> Path:
    config = folder / "w2sprobe.toml"
    config.write_text(
        f'weak_model = "{tiny_models["bert"]}"\nstrong_model = "{tiny_models["llama"]}"\n'
        f'data_dir = "{shared_data}"\ncache_dir = "{folder / "c"}"\n{TINY}{extra}'
    )
    return config


def cli_json(*args: str) -> tuple[int, dict]:
    """Run the CLI in-process outside a function-scoped fixture; parse its --json output."""
    from w2sprobe.cli.app import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*args, "--json"])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    return code, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_models, shared_data):
    """One full ``w2sprobe run`` over every experiment, shared by the tests below."""
    folder = tmp_path_factory.mktemp("pipeline")
    config = write_config(folder, tiny_models, shared_data)
    code, summary = cli_json("run", "--config", str(config))
    assert code == 0, summary
    settings = resolve({}, config)
    return {
        "config": config,
        "cache": folder / "c",
        "summary": summary,
        "settings": settings,
        "splits": load_options_splits(settings, "sst2"),
    }


def stages_of(summary: dict) -> dict[str, dict]:
    """The plan's stages by name (the label-set nodes the graph also lists are left out)."""
    return {
        s["stage"]: s
        for s in summary["datasets"][0]["stages"]
        if not s["stage"].startswith("labels:")
    }


def runs_by_experiment(cache: Path) -> dict[str, RunRecord]:
    return {r.metrics["experiment"]: r for r in find_runs(cache, "sst2")}


def test_run_does_every_experiment_with_pgr(pipeline):
    stages = stages_of(pipeline["summary"])
    expected = [
        "weak",
        "ceiling",
        "xent",
        "kl",
        "logconf",
        "entropy",
        "window",
        "s2s-1",
        "s2s-2",
        "extract",
        "knn-probe",
        "logreg-probe",
        "knn-filter",
        "logreg-filter",
        "topo-filter",
        "knn-relabel",
        "logreg-relabel",
    ]
    assert list(stages) == expected
    assert {s["status"] for s in stages.values()} == {"ran"}
    runs = runs_by_experiment(pipeline["cache"])
    assert set(runs) == set(expected) - {"extract"}
    weak, ceiling = runs["weak"].metrics, runs["ceiling"].metrics
    for name, run in runs.items():
        m = run.metrics
        assert (run.folder / "manifest.json").is_file() and m["n"] == 40
        assert (run.folder / "predictions.csv").read_text().splitlines()[
            0
        ] == "split,id,soft_pred,label"
        if name in ("weak", "ceiling"):
            continue
        assert m["weak"]["key"] == weak["key"] and m["ceiling"]["key"] == ceiling["key"]
        assert m["pgr"] == pytest.approx((m["auc"] - weak["auc"]) / (ceiling["auc"] - weak["auc"]))
        assert stages[name]["pgr"] == pytest.approx(m["pgr"])


def test_metrics_match_the_predictions(pipeline):
    from w2sprobe.metrics import roc_auc

    for run in find_runs(pipeline["cache"], "sst2"):
        test = read_predictions(run.folder / "predictions.csv")["test"]
        assert run.metrics["auc"] == pytest.approx(roc_auc(test.labels, test.soft))
        assert list(test.ids) == pipeline["splits"].splits["test"].ids
        if run.metrics["stage"] != "probe":  # trained runs record their warnings (maybe none)
            assert all(set(w) == {"code", "message"} for w in run.metrics["warnings"])


def test_rerun_is_all_cache_hits(pipeline, monkeypatch):
    from w2sprobe.cache import extraction
    from w2sprobe.train.trainer import Trainer

    def forbidden(*args, **kwargs):
        raise AssertionError("a cached stage was recomputed")

    monkeypatch.setattr(Trainer, "fit", forbidden)
    monkeypatch.setattr(extraction, "_run", forbidden)
    code, summary = cli_json("run", "--config", str(pipeline["config"]))
    assert code == 0
    assert {s["status"] for s in summary["datasets"][0]["stages"]} == {"cached"}
    first = stages_of(pipeline["summary"])
    # the activations were a prerequisite of the first run; cached probes do not ask for them
    assert set(first) - set(stages_of(summary)) == {"extract"}
    assert {k: v.get("auc") for k, v in stages_of(summary).items()} == {
        k: first[k].get("auc") for k in stages_of(summary)
    }


def test_finished_probes_need_no_activations(pipeline, tmp_path, monkeypatch):
    """A workspace whose activation files were deleted (or a restored record without them)
    reads its probes, filtered and relabeled sets and their students; it extracts nothing."""
    import shutil

    from w2sprobe.cache import extraction
    from w2sprobe.train.trainer import Trainer

    cache = tmp_path / "c"
    shutil.copytree(pipeline["cache"], cache)
    shutil.rmtree(cache / "acts")
    config = tmp_path / "w2sprobe.toml"
    config.write_text(pipeline["config"].read_text().replace(str(pipeline["cache"]), str(cache)))

    def forbidden(*args, **kwargs):
        raise AssertionError("a cached stage was recomputed")

    monkeypatch.setattr(Trainer, "fit", forbidden)
    monkeypatch.setattr(extraction, "_run", forbidden)
    probes = "knn-probe,logreg-probe,knn-filter,topo-filter,knn-relabel"
    code, summary = cli_json("run", "--experiments", probes, "--config", str(config))
    assert code == 0, summary
    stages = summary["datasets"][0]["stages"]
    assert {s["status"] for s in stages} == {"cached"}
    assert "extract" not in {s["stage"] for s in stages}
    first = stages_of(pipeline["summary"])
    assert {k: v["key"] for k, v in stages_of(summary).items()} == {
        k: first[k]["key"] for k in stages_of(summary)
    }
    assert not (cache / "acts").exists()
    # a probe that is not cached still extracts first, and a plan says so
    code, summary = cli_json(
        "run", "--plan", "--k", "7", "--experiments", "knn-probe", "--config", str(config)
    )
    planned = {s["stage"]: s["status"] for s in summary["datasets"][0]["stages"]}
    assert planned == {
        "weak": "cached",
        "ceiling": "cached",
        "extract": "to run",
        "knn-probe": "to run",
    }


def test_plan_shows_what_a_change_invalidates(pipeline, capsys):
    code, summary = cli_json("run", "--plan", "--k", "7", "--config", str(pipeline["config"]))
    assert code == 0 and summary["plan"]
    status = {k: v["status"] for k, v in stages_of(summary).items()}
    assert (
        status.pop("knn-probe") == status.pop("knn-filter") == status.pop("knn-relabel") == "to run"
    )
    assert set(status.values()) == {"cached"}
    assert not find_runs(
        pipeline["cache"], "sst2", experiment="knn-probe", config={"probe": "knn", "k": 7}
    )
    code, out, _ = run_cli(capsys, "run", "--plan", "--k", "7", "--config", str(pipeline["config"]))
    statuses = [stage["status"] for stage in summary["datasets"][0]["stages"]]
    todo, total = statuses.count("to run"), len(statuses)
    assert todo == 5  # the two label sets as well as their students and the probe
    assert out.splitlines()[-1] == f"{todo} of {total} stage(s) to run, {total - todo} cached"


@pytest.mark.parametrize(
    "change", [["--weak-lr", "1e-3"], ["--epochs", "1"], ["--max-length", "64"]]
)
def test_a_changed_weak_recipe_never_reuses_the_stored_weak_labels(pipeline, change, capsys):
    """The weak labels follow the configured weak run: with another weak recipe (or length)
    the relabeled set is built from that run, never from the stored weak set of the old one."""
    config = str(pipeline["config"])
    code, summary = cli_json("relabel", "--probe", "knn", "--plan", *change, "--config", config)
    assert code == 0
    status = {n["stage"]: n["status"] for n in summary["nodes"]}
    assert status["weak"] == "to run" and status["labels:knn-relabel@weak"] == "to run"
    code, _, err = run_cli(capsys, "relabel", "--no-build", *change, "--config", config)
    assert code == 2 and "the configured weak run" in err and "other weak runs" in err


def test_no_build_with_another_weak_recipe_names_both_runs(pipeline, capsys):
    config = str(pipeline["config"])
    code, _, err = run_cli(capsys, "probe", "--weak-lr", "1e-3", "--no-build", "--config", config)
    assert code == 2
    weak_key = pipeline["summary"]["datasets"][0]["stages"][0]["key"]
    assert err.startswith("error: the configured weak run") and weak_key in err


def test_filtered_student_trains_on_exactly_the_kept_ids(pipeline):
    labels = find_label_set(pipeline["cache"], "sst2", "topo-filter")
    kept = labels.ids["strong_train"]
    assert 0 < len(kept) < len(pipeline["splits"].splits["strong_train"].ids)
    run = runs_by_experiment(pipeline["cache"])["topo-filter"]
    assert run.metrics["train_n"] == len(kept) and run.metrics["labels_key"] == labels.key
    # The first run's table lists the derived set under the key its build made.
    (node,) = [
        s
        for s in pipeline["summary"]["datasets"][0]["stages"]
        if s["stage"] == "labels:topo-filter@weak"
    ]
    assert (node["status"], node["key"]) == ("ran", labels.key)
    request = stage_request(pipeline["settings"], pipeline["splits"], "student", labels=labels)
    train, val = training_examples(request)
    assert sorted(train.ids.tolist()) == sorted(kept.tolist())
    assert sorted(val.ids.tolist()) == sorted(labels.ids["val"].tolist())
    position = {id_: i for i, id_ in enumerate(kept.tolist())}
    np.testing.assert_array_equal(
        train.targets, labels.soft["strong_train"][[position[i] for i in train.ids]]
    )


def test_weak_labels_and_s2s_labels_come_from_the_runs(pipeline):
    runs = runs_by_experiment(pipeline["cache"])
    weak = find_label_set(pipeline["cache"], "sst2", "weak")
    weak_preds = runs["weak"].predictions()
    for split in ("strong_train", "val", "test"):
        assert list(weak.ids[split]) == pipeline["splits"].splits[split].ids
        np.testing.assert_array_equal(weak.soft[split], weak_preds[split].soft)
    s2s = find_label_set(pipeline["cache"], "sst2", "s2s-1")
    np.testing.assert_array_equal(
        s2s.soft["strong_train"], runs["xent"].predictions()["strong_train"].soft
    )
    np.testing.assert_array_equal(s2s.soft["test"], weak.soft["test"])
    assert runs["s2s-1"].metrics["labels_key"] == s2s.key
    assert (
        runs["s2s-2"].metrics["labels_key"]
        == find_label_set(pipeline["cache"], "sst2", "s2s-2").key
    )


def test_window_radius_is_midweak_of_its_own_labels(pipeline):
    runs = runs_by_experiment(pipeline["cache"])
    weak = find_label_set(pipeline["cache"], "sst2", "weak")
    expected = float(np.median(np.abs(weak.soft["strong_train"].astype(np.float64) - 0.5)))
    assert runs["window"].metrics["radius"] == pytest.approx(expected, rel=1e-6)
    assert runs["window"].metrics["config"]["radius"] == "midweak"


def test_pgr_without_a_gap_is_null(tmp_path):
    weak = RunRecord(tmp_path, {"key": "w", "auc": 0.8})
    no_gap = pgr_fields(0.9, [], weak, RunRecord(tmp_path, {"key": "c", "auc": 0.8}))
    assert no_gap["pgr"] is None  # a zero gap gives no PGR
    # no predictions to resample (these records have none): the point rule, and it fails
    assert no_gap["pgr_unstable"] is True and no_gap["pgr_rule"].startswith("point")
    assert pgr_fields(0.9, [], weak, None) == {
        "weak": {"key": "w", "auc": 0.8},
        "ceiling": None,
        "pgr": None,
        "pgr_constant": False,
    }
    assert pgr_fields(0.85, [], weak, RunRecord(tmp_path, {"key": "c", "auc": 0.9}))[
        "pgr"
    ] == pytest.approx(0.5)


# --------------------------------------------------------------------------- w2sprobe train


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_models, shared_data):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, tiny_models, shared_data)
    return tmp_path


def test_train_stages_and_s2s(workspace, capsys):
    code, _, err = run_cli(capsys, "train", "student", "--no-build")
    assert code == 2 and "is not built yet (--no-build); make it with: w2sprobe train weak" in err
    assert not (workspace / "c" / "runs").exists()
    for stage in ("weak", "ceiling"):
        code, _, err = run_cli(capsys, "train", stage)
        assert code == 0, err
    code, out, err = run_cli(
        capsys, "train", "s2s", "--loss", "logconf", "--s2s-iters", "1", "--json"
    )
    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert [r["experiment"] for r in runs] == ["logconf", "logconf+s2s-1"]
    assert all(r["pgr"] is not None and r["ceiling"] is not None for r in runs)
    code, out, _ = run_cli(capsys, "train", "weak", "--json")
    weak = json.loads(out)["runs"][0]
    assert code == 0 and weak["experiment"] == "weak"
    # the table in a pipe (a log file) keeps every digit and the whole key (rich's default of
    # 80 columns for a pipe made them "0.85…" and "a5a3…")
    code, out, _ = run_cli(capsys, "train", "weak")
    assert code == 0 and weak["key"] in out and f"{weak['auc']:.4f}" in out and "…" not in out
    # a previous student's predictions as labels, by its run key
    code, out, err = run_cli(capsys, "train", "student", "--labels", runs[0]["key"], "--json")
    assert code == 0, err
    again = json.loads(out)["runs"][0]
    assert (
        again["experiment"] == f"student-{runs[0]['key']}"
        and again["weak"]["key"] == runs[0]["weak"]["key"]
    )


def test_train_bad_input(workspace, capsys):
    assert run_cli(capsys, "train", "weak")[0] == 0
    cases = {
        (
            "--loss",
            "hinge",
        ): "option --loss: 'hinge' is not one of xent, kl, logconf, entropy, window, product, "
        "adaptive",
        ("--radius", "0.7", "--loss", "window"): "radius",
        ("--radius", "0", "--loss", "window"): "radius",
        ("--lr", "0"): "--lr must be > 0",
        ("--lr", "-1e-3"): "--lr must be > 0",
        ("--labels", "nosuchset"): "no label set 'nosuchset'",
    }
    for args, message in cases.items():
        code, _, err = run_cli(capsys, "train", "student", *args)
        assert code == 2 and err.startswith("error: ") and message in err, (args, err)
        assert err.count("\n") == 1
    assert run_cli(capsys, "train", "teacher")[0] == 2


def test_label_set_of_other_splits_is_refused(workspace, capsys):
    foreign = LabelSet(
        "foreign",
        "sst2",
        {"strong_train": np.array(["x1", "x2"])},
        {"strong_train": np.array([0.2, 0.9])},
        {"weak_run": "none"},
    )
    save_label_set(foreign, workspace / "c")
    code, _, err = run_cli(capsys, "train", "student", "--labels", foreign.key)
    assert code == 2 and "does not match sst2's splits" in err


def test_label_set_of_another_dataset_is_refused(pipeline):
    from w2sprobe.errors import UsageError
    from w2sprobe.train.run_labels import check_labels_match

    weak = find_label_set(pipeline["cache"], "sst2", "weak")
    other = LabelSet("weak", "cola", weak.ids, weak.soft, weak.manifest)
    with pytest.raises(UsageError, match="was made for dataset cola, not sst2"):
        check_labels_match(other, pipeline["splits"])


def test_missing_weak_run_names_the_command(workspace, capsys):
    assert run_cli(capsys, "train", "weak")[0] == 0
    weak = find_label_set(workspace / "c", "sst2", "weak")
    orphan = LabelSet(
        "orphan", "sst2", weak.ids, weak.soft, {**weak.manifest, "weak_run": "0123456789abcdef"}
    )
    save_label_set(orphan, workspace / "c")
    code, _, err = run_cli(capsys, "train", "student", "--labels", "orphan")
    assert code == 2 and "weak run behind label set orphan" in err and "w2sprobe train weak" in err


def test_run_bad_input(workspace, capsys):
    code, _, err = run_cli(capsys, "run", "--dataset", "nope")
    assert code == 2 and "unknown dataset 'nope'" in err
    code, _, err = run_cli(capsys, "run", "--experiments", "xent,telepathy")
    assert code == 2 and "unknown experiment 'telepathy'" in err
    code, _, err = run_cli(capsys, "run", "--preset", "huge")
    assert code == 2 and "unknown preset 'huge'" in err
    assert not list_label_sets(workspace / "c", "sst2")


def test_failed_dataset_does_not_stop_the_others(workspace, capsys, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a", "label": 0}\n')  # one class: no balanced splits possible
    code, out, err = run_cli(
        capsys,
        "run",
        "--dataset",
        str(broken),
        "--dataset",
        "sst2",
        "--experiments",
        "weak",
        "--json",
    )
    summary = json.loads(out)
    assert code == 1 and summary["failed"] == [str(broken)]
    assert summary["datasets"][1]["error"] is None
    assert [s["status"] for s in summary["datasets"][1]["stages"]] == ["ran", "ran"]


def test_preset_blog_sets_the_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no w2sprobe.toml here
    opts = resolve({}, None, preset="blog")
    assert opts.model.strong_model == "meta-llama/Meta-Llama-3-8B" and opts.probe.layer == 16
    assert opts.train.strong_lr == 8e-5 and opts.data.n_train == 10_000
    assert opts.sources["layer"] == "preset blog"
    assert resolve({"layer": 8}, None, preset="blog").probe.layer == 8  # the command line wins


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
def test_kill_9_then_the_same_command_resumes(workspace):
    """A real ``kill -9`` mid-training; the rerun continues from the last checkpoint."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "w2sprobe",
        "train",
        "ceiling",
        "--epochs",
        "40",
        "--eval-every",
        "4",
        "--json",
    ]
    process = subprocess.Popen(
        command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    checkpoints = []
    while time.time() < deadline and not checkpoints and process.poll() is None:
        checkpoints = list((workspace / "c" / "runs").glob("*/*/checkpoint.pt"))
        time.sleep(0.05)
    assert checkpoints and process.poll() is None, "training ended before it could be killed"
    time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not list((workspace / "c" / "runs").glob("*/*/metrics.json"))
    done = subprocess.run(
        command, cwd=workspace, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["runs"][0]
    assert run["resumed_from"] and run["resumed_from"] > 0 and run["steps"] == 40 * 2
    assert not list((workspace / "c" / "runs").glob("*/*/checkpoint.pt"))


# --------------------------------------------------------------------------- shards


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
def test_two_shard_workers_run_each_stage_once(workspace):
    """Two concurrent ``--shard i/2`` workers: every stage ran exactly once between them."""
    command = [
        sys.executable,
        "-m",
        "w2sprobe",
        "run",
        "--experiments",
        "losses,s2s",
        "--seeds",
        "0,1",
        "--json",
    ]
    workers = [
        subprocess.Popen(
            [*command, "--shard", f"{i}/2"],
            cwd=workspace,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    ran: dict[tuple, int] = {}
    for index, (out, _) in enumerate(outputs):
        summary = json.loads(out)
        assert summary["shard"] == f"{index}/2"
        for result in summary["datasets"]:
            for stage in result["stages"]:
                unit = (result["seed"], stage["stage"])
                ran[unit] = ran.get(unit, 0) + (stage["status"] == "ran")
                if stage["shard"] == index:
                    assert stage["status"] in ("ran", "cached")
    stages = ["weak", "ceiling", "xent", "kl", "logconf", "entropy", "window", "s2s-1", "s2s-2"]
    assert ran == {(seed, stage): 1 for seed in (0, 1) for stage in stages}
    assert len(find_runs(workspace / "c", "sst2")) == 2 * len(stages)


def test_plan_json_shows_the_shards(workspace, capsys):
    code, out, err = run_cli(
        capsys, "run", "--plan", "--json", "--experiments", "xent", "--shard", "1/3"
    )
    assert code == 0, err
    stages = json.loads(out)["datasets"][0]["stages"]
    # plan order weak, ceiling, xent dealt to workers 0, 1, 2: worker 1 owns ceiling only
    assert [(s["stage"], s["shard"]) for s in stages] == [("ceiling", 1)]
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0"):
        code, _, err = run_cli(capsys, "run", "--plan", "--shard", bad)
        assert code == 2 and "--shard must be i/n" in err
