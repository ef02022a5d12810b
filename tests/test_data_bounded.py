"""The two-pass split builder gives exactly the eager builder's splits, and formats only kept rows.

``eager_splits`` below is the split builder as it was before (every row formatted in shuffled
order and held as text), written out independently; the library must match it row for row for
an order-free formatter (amazon_polarity), a fixed-draw one (anthropic_hh) and the MC rule
(piqa), on in-memory rows and on Arrow rows streamed from a datasets cache file.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from w2sprobe.data import SplitSizes
from w2sprobe.data import formatters as fmt
from w2sprobe.data.rows import ArrowRows, ListRows, as_source
from w2sprobe.data.sources import Pools
from w2sprobe.data.splits import build_splits

pytestmark = pytest.mark.usefixtures("no_hub")

SIZES = SplitSizes(n_train=60, n_val=20, n_test=40)


def sha16(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def eager_pool(rows, formatter, seed, exclude=frozenset()):
    rng = random.Random(seed)
    texts, labels = [], []
    for i in np.random.default_rng(seed).permutation(len(rows)):
        example = formatter(rows[i], rng)
        if example is not None and example[0] != "":
            texts.append(example[0])
            labels.append(example[1])
    seen, kept = set(), []
    for txt, label in zip(texts, labels):
        if sha16(txt) in seen or sha16(txt) in exclude:
            continue
        seen.add(sha16(txt))
        kept.append((txt, label))
    counts = Counter(label for _, label in kept)
    majority = max(counts, key=counts.__getitem__)
    minority = [k for k in kept if k[1] != majority]
    major = [k for k in kept if k[1] == majority]
    major = [major[i] for i in np.random.default_rng(seed).permutation(len(major))[: len(minority)]]
    both = minority + major
    return [both[i] for i in np.random.default_rng(seed).permutation(len(both))], seen


def eager_splits(train_rows, test_rows, formatter, seed, sizes):
    test, test_ids = eager_pool(test_rows, formatter, seed)
    train, _ = eager_pool(train_rows, formatter, seed, exclude=test_ids)
    val, train = train[: sizes.n_val], train[sizes.n_val : sizes.n_val + sizes.n_train]
    order = np.random.default_rng(42 + seed).permutation(len(train))
    n_strong = math.ceil(len(train) / 2)
    return {
        "weak_train": [train[i] for i in order[n_strong:]],
        "strong_train": [train[i] for i in order[:n_strong]],
        "val": val,
        "test": test[: sizes.n_test],
    }


def amazon(n, tag):
    # Duplicates (every 17th row repeats an earlier one) and cross-pool overlap (tag-free rows).
    return [
        {
            "label": (i * 7) % 3 % 2,
            "title": f"T{i % 5}",
            "content": f"{tag}{i if i % 17 else i // 17}" if i % 11 else f"shared {i}",
        }
        for i in range(n)
    ]


def hh(n, tag):
    return [
        {
            "chosen": f"\n\nHuman: {tag}{i}\n\nAssistant: yes",
            "rejected": f"\n\nHuman: {tag}{i}\n\nAssistant: no",
        }
        for i in range(n)
    ]


def piqa(n, tag):
    return [
        {"goal": f"{tag} goal {i}", "sol1": f"a{i % 9}", "sol2": f"b{i % 7}", "label": i % 2}
        for i in range(n)
    ]


def as_arrow_from_cache(rows, tmp_path, name):
    """Rows as a datasets Dataset read from a parquet file, i.e. memory-mapped cache files."""
    import datasets

    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    source = as_source(datasets.load_dataset("parquet", data_files={"x": str(path)}, split="x"))
    assert isinstance(source, ArrowRows) and source.files  # the streamed-scan path is exercised
    return source


@pytest.mark.parametrize(
    "make, formatter",
    [(amazon, fmt.amazon_polarity), (hh, fmt.anthropic_hh), (piqa, fmt.piqa)],
    ids=["rng_free", "fixed_draws", "mc_rule"],
)
@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("arrow", [False, True], ids=["list", "arrow"])
def test_two_pass_builder_equals_the_eager_builder(make, formatter, seed, arrow, tmp_path):
    train_rows, test_rows = make(700, "tr"), make(300, "te")
    if arrow:
        train, test = (
            as_arrow_from_cache(train_rows, tmp_path, "train"),
            as_arrow_from_cache(test_rows, tmp_path, "test"),
        )
    else:
        train, test = ListRows(train_rows), ListRows(test_rows)
    split_set = build_splits("x", Pools(train=train, test=test, source="t"), formatter, seed, SIZES)
    expected = eager_splits(train_rows, test_rows, formatter, seed, SIZES)
    for name, rows in expected.items():
        split = split_set.splits[name]
        assert split.texts == [t for t, _ in rows]
        assert split.labels.tolist() == [float(label) for _, label in rows]
        assert split.ids == [sha16(t) for t, _ in rows]


def test_amazon_rows_drop_duplicates_and_overlap_as_counted():
    split_set = build_splits(
        "x",
        Pools(train=ListRows(amazon(700, "tr")), test=ListRows(amazon(300, "te")), source="t"),
        fmt.amazon_polarity,
        0,
        SIZES,
    )
    train = split_set.report["pools"]["train"]
    assert train["dropped_duplicates"] > 0 and train["dropped_test_overlap"] > 0


class CountingRows(ListRows):
    """Counts rows handed out by each access path."""

    def __init__(self, rows):
        super().__init__(rows)
        self.scanned = self.gathered = self.taken = 0

    def batches(self, size=4096):
        for batch in super().batches(size):
            self.scanned += len(batch)
            yield batch

    def gather(self, indices):
        self.gathered += len(indices)
        return super().take(indices)

    def take(self, indices):
        self.taken += len(indices)
        return super().take(indices)


def test_order_free_formatters_read_once_in_order_and_format_only_kept_rows_again():
    calls = Counter()

    @fmt.rng_free
    def counted(row, rng):
        calls["n"] += 1
        return fmt.amazon_polarity(row, rng)

    train, test = CountingRows(amazon(2000, "tr")), CountingRows(amazon(500, "te"))
    split_set = build_splits("x", Pools(train=train, test=test, source="t"), counted, 0, SIZES)
    kept = sum(len(s) for s in split_set.splits.values())
    assert (train.scanned, test.scanned, train.taken + test.taken) == (2000, 500, 0)
    assert train.gathered + test.gathered == kept == 60 + 20 + 40
    assert calls["n"] == 2000 + 500 + kept


def test_marking_mistakes_fail_loudly():
    @fmt.rng_free
    def lies(row, rng):
        return row["content"], int(rng.random() < 0.5)

    @fmt.fixed_draws(1)
    def greedy(row, rng):
        rng.random()
        return row["content"], int(rng.random() < 0.5)

    for formatter, message in (
        (lies, "marked rng_free used its rng"),
        (greedy, "drew more values"),
    ):
        with pytest.raises(RuntimeError, match=message):
            build_splits(
                "x",
                Pools(train=ListRows(amazon(50, "a")), test=ListRows(amazon(50, "b")), source="t"),
                formatter,
                0,
                SIZES,
            )


def test_gather_and_take_agree_on_streamed_arrow_rows(tmp_path):
    rows = amazon(5000, "g")
    source = as_arrow_from_cache(rows, tmp_path, "g")
    indices = np.random.default_rng(1).choice(5000, 300, replace=False)
    assert source.gather(indices) == source.take(indices) == [rows[i] for i in indices]
    assert [row for batch in source.batches(777) for row in batch] == rows
