"""Data-parallel training under torchrun (gloo, 2 CPU processes) against the single-process run.

The reference is always the same command in one process: a data-parallel run must have the same
key, best step, test AUC and predictions (up to float summation order), leave one finished run
written once, and resume after ``kill -9``.  The config makes the hard cases happen: batches of 15
over 61 training rows end with a batch of one row (rank 1 gets nothing), and micro-batches of 7
give the ranks different numbers of micro-batches (8 rows -> 2, 7 rows -> 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil  # installed with accelerate, which peft requires
import pytest
from conftest import run_cli

from w2sprobe.distributed import DistEnv
from w2sprobe.runs import read_predictions
from w2sprobe.train.distributed import inference_rows, rank_rows

CONFIG = (
    "n_train = 122\nn_val = 30\nn_test = 40\nepochs = 3\nbatch_size = 15\nminibatch = 7\n"
    "eval_every = 3\nwarmup_steps = 2\nstrong_lr = 3e-3\n"
)
#: Measured on this machine: |AUC difference| 0.0 and max |prediction difference| <= 6e-8
#: (float32 resolution near 0.5); without the gradient all_reduce the predictions differ by 0.09.
AUC_TOL = 1e-5
PRED_TOL = 1e-6
RESUME = ("--epochs", "8", "--eval-every", "4")


def write_config(folder: Path, tiny_models, shared_data) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "w2sprobe.toml"
    config.write_text(
        f'weak_model = "{tiny_models["bert"]}"\nstrong_model = "{tiny_models["llama"]}"\n'
        f'data_dir = "{shared_data}"\ncache_dir = "{folder / "c"}"\n{CONFIG}'
    )
    return config


def in_process(*args: str) -> dict:
    """The single-process reference, run in this process (outside function-scoped fixtures)."""
    import contextlib
    import io

    from w2sprobe.cli.app import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*args, "--json"])
        except SystemExit as exc:
            assert not exc.code, out.getvalue()
    return json.loads(out.getvalue())["runs"][0]


def subprocess_env(shared_data: Path) -> dict[str, str]:
    return {**os.environ, "W2SPROBE_DATA_DIR": str(shared_data), "PYTHONUNBUFFERED": "1"}


def torchrun(nproc: int, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "w2sprobe",
        *args,
    ]


def only_json_line(stdout: str) -> dict:
    """Exactly one JSON object on stdout: only rank 0 reports."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, stdout
    return json.loads(lines[0])["runs"][0]


def assert_same_run(dp: dict, ref: dict) -> None:
    assert dp["key"] == ref["key"]
    assert (
        dp["train_n"] == ref["train_n"] == 61
    )  # 4 batches of 15, then one row: rank 1 idles a step
    assert dp["steps"] == ref["steps"] and dp["best_step"] == ref["best_step"]
    assert abs(dp["auc"] - ref["auc"]) <= AUC_TOL
    assert abs(dp["val_auc"] - ref["val_auc"]) <= AUC_TOL
    ours, theirs = (read_predictions(Path(r["path"]) / "predictions.csv") for r in (dp, ref))
    assert set(ours) == set(theirs) == {"val", "test"}
    for split in ours:
        assert list(ours[split].ids) == list(theirs[split].ids)
        np.testing.assert_allclose(ours[split].soft, theirs[split].soft, rtol=0, atol=PRED_TOL)
    # The tiny model separates examples only a little; still far more than the tolerance.
    assert np.ptp(theirs["test"].soft) > 100 * PRED_TOL


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_models, shared_data):
    """Single-process runs of the default recipe and of the longer one the resume test kills."""
    folder = tmp_path_factory.mktemp("single")
    config = write_config(folder, tiny_models, shared_data)
    return {
        "default": in_process("train", "ceiling", "--config", str(config)),
        "resume": in_process("train", "ceiling", "--config", str(config), *RESUME),
    }


