"""``w2sprobe cache ls KIND | rm KEY... | gc`` on a real workspace.

The workspace is a copy of ``tests/fixtures/cache_v1`` (an activation file, 15 runs and 7 label
sets written by an older version) plus a sweep and a report written by the real writers; each
test adds the unfinished artifacts it needs (partial files, shards, orphaned checkpoints) and
holds locks the way writers do (``filelock.FileLock``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import pytest
from conftest import run_cli
from filelock import FileLock

from w2sprobe.cache.layout import activation_path, lock_path, partial_path, shard_path
from w2sprobe.inventory import GRACE_S, find_garbage, kind_roots, scan
from w2sprobe.labels import labels_root
from w2sprobe.runs import run_dir

FIXTURE = Path(__file__).parent / "fixtures" / "cache_v1"
ACTS_KEY = "7f3d724f2745dbd6"
WEAK_LABELS = "b7cfaf07104c780b"
KNN_FILTER = "16072845a8ee9ccc"  # a label set; the student 07d7b64203023d54 trained on it
KNN_FILTER_STUDENT = "07d7b64203023d54"
CEILING = "50d5ca3a7ea08a35"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The fixture cache plus one real sweep and one real report (built once per module)."""
    from w2sprobe.report import build_report, write_report
    from w2sprobe.report.sweep_files import write_sweep

    cache = tmp_path_factory.mktemp("built") / "cache"
    shutil.copytree(FIXTURE / "cache", cache)
    rows = [
        {"dataset": "sst2", "probe": "knn", "layer": layer, "k": k, "labels": "weak", "auc": 0.6}
        for layer in (1, 2)
        for k in (5, 10)
    ]
    write_sweep(rows, cache / "sweeps" / "sst2" / "2ffc17dddbc29dd3", "k")
    write_report(build_report(cache, n_boot=10, seed=0), fmt="json")
    return cache


@pytest.fixture
def cache(built, tmp_path) -> Path:
    """A fresh copy of the built workspace for one test."""
    target = tmp_path / "cache"
    shutil.copytree(built, target)
    return target


