"""Head students through the CLI: graph nodes with keys, cache hits and plans; PGR against a
ceiling of their own kind; the weak supervisor as a head; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

TINY = (
    "n_train = 160\nn_val = 40\nn_test = 60\n"
    "epochs = 2\neval_every = 3\nwarmup_steps = 2\nstrong_lr = 3e-3\nhead_lr = 1e-2\n"
)


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_models, shared_data):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w2sprobe.toml").write_text(
        f'weak_model = "{tiny_models["bert"]}"\nstrong_model = "{tiny_models["llama"]}"\n'
        f'data_dir = "{shared_data}"\ncache_dir = "c"\n{TINY}'
    )
    return tmp_path


def stages(out: str) -> dict[str, dict]:
    return {s["stage"]: s for s in json.loads(out)["datasets"][0]["stages"]}


def test_a_head_study_is_nodes_of_the_graph(workspace, capsys):
    args = ("run", "--student", "head", "--experiments", "xent,logconf,knn-filter,s2s", "--json")
    code, out, err = run_cli(capsys, *args, "--plan")
    assert code == 0, err
    planned = stages(out)
    assert {s["status"] for s in planned.values()} == {"to run"}
    assert {"weak", "ceiling", "xent", "logconf", "knn-filter", "s2s-1", "extract"} <= set(planned)
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    ran = stages(out)
    assert all(s["status"] in ("ran", "cached") for s in ran.values())
    runs = {
        name: json.loads(Path(f"c/runs/sst2/{ran[name]['key']}/metrics.json").read_text())
        for name in ("ceiling", "xent", "logconf", "knn-filter", "s2s-1")
    }
    assert {m["student_kind"] for m in runs.values()} == {"head"}
    assert runs["xent"]["layer"] == 2  # the tiny Llama's probe layer, (3 + 1) // 2
    # PGR is measured against the head ceiling, not a LoRA one
    for name in ("xent", "logconf", "knn-filter", "s2s-1"):
        assert runs[name]["ceiling"]["key"] == ran["ceiling"]["key"]
    weak = json.loads(Path(f"c/runs/sst2/{ran['weak']['key']}/metrics.json").read_text())
    assert weak.get("student_kind", "lora") == "lora"  # the study's weak supervisor stays LoRA
    # a rerun is all cache hits; --plan says so
    code, out, err = run_cli(capsys, *args, "--plan")
    assert {s["status"] for s in stages(out).values()} == {"cached"}
    # another head shape is another run; the LoRA ceiling is another node kind entirely
    code, out, err = run_cli(capsys, *args, "--head-hidden", "4", "--plan")
    replanned = {name: s["status"] for name, s in stages(out).items()}
    assert replanned["weak"] == "cached" and replanned["ceiling"] == "to run"
    code, out, err = run_cli(capsys, "train", "ceiling", "--plan", "--json")
    assert json.loads(out)["nodes"][-1]["status"] == "to run"  # LoRA ceiling: not the head's


def test_a_head_weak_supervisor_reads_the_weak_models_activations(workspace, capsys):
    code, out, err = run_cli(
        capsys, "run", "--student", "head", "--weak-kind", "head", "--experiments", "xent", "--json"
    )
    assert code == 0, err
    ran = stages(out)
    assert "extract-weak" in ran and "extract" in ran
    weak = json.loads(Path(f"c/runs/sst2/{ran['weak']['key']}/metrics.json").read_text())
    assert weak["student_kind"] == "head" and weak["layer"] == 2  # the tiny BERT's (3 + 1) // 2
    xent = json.loads(Path(f"c/runs/sst2/{ran['xent']['key']}/metrics.json").read_text())
    assert xent["weak"]["key"] == ran["weak"]["key"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--student", "mlp"], "'mlp' is not one of lora, head"),
        (["--head-hidden", "-3"], "--head-hidden must be an integer >= 0"),
        (["--head-layer", "9"], "layer 9 is outside 0..3"),
    ],
)
def test_bad_head_input_is_one_line_and_writes_nothing(workspace, capsys, args, message):
    code, out, err = run_cli(capsys, "train", "ceiling", "--student", "head", *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not Path("c/runs").exists()


def test_a_head_on_a_file_without_its_layer_extracts_the_layer(workspace, capsys):
    code, _, err = run_cli(capsys, "extract", "--layers", "1")  # a file without layer 2
    assert code == 0, err
    code, out, err = run_cli(capsys, "train", "ceiling", "--student", "head", "--json")
    assert code == 0, err
    assert json.loads(out)["runs"][0]["layer"] == 2


def test_a_report_compares_one_kind_and_never_mixes_ceilings(workspace, capsys):
    for kind in ("head", "lora"):
        code, _, err = run_cli(
            capsys, "run", "--student", kind, "--experiments", "xent,knn-probe", "--quiet"
        )
        assert code == 0, err
    code, out, err = run_cli(capsys, "report", "--n-boot", "0", "--format", "json")
    assert code == 2 and "holds head and lora students" in err and "--student head" in err
    assert len(err.strip().splitlines()) == 1
    ceilings = {}
    for kind in ("head", "lora"):
        code, out, err = run_cli(
            capsys, "report", "--student", kind, "--n-boot", "0", "--format", "json", "--json"
        )
        assert code == 0, err
        report = json.loads(Path(json.loads(out)["files"]["json"]).read_text())
        assert report["setup"]["student_kind"] == kind
        rows = {r["experiment"]: r for r in report["seed_rows"]}
        ceiling = rows["ceiling"]
        ceilings[kind] = ceiling["key"]
        metrics = json.loads(Path(f"c/runs/sst2/{ceiling['key']}/metrics.json").read_text())
        assert metrics.get("student_kind", "lora") == kind
        for name in ("xent", "knn-probe"):  # the probe has no kind: it is measured against this one
            assert rows[name]["ceiling_key"] == ceiling["key"]
            gap = rows[name]["ceiling_auc"] - rows[name]["weak_auc"]
            expected = (rows[name]["auc"] - rows[name]["weak_auc"]) / gap
            assert rows[name]["pgr"] == pytest.approx(expected)
    assert ceilings["head"] != ceilings["lora"]
