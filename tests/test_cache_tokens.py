"""Token-level files (``extract --tokens``) as a cache kind: ``cache ls tokens``, ``rm``,
``verify`` and ``gc`` on files made by the real one-pass extraction with a tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import run_cli
from filelock import FileLock
from test_extract import make_splits, request

from w2sprobe.cache import plan_extraction
from w2sprobe.cache.layout import lock_path, partial_path
from w2sprobe.cache.onepass import extract_pass
from w2sprobe.cache.tokens import DEFAULT_MAX_BYTES, TokenStore, parse_token_spec, plan_tokens
from w2sprobe.inventory import kind_roots, verify_path
from w2sprobe.workspace import rm_hint

SIZES = (8, 6, 4, 5)


def plans(model: Path, cache: Path, spec: str):
    base = plan_extraction(request(model, splits=make_splits(SIZES), layers="0,2"), cache)
    return base, plan_tokens(base, parse_token_spec(spec), cache, DEFAULT_MAX_BYTES)


@pytest.fixture(scope="module")
def built(tiny_models, tmp_path_factory) -> dict:
    """A workspace with one pooled file and the last-4-tokens file of the same pass."""
    cache = tmp_path_factory.mktemp("tokens") / "cache"
    base, tokens = plans(tiny_models["gpt2"], cache, "last:4")
    result = extract_pass([base], tokens)
    return {"cache": cache, "key": tokens.key, "acts": result.pooled[0].key}


@pytest.fixture
def ws(built, tmp_path) -> dict:
    """A fresh copy of the built workspace for one test."""
    cache = tmp_path / "cache"
    shutil.copytree(built["cache"], cache)
    path = next((cache / "tokens").rglob(f"{built['key']}.h5"))
    return {**built, "cache": cache, "path": path}


def cli(capsys, cache: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "cache", *args, "--cache-dir", str(cache))


def cli_json(capsys, cache: Path, *args: str) -> dict:
    code, out, err = cli(capsys, cache, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def make_partial(model: Path, cache: Path, monkeypatch) -> Path:
    """A last:2 token file whose extraction was killed after its first committed window."""
    from w2sprobe.cache import writer

    original, calls = writer.PartialActivationFile.write_window, []

    def dying(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between two commits
        return original(self, *args, **kwargs)

    base, tokens = plans(model, cache, "last:2")
    monkeypatch.setattr(writer.PartialActivationFile, "write_window", dying)
    with pytest.raises(KeyboardInterrupt):
        extract_pass([base], tokens)
    monkeypatch.setattr(writer.PartialActivationFile, "write_window", original)
    partial = partial_path(tokens.path)
    assert partial.exists() and not tokens.path.exists()
    return partial


def test_ls_lists_token_files_as_their_own_kind(capsys, ws):
    listed = cli_json(capsys, ws["cache"], "ls", "tokens")
    (entry,) = listed["entries"]
    # the reference: what the file itself holds, read through its own reader
    with TokenStore.open(ws["path"]) as store:
        rows = {split: len(store.ids(split)) for split in store.splits}
        layers = store.layers
    assert (entry["kind"], entry["key"], entry["path"]) == ("tokens", ws["key"], str(ws["path"]))
    assert ws["path"].parents[2] == kind_roots(ws["cache"])["tokens"]  # the writer's root
    assert entry["tokens"] == "last:4" and entry["layers"] == layers == [0, 2]
    assert entry["split_sizes"] == rows == dict(zip(make_splits(SIZES).splits, SIZES))
    assert entry["complete"] and entry["status"] == "complete" and entry["pooling"] is None
    assert entry["size_bytes"] == ws["path"].stat().st_size + lock_path(ws["path"]).stat().st_size
    everything = cli_json(capsys, ws["cache"], "ls")
    by_kind = {(e["kind"], e["key"]) for e in everything["entries"]}
    assert by_kind == {("acts", ws["acts"]), ("tokens", ws["key"])}
    assert everything["totals"]["tokens"]["count"] == 1
    code, out, _ = cli(capsys, ws["cache"], "ls")
    assert code == 0 and "token-level activation files (1, " in out
    (line,) = [x for x in out.splitlines() if x.startswith(ws["key"])]
    assert "last:4" in line.split() and "8/6/4/5" in line.split()


def test_verify_passes_a_sound_file_and_names_the_rm_of_a_corrupt_one(capsys, ws):
    code, out, _ = cli(capsys, ws["cache"], "verify")
    assert code == 0, out
    assert f"ok  tokens {ws['path']}" in out.splitlines()
    assert verify_path(ws["path"]).kind == "tokens" and verify_path(ws["path"]).status == "ok"
    # a truncated copy under another key: unreadable
    truncated = ws["path"].with_name("0123456789abcdef.h5")
    truncated.write_bytes(ws["path"].read_bytes()[:4096])
    # lengths past K and an uncommitted window, as written by a broken writer
    with h5py.File(ws["path"], "r+") as handle:
        handle["test"]["lengths"][0] = 5
        handle["val"].attrs.modify("committed_rows", np.int64(2))
    code, out, _ = cli(capsys, ws["cache"], "verify", "--json")
    assert code == 1
    bad = {a["key"]: a for a in json.loads(out)["artifacts"] if a["status"] == "bad"}
    assert sorted(bad) == sorted([ws["key"], "0123456789abcdef"])
    assert bad[ws["key"]]["problems"] == [
        "val: only 2 of 4 rows committed",
        "test/lengths: values outside 0..4",
    ]  # in the file's split order
    assert bad["0123456789abcdef"]["problems"][0].startswith("cannot be opened")
    code, out, _ = cli(capsys, ws["cache"], "verify")
    for key in bad:
        fix = f"    fix: {rm_hint(ws['cache'], key)}"
        assert out.splitlines().count(fix) == 1 and "w2sprobe cache rm " + key in fix
    assert out.splitlines()[-1] == "verify: 1 ok or in use, 2 bad"  # the pooled file is fine


def test_verify_flags_layers_of_the_wrong_shape(capsys, ws):
    with h5py.File(ws["path"], "r+") as handle:
        del handle["weak_train"]["layer_002"]
        handle["weak_train"].create_dataset("layer_002", data=np.zeros((8, 16), np.float16))
    check = verify_path(ws["path"])
    assert check.status == "bad" and check.problems == [
        "weak_train/layer_002: shape (8, 16), expected (8, 4, 16)"
    ]
    with h5py.File(ws["path"], "r+") as handle:
        handle.attrs.modify("tokens", "2:5")  # 3 slots, where the file holds 4
    problems = verify_path(ws["path"]).problems
    assert (
        len(problems) == 4
        and problems[0] == "weak_train: token_ids has 4 slots, --tokens 2:5 asks for 3"
    )


def test_rm_removes_a_token_file_under_its_lock(capsys, ws):
    lock = lock_path(ws["path"])
    held = FileLock(str(lock), timeout=0)
    held.acquire()
    try:
        code, _, err = cli(capsys, ws["cache"], "rm", ws["key"][:6])
    finally:
        held.release()
    assert code == 2 and err.startswith("error: tokens ") and "in use" in err
    assert len(err.strip().splitlines()) == 1 and ws["path"].exists()
    (removed,) = cli_json(capsys, ws["cache"], "rm", "--kind", "tokens", ws["key"])["removed"]
    assert (removed["kind"], removed["key"]) == ("tokens", ws["key"])
    assert not ws["path"].exists() and not lock.exists()
    assert [e["kind"] for e in cli_json(capsys, ws["cache"], "ls")["entries"]] == ["acts"]


def test_gc_removes_a_dead_writers_partial_token_file(capsys, ws, tiny_models, monkeypatch):
    partial = make_partial(tiny_models["gpt2"], ws["cache"], monkeypatch)
    (entry,) = [
        e for e in cli_json(capsys, ws["cache"], "ls", "tokens")["entries"] if not e["complete"]
    ]
    assert entry["status"] == "partial" and entry["path"] == str(partial)
    with FileLock(str(lock_path(partial.with_name(partial.name.removesuffix(".partial"))))):
        kept = cli_json(capsys, ws["cache"], "gc")
    assert kept["items"] == [] and [a["status"] for a in kept["in_use"]] == ["extracting"]
    done = cli_json(capsys, ws["cache"], "gc")
    (item,) = done["items"]
    assert (item["kind"], item["path"]) == ("tokens", str(partial))
    assert item["reason"] == "partial extraction nobody is running (its lock is free)"
    assert not partial.exists() and ws["path"].exists()
    assert cli(capsys, ws["cache"], "verify")[0] == 0


def test_verify_flags_padding_that_disagrees_with_the_lengths(ws):
    with TokenStore.open(ws["path"]) as store:
        short = int(np.argmin(store.lengths("weak_train")))
        assert store.lengths("weak_train")[short] < 4  # a row shorter than K (padded)
    with h5py.File(ws["path"], "r+") as handle:
        handle["weak_train"]["lengths"][short] += 1  # claims a padding slot as a token
    check = verify_path(ws["path"])
    assert check.problems == ["weak_train/positions: padding disagrees with lengths near row 0"]
