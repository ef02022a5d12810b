"""Keys are stable: a cache written by an earlier main still hits, stage for stage.

``tests/fixtures/cache_v2`` was produced by main at the commit that added tokenizer files to
the model fingerprint, with::

    w2sprobe run --data-dir ../shared/data     # in that folder, with its w2sprobe.toml

on the tiny BERT (weak) and tiny Llama (strong) models stored next to it.  Every key later
refactors of the options, study graph and result store compute must find those files.

``tests/fixtures/cache_v1`` (commit 571df33) predates tokenizer hashing: nothing proves which
tokenizer its artifacts were made with, so none of them may be reused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "cache_v2"
OLD_FIXTURE = Path(__file__).parent / "fixtures" / "cache_v1"
PLAN = [
    "weak",
    "ceiling",
    "xent",
    "kl",
    "logconf",
    "entropy",
    "window",
    "s2s-1",
    "knn-probe",
    "logreg-probe",
    "knn-filter",
    "logreg-filter",
    "topo-filter",
    "knn-relabel",
    "logreg-relabel",
]


def test_every_stage_of_the_old_cache_is_a_hit(tmp_path, monkeypatch, capsys, shared_data):
    workspace = tmp_path / "old"
    shutil.copytree(FIXTURE, workspace)
    monkeypatch.chdir(workspace)
    before = sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if p.is_file())
    # The fixture's window student averaged over the in-window examples, now --window-average
    # inside: with it, every stage is a hit; at the new default (the reference's sum over the
    # batch size, other arithmetic) the window student alone is to run again.
    code, out, err = run_cli(capsys, "run", "--plan", "--json", "--data-dir", str(shared_data))
    assert code == 0, err
    stages = {s["stage"]: s for s in json.loads(out)["datasets"][0]["stages"]}
    assert {name for name, s in stages.items() if s["status"] != "cached"} == {"window"}
    code, out, err = run_cli(
        capsys,
        "run",
        "--plan",
        "--json",
        "--window-average",
        "inside",
        "--data-dir",
        str(shared_data),
    )
    assert code == 0, err
    stages = {s["stage"]: s for s in json.loads(out)["datasets"][0]["stages"]}
    assert [name for name in stages if not name.startswith("labels:")] == PLAN
    assert {name: s["status"] for name, s in stages.items()} == {name: "cached" for name in stages}
    old_keys = {
        json.loads(p.read_text())["experiment"]: json.loads(p.read_text())["key"]
        for p in (workspace / "cache" / "runs" / "sst2").glob("*/metrics.json")
    }
    assert {name: stages[name]["key"] for name in old_keys} == old_keys
    # and the commands that build single artifacts find them too, building nothing
    for args in (
        ["train", "s2s", "--s2s-iters", "1"],
        ["relabel", "--probe", "knn"],
        ["extract"],
        ["probe", "--probe", "logreg"],
    ):
        code, out, err = run_cli(capsys, *args, "--no-build", "--data-dir", str(shared_data))
        assert code == 0, (args, err)
    after = sorted(
        str(p.relative_to(workspace))
        for p in workspace.rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    )
    assert after == before


def test_a_cache_from_before_tokenizer_hashing_is_never_reused(
    tmp_path, monkeypatch, capsys, shared_data
):
    workspace = tmp_path / "older"
    shutil.copytree(OLD_FIXTURE, workspace)
    monkeypatch.chdir(workspace)
    code, out, err = run_cli(capsys, "run", "--plan", "--json", "--data-dir", str(shared_data))
    assert code == 0, err
    stages = json.loads(out)["datasets"][0]["stages"]
    assert stages and {s["status"] for s in stages} == {"to run"}
