"""Users' own data.

Split folders (jsonl/csv/parquet), hub: sources, positive_label, [datasets.NAME].

Every form is built from small generated files; expectations are computed from the generated
rows themselves (which texts exist in which file), not from the library.
"""

from __future__ import annotations

import hashlib
import json
import tomllib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_helpers import MIRROR
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from w2sprobe.data import SplitSizes, load_splits
from w2sprobe.data.user import USER_DATASETS, define_dataset, define_datasets
from w2sprobe.errors import UsageError

pytestmark = pytest.mark.usefixtures("no_hub")

SIZES = SplitSizes(n_train=40, n_val=10, n_test=20)


@pytest.fixture
def data_mirror():
    """The shared offline mirror; its absence is a failure, never a skip."""
    if not (MIRROR / "sst2" / "train.jsonl").is_file():
        pytest.fail(f"offline dataset mirror not found at {MIRROR}")
    return MIRROR


@pytest.fixture(autouse=True)
def clean_user_datasets():
    yield
    USER_DATASETS.clear()


def rows(split: str, n: int, label=lambda i: i % 2) -> list[dict]:
    return [{"text": f"{split} example {i}", "label": label(i)} for i in range(n)]


def write(path, data: list[dict]):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in data))
    elif path.suffix == ".csv":
        keys = list(data[0])
        path.write_text(
            ",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n" for r in data)
        )
    else:
        pq.write_table(pa.Table.from_pylist(data), path)
    return path


