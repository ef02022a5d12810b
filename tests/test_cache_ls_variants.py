"""``cache ls`` tells apart artifacts that differ in what made them.

Two activation files of one model and dataset that differ only in max length used to print as
two identical rows (``minilm sst2 0..6 (7) 350``); now the fields that make an activation
file's key (split sizes, pooling, max length, compute and stored dtype) are columns and
``--json`` fields, and where two artifacts still look the same, a ``differs in`` column names
the inputs that set them apart (a seed's dataset fingerprint, a training option).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
from conftest import run_cli

from w2sprobe.cache.layout import activation_path

FIXTURE = Path(__file__).parent / "fixtures" / "cache_v1" / "cache"
ACTS_KEY = "7f3d724f2745dbd6"


@pytest.fixture
def cache(tmp_path) -> Path:
    target = tmp_path / "cache"
    shutil.copytree(FIXTURE, target)
    return target


def variant_of_acts(cache: Path, key: str, **changes) -> Path:
    """A copy of the fixture's activation file under ``key`` with its manifest changed."""
    source = activation_path(cache, "tiny-llama", "sst2", ACTS_KEY)
    target = source.with_name(f"{key}.h5")
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as handle:
        manifest = json.loads(handle.attrs["manifest"])
        manifest.update(changes)
        handle.attrs["manifest"] = json.dumps(manifest, sort_keys=True)
        handle.attrs["key"] = key
        for name, value in changes.items():
            if name in handle.attrs:
                handle.attrs[name] = value
    return target


def ls(capsys, cache: Path, *args: str) -> str:
    code, out, err = run_cli(capsys, "cache", "ls", *args, "--cache-dir", str(cache))
    assert code == 0, err
    return out


def row(out: str, key: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(key))


def test_activation_files_that_differ_in_max_length_look_different(capsys, cache):
    variant_of_acts(cache, "aaaa111122223333", max_length=128)
    out = ls(capsys, cache, "acts")
    header = out.splitlines()[1]
    assert "max len" in header and "pool" in header and "stored" in header
    ours, theirs = row(out, ACTS_KEY), row(out, "aaaa111122223333")
    assert ours.split()[1:] != theirs.split()[1:]  # the rows differ beyond their keys
    assert " 512 " in ours and " 128 " in theirs
    assert "differs in" not in header  # the columns already tell them apart
    entries = {
        e["key"]: e for e in json.loads(ls(capsys, cache, "acts", "--json"))["entries"]
    }
    for key, length in ((ACTS_KEY, 512), ("aaaa111122223333", 128)):
        entry = entries[key]
        assert entry["max_length"] == length and entry["pooling"] == "last"
        assert entry["split_sizes"] == {"weak_train": 40, "strong_train": 40, "val": 20, "test": 30}
        assert (entry["compute_dtype"], entry["store_dtype"]) == ("float32", "float16")
        assert entry["dataset_fingerprint"] and entry["model_revision"]


def test_files_alike_in_every_column_name_what_differs(capsys, cache):
    """Another seed gives other splits: the same sizes, another dataset fingerprint."""
    variant_of_acts(cache, "bbbb111122223333", dataset_fingerprint="0123456789abcdef")
    out = ls(capsys, cache, "acts")
    assert "differs in" in out.splitlines()[1]
    assert "dataset_fingerprint=01234567" in row(out, "bbbb111122223333")
    entries = {
        e["key"]: e for e in json.loads(ls(capsys, cache, "acts", "--json"))["entries"]
    }
    assert entries["bbbb111122223333"]["variant"] == {"dataset_fingerprint": "0123456789abcdef"}
    assert entries[ACTS_KEY]["variant"]["dataset_fingerprint"] != "0123456789abcdef"


def test_runs_alike_in_every_column_name_the_training_option_that_differs(capsys, cache):
    runs = cache / "runs" / "sst2"
    weak = next(
        folder
        for folder in sorted(runs.iterdir())
        if json.loads((folder / "metrics.json").read_text()).get("stage") == "weak"
    )
    copy = runs / "cccc111122223333"
    shutil.copytree(weak, copy)
    for name in ("manifest.json", "metrics.json"):
        path = copy / name
        if path.is_file():
            data = json.loads(path.read_text())
            data["key"] = copy.name
            data["config"]["minibatch"] = 8
            path.write_text(json.dumps(data))
    out = ls(capsys, cache, "runs")
    header = out.splitlines()[1].split()
    assert "seed" in header and "differs" in header
    assert "config.minibatch=8" in row(out, copy.name)
    theirs = json.loads((weak / "metrics.json").read_text())["config"]["minibatch"]
    assert f"config.minibatch={theirs}" in row(out, weak.name)
    entries = json.loads(ls(capsys, cache, "runs", "--json"))["entries"]
    entry = next(e for e in entries if e["key"] == copy.name)
    assert entry["variant"] == {"config.minibatch": 8} and entry["seed"] == 0
    assert entry["config"]["minibatch"] == 8


def test_nothing_here_names_the_absolute_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ls(capsys, Path("cache")).strip() == f"no artifacts under {tmp_path / 'cache'}"
    code, out, _ = run_cli(capsys, "cache", "ls")
    assert out.strip() == f"no artifacts under {tmp_path / 'cache'}"
    code, out, err = run_cli(capsys, "cache", "verify")  # no cache at all: an error, not a pass
    assert code == 2 and err.startswith(f"error: no cache at {tmp_path / 'cache'}")
    (tmp_path / "cache").mkdir()
    code, out, _ = run_cli(capsys, "cache", "verify")
    assert code == 0 and out.strip() == f"no artifacts under {tmp_path / 'cache'}"
    code, _, err = run_cli(capsys, "cache", "rm", "abcdef12")
    assert code == 2 and f"no artifact under {tmp_path / 'cache'} has key" in err
    code, _, err = run_cli(capsys, "report")
    assert code == 2 and f"no results found in {tmp_path / 'cache' / 'runs'}:" in err
