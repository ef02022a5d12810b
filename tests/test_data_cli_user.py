"""Users' own data through the command line and the config file.

The library side is in test_data_user.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from w2sprobe.data.user import USER_DATASETS

SMALL = ["--n-train", "40", "--n-val", "10", "--n-test", "20"]


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    USER_DATASETS.clear()


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def nli_rows(split: str, n: int) -> list[dict]:
    gold = ("entailment", "neutral", "contradiction")
    return [
        {"premise": f"{split} premise {i}", "hypothesis": f"hyp {i}", "gold": gold[i % 3]}
        for i in range(n)
    ]


def test_a_datasets_table_in_the_config_defines_a_dataset(capsys, workdir):
    for split, n in (("train", 90), ("validation", 30), ("test", 45)):
        write_jsonl(workdir / "data" / "nli" / f"{split}.jsonl", nli_rows(split, n))
    (workdir / "w2sprobe.toml").write_text(
        '[datasets.my_nli]\nsource = "data/nli"\n'
        'template = "Premise: {premise}\\nHypothesis: {hypothesis}"\n'
        'label = "gold"\npositive = "entailment"\n'
    )
    code, out, err = run_cli(capsys, "data", "show", "my_nli", *SMALL, "--json")
    assert code == 0, err
    summary = json.loads(out)
    example = summary["examples"][0]
    index = int(example["text"].split("\n")[0].split()[-1])
    assert example["text"] == f"Premise: test premise {index}\nHypothesis: hyp {index}"
    assert example["label"] == int(index % 3 == 0) and example["split"] == "test"


def test_a_folder_of_splits_keeps_the_users_test(capsys, workdir):
    for split, n in (("train", 60), ("validation", 20), ("test", 30)):
        write_jsonl(
            workdir / "mine" / f"{split}.jsonl",
            [{"text": f"{split} row {i}", "label": i % 2} for i in range(n)],
        )
    code, out, err = run_cli(capsys, "data", "show", "./mine", *SMALL, "--json")
    assert code == 0, err
    assert all(e["text"].startswith("test row") for e in json.loads(out)["examples"])


def test_a_hub_dataset_one_class_versus_the_rest(capsys, monkeypatch):
    names = ["World", "Sports", "Business", "Sci/Tech"]
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})

    def fake(repo, *, config, split, revision=None, data_files=None):
        assert repo == "fancyzhx/ag_news"

        def make(s, n):
            return Dataset.from_dict(
                {
                    "text": [f"{s} story {i}" for i in range(n)],
                    "label": [i % 4 for i in range(n)],
                },
                features=features,
            )

        return DatasetDict({"train": make("train", 200), "test": make("test", 80)})

    monkeypatch.setattr("w2sprobe.data.hub.load_hub_dataset", fake)
    code, out, err = run_cli(
        capsys,
        "data",
        "show",
        "hub:fancyzhx/ag_news",
        "--positive-label",
        "Business",
        *SMALL,
        "--json",
    )
    assert code == 0, err
    for example in json.loads(out)["examples"]:
        assert example["label"] == int(int(example["text"].split()[-1]) % 4 == 2)
    code, _, err = run_cli(
        capsys, "data", "show", "hub:fancyzhx/ag_news", "--positive-label", "Cooking", *SMALL
    )
    assert (
        code == 2
        and err.startswith("error: ")
        and "Cooking" in err
        and len(err.strip().splitlines()) == 1
    )


@pytest.mark.parametrize(
    "args, config, message",
    [
        (["run", "--plan", "--data-dir", "no/such/folder"], "", "no/such/folder"),
        (
            ["data", "show", "bad_nli"],
            '[datasets.bad_nli]\nsource = "x.jsonl"\ntemplate = "{premise} {nosuch}"\n'
            'label = "gold"\n',
            "nosuch",
        ),
        (["run", "--plan", "--dataset", "nothing-here"], "", "unknown dataset 'nothing-here'"),
    ],
)
def test_bad_user_data_is_one_line_and_writes_nothing(capsys, workdir, args, config, message):
    write_jsonl(workdir / "x.jsonl", nli_rows("train", 30))
    if config:
        (workdir / "w2sprobe.toml").write_text(config)
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == "" and err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (workdir / "cache").exists()
