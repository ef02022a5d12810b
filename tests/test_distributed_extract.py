"""Data-parallel extraction under torchrun against the single-process file.

torchrun runs gloo with 2 CPU processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import pytest
from conftest import run_cli
from test_extract import assert_same_file, request

from w2sprobe.cache import ActivationStore, extract, list_entries, plan_extraction, verify
from w2sprobe.cache.distributed import shard_rows
from w2sprobe.cache.layout import partial_path, shard_files, shard_path
from w2sprobe.errors import UsageError

#: Per split: weak_train 100, strong_train 100, val 40, test 60 rows -> 50/50/20/30 per rank.
SIZES = ["--n-train", "200", "--n-val", "40", "--n-test", "60"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def extract_args(model: Path, cache: Path, data: Path, layers: str = "1,3") -> list[str]:
    return [
        "extract",
        "--model",
        str(model),
        "--dataset",
        "sst2",
        "--data-dir",
        str(data),
        *SIZES,
        "--layers",
        layers,
        "--extract-batch-size",
        "16",
        "--cache-dir",
        str(cache),
        "--json",
    ]


def torchrun(cwd: Path, *target: str) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 <target>`` with nothing but the given options.

    No config file.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("W2SPROBE_")}
    return subprocess.run(
        [*TORCHRUN, *target], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def single_process_reference(capsys, args: list[str]) -> dict:
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    return json.loads(out)


def only_json_line(stdout: str) -> dict:
    """Rank 0 alone prints the summary: exactly one JSON object on stdout."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