def snapshot(root: Path) -> dict[str, int]:
    """Every file under ``root`` (relative path -> size): what "nothing changed" compares."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def cli(capsys, cache: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "cache", *args, "--cache-dir", str(cache))


def cli_json(capsys, cache: Path, *args: str) -> dict:
    code, out, err = cli(capsys, cache, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def acts_file(cache: Path) -> Path:
    return activation_path(cache, "tiny-llama", "sst2", ACTS_KEY)


def add_partial_acts(cache: Path, key: str = "aaaa0000partial0") -> Path:
    """A real activation file of another key that an extraction left half-written."""
    path = partial_path(activation_path(cache, "tiny-llama", "sst2", key))
    shutil.copyfile(acts_file(cache), path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["complete"] = False
    return path


def add_unfinished_run(cache: Path, key: str, checkpoint: bool = True) -> Path:
    """A run folder as the trainer leaves it when killed: manifest (+ checkpoint), no metrics."""
    folder = run_dir(cache, "sst2", key)
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(
        json.dumps({"key": key, "stage": "student", "experiment": "xent", "dataset": "sst2"})
    )
    if checkpoint:
        (folder / "checkpoint.pt").write_bytes(b"\0" * 3000)
    return folder


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --------------------------------------------------------------------------- layout


def test_inventory_roots_are_where_the_writers_write(tmp_path):
    """The roots ``cache ls`` walks are the writers' own (two are spelled in the inventory
    because their modules import torch / scipy)."""
    from w2sprobe.report.render import default_out_dir
    from w2sprobe.report.sweep_files import sweep_dir

    roots = kind_roots(tmp_path)
    assert activation_path(tmp_path, "org/model", "sst2", "k").parents[2] == roots["acts"]
    assert run_dir(tmp_path, "sst2", "k").parents[1] == roots["runs"]
    assert labels_root(tmp_path, "sst2").parent == roots["labels"]
    assert sweep_dir(tmp_path, "sst2", "k").parents[1] == roots["sweeps"]
    report = SimpleNamespace(cache_dir=tmp_path, key="k")
    assert default_out_dir(report).parent == roots["reports"]


# --------------------------------------------------------------------------- ls


def test_ls_lists_every_kind_with_its_origin_size_and_state(capsys, cache):
    summary = cli_json(capsys, cache, "ls")
    assert summary["kinds"] == ["acts", "tokens", "runs", "labels", "probes", "sweeps", "reports"]
    counts = {kind: total["count"] for kind, total in summary["totals"].items()}
    assert counts == {
        "acts": 1,
        "tokens": 0,
        "runs": 15,
        "labels": 7,
        "probes": 0,
        "sweeps": 1,
        "reports": 1,
    }
    entries = {e["key"]: e for e in summary["entries"]}
    for entry in summary["entries"]:
        path = Path(entry["path"])
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        assert entry["size_bytes"] == sum(os.stat(p).st_size for p in files), entry["key"]
        assert entry["complete"] and entry["status"] == "complete" and not entry["locked"]
        assert entry["dataset"] == "sst2" and entry["age_s"] >= 0

    acts = entries[ACTS_KEY]
    assert (acts["kind"], acts["model"], acts["layers"], acts["rows"]) == (
        "acts",
        "tiny-llama",
        [0, 1, 2, 3],
        130,
    )
    assert acts["path"] == str(acts_file(cache))
    student = entries[KNN_FILTER_STUDENT]
    assert (student["kind"], student["name"], student["model"]) == (
        "runs",
        "knn-filter",
        "tiny-llama",
    )
    assert student["made_from"]["labels"] == KNN_FILTER
    assert student["made_from"]["ceiling_run"] == CEILING
    probe = entries["f667b281c6cd873f"]
    assert probe["made_from"]["layer"] == 2 and probe["made_from"]["activations"] == ACTS_KEY
    assert probe["made_from"]["probe"].startswith("knn k=50")
    filtered = entries[KNN_FILTER]
    assert filtered["kind"] == "labels" and filtered["name"] == "knn-filter"
    assert filtered["made_from"]["parent"] == WEAK_LABELS and filtered["made_from"]["layer"] == 2
    assert filtered["model"] == "tiny-llama"  # from the activation file its probe read
    assert entries[WEAK_LABELS]["made_from"] == {"kind": "weak", "run": "68a9b8043b5a63c6"}
    (sweep,) = [e for e in summary["entries"] if e["kind"] == "sweeps"]
    assert sweep["made_from"] == {"labels_name": "weak", "probe": "knn", "layers": [1, 2]}
    (report,) = [e for e in summary["entries"] if e["kind"] == "reports"]
    assert report["made_from"] == {"runs": 15} and report["datasets"] == ["sst2"]


def test_ls_of_one_kind_is_a_table_of_that_kind(capsys, cache):
    code, out, err = cli(capsys, cache, "ls", "acts")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("activation files (1, ")
    assert lines[1].split() == [
        "key",
        "model",
        "dataset",
        "layers",
        "rows",
        "pool",
        "max",
        "len",
        "dtype",
        "stored",
        "size",
        "age",
        "status",
    ]
    assert lines[2].split()[:9] == [
        ACTS_KEY,
        "tiny-llama",
        "sst2",
        "0,1,2,3",
        "40/40/20/30",
        "last",
        "512",
        "float32",
        "float16",
    ]
    assert lines[2].endswith("complete") and "runs" not in out

    code, out, _ = cli(capsys, cache, "ls", "labels")
    row = next(line for line in out.splitlines() if line.startswith(KNN_FILTER))
    assert "knn-filter" in row and f"filter of weak {WEAK_LABELS[:8]} by knn k=50" in row
    assert "layer 2" in row

    code, out, _ = cli(capsys, cache, "ls", "runs", "--json")
    assert {e["kind"] for e in json.loads(out)["entries"]} == {"runs"}


def test_ls_without_a_kind_groups_every_kind(capsys, cache):
    code, out, _ = cli(capsys, cache, "ls")
    titles = [line.split(" (")[0] for line in out.splitlines() if " (" in line and "  " not in line]
    assert titles == ["activation files", "runs", "label sets", "sweeps", "reports"]


def test_ls_of_an_unknown_kind_or_an_empty_cache(capsys, tmp_path):
    code, out, err = cli(capsys, tmp_path, "ls", "checkpoints")
    assert code == 2 and out == ""
    assert "unknown artifact kind 'checkpoints'" in error_line(err)
    code, out, _ = cli(capsys, tmp_path / "none", "ls")
    assert code == 0 and out.strip() == f"no artifacts under {tmp_path / 'none'}"
    code, out, _ = cli(capsys, tmp_path / "none", "ls", "acts")
    assert out.strip() == f"no activation files under {tmp_path / 'none'}"
    assert not (tmp_path / "none").exists()


def test_ls_says_what_is_partial_orphaned_or_in_use(capsys, cache):
    partial = add_partial_acts(cache)
    orphan = add_unfinished_run(cache, "dead000000000001")
    training = add_unfinished_run(cache, "live000000000001")
    shard = shard_path(acts_file(cache), 0, 2)
    shutil.copyfile(acts_file(cache), partial_path(shard))
    holder = FileLock(str(training / ".lock"))
    with holder:
        entries = {e["key"]: e for e in cli_json(capsys, cache, "ls")["entries"]}
    assert entries["aaaa0000partial0"]["status"] == "partial"
    assert entries["aaaa0000partial0"]["complete"] is False
    assert entries["aaaa0000partial0"]["size_bytes"] == partial.stat().st_size
    assert entries["dead000000000001"]["status"] == "orphaned"
    assert not entries["dead000000000001"]["locked"]
    assert entries["live000000000001"]["status"] == "in use"
    assert entries["live000000000001"]["locked"]
    assert entries[ACTS_KEY]["complete"]
    assert entries[ACTS_KEY]["leftovers"] == [
        {"path": str(partial_path(shard)), "reason": "shard of a finished extraction"}
    ]
    assert entries[ACTS_KEY]["size_bytes"] == sum(
        os.stat(p).st_size for p in (acts_file(cache), partial_path(shard))
    )
    assert not orphan.joinpath(".lock").exists()  # looking at a lock never creates one
    assert not lock_path(acts_file(cache)).exists()


# --------------------------------------------------------------------------- rm


def test_rm_removes_exactly_that_artifact_and_names_what_was_made_from_it(capsys, cache):
    before = snapshot(cache)
    folder = labels_root(cache, "sst2") / KNN_FILTER
    code, out, err = cli(capsys, cache, "rm", KNN_FILTER)
    assert code == 0, err
    assert not folder.exists()
    gone = {k for k in before if k.startswith(f"labels/sst2/{KNN_FILTER}/")}
    assert len(gone) == 2 and snapshot(cache) == {k: v for k, v in before.items() if k not in gone}
    assert out.splitlines()[0].startswith(f"removed labels {KNN_FILTER} (sst2 knn-filter, ")
    assert f"kept 1 artifact(s) made from it: runs {KNN_FILTER_STUDENT} knn-filter" in out


def test_rm_json_lists_dependents_and_accepts_prefixes(capsys, cache):
    summary = cli_json(capsys, cache, "rm", CEILING[:6], ACTS_KEY)
    removed = {r["key"]: r for r in summary["removed"]}
    assert set(removed) == {CEILING, ACTS_KEY}
    assert not run_dir(cache, "sst2", CEILING).exists() and not acts_file(cache).exists()
    assert not lock_path(acts_file(cache)).exists()  # the lock taken to remove it goes too
    # the 13 students and probes computed PGR against the ceiling; the report read them all
    kinds = [d["kind"] for d in removed[CEILING]["dependents"]]
    assert kinds.count("runs") == 13 and kinds.count("reports") == 1 and len(kinds) == 14
    assert {d["kind"] for d in removed[ACTS_KEY]["dependents"]} == {"runs", "labels"}
    assert summary["size_bytes"] == sum(r["size_bytes"] for r in summary["removed"])
    assert (labels_root(cache, "sst2") / KNN_FILTER).is_dir()  # nothing cascades


@pytest.mark.parametrize(
    "keys,message",
    [
        (["ffffffffffffffff"], "has key 'ffffffffffffffff'"),
        ([KNN_FILTER, "nope0000"], "has key 'nope0000'"),
        (["7"], "a prefix needs 4+ characters"),
    ],
)
def test_rm_of_an_unknown_key_is_exit_2_and_removes_nothing(capsys, cache, keys, message):
    before = snapshot(cache)
    code, out, err = cli(capsys, cache, "rm", *keys)
    assert code == 2 and out == "" and message in error_line(err)
    assert snapshot(cache) == before


def test_rm_of_an_ambiguous_prefix_is_refused(capsys, cache):
    add = lambda key: add_unfinished_run(cache, key, checkpoint=False)  # noqa: E731
    add("abcd000000000001"), add("abcd000000000002")
    before = snapshot(cache)
    code, _, err = cli(capsys, cache, "rm", "abcd")
    line = error_line(err)
    assert code == 2 and "key 'abcd' is ambiguous" in line and "runs abcd000000000002" in line
    assert snapshot(cache) == before
    code, _, err = cli(capsys, cache, "rm", "--kind", "labels", "abcd000000000001")
    assert code == 2 and "no labels under" in error_line(err)
    assert cli_json(capsys, cache, "rm", "--kind", "runs", "abcd000000000001")["removed"]


def test_rm_of_a_key_in_use_is_exit_2_and_removes_nothing(capsys, cache):
    folder = run_dir(cache, "sst2", KNN_FILTER_STUDENT)
    before = snapshot(cache)
    # a second FileLock object conflicts like another process: filelock uses flock(2), which
    # locks per open file, so this is what the trainer's own lock looks like to ``rm``
    with FileLock(str(folder / ".lock")):
        code, out, err = cli(capsys, cache, "rm", KNN_FILTER, KNN_FILTER_STUDENT)
        assert code == 2 and out == ""
        line = error_line(err)
        assert f"runs {KNN_FILTER_STUDENT} is in use" in line and "nothing removed" in line
        after = snapshot(cache)
    assert after == {**before, f"runs/sst2/{KNN_FILTER_STUDENT}/.lock": 0}
    with FileLock(str(lock_path(acts_file(cache)))):
        code, _, err = cli(capsys, cache, "rm", ACTS_KEY)
    assert code == 2 and "in use" in error_line(err) and acts_file(cache).is_file()


@pytest.mark.slow  # a subprocess holds the lock: the real "another process"
def test_rm_refuses_while_another_process_holds_the_lock(capsys, cache):
    lock = lock_path(acts_file(cache))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from filelock import FileLock\n"
            f"with FileLock({str(lock)!r}):\n    print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(cache)
        code, out, err = cli(capsys, cache, "rm", ACTS_KEY)
        assert code == 2 and out == "" and f"acts {ACTS_KEY} is in use" in error_line(err)
        assert snapshot(cache) == before
        entries = {e["key"]: e for e in cli_json(capsys, cache, "ls", "acts")["entries"]}
        assert entries[ACTS_KEY]["locked"] is True
    finally:
        holder.communicate("", timeout=30)
    assert cli_json(capsys, cache, "rm", ACTS_KEY)["removed"][0]["key"] == ACTS_KEY
    assert not acts_file(cache).exists()


# --------------------------------------------------------------------------- gc


def test_gc_removes_unfinished_and_leftover_files_and_spares_the_rest(capsys, cache):
    pristine = snapshot(cache)
    partial = add_partial_acts(cache)
    orphan = add_unfinished_run(cache, "dead000000000001")
    crashed = add_unfinished_run(cache, "dead000000000002", checkpoint=False)
    training = add_unfinished_run(cache, "live000000000001")
    shards = [partial_path(shard_path(acts_file(cache), r, 2)) for r in (0, 1)]
    for shard in shards:
        shard.write_bytes(b"\1" * 500)
    stale = run_dir(cache, "sst2", CEILING) / "checkpoint.pt"  # a finished run's leftover
    stale.write_bytes(b"\2" * 700)
    staging = labels_root(cache, "sst2") / ".labels-crashed"
    staging.mkdir()
    (staging / "labels.csv").write_text("split,id,soft_label\n")
    os.utime(staging, (0, 0))  # untouched for longer than the grace period
    young = labels_root(cache, "sst2") / ".labels-writing"  # a writer may be in it right now
    young.mkdir()
    doomed = [partial, orphan, crashed, *shards, stale, staging]
    expected_bytes = sum(
        p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*"))
        for p in doomed
    )

    with FileLock(str(training / ".lock")):
        before = snapshot(cache)
        dry = cli_json(capsys, cache, "gc", "--dry-run")
        assert snapshot(cache) == before  # a dry run removes nothing
        assert dry["dry_run"] and {Path(i["path"]) for i in dry["items"]} == set(doomed)
        assert dry["size_bytes"] == expected_bytes
        assert [a["key"] for a in dry["in_use"]] == ["live000000000001"]
        reasons = {Path(i["path"]): i["reason"] for i in dry["items"]}
        assert reasons[orphan].startswith("orphaned checkpoint")
        assert reasons[shards[0]] == "shard of a finished extraction"
        assert reasons[stale] == "checkpoint of a finished run"

        code, out, err = cli(capsys, cache, "gc")
        assert code == 0, err
        assert "removed  runs    dead000000000001" in out
        assert "kept (in use)  runs live000000000001" in out
        assert out.splitlines()[-1].startswith(f"gc: {len(doomed)} item(s), ")
    assert not any(p.exists() for p in doomed)
    assert training.joinpath("checkpoint.pt").is_file() and young.is_dir()
    assert pristine.items() <= snapshot(cache).items()  # complete artifacts untouched
    # once its trainer lets go of the lock, the run it left is an orphan like any other
    (left,) = cli_json(capsys, cache, "gc", "--dry-run")["items"]
    assert left["key"] == "live000000000001" and left["reason"].startswith("orphaned checkpoint")


def test_gc_never_counts_complete_artifacts_and_waits_for_lockless_ones(cache):
    inventory = scan(cache)
    assert find_garbage(inventory).garbage == []
    sweep = cache / "sweeps" / "sst2" / "0000unfinished00"
    sweep.mkdir(parents=True)
    (sweep / "sweep.csv").write_text("layer\n")  # sweep.json (written last) never came
    fresh = find_garbage(scan(cache))
    assert fresh.garbage == []  # a sweep may be writing it right now
    later = find_garbage(scan(cache), now=sweep.stat().st_mtime + GRACE_S + 1)
    assert [g.path for g in later.garbage] == [sweep]


def test_a_key_in_two_kinds_needs_kind(capsys, cache):
    twin = cache / "sweeps" / "sst2" / CEILING  # a sweep whose key is also a run's
    shutil.copytree(cache / "sweeps" / "sst2" / "2ffc17dddbc29dd3", twin)
    code, _, err = cli(capsys, cache, "rm", CEILING)
    line = error_line(err)
    assert code == 2 and f"runs {CEILING}" in line and f"sweeps {CEILING}" in line
    assert "--kind" in line and twin.is_dir()
    (removed,) = cli_json(capsys, cache, "rm", "--kind", "sweeps", CEILING)["removed"]
    assert removed["kind"] == "sweeps" and not twin.exists()
    assert run_dir(cache, "sst2", CEILING).is_dir()


def test_gc_skips_what_was_locked_between_the_scan_and_the_removal(cache):
    from w2sprobe.inventory import collect

    orphan = add_unfinished_run(cache, "dead000000000001")
    found = find_garbage(scan(cache))
    assert [g.path for g in found.garbage] == [orphan]
    with FileLock(str(orphan / ".lock")):  # its trainer came back
        done = collect(found)
    assert done.garbage == [] and [g.path for g in done.skipped] == [orphan]
    assert (orphan / "checkpoint.pt").is_file()
