"""The README's contracts under hostile use (issue 28): nothing stale, nothing lost.

* crash safety: a kill at a label set's rename, or while a finished sweep or report is written
  again, never leaves a file that looks complete, nor anything that blocks the next command;
* corruption is detected, not consumed: every reader checks what the writer recorded, and
  ``cache verify`` checks every kind;
* a full disk, bad data files and bad options are one ``error:`` line, before any work.

Kills are real (``SIGKILL`` in a subprocess at the write or rename the writer makes); a full
disk is a real small tmpfs where the test may mount one (root), else ``ENOSPC`` raised at the
same write points — never skipped.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, run_cli, tiny_bert_workspace

import w2sprobe
from w2sprobe.cache import ActivationStore, list_entries
from w2sprobe.inventory import scan
from w2sprobe.labels import LabelSet, find_label_set, list_label_sets, save_label_set

REPO = Path(w2sprobe.__file__).resolve().parents[1]
FIXTURE_V2 = Path(__file__).parent / "fixtures" / "cache_v2"


def error_line(err: str) -> str:
    """The one line of a failed command's stderr that says what is wrong (progress lines on
    stderr before it are fine; a traceback or a second error line is not)."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    return errors[0]


def python(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter on this checkout's code."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )


#: Prepended to a subprocess script: ``kill_when(test)`` makes the process SIGKILL itself at the
#: first rename / replace whose source path passes ``test`` (what ``strace -e inject=rename:
#: signal=KILL`` does, without strace).
KILLER = """
import os, signal
from pathlib import Path
def kill_when(test):
    for name in ("rename", "replace"):
        real = getattr(os, name)
        def patched(src, dst, *a, _real=real, **k):
            if test(Path(src)):
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(src, dst, *a, **k)
        setattr(os, name, patched)
"""


@pytest.fixture
def ws(tmp_path, monkeypatch, shared_data, tiny_models, capsys) -> Path:
    """A workspace: the tiny BERT's layers 1..2 on sst2 and a stored 'weak' label set."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    make_workspace(workspace, tiny_models, capsys)
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(shared_data))
    return workspace


def make_workspace(workspace: Path, tiny_models, capsys) -> None:
    """The tiny BERT's layers 1..2 on sst2 (200 / 40 / 60 rows) and a noisy 'weak' label set."""
    settings = f'data_dir = "{SHARED_DATA}"\nlayer = 2\n'
    tiny_bert_workspace(capsys, workspace, tiny_models, "1,2", (200, 40, 60), settings)


def relabeled(cache: Path) -> dict:
    (meta,) = [m for m in list_label_sets(cache, "sst2") if m["name"] == "knn-relabel@weak"]
    return meta


# --------------------------------------------------------------------------- crash safety


@pytest.mark.slow
def test_a_kill_at_the_label_set_rename_never_blocks_that_set(ws, capsys):
    """``strace -e inject=rename:signal=KILL w2sprobe relabel ...``, then the same command:
    the rerun used to exit 2 forever ("label set ... is unreadable"), and neither ``cache rm``
    nor ``cache gc`` could clear it."""
    killed = python(
        KILLER
        + "kill_when(lambda p: p.name.startswith('.labels-'))\n"
        + "from w2sprobe.cli.app import main\n"
        + "main(['relabel', '--probe', 'knn', '--k', '10'])\n",
        ws,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = list((ws / "c" / "labels" / "sst2").glob(".*"))
    assert len(leftovers) == 1 and leftovers[0].is_dir()
    # Nothing reads it as a set; cache ls and gc know it for what it is.
    assert [m["name"] for m in list_label_sets(ws / "c", "sst2")] == ["weak"]
    code, out, err = run_cli(capsys, "cache", "ls", "labels")
    assert code == 0 and "leftover" in out and str(leftovers[0]) in out, err
    code, out, _ = run_cli(capsys, "cache", "gc", "--dry-run", "--json")
    assert [item["path"] for item in json.loads(out)["items"]] == [str(leftovers[0])]
    # The same command again builds the set (and clears the dead writer's folder).
    code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "10", "--json")
    assert code == 0, err
    key = json.loads(out)["key"]
    assert find_label_set(ws / "c", "sst2", "knn-relabel@weak").key == key
    assert not list((ws / "c" / "labels" / "sst2").glob(".*"))


def test_label_sets_follow_the_umask(tmp_path):
    """Label-set folders were renamed ``mkdtemp`` folders (0700): other users of a shared cache
    could not read them, while every other artifact follows the umask."""
    ids = {"test": np.array(["a", "b"])}
    old = os.umask(0o022)
    try:
        folder = save_label_set(LabelSet("weak", "toy", ids, {"test": [0.1, 0.9]}), tmp_path)
        os.umask(0o002)
        other = save_label_set(LabelSet("other", "toy", ids, {"test": [0.2, 0.8]}), tmp_path)
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert (folder / "labels.csv").stat().st_mode & 0o777 == 0o644
    assert other.stat().st_mode & 0o777 == 0o775


KILL_IN_SAVEFIG = """
import os, signal
import matplotlib.figure
def savefig(self, fname, *args, **kwargs):  # dies half-way through writing the image
    with open(fname, "wb") as fh:
        fh.write(b"\\x89PNG half")
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
matplotlib.figure.Figure.savefig = savefig
"""


@pytest.mark.slow
def test_a_kill_while_a_sweep_is_written_again_leaves_no_complete_looking_torn_sweep(tmp_path):
    """Rerunning ``sweep`` over a finished one rewrote its files in place: a kill left a torn
    ``sweep.png`` / ``sweep.csv`` in a sweep ``cache ls`` called complete."""
    from w2sprobe.report.sweep_files import sweep_dir, verify_sweep, write_sweep

    cache = tmp_path / "cache"
    folder = sweep_dir(cache, "sst2", "2ffc17dddbc29dd3")
    rows = [
        {"dataset": "sst2", "probe": "knn", "layer": layer, "k": k, "labels": "weak", "auc": 0.6,
         "auc_minus_labels_auc": 0.01 * k, "sweep_key": "2ffc17dddbc29dd3"}
        for layer in (1, 2) for k in (5, 10)
    ]  # fmt: skip
    write_sweep(rows, folder, "k")
    assert verify_sweep(folder) == []
    killed = python(
        KILL_IN_SAVEFIG
        + "from w2sprobe.report.sweep_files import write_sweep\n"
        + f"write_sweep({rows!r}, __import__('pathlib').Path({str(folder)!r}), 'k')\n",
        tmp_path,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (sweep,) = scan(cache).of("sweeps")
    assert not sweep.complete  # unfinished until sweep.json is back, never complete and torn
    (torn,) = folder.glob(".sweep.png.*.tmp")  # the dead writer's temporary file: gc's
    assert [path for path, _ in sweep.leftovers] == [torn]
    write_sweep(rows, folder, "k")  # the rerun finishes it
    assert scan(cache).of("sweeps")[0].complete and verify_sweep(folder) == []


@pytest.mark.slow
def test_a_kill_while_a_report_is_written_again_leaves_no_complete_looking_torn_report(
    tmp_path, capsys
):
    """The same for ``report``: a torn figure in a report that ``cache ls`` called complete."""
    from w2sprobe.report.files import verify_report

    cache = tmp_path / "cache"
    shutil.copytree(FIXTURE_V2 / "cache", cache)
    code, out, err = run_cli(capsys, "report", "--cache-dir", str(cache), "--n-boot", "0",
                             "--format", "md", "--json")  # fmt: skip
    assert code == 0, err
    folder = Path(json.loads(out)["out_dir"])
    assert verify_report(folder) == []
    killed = python(
        KILL_IN_SAVEFIG
        + "from w2sprobe.cli.app import main\n"
        + f"main(['report', '--cache-dir', {str(cache)!r}, '--n-boot', '0', '--format', 'md'])\n",
        tmp_path,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (report,) = scan(cache).of("reports")
    assert not report.complete
    code, out, err = run_cli(capsys, "cache", "verify", "--cache-dir", str(cache))
    assert code == 0, out  # a report younger than the grace period may be being written
    code, _, err = run_cli(capsys, "report", "--cache-dir", str(cache), "--n-boot", "0",
                           "--format", "md")  # fmt: skip
    assert code == 0, err
    assert scan(cache).of("reports")[0].complete and verify_report(folder) == []


# --------------------------------------------------------------------------- corruption


def cut_rows(path: Path, keep: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: keep + 1]))


def test_a_label_set_that_lost_rows_is_refused_not_trained_on(ws, capsys):
    """``labels.csv`` cut to 30 strong_train rows: ``probe --labels knn-relabel@weak`` trained
    on the 30 and stored the result under the intact key."""
    code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "10", "--json")
    assert code == 0, err
    key = json.loads(out)["key"]
    table = ws / "c" / "labels" / "sst2" / key / "labels.csv"
    cut_rows(table, 30)
    runs_before = sorted((ws / "c").rglob("metrics.json"))
    code, out, err = run_cli(capsys, "probe", "--probe", "knn", "--labels", "knn-relabel@weak")
    line = error_line(err)
    assert code == 2 and out == ""
    assert f"label set knn-relabel@weak ({key}) is damaged" in line
    assert "labels.csv has 30 strong_train rows, its manifest says" in line
    assert line.endswith(f"remove it with: w2sprobe cache rm {key} --cache-dir {ws / 'c'}")
    assert sorted((ws / "c").rglob("metrics.json")) == runs_before
    # the way out works
    code, _, err = run_cli(capsys, "cache", "rm", key, "--cache-dir", "c")
    assert code == 0, err
    code, _, err = run_cli(capsys, "probe", "--probe", "knn", "--labels", "knn-relabel@weak")
    assert code == 0, err