def test_rank_shares_partition_every_batch():
    lengths = np.array([5, 1, 9, 3, 3, 7, 2])
    rows = np.array([6, 0, 2, 5, 1])
    shares = [rank_rows(rows, lengths, DistEnv(r, 2, r)) for r in range(2)]
    assert sorted(np.concatenate(shares).tolist()) == sorted(rows.tolist())
    assert shares[0].tolist() == [1, 0, 2] and shares[1].tolist() == [
        6,
        5,
    ]  # strided over length order
    assert rank_rows(rows[:1], lengths, DistEnv(1, 2, 1)).size == 0
    slices = [inference_rows(lengths, DistEnv(r, 3, r)) for r in range(3)]
    assert sorted(np.concatenate(slices).tolist()) == list(range(len(lengths)))


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
def test_torchrun_two_processes_match_one(tmp_path, tiny_models, shared_data, reference):
    config = write_config(tmp_path, tiny_models, shared_data)
    done = subprocess.run(
        torchrun(2, "train", "ceiling", "--config", str(config), "--json"),
        cwd=tmp_path,
        env=subprocess_env(shared_data),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    run = only_json_line(done.stdout)
    assert_same_run(run, reference["default"])
    # One run, written once by rank 0: no checkpoint or temporary files left behind.
    folder = Path(run["path"])
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "manifest.json",
        "metrics.json",
        "predictions.csv",
    ]
    assert [p.name for p in (tmp_path / "c" / "runs" / "sst2").iterdir()] == [run["key"]]


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
def test_kill_9_then_launcher_resumes(tmp_path, tiny_models, shared_data, reference):
    """``kill -9`` every process of a 2-rank run after its first checkpoint.

    The same command in the ``--launcher torchrun --nproc 2`` form resumes it (same key: its argv
    was rebuilt faithfully).
    """
    config = write_config(tmp_path, tiny_models, shared_data)
    args = ("train", "ceiling", "--config", str(config), *RESUME, "--json")
    env = subprocess_env(shared_data)
    process = subprocess.Popen(
        torchrun(2, *args),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while (
        time.time() < deadline
        and process.poll() is None
        and not list(tmp_path.glob("c/runs/*/*/checkpoint.pt"))
    ):
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    # torchrun starts its workers in their own sessions: kill the whole tree, as a crash would.
    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    assert len(tree) == 3
    for proc in tree:
        proc.kill()
    process.wait()
    psutil.wait_procs(tree, timeout=10)
    assert not list(tmp_path.glob("c/runs/*/*/metrics.json"))
    done = subprocess.run(
        [sys.executable, "-m", "w2sprobe", *args, "--launcher", "torchrun", "--nproc", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    run = only_json_line(done.stdout)
    assert run["resumed_from"] and run["resumed_from"] > 0
    assert_same_run(run, reference["resume"])
    assert not list(tmp_path.glob("c/runs/*/*/checkpoint.pt"))


@pytest.mark.slow  # spawns processes (or reuses the torchrun reference run)
def test_device_map_single_process_matches(tmp_path, tiny_models, shared_data, reference, capsys):
    """``--device-map auto`` goes through from_pretrained's placement; on one CPU: the same run."""
    config = write_config(tmp_path, tiny_models, shared_data)
    code, out, err = run_cli(
        capsys, "train", "ceiling", "--config", str(config), "--device-map", "auto", "--json"
    )
    assert code == 0, err
    assert_same_run(json.loads(out)["runs"][0], reference["default"])


@pytest.mark.parametrize(
    "args, message",
    [
        (("--launcher", "torchrun", "--nproc", "0"), "--nproc must be >= 1"),
        (("--launcher", "torchrun", "--nproc", "2", "--device-map", "auto"), "--device-map"),
        (("--nproc", "2"), "--nproc needs --launcher torchrun"),
        (("--launcher", "torchrun"), "needs --nproc"),
        (("--launcher", "mpirun"), "unknown --launcher"),
        (("--device-map", "everywhere"), "unknown --device-map"),
        (("--launcher", "torchrun", "--nproc", "2", "--lr", "-1"), "--lr must be > 0"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, tiny_models, shared_data, capsys, args, message):
    config = write_config(tmp_path, tiny_models, shared_data)
    code, out, err = run_cli(capsys, "train", "ceiling", "--config", str(config), *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()  # refused before anything was written


def test_device_map_is_refused_inside_a_torchrun_worker(
    tmp_path, tiny_models, shared_data, capsys, monkeypatch
):
    """What each worker of ``torchrun ... train --device-map auto`` sees.

    It is refused before joining the group.
    """
    config = write_config(tmp_path, tiny_models, shared_data)
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    code, _, err = run_cli(
        capsys, "train", "ceiling", "--config", str(config), "--device-map", "auto"
    )
    assert code == 2 and err.startswith("error: --device-map") and "torchrun" in err
    code, _, err = run_cli(
        capsys,
        "train",
        "ceiling",
        "--config",
        str(config),
        "--launcher",
        "torchrun",
        "--nproc",
        "2",
    )
    assert code == 2 and "inside a torchrun worker" in err
