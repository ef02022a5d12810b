"""``w2sprobe data list`` / ``data show`` through the real entry point."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from w2sprobe.data import SplitSizes, list_datasets, load_splits

pytestmark = pytest.mark.usefixtures("no_hub")

SMALL = ["--n-train", "200", "--n-val", "20", "--n-test", "100"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No stray w2sprobe.toml or environment mirror leaks into a test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("W2SPROBE_DATA_DIR", raising=False)


run = run_cli


def test_list_json_says_what_the_mirror_has(capsys, mirror):
    code, out, err = run(capsys, "data", "list", "--data-dir", str(mirror), "--json")
    assert code == 0, err
    summary = json.loads(out)
    rows = {row["name"]: row for row in summary["datasets"]}
    assert list(rows) == list_datasets()
    assert (rows["sst2"]["in_mirror"], rows["sst2"]["train_offline"]) == (True, True)
    assert (rows["boolq"]["in_mirror"], rows["boolq"]["train_offline"]) == (True, False)
    assert (rows["mc_taco"]["train_offline"], rows["sciq_with_support"]["train_offline"]) == (
        True,
        True,
    )
    assert (rows["anli-r2"]["in_mirror"], rows["anli-r2"]["hub_id"]) == (False, "facebook/anli")
    assert rows["ethics-commonsense"]["mirror_splits"] == ["test", "validation"]


def test_list_reads_the_mirror_from_the_environment(capsys, mirror, monkeypatch):
    code, out, _ = run(capsys, "data", "list", "--json")
    assert code == 0 and not any(row["in_mirror"] for row in json.loads(out)["datasets"])
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(mirror))
    code, out, _ = run(capsys, "data", "list", "--json")
    summary = json.loads(out)
    assert summary["data_dir"] == str(mirror)
    assert {row["name"] for row in summary["datasets"] if row["in_mirror"]} >= {
        "sst2",
        "cola",
        "tweet_eval_hate",
    }


def test_list_table(capsys, mirror):
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(mirror))
    assert code == 0
    assert f"data dir: {mirror}" in out
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in out.splitlines()
        if line.startswith("│")
    ]
    first_lines = {cells[0]: cells for cells in rows if cells[0]}  # continuation lines have no name
    assert list(first_lines) == list_datasets()
    assert first_lines["sst2"][3:] == ["yes", "yes"]
    assert first_lines["boolq"][3:] == ["yes", "no"]
    assert first_lines["anli-r2"][3:] == ["no", "no"]


def test_show_json_matches_the_library(capsys, mirror):
    code, out, err = run(
        capsys, "data", "show", "sst2", "--data-dir", str(mirror), "--seed", "3", *SMALL, "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    expected = load_splits("sst2", data_dir=mirror, seed=3, sizes=SplitSizes(200, 20, 100))
    assert summary["fingerprint"] == expected.fingerprint
    assert summary["report"] == json.loads(json.dumps(expected.report))
    assert summary["spec"]["hub_id"] == "stanfordnlp/sst2"
    test = expected.splits["test"]
    assert [(e["split"], e["id"], e["label"], e["text"]) for e in summary["examples"]] == [
        ("test", test.ids[i], int(test.labels[i]), test.texts[i]) for i in range(3)
    ]


def test_show_table_reports_carving_and_examples(capsys, mirror):
    code, out, err = run(capsys, "data", "show", "boolq", "--data-dir", str(mirror), *SMALL)
    assert code == 0, err
    expected = load_splits("boolq", data_dir=mirror, sizes=SplitSizes(200, 20, 100))
    assert f"fingerprint {expected.fingerprint}" in out
    assert "note: no train pool in mirror" in out
    assert "shared" in out and "dropped by balancing" in out
    assert expected.splits["test"].texts[0] in out  # printed verbatim, not re-wrapped


def test_show_takes_dataset_and_sizes_from_a_config_file(capsys, mirror, tmp_path):
    config = tmp_path / "w2sprobe.toml"
    config.write_text(
        f'dataset = "ethics_justice"\ndata_dir = "{mirror}"\nn_train = 60\nn_val = 6\nn_test = 30\n'
    )
    code, out, err = run(capsys, "data", "show", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["dataset"] == "ethics-justice"
    assert {k: v["size"] for k, v in summary["report"]["splits"].items()} == {
        "weak_train": 30,
        "strong_train": 30,
        "val": 6,
        "test": 30,
    }


def test_show_user_file_with_custom_fields(capsys, tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        "".join(json.dumps({"body": f"text {i}", "gold": i % 2}) + "\n" for i in range(40))
    )
    code, out, err = run(
        capsys,
        "data",
        "show",
        str(path),
        "--text-field",
        "body",
        "--label-field",
        "gold",
        "--n-train",
        "10",
        "--n-val",
        "2",
        "--n-test",
        "8",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["spec"] is None and summary["dataset"] == str(path)
    assert summary["report"]["splits"]["test"]["size"] == 8


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["data", "show", "no-such-dataset"],
            "error: unknown dataset 'no-such-dataset'; known: anli-r2",
        ),
        (["data", "show", "sst2", "--n-test", "0"], "error: n_test must be an integer >= 1"),
        (["data", "show", "FILE", "--label-field", "gold"], "error: "),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(capsys, mirror, tmp_path, args, message):
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"text": "a", "label": 0}) + "\n")
    args = [str(path) if a == "FILE" else a for a in args]
    if args[1] == "show":
        args += ["--data-dir", str(mirror)]
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith(message) and err.count("\n") == 1
    if "FILE" in args or str(path) in args:
        assert "has no field 'gold'; fields: text, label" in err