@pytest.mark.parametrize("command", ["probe", "filter"])
def test_a_label_set_cut_mid_line_is_one_error_line(ws, capsys, command):
    """Cut mid-line, ``probe``/``filter`` crashed with a TypeError in labels.py."""
    code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "10", "--json")
    key = json.loads(out)["key"]
    table = ws / "c" / "labels" / "sst2" / key / "labels.csv"
    table.write_bytes(table.read_bytes()[: len(table.read_bytes()) // 2].rsplit(b",", 1)[0])
    code, out, err = run_cli(capsys, command, "--probe", "knn", "--labels", "knn-relabel@weak")
    line = error_line(err)
    assert code == 2 and "is damaged: labels.csv is cut or garbled at line" in line
    assert f"w2sprobe cache rm {key}" in line


def test_a_run_whose_predictions_lost_rows_or_changed_is_refused(tmp_path):
    """A run records the rows and SHA-256 of its predictions; reading them checks both (a
    weak run's predictions become the weak labels every student trains on)."""
    from w2sprobe.runs import SplitPredictions, load_run, write_metrics, write_predictions

    folder = tmp_path / "cache" / "runs" / "sst2" / "abcd1234abcd1234"
    folder.mkdir(parents=True)
    ids = np.array([f"id{i}" for i in range(50)])
    write_predictions(folder, {"test": SplitPredictions(ids, np.full(50, 0.25), np.zeros(50))})
    write_metrics(folder, {"key": folder.name, "stage": "weak", "auc": 0.5})
    table = (folder / "predictions.csv").read_text()
    assert len(load_run(folder).predictions()["test"].ids) == 50
    cut_rows(folder / "predictions.csv", 30)
    with pytest.raises(w2sprobe.errors.UsageError) as cut:
        load_run(folder).predictions()
    assert "30 test rows, its metrics.json says 50" in str(cut.value)
    assert str(cut.value).endswith(
        f"w2sprobe cache rm {folder.name} --cache-dir {tmp_path / 'cache'}"
    )
    (folder / "predictions.csv").write_text(table.replace("0.25", "0.75", 1))
    with pytest.raises(w2sprobe.errors.UsageError, match="does not match the SHA-256"):
        load_run(folder).predictions()


def test_cache_verify_checks_every_kind(tmp_path, capsys):
    """``cache verify`` checked ``.h5`` files only: a truncated labels.csv, metrics.json,
    report.json or sweep.json passed with exit 0."""
    from w2sprobe.report.sweep_files import write_sweep

    cache = tmp_path / "cache"
    shutil.copytree(FIXTURE_V2 / "cache", cache)
    rows = [
        {"dataset": "sst2", "probe": "knn", "layer": 1, "k": k, "auc": 0.6,
         "auc_minus_labels_auc": 0.0, "sweep_key": "5eed5eed5eed5eed"}
        for k in (5, 10)
    ]  # fmt: skip
    write_sweep(rows, cache / "sweeps" / "sst2" / "5eed5eed5eed5eed", "k")
    code, _, err = run_cli(capsys, "report", "--cache-dir", str(cache), "--n-boot", "0",
                           "--format", "json")  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(capsys, "cache", "verify", "--cache-dir", str(cache), "--json")
    assert code == 0 and json.loads(out)["ok"], out
    kinds = {a["kind"] for a in json.loads(out)["artifacts"]}
    assert kinds == {"acts", "runs", "labels", "sweeps", "reports"}

    inv = scan(cache)
    label_set = inv.of("labels")[0].path
    run = next(a.path for a in inv.of("runs"))
    report = inv.of("reports")[0].path
    sweep = inv.of("sweeps")[0].path
    damaged = [
        label_set / "labels.csv",
        run / "metrics.json",
        report / "report.json",
        sweep / "sweep.json",
    ]
    for path in damaged:
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    code, out, err = run_cli(capsys, "cache", "verify", "--cache-dir", str(cache), "--json")
    result = json.loads(out)
    assert code == 1 and not result["ok"]
    bad = {a["path"]: a for a in result["artifacts"] if a["status"] == "bad"}
    assert set(bad) == {str(p.parent) for p in damaged}
    assert all(
        a["fix"] == f"w2sprobe cache rm {a['key']} --cache-dir {cache}" for a in bad.values()
    )
    code, out, _ = run_cli(capsys, "cache", "verify", "--cache-dir", str(cache))
    assert code == 1 and out.count("BAD") == 4 and "fix: w2sprobe cache rm" in out


def test_cache_verify_of_a_missing_cache_is_an_error(capsys, tmp_path):
    code, out, err = run_cli(capsys, "cache", "verify", "--cache-dir", str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert error_line(err) == (
        f"error: no cache at {tmp_path / 'nope'}: nothing to verify (check --cache-dir)"
    )


def test_a_truncated_activation_file_names_the_cache_rm_that_clears_it(tmp_path, capsys):
    cache = tmp_path / "cache"
    shutil.copytree(FIXTURE_V2 / "cache", cache)
    (acts,) = scan(cache).of("acts")
    acts.path.write_bytes(acts.path.read_bytes()[:4000])
    code, out, _ = run_cli(capsys, "cache", "verify", "--cache-dir", str(cache))
    assert code == 1 and "truncated or corrupt" in out
    assert f"fix: w2sprobe cache rm {acts.key} --cache-dir {cache}" in out
    with pytest.raises(w2sprobe.errors.UsageError, match=f"w2sprobe cache rm {acts.key}"):
        ActivationStore.open(acts.path)


@pytest.mark.parametrize(
    "cache",
    [
        FIXTURE_V2 / "cache",
        Path(__file__).parent / "fixtures" / "cache_v1" / "cache",
        REPO / "docs" / "results" / "mpnet" / "cache",
        REPO / "docs" / "results" / "smollm2" / "cache",
    ],
    ids=["cache_v2", "cache_v1", "docs-mpnet", "docs-smollm2"],
)
def test_artifacts_from_before_checksums_still_read_and_verify(cache, capsys, tmp_path):
    """No checksum recorded: counts and parsing are checked, and they pass."""
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    code, out, err = run_cli(capsys, "cache", "verify", "--cache-dir", str(copy), "--json")
    assert code == 0 and json.loads(out)["ok"], out
    for folder in (copy / "labels").glob("*/*"):
        find_label_set(copy, folder.parent.name, folder.name)


# --------------------------------------------------------------------------- disk full


@contextmanager
def small_disk(path: Path, size: str = "64m"):
    """A tmpfs of ``size`` at ``path`` (yields True), or — where mounting is not allowed —
    just the folder (yields False: the test then makes the write points raise ENOSPC)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                capture_output=True,
            ).returncode
            == 0
        )
    except OSError:
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` until ``leave`` bytes are free (0: until the filesystem refuses)."""
    filler = disk / "filler"
    with filler.open("wb") as fh:
        try:
            while (free := shutil.disk_usage(disk).free) > leave:
                fh.write(b"\0" * min(1 << 20, max(4096, free - leave)))
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def no_leftovers(cache: Path) -> None:
    """No temporary file or staging folder anywhere under ``cache``."""
    names = [p.name for p in cache.rglob("*")]
    assert not [n for n in names if n.endswith(".tmp") or ".staging-" in n], names


def test_disk_full_while_writing_a_label_set_is_one_line_and_the_rerun_works(
    tmp_path, capsys, monkeypatch, shared_data, tiny_models
):
    disk = tmp_path / "disk"
    with small_disk(disk) as mounted:
        make_workspace(disk, tiny_models, capsys)
        monkeypatch.chdir(disk)
        if mounted:
            filler = fill(disk)
        else:  # the first write (the probe's params.npz, in its staging folder) fails
            monkeypatch.setattr("w2sprobe.atomic.open", enospc, raising=False)
        code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "10")
        line = error_line(err)
        assert code == 2 and line.startswith("error: no space left on device while writing ")
        # relabel writes the probe it fit first (a set names a probe entry that exists)
        assert "probes/sst2/" in line and "params.npz" in line and "needed" in line
        no_leftovers(disk / "c")
        assert [m["name"] for m in list_label_sets(disk / "c", "sst2")] == ["weak"]
        assert not list((disk / "c").glob("probes/*/*"))
        if mounted:
            filler.unlink()
        else:
            monkeypatch.undo()
            monkeypatch.chdir(disk)
        code, _, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "10")
        assert code == 0, err
        relabeled(disk / "c")


def test_disk_full_while_extracting_is_one_line_and_the_rerun_resumes(
    tmp_path, capsys, monkeypatch, shared_data, tiny_models
):
    disk = tmp_path / "disk"
    with small_disk(disk, "4m") as mounted:
        monkeypatch.chdir(disk)
        args = ["extract", "--strong", str(tiny_models["bert"]), "--layers", "all",
                "--n-train", "2000", "--n-val", "100", "--n-test", "400",
                "--cache-dir", "c", "--data-dir", str(shared_data)]  # fmt: skip
        if mounted:
            filler = fill(disk, leave=64 << 10)
        else:
            import h5py

            monkeypatch.setattr(h5py.Dataset, "__setitem__", enospc)
        code, _, err = run_cli(capsys, *args)
        line = error_line(err)
        assert code == 2 and line.startswith("error: no space left on device while writing ")
        assert ".h5.partial" in line
        assert not [e for e in list_entries(disk / "c") if e.complete]
        if mounted:
            filler.unlink()
        else:
            monkeypatch.undo()
            monkeypatch.chdir(disk)
        code, _, err = run_cli(capsys, *args)
        assert code == 0, err
        assert [e.complete for e in list_entries(disk / "c")] == [True]


def test_disk_full_while_writing_a_report_is_one_line(tmp_path, capsys, monkeypatch):
    disk = tmp_path / "disk"
    with small_disk(disk, "8m") as mounted:
        shutil.copytree(FIXTURE_V2 / "cache", disk / "cache")
        if mounted:
            filler = fill(disk, leave=8 << 10)
        else:
            monkeypatch.setattr("matplotlib.figure.Figure.savefig", enospc)
        args = ["report", "--cache-dir", str(disk / "cache"), "--n-boot", "0", "--format", "md"]
        code, _, err = run_cli(capsys, *args)
        line = error_line(err)
        assert code == 2 and line.startswith("error: no space left on device while writing ")
        no_leftovers(disk / "cache")
        assert not [r for r in scan(disk / "cache").of("reports") if r.complete]
        if mounted:
            filler.unlink()
        else:
            monkeypatch.undo()
        code, _, err = run_cli(capsys, *args)
        assert code == 0, err


def test_disk_full_while_checkpointing_is_one_line_and_the_rerun_trains(
    tmp_path, capsys, monkeypatch, shared_data
):
    disk = tmp_path / "disk"
    with small_disk(disk, "8m") as mounted:
        shutil.copytree(FIXTURE_V2, disk / "ws")
        monkeypatch.chdir(disk / "ws")
        args = ["train", "ceiling", "--epochs", "2", "--data-dir", str(shared_data)]
        if mounted:
            filler = fill(disk, leave=24 << 10)  # the manifest fits, the checkpoint does not
        else:
            monkeypatch.setattr("torch.save", enospc)
        code, _, err = run_cli(capsys, *args)
        line = error_line(err)
        assert code == 2 and line.startswith("error: no space left on device while writing ")
        assert "checkpoint.pt" in line
        no_leftovers(disk / "ws" / "cache")
        if mounted:
            filler.unlink()
        else:
            monkeypatch.undo()
            monkeypatch.chdir(disk / "ws")
        code, _, err = run_cli(capsys, *args)
        assert code == 0, err


# --------------------------------------------------------------------------- bad input


BAD_FILES = {
    # name: (content, what the one error line must say)
    "maybe.jsonl": (
        "".join(json.dumps({"text": f"t{i}", "label": "maybe" if i == 7 else i % 2}) + "\n"
                for i in range(20)),
        "field 'label' mixes numbers and texts: row 8 has \"maybe\"",
    ),
    "utf8.jsonl": (
        b"".join((json.dumps({"text": f"t{i}", "label": i % 2}).encode().replace(b"t5", b"t\xff5")
                  + b"\n") for i in range(20)),
        "line 6 is not valid UTF-8 (byte 0xff at column 12)",
    ),
    "malformed.jsonl": (
        "".join((json.dumps({"text": f"t{i}", "label": i % 2}) if i != 9
                 else '{"text": "oops", "label": 1') + "\n" for i in range(20)),
        "line 10 is not valid JSON",
    ),
    "utf8.csv": (
        b"text,label\n" + b"".join((b"bad \xfe" if i == 5 else f"t{i}".encode())
                                   + f",{i % 2}\n".encode() for i in range(20)),
        "line 7 is not valid UTF-8 (byte 0xfe at column 5)",
    ),
    "garbage.parquet": (b"not a parquet file\n" * 10, "Parquet magic bytes not found"),
    "empty.jsonl": ("", "the file is empty"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_data_file_is_one_line_naming_file_and_line(tmp_path, capsys, name):
    content, says = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out, err = run_cli(capsys, "data", "show", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err  # nothing from datasets' own logging either
    line = error_line(err)
    assert str(path) in line and says in line, line


# --------------------------------------------------------------------------- options


def test_an_unavailable_knn_backend_fails_before_the_weak_model_trains(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("cuml") is not None:  # then the CPU device is what is refused
        expected = "the cuml backend needs a CUDA device"
    else:
        expected = "cuML is not installed"
    for args in (["relabel", "--probe", "knn"], ["probe", "--probe", "topo"], ["run"]):
        code, out, err = run_cli(
            capsys, *args, "--knn-backend", "cuml", "--device", "cpu",
            "--cache-dir", str(tmp_path / "c"),
        )  # fmt: skip
        assert code == 2 and expected in error_line(err) and err.count("\n") == 1, (args, err)
        assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("shard", ["3/2", "0/0", "x"])
def test_a_bad_shard_fails_before_the_run_banner(tmp_path, capsys, shard):
    code, out, err = run_cli(capsys, "run", "--shard", shard, "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert error_line(err).startswith("error: --shard must be i/n")


def test_report_out_naming_a_file_fails_before_the_bootstrap(tmp_path, capsys):
    cache = tmp_path / "cache"
    shutil.copytree(FIXTURE_V2 / "cache", cache)
    target = tmp_path / "existing.txt"
    target.write_text("keep me")
    code, out, err = run_cli(capsys, "report", "--cache-dir", str(cache), "--out", str(target))
    assert code == 2 and out == "" and err.count("\n") == 1  # no bootstrap progress before it
    assert error_line(err) == f"error: --out {target} is a file; give a folder for the report"
    assert target.read_text() == "keep me" and not (cache / "reports").exists()


def test_an_empty_label_set_name_is_refused(ws, capsys):
    code, _, err = run_cli(capsys, "relabel", "--probe", "knn", "--name", "")
    assert code == 2 and "--name is empty" in error_line(err)
    assert [m["name"] for m in list_label_sets(ws / "c", "sst2")] == ["weak"]
