"""``w2sprobe data ids``: every id of the splits back to its split, row, label and text."""

from __future__ import annotations

import json
import random

import pytest
from conftest import modules_imported_by, run_cli
from data_helpers import mirror_rows

from w2sprobe.data import SPLIT_NAMES, SplitSizes, get_spec, load_splits, text_id

pytestmark = pytest.mark.usefixtures("no_hub")

SMALL = ["--n-train", "40", "--n-val", "10", "--n-test", "20"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def ids_json(capsys, *args: str) -> dict:
    code, out, err = run_cli(capsys, "data", "ids", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_ids_are_the_splits_ids_in_row_order(capsys, mirror):
    summary = ids_json(capsys, "sst2", "--data-dir", str(mirror), "--seed", "2", *SMALL)
    expected = load_splits("sst2", data_dir=mirror, seed=2, sizes=SplitSizes(40, 10, 20))
    assert summary["fingerprint"] == expected.fingerprint
    for name in SPLIT_NAMES:
        rows = [row for row in summary["rows"] if row["split"] == name]
        split = expected.splits[name]
        assert [row["id"] for row in rows] == split.ids
        assert [row["row"] for row in rows] == list(range(len(split)))
        assert [row["label"] for row in rows] == split.labels.astype(int).tolist()
        assert [row["text"] for row in rows] == split.texts
    assert summary["sizes"] == {"weak_train": 20, "strong_train": 20, "val": 10, "test": 20}


def test_text_is_the_formatters_output_for_its_source_row(capsys, mirror):
    """Each row's text is the registry formatter applied to a mirror row; its id is that text's."""
    formatter = get_spec("boolq").formatter
    formatted = {}
    for source in mirror_rows("boolq", "validation"):
        text, label = formatter(source, random.Random(0))  # boolq's formatter draws nothing
        formatted[text] = label
    summary = ids_json(capsys, "boolq", "--data-dir", str(mirror), *SMALL)
    assert len(summary["rows"]) == sum(summary["sizes"].values()) == 70
    for row in summary["rows"]:
        assert formatted[row["text"]] == row["label"] and row["id"] == text_id(row["text"])


def test_split_and_id_filters(capsys, mirror):
    every = ids_json(capsys, "sst2", "--data-dir", str(mirror), *SMALL)["rows"]
    val = ids_json(capsys, "sst2", "--data-dir", str(mirror), *SMALL, "--split", "val")["rows"]
    assert val == [row for row in every if row["split"] == "val"]
    picked = [every[3]["id"], every[-1]["id"]]
    args = ["sst2", "--data-dir", str(mirror), *SMALL, "--id", picked[1], "--id", picked[0]]
    assert ids_json(capsys, *args)["rows"] == [every[3], every[-1]]  # row order, not --id order


def test_text_output_is_one_tab_separated_line_per_row(capsys, mirror):
    code, out, err = run_cli(capsys, "data", "ids", "boolq", "--data-dir", str(mirror), *SMALL)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "id\tsplit\trow\tlabel\ttext" and len(lines) == 1 + 70
    expected = ids_json(capsys, "boolq", "--data-dir", str(mirror), *SMALL)["rows"]
    for line, row in zip(lines[1:], expected):
        assert line.split("\t") == [
            row["id"],
            row["split"],
            str(row["row"]),
            str(row["label"]),
            row["text"].replace("\\", "\\\\").replace("\n", "\\n"),
        ]


def test_an_unknown_id_or_split_is_exit_2(capsys, mirror):
    base = ["data", "ids", "sst2", "--data-dir", str(mirror), *SMALL]
    code, out, err = run_cli(capsys, *base, "--id", "0123456789abcdef")
    assert code == 2 and out == ""
    assert err.startswith("error: id 0123456789abcdef is not in any split of sst2")
    code, _, err = run_cli(capsys, *base, "--split", "train")
    assert code == 2 and "'train' is not one of weak_train, strong_train, val, test" in err


def test_ids_map_activation_rows_back_to_text(capsys, mirror, tiny_models, tmp_path):
    """Row i of a split in the activation file is row i of that split in ``data ids``."""
    from w2sprobe.cache import ActivationStore, list_entries

    args = ["--data-dir", str(mirror), *SMALL, "--cache-dir", str(tmp_path / "c")]
    code, _, err = run_cli(
        capsys, "extract", "--model", str(tiny_models["bert"]), "--layers", "1", *args
    )
    assert code == 0, err
    rows = ids_json(capsys, "sst2", *args)["rows"]
    with ActivationStore.open(list_entries(tmp_path / "c")[0].path) as store:
        for name in store.splits:
            cached = store.ids(name).tolist()
            assert cached == [row["id"] for row in rows if row["split"] == name]


@pytest.mark.slow  # a fresh interpreter, so imports are measured, not inherited
def test_data_ids_imports_no_torch(tmp_path, mirror):
    command = ["data", "ids", "sst2", "--data-dir", str(mirror), *SMALL]
    assert modules_imported_by([command], ("torch", "transformers", "nnsight"), tmp_path) == []