def test_shard_rows_cover_every_row_once_in_order():
    for rows in (0, 1, 3, 7, 100, 101):
        for world in (1, 2, 3, 8):
            ranges = [shard_rows(rows, rank, world) for rank in range(world)]
            assert ranges[0][0] == 0 and ranges[-1][1] == rows
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_torchrun_gives_the_single_process_file(capsys, tmp_path, tiny_models, shared_data, arch):
    want = single_process_reference(
        capsys, extract_args(tiny_models[arch], tmp_path / "one", shared_data)
    )
    proc = torchrun(
        tmp_path, "-m", "w2sprobe", *extract_args(tiny_models[arch], tmp_path / "two", shared_data)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = only_json_line(proc.stdout)
    assert got["world_size"] == 2 and not got["cache_hit"] and got["key"] == want["key"]
    assert (
        got["rows"]
        == want["rows"]
        == {"weak_train": 100, "strong_train": 100, "val": 40, "test": 60}
    )
    path = Path(got["path"])
    assert path.relative_to(tmp_path / "two") == Path(want["path"]).relative_to(tmp_path / "one")
    assert_same_file(path, Path(want["path"]))
    assert shard_files(path) == [] and verify(path) == []
    assert [(e.path, e.complete) for e in list_entries(tmp_path / "two")] == [(path, True)]

    # The world size is not part of the key: one process finds the torchrun file cached.
    again = single_process_reference(
        capsys, extract_args(tiny_models[arch], tmp_path / "two", shared_data)
    )
    assert again["cache_hit"] and again["path"] == got["path"]


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
def test_launcher_option_runs_torchrun_workers(
    capfd, tmp_path, tiny_models, shared_data, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    args = extract_args(tiny_models["llama"], tmp_path / "two", shared_data, layers="0,2")
    code, out, err = run_cli(capfd, *args[:1], "--launcher", "torchrun", "--nproc", "2", *args[1:])
    assert code == 0, err[-3000:]
    got = only_json_line(out)  # the workers' output: torchrun inherits this process's stdout
    assert got["world_size"] == 2 and got["layers"] == [0, 2]
    want = single_process_reference(
        capfd, extract_args(tiny_models["llama"], tmp_path / "one", shared_data, layers="0,2")
    )
    assert got["key"] == want["key"]
    assert_same_file(Path(got["path"]), Path(want["path"]))


#: torchrun worker that logs every window it commits and SIGKILLs itself at a chosen one.
WORKER = textwrap.dedent("""
    import os, signal, sys
    from w2sprobe.cache import writer

    die_rank, die_in, die_at, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    rank = int(os.environ["RANK"])
    original = writer.PartialActivationFile.write_window
    count = [0]

    def write_and_log(self, split, start, acts):
        original(self, split, start, acts)
        kind = "shard" if ".rank" in self.path.name else "merge"
        with open(log, "a") as handle:
            handle.write(f"{rank} {kind} {split} {start} {acts.shape[1]}\\n")
        if rank == die_rank and kind == die_in:
            count[0] += 1
            if count[0] == die_at:
                os.kill(os.getpid(), signal.SIGKILL)

    writer.PartialActivationFile.write_window = write_and_log
    from w2sprobe.cli.app import main
    main(sys.argv[5:])
""")


def committed(path: Path) -> dict[str, int]:
    with h5py.File(path, "r") as handle:
        return {name: int(handle[name].attrs["committed_rows"]) for name in handle}


def writes(log: Path) -> list[tuple]:
    lines = log.read_text().split("\n") if log.exists() else []
    return [
        (int(r), kind, split, int(start), int(n))
        for r, kind, split, start, n in (line.split() for line in lines if line)
    ]


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
def test_killed_rank_and_killed_merge_resume_to_the_identical_file(
    capsys, tmp_path, tiny_models, shared_data
):
    want = single_process_reference(
        capsys, extract_args(tiny_models["llama"], tmp_path / "one", shared_data)
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    args = extract_args(tiny_models["llama"], tmp_path / "two", shared_data)
    final = tmp_path / "two" / Path(want["path"]).relative_to(tmp_path / "one")
    shard0, shard1 = (partial_path(shard_path(final, rank, 2)) for rank in (0, 1))

    # 1. Rank 1 dies after committing weak_train and strong_train of its shard.
    log = tmp_path / "kill-shard.log"
    proc = torchrun(tmp_path, str(script), "1", "shard", "2", str(log), *args)
    assert proc.returncode != 0 and proc.stdout.strip() == ""
    assert committed(shard1) == {"weak_train": 50, "strong_train": 50, "val": 0, "test": 0}
    assert not final.exists() and not partial_path(final).exists()
    # Shards are nobody's activation files: not listed, not verified, not readable.
    assert list_entries(tmp_path / "two") == []
    with pytest.raises(UsageError, match="partial"):
        ActivationStore.open(shard1)
    code, out, _ = run_cli(
        capsys, "cache", "verify", "--cache-dir", str(tmp_path / "two"), "--json"
    )
    assert code == 0 and json.loads(out)["files"] == {}

    # 2. Rerun: rank 1 resumes its shard (computes only val and test); rank 0 dies mid-merge.
    log = tmp_path / "kill-merge.log"
    proc = torchrun(tmp_path, str(script), "0", "merge", "3", str(log), *args)
    assert proc.returncode != 0 and proc.stdout.strip() == ""
    assert [
        (split, start)
        for rank, kind, split, start, _ in writes(log)
        if rank == 1 and kind == "shard"
    ] == [("val", 0), ("test", 0)]
    # The merge copies rank 0's rows of every split, then rank 1's: it died after rank 0's val.
    assert committed(partial_path(final)) == {
        "weak_train": 50,
        "strong_train": 50,
        "val": 20,
        "test": 0,
    }
    assert shard0.exists() and shard1.exists() and not final.exists()
    entries = list_entries(tmp_path / "two")
    assert [(e.path, e.complete) for e in entries] == [(partial_path(final), False)]

    # 3. Rerun: no rank computes anything; the merge continues after its committed rows.
    log = tmp_path / "resume.log"
    proc = torchrun(tmp_path, str(script), "-1", "none", "0", str(log), *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = only_json_line(proc.stdout)
    assert got["resumed_rows"] == 300 and got["tokens"] == 0 and got["key"] == want["key"]
    assert [(split, start, n) for _, kind, split, start, n in writes(log)] == [
        ("test", 0, 30),
        ("weak_train", 50, 50),
        ("strong_train", 50, 50),
        ("val", 20, 20),
        ("test", 30, 30),
    ]
    assert {kind for _, kind, *_ in writes(log)} == {"merge"}
    assert (
        Path(got["path"]) == final and shard_files(final) == [] and not partial_path(final).exists()
    )
    assert_same_file(final, Path(want["path"]))
    assert verify(final) == []


def test_a_single_process_run_removes_leftover_shards_of_its_key(tiny_models, tmp_path):
    final = plan_extraction(request(tiny_models["gpt2"]), tmp_path).path
    final.parent.mkdir(parents=True)
    leftover = partial_path(shard_path(final, 1, 3))
    leftover.write_bytes(b"a shard of a killed 3-process run")
    assert shard_files(final) == [leftover]
    assert extract(request(tiny_models["gpt2"]), tmp_path).path == final
    assert shard_files(final) == [] and verify(final) == []


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--launcher", "torchrun", "--nproc", "0"], "--nproc must be >= 1, got 0"),
        (["--launcher", "slurm", "--nproc", "2"], "unknown --launcher 'slurm'"),
        (["--nproc", "2"], "--nproc needs --launcher torchrun"),
        (["--launcher", "torchrun"], "--launcher torchrun needs --nproc"),
        (
            ["--launcher", "torchrun", "--nproc", "3", "--device", "cuda"],
            "--nproc 3 is more than the 1 visible GPU",
        ),
    ],
)
def test_bad_launcher_options_are_one_error_line(
    capsys, tmp_path, tiny_models, shared_data, monkeypatch, extra, message
):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 1)
    monkeypatch.setattr(
        "w2sprobe.distributed.launch_torchrun", lambda *_: pytest.fail("must not launch")
    )
    code, out, err = run_cli(
        capsys, *extract_args(tiny_models["bert"], tmp_path / "c", shared_data), *extra
    )
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c").exists()
