"""Splits: reference equivalence at seed 0, balancing, ids, overlap, carving, sizes, user files."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from data_helpers import mirror_rows

from w2sprobe.data import SPLIT_NAMES, SplitSizes, get_spec, load_splits
from w2sprobe.errors import UsageError
from w2sprobe.options import resolve
from w2sprobe.study import load_options_splits

pytestmark = pytest.mark.usefixtures("no_hub")

SMALL = SplitSizes(n_train=400, n_val=50, n_test=200)
BLOG = SplitSizes(n_train=10_000, n_val=1_000, n_test=5_000)  # the study's sizes (--preset blog)


def all_ids(split_set) -> list[str]:
    return [id_ for split in split_set.splits.values() for id_ in split.ids]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- seed 0 reproduces the reference pipeline (written with the HF datasets API) ---------------


def reference_pool(rows, formatter, n_keep, seed=0):
    """The reference's per-pool processing.

    HF shuffle, map with Random(seed), filter, balance, cap.
    """
    from datasets import Dataset, concatenate_datasets

    ds = Dataset.from_list(rows).shuffle(seed=seed)
    rng = random.Random(seed)

    def apply(example):
        txt, label = formatter(example, rng)
        return {"txt": txt, "hard_label": label}

    ds = ds.map(apply, remove_columns=ds.column_names, load_from_cache_file=False)
    ds = ds.filter(lambda ex: ex["txt"] != "")
    counts = Counter(ds["hard_label"])
    majority = max(counts, key=lambda k: counts[k])
    minority_ds = ds.filter(lambda ex: ex["hard_label"] == 1 - majority)
    majority_ds = ds.filter(lambda ex: ex["hard_label"] == majority).shuffle(seed=seed)
    majority_ds = majority_ds.select(range(len(minority_ds)))
    ds = concatenate_datasets([minority_ds, majority_ds]).shuffle(seed=seed)
    return ds.select(range(min(n_keep, len(ds))))


def reference_splits(train_rows, test_rows, formatter, sizes):
    train = reference_pool(train_rows, formatter, sizes.n_val + sizes.n_train)
    halves = train.select(range(sizes.n_val, len(train))).train_test_split(test_size=0.5, seed=42)
    return {
        "weak_train": halves["train"],
        "strong_train": halves["test"],
        "val": train.select(range(sizes.n_val)),
        "test": reference_pool(test_rows, formatter, sizes.n_test),
    }


def test_seed0_reproduces_the_reference_on_mc_taco(mirror):
    sizes = SplitSizes(n_train=3001, n_val=500, n_test=1000)
    ours = load_splits("mc_taco", data_dir=mirror, sizes=sizes)
    assert all(ours.report["pools"][p]["dropped_duplicates"] == 0 for p in ("train", "test"))
    ref = reference_splits(
        mirror_rows("mc_taco", "test"),
        mirror_rows("mc_taco", "validation"),
        get_spec("mc_taco").formatter,
        sizes,
    )
    for name in SPLIT_NAMES:
        assert ours.splits[name].texts == ref[name]["txt"], name
        assert ours.splits[name].labels.tolist() == ref[name]["hard_label"], name
        assert [i[:8] for i in ours.splits[name].ids] == [
            hashlib.sha1(t.encode()).hexdigest()[:8] for t in ref[name]["txt"]
        ]
    assert (len(ours.splits["strong_train"]), len(ours.splits["weak_train"])) == (1501, 1500)


def test_seed0_reproduces_the_reference_sciq_test_pool(mirror):
    from datasets import Dataset

    pooled = sum((mirror_rows("sciq", s) for s in ("train", "validation", "test")), [])
    fixed_test = (
        Dataset.from_list(pooled).train_test_split(test_size=3000, seed=0)["test"].to_list()
    )
    ours = load_splits(
        "sciq_with_support", data_dir=mirror, sizes=SplitSizes(n_train=100, n_val=10, n_test=5000)
    )
    assert ours.report["pools"]["test"]["dropped_duplicates"] == 0
    ref = reference_pool(fixed_test, get_spec("sciq_with_support").formatter, 5000)
    assert ours.splits["test"].texts == ref["txt"]
    assert ours.splits["test"].labels.tolist() == ref["hard_label"]


def test_sciq_test_pool_is_fixed_across_seeds(mirror):
    pooled = sum((mirror_rows("sciq", s) for s in ("train", "validation", "test")), [])
    fixed = {
        pooled[i]["question"] for i in np.random.default_rng(0).permutation(len(pooled))[:3000]
    }
    for seed in (0, 3):
        split_set = load_splits(
            "sciq", data_dir=mirror, seed=seed, sizes=SplitSizes(n_train=200, n_val=20, n_test=3000)
        )
        questions = {t[3:].rsplit(" A: ", 1)[0] for t in split_set.splits["test"].texts}
        assert questions <= fixed and len(questions) > 2800
        train_questions = {t[3:].rsplit(" A: ", 1)[0] for t in split_set.splits["weak_train"].texts}
        assert len(train_questions - fixed) > 0.9 * len(train_questions)


# --- balancing and the report --------------------------------------------------------------------


def test_balancing_is_exact_and_counted(mirror):
    raw = Counter(row["label"] for row in mirror_rows("ethics_deontology", "test"))
    split_set = load_splits(
        "ethics-deontology", data_dir=mirror, sizes=SplitSizes(n_train=300, n_val=30, n_test=5000)
    )
    stats = split_set.report["pools"]["test"]
    assert stats["label_counts_before_balance"] == {"0": raw[0], "1": raw[1]}
    assert stats["dropped_by_balancing"] == abs(raw[0] - raw[1])
    assert stats["balanced_size"] == 2 * min(raw.values()) == len(split_set.splits["test"])
    labels = split_set.splits["test"].labels
    assert labels.dtype == np.float32 and labels.sum() * 2 == len(labels)
    assert split_set.report["splits"]["test"]["label_counts"] == {
        "0": min(raw.values()),
        "1": min(raw.values()),
    }


def test_duplicates_overlap_and_empty_rows_are_dropped_and_counted(tmp_path):
    test_rows = [{"idx": i, "sentence": f"test sentence {i}", "label": i % 2} for i in range(40)]
    train_rows = [{"idx": i, "sentence": f"train sentence {i}", "label": i % 2} for i in range(60)]
    train_rows += [dict(train_rows[0]), dict(train_rows[1]), dict(train_rows[2])]  # 3 duplicates
    train_rows += [dict(test_rows[5]), dict(test_rows[6])]  # 2 overlaps with test
    train_rows += [{"idx": 99, "sentence": "", "label": 1}]  # 1 empty
    write_jsonl(tmp_path / "sst2" / "train.jsonl", train_rows)
    write_jsonl(tmp_path / "sst2" / "validation.jsonl", test_rows)
    split_set = load_splits(
        "sst2", data_dir=tmp_path, sizes=SplitSizes(n_train=40, n_val=10, n_test=100)
    )
    train = split_set.report["pools"]["train"]
    assert (
        train["rows_loaded"],
        train["dropped_duplicates"],
        train["dropped_test_overlap"],
        train["dropped_empty"],
    ) == (66, 3, 2, 1)
    assert train["label_counts_before_balance"] == {"0": 30, "1": 30}
    ids = all_ids(split_set)
    assert len(ids) == len(set(ids)) == 40 + 10 + 40
    assert split_set.report["source"] == f"mirror {tmp_path / 'sst2'}"


def test_labels_must_take_two_values(tmp_path):
    write_jsonl(
        tmp_path / "sst2" / "train.jsonl",
        [{"idx": i, "sentence": f"s{i}", "label": 1} for i in range(20)],
    )
    write_jsonl(
        tmp_path / "sst2" / "validation.jsonl",
        [{"idx": i, "sentence": f"v{i}", "label": i % 2} for i in range(20)],
    )
    with pytest.raises(
        UsageError,
        match=(
            r"the train pool \(train\) has only label 1 after dropping empty and duplicate rows "
            r"\(20 rows\); balancing needs both 0 and 1"
        ),
    ):
        load_splits("sst2", data_dir=tmp_path, sizes=SplitSizes(n_train=4, n_val=2, n_test=4))


# --- ids, determinism, overlap, sizes ------------------------------------------------------------


def test_ids_are_16_hex_sha1_unique_and_test_disjoint(mirror):
    split_set = load_splits("cola", data_dir=mirror, sizes=SMALL)
    for split in split_set.splits.values():
        assert split.ids == [hashlib.sha1(t.encode("utf-8")).hexdigest()[:16] for t in split.texts]
    ids = all_ids(split_set)
    assert len(ids) == len(set(ids))
    others = set(ids) - set(split_set.splits["test"].ids)
    assert not others & set(split_set.splits["test"].ids)
    assert list(split_set.splits) == list(SPLIT_NAMES)
    assert (
        split_set.report["pools"]["train"]["dropped_test_overlap"] > 0
    )  # cola train repeats dev sentences


def test_same_seed_same_splits_other_seed_different(mirror):
    a = load_splits("sst2", data_dir=mirror, seed=0, sizes=SMALL)
    b = load_splits("sst2", data_dir=mirror, seed=0, sizes=SMALL)
    c = load_splits("sst2", data_dir=mirror, seed=1, sizes=SMALL)
    assert a.fingerprint == b.fingerprint and all_ids(a) == all_ids(b)
    assert a.fingerprint != c.fingerprint
    for name in SPLIT_NAMES:
        assert a.splits[name].ids != c.splits[name].ids
    assert len(a.fingerprint) == 16


def test_fingerprint_follows_content_not_spelling(mirror):
    sizes = SplitSizes(n_train=100, n_val=10, n_test=50)
    a = load_splits("ethics-justice", data_dir=mirror, sizes=sizes)
    b = load_splits("ethics_justice", data_dir=mirror, sizes=sizes)
    c = load_splits(
        "ethics-justice", data_dir=mirror, sizes=SplitSizes(n_train=100, n_val=10, n_test=51)
    )
    assert a.dataset == b.dataset == "ethics-justice"
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_sst2_blog_sizes_capped_reported_and_fast(mirror):
    start = time.perf_counter()
    split_set = load_splits("sst2", data_dir=mirror, sizes=BLOG)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"sst2 splits took {elapsed:.1f} s"
    sizes = {name: entry["size"] for name, entry in split_set.report["splits"].items()}
    assert sizes == {"weak_train": 5000, "strong_train": 5000, "val": 1000, "test": 856}
    assert split_set.report["splits"]["test"]["requested"] == 5000
    assert "test: 856 rows, fewer than the 5000 requested" in split_set.report["notes"]
    assert split_set.report["pools"]["train"]["rows_loaded"] == 67349
    json.dumps(split_set.report)  # JSON-able


def test_odd_train_size_gives_strong_the_extra_row(mirror):
    split_set = load_splits(
        "sst2", data_dir=mirror, sizes=SplitSizes(n_train=401, n_val=0, n_test=20)
    )
    assert (
        len(split_set.splits["strong_train"]),
        len(split_set.splits["weak_train"]),
        len(split_set.splits["val"]),
    ) == (201, 200, 0)


@pytest.mark.parametrize(
    "kwargs", [{"n_train": 1}, {"n_val": -1}, {"n_test": 0}, {"n_train": 10.5}]
)
def test_bad_sizes_are_usage_errors(kwargs):
    with pytest.raises(UsageError, match="must be an integer"):
        SplitSizes(**kwargs)


# --- carving when the train pool is not available ----------------------------------------------


def test_validation_only_mirror_is_carved_with_a_note(mirror):
    split_set = load_splits(
        "boolq", data_dir=mirror, sizes=SplitSizes(n_train=400, n_val=50, n_test=300)
    )
    assert set(split_set.report["pools"]) == {"shared"}
    assert split_set.report["pools"]["shared"]["rows_loaded"] == 3270
    assert any(note.startswith("no train pool in mirror") for note in split_set.report["notes"])
    assert len(split_set.splits["test"]) == 300 and len(split_set.splits["val"]) == 50
    ids = all_ids(split_set)
    assert len(ids) == len(set(ids))


def test_carved_test_is_at_most_half_the_pool(mirror):
    split_set = load_splits(
        "wic", data_dir=mirror, sizes=SplitSizes(n_train=400, n_val=45, n_test=5000)
    )
    balanced = split_set.report["pools"]["shared"]["balanced_size"]
    assert len(split_set.splits["test"]) == balanced // 2
    assert (
        len(split_set.splits["val"])
        + len(split_set.splits["strong_train"])
        + len(split_set.splits["weak_train"])
        == balanced - balanced // 2
    )


def test_blog_sizes_on_a_small_carved_pool_give_val_half_the_train_pool(mirror):
    split_set = load_splits("piqa", data_dir=mirror, sizes=BLOG)
    sizes = {name: len(split) for name, split in split_set.splits.items()}
    train_pool = split_set.report["pools"]["shared"]["balanced_size"] - sizes["test"]
    assert sizes["val"] == train_pool // 2
    assert sizes["weak_train"] + sizes["strong_train"] == train_pool - train_pool // 2
    assert min(sizes.values()) > 0
    assert any(
        "val:" in note and "fewer than the 1000 requested" in note
        for note in split_set.report["notes"]
    )


# --- sources: hub vs mirror, manual downloads -------------------------------------------------


def test_without_data_dir_the_hub_is_used_through_the_resolution_table(monkeypatch):
    from datasets import Dataset

    calls = []

    def fake_hub(repo, *, config, split, revision=None, data_files=None):
        calls.append((repo, config, split, revision, data_files))
        return Dataset.from_list(
            [{"sentence": f"{split} {i}", "label": i % 2, "idx": i} for i in range(30)]
        )

    monkeypatch.setattr("w2sprobe.data.hub.load_hub_dataset", fake_hub)
    split_set = load_splits("cola", sizes=SplitSizes(n_train=10, n_val=4, n_test=10))
    assert calls == [
        ("nyu-mll/glue", "cola", "train", None, None),
        ("nyu-mll/glue", "cola", "validation", None, None),
    ]
    assert split_set.report["source"] == "hub nyu-mll/glue (cola) @main"
    assert len(split_set.splits["test"]) == 10


def test_a_data_dir_without_the_dataset_folder_is_an_error_not_a_hub_fallback(tmp_path):
    with pytest.raises(
        UsageError, match=r"data dir .* has no folder cola/ for dataset cola .*drop --data-dir"
    ):
        load_splits("cola", data_dir=tmp_path)


def test_a_missing_data_dir_is_an_error(tmp_path):
    with pytest.raises(UsageError, match=r"data dir .*nowhere does not exist or is not a folder"):
        load_splits("sst2", data_dir=tmp_path / "nowhere")


STORY = {
    "story_id": "s",
    "input_sentence_1": "A.",
    "input_sentence_2": "B.",
    "input_sentence_3": "C.",
    "input_sentence_4": "D.",
    "sentence_quiz1": "E.",
    "sentence_quiz2": "F.",
    "answer_right_ending": 1,
}


def test_story_cloze_needs_its_files(tmp_path):
    with pytest.raises(
        UsageError, match=r"needs a manual download .*story_cloze/ and pass --data-dir"
    ):
        load_splits("story_cloze", data_dir=tmp_path)
    for split in ("validation", "test"):
        write_jsonl(
            tmp_path / "story_cloze" / f"{split}.jsonl",
            [
                {**STORY, "story_id": f"{split}{i}", "input_sentence_1": f"{split} {i}."}
                for i in range(60)
            ],
        )
    split_set = load_splits(
        "story_cloze", data_dir=tmp_path, sizes=SplitSizes(n_train=20, n_val=4, n_test=10)
    )
    assert len(split_set.splits["test"]) == 10 and split_set.report["source"].startswith("mirror")


def test_unknown_dataset():
    with pytest.raises(UsageError, match="unknown dataset 'no-such'; known: "):
        load_splits("no-such")


def test_rows_the_formatter_rejects_are_counted_apart_from_empty_texts(mirror):
    """tweet_eval_sentiment: neutral tweets are no example of polarity; counted from the file."""
    rows = [json.loads(line) for line in (mirror / "tweet_eval_sentiment" / "test.jsonl").open()]
    labels = [row["label"] for row in rows]
    split_set = load_splits("tweet_eval_sentiment", data_dir=mirror)
    stats = split_set.report["pools"]["shared"]
    assert stats["rows_loaded"] == len(rows)
    assert stats["dropped_by_formatter"] == labels.count(1)
    assert stats["dropped_empty"] == sum(row["text"] == "" and row["label"] != 1 for row in rows)
    kept = len(rows) - labels.count(1) - stats["dropped_empty"] - stats["dropped_duplicates"]
    assert sum(stats["label_counts_before_balance"].values()) == kept
    assert {split.labels.min() for split in split_set.splits.values()} == {0}
    assert {split.labels.max() for split in split_set.splits.values()} == {1}


# --- user files ---------------------------------------------------------------------------------


def user_rows(n: int = 60) -> list[dict]:
    return [{"review": f"review number {i}", "y": i % 3 == 0} for i in range(n)]


def test_user_jsonl_file_is_carved_and_balanced(tmp_path):
    path = write_jsonl(
        tmp_path / "reviews.jsonl",
        user_rows() + [{"review": "review number 1", "y": False}, {"review": None, "y": True}],
    )
    split_set = load_splits(
        str(path),
        sizes=SplitSizes(n_train=20, n_val=4, n_test=10),
        text_field="review",
        label_field="y",
    )
    stats = split_set.report["pools"]["shared"]
    assert (stats["rows_loaded"], stats["dropped_duplicates"], stats["dropped_empty"]) == (62, 1, 1)
    assert (
        stats["label_counts_before_balance"] == {"0": 40, "1": 20} and stats["balanced_size"] == 40
    )
    assert split_set.dataset == str(path) and split_set.report["source"] == f"file {path}"
    assert any("no train pool" in note for note in split_set.report["notes"])
    assert len(split_set.splits["test"]) == 10 and split_set.splits["test"].texts[0].startswith(
        "review number"
    )


def test_user_csv_and_parquet_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": f"line {i}", "label": float(i % 2)} for i in range(40)]
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows))
    parquet = tmp_path / "d.parquet"
    pq.write_table(
        pa.Table.from_pylist([{**r, "label": str(int(r["label"]))} for r in rows]), parquet
    )
    sizes = SplitSizes(n_train=10, n_val=2, n_test=8)
    a, b = load_splits(str(csv), sizes=sizes), load_splits(str(parquet), sizes=sizes)
    assert a.splits["test"].texts == b.splits["test"].texts
    assert a.splits["test"].labels.tolist() == b.splits["test"].labels.tolist()
    assert sorted(set(a.splits["test"].labels.tolist())) == [0.0, 1.0]


def test_user_file_missing_field_names_the_fields(tmp_path):
    path = write_jsonl(tmp_path / "f.jsonl", [{"sentence": "a", "label": 0}])
    with pytest.raises(UsageError, match=r"f.jsonl has no field 'text'; fields: sentence, label"):
        load_splits(str(path))


def test_user_file_non_binary_labels(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [{"text": f"w{i}", "label": i % 3} for i in range(9)])
    with pytest.raises(UsageError, match=r"labels of .*g.jsonl are not binary: found values 2"):
        load_splits(str(path))
    path = write_jsonl(
        tmp_path / "h.jsonl", [{"text": "a", "label": "yes"}, {"text": "b", "label": "0"}]
    )
    with pytest.raises(UsageError, match="not binary: found values 'yes'"):
        load_splits(str(path))


def test_user_file_too_small_is_an_empty_split_error(tmp_path):
    path = write_jsonl(
        tmp_path / "tiny.jsonl", [{"text": f"w{i}", "label": int(i == 0)} for i in range(5)]
    )
    with pytest.raises(UsageError, match="is empty after balancing"):
        load_splits(str(path))


def test_splits_from_options_use_the_resolved_options(mirror):
    settings = resolve(
        {
            "dataset": "cola",
            "data_dir": str(mirror),
            "seed": 2,
            "n_train": 100,
            "n_val": 10,
            "n_test": 30,
        }
    )
    expected = load_splits("cola", data_dir=mirror, seed=2, sizes=SplitSizes(100, 10, 30))
    assert load_options_splits(settings, "cola").fingerprint == expected.fingerprint
