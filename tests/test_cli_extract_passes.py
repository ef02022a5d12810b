"""``w2sprobe extract --pool mean,last`` and ``--tokens``: files, plans and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli_extract import extract_args, run, snapshot

from w2sprobe.cache import ActivationStore
from w2sprobe.cache.tokens import TokenStore


@pytest.fixture
def workdir(tmp_path, monkeypatch, shared_data):
    """An empty working directory reading sst2 from the offline mirror."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(shared_data))
    return tmp_path


def extracted(capsys, *args) -> dict:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_two_poolings_in_one_pass_give_the_single_pool_files(capsys, workdir, tiny_models):
    model = tiny_models["gpt2"]
    both = extracted(capsys, *extract_args(model, "--layers", "1,3", "--pool", "mean,last"))
    assert [f["stage"] for f in both["files"]] == ["extract:1,3@mean", "extract:1,3@last"]
    assert not any(f["cache_hit"] for f in both["files"])
    for made in both["files"]:
        pooling = made["stage"].rsplit("@", 1)[1]
        args = extract_args(model, "--layers", "1,3", "--pool", pooling, "--cache-dir", "ref")
        single = extracted(capsys, *args)
        assert single["key"] == made["key"] and not single["cache_hit"]
        with ActivationStore.open(made["path"]) as a, ActivationStore.open(single["path"]) as b:
            assert a.manifest == b.manifest and a.attrs["pooling"] == pooling
            for split in b.splits:
                for layer in (1, 3):
                    assert np.array_equal(a.get(split, layer), b.get(split, layer))
    # every file of the pass is a plain cache hit for a single-pool extraction now
    again = extracted(capsys, *extract_args(model, "--layers", "1,3", "--pool", "last"))
    assert again["cache_hit"] and again["key"] == both["files"][1]["key"]


def test_plan_lists_each_pooling_and_only_the_missing_one_runs(capsys, workdir, tiny_models):
    model = tiny_models["gpt2"]
    extracted(capsys, *extract_args(model, "--layers", "2", "--pool", "mean"))
    code, out, err = run(
        capsys,
        *extract_args(model, "--layers", "2", "--pool", "mean,last", "--tokens", "last:4"),
        "--plan",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("cached") and "extract:2@mean" in lines[0]
    assert lines[1].startswith("to run") and "extract:2@last" in lines[1]
    assert lines[2].startswith("to run") and "tokens:2@last:4" in lines[2]
    assert lines[-1] == "2 of 3 stage(s) to run, 1 cached"
    assert not list((workdir / "c").rglob("*last*")) and not (workdir / "c" / "tokens").exists()
    made = extracted(
        capsys, *extract_args(model, "--layers", "2", "--pool", "mean,last", "--tokens", "last:4")
    )
    hits = [f["cache_hit"] for f in made["files"]]
    assert hits == [True, False, False]
    with TokenStore.open(made["files"][2]["path"]) as store:
        assert store.spec.text == "last:4" and store.layers == [2]
        assert store.get("test", 2).shape[1:] == (4, 16)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pool", "mean,max"], "error: option --pool: 'max' is not one of last, mean, first"),
        (["--pool", ","], "error: --pool is empty"),
        (["--tokens", "last:0"], "error: bad --tokens 'last:0': it selects no token"),
        (["--tokens", "end:8"], "error: bad --tokens 'end:8'; use last:K"),
        (["--tokens", "last:8", "--max-bytes", "1000"], "error: token activations last:8 need"),
    ],
)
def test_bad_requests_are_one_error_line_and_write_nothing(
    capsys, workdir, tiny_models, extra, message
):
    before = snapshot(workdir)
    code, out, err = run(capsys, *extract_args(tiny_models["gpt2"], "--layers", "1", *extra))
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1, err
    assert snapshot(workdir) == before


def test_the_size_refusal_states_size_and_limit(capsys, workdir, tiny_models):
    code, _, err = run(
        capsys, *extract_args(tiny_models["gpt2"], "--tokens", "last:8", "--max-bytes", "1000")
    )
    assert code == 2
    assert "over the limit of 1000 B; allow it with --max-bytes" in err