def sha16(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


# --- folders of splits ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_folder_keeps_the_users_splits(tmp_path, suffix):
    data = {
        "train": rows("train", 120),
        "validation": rows("validation", 30),
        "test": rows("test", 50),
    }
    for split, split_rows in data.items():
        write(tmp_path / f"train{suffix}".replace("train", split), split_rows)
    split_set = load_splits(str(tmp_path), sizes=SIZES)
    texts = {split: {r["text"] for r in split_rows} for split, split_rows in data.items()}
    assert set(split_set.splits["test"].texts) <= texts["test"]
    assert set(split_set.splits["val"].texts) <= texts["validation"]
    assert (
        set(split_set.splits["weak_train"].texts + split_set.splits["strong_train"].texts)
        <= texts["train"]
    )
    assert {name: len(s) for name, s in split_set.splits.items()} == {
        "weak_train": 20,
        "strong_train": 20,
        "val": 10,
        "test": 20,
    }
    for split in split_set.splits.values():  # ids and labels as for registry sets
        assert split.ids == [sha16(t) for t in split.texts]
        assert split.labels.tolist() == [float(t.split()[-1]) % 2 for t in split.texts]
    assert split_set.report["pools"]["val"]["from"] == f"validation{suffix}"
    assert split_set.report["source"] == f"folder {tmp_path}"


def test_folder_with_train_and_test_only_cuts_val_from_train(tmp_path):
    write(tmp_path / "train.jsonl", rows("train", 120))
    write(tmp_path / "test.csv", rows("test", 50))
    split_set = load_splits(str(tmp_path), sizes=SIZES)
    assert all(t.startswith("train") for t in split_set.splits["val"].texts)
    assert all(t.startswith("test") for t in split_set.splits["test"].texts)


def test_folder_with_only_train_carves_test_from_it(tmp_path):
    write(tmp_path / "train.parquet", rows("train", 150))
    split_set = load_splits(str(tmp_path), sizes=SIZES)
    assert any("no train pool" in note for note in split_set.report["notes"])
    test = set(split_set.splits["test"].texts)
    assert test and test.isdisjoint(
        split_set.splits["weak_train"].texts + split_set.splits["val"].texts
    )


def test_duplicates_across_user_splits_are_dropped_from_train_and_val(tmp_path):
    test_rows = rows("test", 40)
    write(tmp_path / "train.jsonl", rows("train", 100) + test_rows[:6])
    write(tmp_path / "val.jsonl", rows("validation", 30) + test_rows[6:8])
    write(tmp_path / "test.jsonl", test_rows)
    split_set = load_splits(str(tmp_path), sizes=SIZES)
    pools = split_set.report["pools"]
    assert (pools["train"]["dropped_test_overlap"], pools["val"]["dropped_test_overlap"]) == (6, 2)
    ids = [i for s in split_set.splits.values() for i in s.ids]
    assert len(ids) == len(set(ids))


def test_folder_without_split_files(tmp_path):
    write(tmp_path / "data.jsonl", rows("x", 10))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(
        UsageError,
        match=r"^folder .* has no recognisable split files: expected train\.\*, "
        r"validation\.\* and/or test\.\* .*found: data\.jsonl, notes\.txt$",
    ):
        load_splits(str(tmp_path))


def test_folder_with_two_files_for_one_split(tmp_path):
    write(tmp_path / "train.jsonl", rows("a", 10))
    write(tmp_path / "train.csv", rows("b", 10))
    with pytest.raises(UsageError, match=r"several train files \(train\.jsonl, train\.csv\)"):
        load_splits(str(tmp_path))


def test_a_user_split_all_one_class(tmp_path):
    write(tmp_path / "train.jsonl", rows("train", 100))
    write(tmp_path / "test.jsonl", rows("test", 30, label=lambda i: 1))
    with pytest.raises(
        UsageError,
        match=r"^the test pool \(test\.jsonl\) has only label 1 after dropping "
        r"empty and duplicate rows \(30 rows\); balancing needs both 0 and 1$",
    ):
        load_splits(str(tmp_path), sizes=SIZES)


# --- positive_label ---------------------------------------------------------------------------


def topic_rows(split: str, n: int) -> list[dict]:
    topics = ["World", "Sports", "Business", "Sci/Tech"]
    return [{"text": f"{split} news {i}", "topic": topics[i % 4]} for i in range(n)]


def test_positive_label_makes_a_multiclass_file_one_vs_rest(tmp_path):
    write(tmp_path / "train.csv", topic_rows("train", 200))
    write(tmp_path / "test.csv", topic_rows("test", 80))
    split_set = load_splits(
        str(tmp_path), sizes=SIZES, label_field="topic", positive_label="Business"
    )
    expected = {
        r["text"]: float(r["topic"] == "Business")
        for r in topic_rows("train", 200) + topic_rows("test", 80)
    }
    for split in split_set.splits.values():
        assert split.labels.tolist() == [expected[t] for t in split.texts]
    before = split_set.report["pools"]["train"]["label_counts_before_balance"]
    assert before == {"0": 150, "1": 50}


def test_positive_label_that_never_occurs(tmp_path):
    write(tmp_path / "train.csv", topic_rows("train", 40))
    with pytest.raises(
        UsageError,
        match=r"^positive label 'Politics' does not occur in field 'topic' of "
        r"train\.csv; values: 'Business', 'Sci/Tech', 'Sports', 'World'$",
    ):
        load_splits(str(tmp_path), label_field="topic", positive_label="Politics")


def test_multiclass_labels_without_positive_label_say_what_to_do(tmp_path):
    path = write(tmp_path / "d.jsonl", [{"text": f"t{i}", "label": i % 3} for i in range(12)])
    with pytest.raises(
        UsageError, match=r"not binary: found values 2; pass --positive-label VALUE"
    ):
        load_splits(str(path))


# --- hub: sources -----------------------------------------------------------------------------

AG_FEATURES = Features(
    {
        "text": Value("string"),
        "label": ClassLabel(names=["World", "Sports", "Business", "Sci/Tech"]),
    }
)


def ag_news(split: str, n: int) -> Dataset:
    return Dataset.from_dict(
        {"text": [f"{split} story {i}" for i in range(n)], "label": [i % 4 for i in range(n)]},
        features=AG_FEATURES,
    )


def test_hub_source_with_class_names_and_positive_label(monkeypatch):
    calls = []

    def fake(repo, *, config, split, revision=None, data_files=None):
        calls.append((repo, config, split, revision))
        return DatasetDict({"train": ag_news("train", 200), "test": ag_news("test", 80)})

    monkeypatch.setattr("w2sprobe.data.hub.load_hub_dataset", fake)
    split_set = load_splits("hub:fancyzhx/ag_news", sizes=SIZES, positive_label="Business")
    assert calls == [("fancyzhx/ag_news", None, None, None)]
    for split in split_set.splits.values():  # label 2 is "Business"
        assert split.labels.tolist() == [float(int(t.split()[-1]) % 4 == 2) for t in split.texts]
    assert all(t.startswith("test") for t in split_set.splits["test"].texts)
    assert split_set.dataset == "hub:fancyzhx/ag_news"
    # the numeric value works as well as the class name
    again = load_splits("hub:fancyzhx/ag_news", sizes=SIZES, positive_label="2")
    assert again.fingerprint == split_set.fingerprint


def test_hub_source_config_and_an_unlabeled_test_split(monkeypatch):
    def fake(repo, *, config, split, revision=None, data_files=None):
        assert (repo, config) == ("nyu-mll/glue", "sst2")
        labeled = Dataset.from_list([{"sentence": f"s{i}", "label": i % 2} for i in range(150)])
        unlabeled = Dataset.from_list([{"sentence": f"u{i}", "label": -1} for i in range(30)])
        return DatasetDict({"train": labeled, "test": unlabeled})

    monkeypatch.setattr("w2sprobe.data.hub.load_hub_dataset", fake)
    split_set = load_splits("hub:nyu-mll/glue:sst2", sizes=SIZES, text_field="sentence")
    assert any(
        "hub split test is unlabeled (every label -1); not used" in n
        for n in split_set.report["notes"]
    )
    assert all(t.startswith("s") for s in split_set.splits.values() for t in s.texts)


def test_bad_hub_source_spelling():
    with pytest.raises(UsageError, match=r"is not a hub source; write hub:org/name"):
        load_splits("hub:")


# --- [datasets.NAME] tables -------------------------------------------------------------------

NLI_TOML = """
[datasets.my_nli]
source = "nli"
template = "Premise: {premise}\\nHypothesis: {hypothesis}"
label = "gold"
positive = "entailment"
"""


def nli_rows(split: str, n: int) -> list[dict]:
    golds = ["entailment", "neutral", "contradiction"]
    return [
        {"premise": f"{split} p{i}", "hypothesis": f"h{i}", "gold": golds[i % 3]} for i in range(n)
    ]


def test_datasets_table_defines_a_templated_dataset(tmp_path):
    write(tmp_path / "nli" / "train.jsonl", nli_rows("train", 150))
    write(tmp_path / "nli" / "test.jsonl", nli_rows("test", 60))
    specs = define_datasets(tomllib.loads(NLI_TOML)["datasets"], base_dir=tmp_path)
    assert [s.name for s in specs] == ["my_nli"] and specs[0].source == str(tmp_path / "nli")
    split_set = load_splits("my_nli", sizes=SIZES)
    expected = {
        f"Premise: {r['premise']}\nHypothesis: {r['hypothesis']}": float(r["gold"] == "entailment")
        for r in nli_rows("train", 150) + nli_rows("test", 60)
    }
    for split in split_set.splits.values():
        assert split.texts and all(t in expected for t in split.texts)
        assert split.labels.tolist() == [expected[t] for t in split.texts]
    assert split_set.dataset == "my_nli"


def test_template_naming_a_missing_field(tmp_path):
    write(tmp_path / "train.jsonl", nli_rows("train", 30))
    define_dataset(
        "bad",
        {
            "source": str(tmp_path),
            "template": "{premise} / {claim}",
            "label": "gold",
            "positive": "entailment",
        },
    )
    with pytest.raises(
        UsageError,
        match=r"^dataset bad: template '\{premise\} / \{claim\}' names field 'claim', "
        r"but train\.jsonl has only: premise, hypothesis, gold$",
    ):
        load_splits("bad")


@pytest.mark.parametrize(
    "table, message",
    [
        ({"template": "{x}"}, r"'source' must be a file, a folder or hub:org/name"),
        ({"source": "f.jsonl", "labels": "y"}, r"unknown key\(s\) labels; known: source, template"),
        ({"source": "f.jsonl", "template": "{0}"}, r"template fields must be named"),
        ({"source": "f.jsonl", "template": "{open"}, r"bad template"),
    ],
)
def test_bad_datasets_tables(table, message):
    with pytest.raises(UsageError, match=message):
        define_dataset("t", table)


def test_a_table_may_not_shadow_a_registry_name():
    with pytest.raises(UsageError, match="'sst2' is a registry dataset"):
        define_dataset("sst2", {"source": "x.jsonl"})


def test_table_with_a_hub_source(monkeypatch):
    monkeypatch.setattr(
        "w2sprobe.data.hub.load_hub_dataset",
        lambda repo, **kw: DatasetDict(
            {"train": ag_news("train", 200), "test": ag_news("test", 60)}
        ),
    )
    define_dataset(
        "ag_business",
        {"source": "hub:fancyzhx/ag_news", "template": "News: {text}", "positive": "Business"},
    )
    split_set = load_splits("ag_business", sizes=SIZES)
    assert all(t.startswith("News: ") for t in split_set.splits["test"].texts)
    assert split_set.splits["test"].labels.tolist() == [
        float(int(t.split()[-1]) % 4 == 2) for t in split_set.splits["test"].texts
    ]


def test_a_registry_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch, data_mirror):
    write(tmp_path / "sst2" / "train.jsonl", rows("mine", 100))
    monkeypatch.chdir(tmp_path)
    assert (
        load_splits("sst2", data_dir=data_mirror, sizes=SIZES).report["source"].startswith("mirror")
    )
    assert load_splits("./sst2", sizes=SIZES).report["source"] == "folder sst2"


def test_folder_with_train_and_validation_carves_test_and_keeps_val(tmp_path):
    write(tmp_path / "train.jsonl", rows("train", 150))
    write(tmp_path / "dev.csv", rows("dev", 40))
    split_set = load_splits(str(tmp_path), sizes=SIZES)
    assert split_set.splits["val"].texts and all(
        t.startswith("dev") for t in split_set.splits["val"].texts
    )
    assert all(t.startswith("train") for t in split_set.splits["test"].texts)
    assert split_set.report["pools"]["val"]["from"] == "dev.csv"


def test_positive_label_is_refused_for_registry_datasets(data_mirror):
    with pytest.raises(
        UsageError, match=r"--positive-label applies to files, folders and hub: sources; sst2"
    ):
        load_splits("sst2", data_dir=data_mirror, positive_label="1")
