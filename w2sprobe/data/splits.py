"""Balanced, seeded splits with stable ids: weak_train | strong_train | val | test.

Each pool (train, test) is processed as in the reference study (``DATASETS.md`` §4), with the
seed as a parameter; ``seed=0`` reproduces the reference's rows and order:

1. shuffle the pool (``np.random.default_rng(seed).permutation``);
2. format the rows in that order with one fresh ``random.Random(seed)`` per pool;
3. drop rows whose text is empty;
4. balance 50/50 by undersampling the majority label (seeded as the reference);
5. test = the first ``n_test`` test-pool rows; val = the first ``n_val`` train-pool rows, train =
   the next ``n_train``; train is halved by a ``default_rng(42 + seed)`` permutation: the first
   ``ceil(n/2)`` rows are strong_train, the rest weak_train.

Improvements over the reference:

* ids are the first 16 hex characters of the SHA-1 of the UTF-8 text (8 collide at ~10^5 rows);
* duplicate texts within a pool are dropped (first kept), and train-pool rows whose id occurs in
  the test pool are dropped, so ids are unique within a SplitSet and test overlaps nothing;
  both happen before balancing, which therefore stays exactly 50/50;
* every drop is counted in ``SplitSet.report`` instead of shrinking pools silently, together with
  pre-balance label counts and achieved vs requested sizes;
* a pool whose labels do not take exactly two values, or a split left empty, is a UsageError;
* when only one pool is available (a mirror without the train split, or a user file), both are
  carved from it: test = its first ``min(n_test, N // 2)`` balanced rows, the rest is the train
  pool; the report says so.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections import Counter
from collections.abc import Container
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

from ..errors import UsageError
from ..hashing import short_hash
from .formatters import Formatter
from .formatters import text as text_formatter
from .registry import get_spec
from .sources import Pools, Rows, is_user_file, load_pools, load_user_file

SPLIT_NAMES = ("weak_train", "strong_train", "val", "test")
ID_HEX_CHARS = 16
#: Offset of the seed that halves train, so that seed 0 matches the reference's ``seed=42``.
HALVING_SEED_OFFSET = 42


@dataclass(frozen=True)
class SplitSizes:
    """Requested sizes: ``n_train`` (before halving into weak/strong), ``n_val``, ``n_test``."""

    n_train: int = 10_000
    n_val: int = 1_000
    n_test: int = 5_000

    def __post_init__(self) -> None:
        for name, minimum in (("n_train", 2), ("n_val", 0), ("n_test", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")

    def requested(self) -> dict[str, int]:
        """The size each split asks for."""
        strong = math.ceil(self.n_train / 2)
        return {"weak_train": self.n_train - strong, "strong_train": strong,
                "val": self.n_val, "test": self.n_test}


@dataclass
class Split:
    """One split: parallel ids, texts and float32 0/1 ground-truth labels."""

    name: str
    ids: list[str]
    texts: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class SplitSet:
    """The four splits of one dataset, a content fingerprint and a JSON-able build report."""

    dataset: str
    splits: dict[str, Split]
    fingerprint: str
    report: dict[str, Any]


@dataclass
class _Pool:
    """Formatted rows of one pool, in their current order."""

    texts: list[str]
    ids: list[str]
    labels: np.ndarray  # int64 0/1

    def take(self, index) -> "_Pool":
        index = np.asarray(index, dtype=np.int64)
        return _Pool([self.texts[i] for i in index], [self.ids[i] for i in index], self.labels[index])

    def __len__(self) -> int:
        return len(self.ids)


def text_id(txt: str) -> str:
    """The stable id of an example: first 16 hex characters of SHA-1 of its UTF-8 text."""
    return hashlib.sha1(txt.encode("utf-8")).hexdigest()[:ID_HEX_CHARS]


def load_splits(dataset: str, *, data_dir: str | os.PathLike | None = None, seed: int = 0,
                sizes: SplitSizes = SplitSizes(), text_field: str = "text",
                label_field: str = "label") -> SplitSet:
    """Build the splits of a registry dataset or of a ``.jsonl/.json/.csv/.parquet`` file.

    ``data_dir`` is a local mirror (``<folder>/<split>.jsonl``); if it holds the dataset's folder,
    only the mirror is used, otherwise the hub.  ``text_field``/``label_field`` apply to files.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    if is_user_file(dataset):
        rows = load_user_file(dataset, text_field, label_field)
        pools = Pools(train=None, test=rows, source=f"file {dataset}",
                      origin={"shared": f"file {dataset}"})
        return build_splits(str(dataset), pools, text_formatter, seed, sizes)
    spec = get_spec(dataset)
    return build_splits(spec.name, load_pools(spec, data_dir), spec.formatter, seed, sizes)


def build_splits(name: str, pools: Pools, formatter: Formatter, seed: int, sizes: SplitSizes) -> SplitSet:
    """Process loaded pools into a SplitSet (see the module docstring for the steps)."""
    report: dict[str, Any] = {"dataset": name, "source": pools.source, "seed": seed,
                              "requested": asdict(sizes), "pools": {}, "notes": []}
    if pools.train is not None and pools.test is not None:
        test_pool = _prepare(pools.test, formatter, seed, report, "test", pools.origin.get("test"))
        train_pool = _prepare(pools.train, formatter, seed, report, "train", pools.origin.get("train"),
                              exclude=set(test_pool.ids))
        test_pool = _balance(test_pool, seed, report["pools"]["test"], "test")
        train_pool = _balance(train_pool, seed, report["pools"]["train"], "train")
    else:
        test_pool, train_pool = _carve(pools, formatter, seed, sizes, report)
    splits = _assign(train_pool, test_pool, seed, sizes)
    _report_splits(name, splits, sizes, report)
    return SplitSet(dataset=name, splits=splits, fingerprint=_fingerprint(name, splits), report=report)


def _prepare(rows: Rows, formatter: Formatter, seed: int, report: dict, pool: str,
             origin: Optional[str], exclude: Container[str] = frozenset()) -> _Pool:
    """Shuffle and format a pool, drop empty texts, duplicates and ids in ``exclude``; count drops."""
    texts, labels, empty = _format_shuffled(rows, formatter, seed)
    ids = [text_id(txt) for txt in texts]
    keep, duplicates, overlap = _first_unique(ids, exclude)
    report["pools"][pool] = {"from": origin, "rows_loaded": len(rows), "dropped_empty": empty,
                             "dropped_duplicates": duplicates, "dropped_test_overlap": overlap}
    return _Pool(texts, ids, np.asarray(labels, dtype=np.int64)).take(keep)


def _format_shuffled(rows: Rows, formatter: Formatter, seed: int) -> tuple[list[str], list[int], int]:
    """Texts and labels in shuffled order, and how many rows formatted to nothing."""
    rng = random.Random(seed)  # fresh per pool: MC labels depend on the pool's row order
    texts, labels, empty = [], [], 0
    for i in np.random.default_rng(seed).permutation(len(rows)):
        example = formatter(rows[i], rng)
        if example is None or example[0] == "":
            empty += 1
            continue
        texts.append(example[0])
        labels.append(example[1])
    return texts, labels, empty


def _first_unique(ids: list[str], exclude: Container[str]) -> tuple[list[int], int, int]:
    """Positions to keep (first occurrence, not excluded), duplicates dropped, excluded dropped."""
    keep, seen, duplicates, overlap = [], set(), 0, 0
    for i, id_ in enumerate(ids):
        if id_ in seen:
            duplicates += 1
        elif id_ in exclude:
            overlap += 1
        else:
            seen.add(id_)
            keep.append(i)
    return keep, duplicates, overlap


def _balance(pool: _Pool, seed: int, stats: dict, pool_name: str) -> _Pool:
    """Undersample the majority label to the minority count, exactly as the reference.

    Majority = the more frequent label (the first one seen on a tie); its rows are shuffled and
    cut to the minority count; minority then majority rows are concatenated and shuffled again.
    """
    counts = Counter(pool.labels.tolist())
    stats["label_counts_before_balance"] = {str(k): counts.get(k, 0) for k in (0, 1)}
    if len(counts) != 2:
        raise UsageError(f"labels of the {pool_name} pool ({stats['from']}) take {len(counts)} "
                         f"value(s) {sorted(counts)}; balancing needs exactly two")
    majority = max(counts, key=counts.__getitem__)
    minority_rows = np.flatnonzero(pool.labels != majority)
    majority_rows = np.flatnonzero(pool.labels == majority)
    n = len(minority_rows)
    majority_rows = majority_rows[np.random.default_rng(seed).permutation(len(majority_rows))[:n]]
    combined = np.concatenate([minority_rows, majority_rows])
    combined = combined[np.random.default_rng(seed).permutation(len(combined))]
    stats["dropped_by_balancing"] = len(pool) - len(combined)
    stats["balanced_size"] = len(combined)
    return pool.take(combined)


def _carve(pools: Pools, formatter: Formatter, seed: int, sizes: SplitSizes, report: dict) -> tuple[_Pool, _Pool]:
    """Only one pool exists: test = its first min(n_test, N // 2) balanced rows, train = the rest."""
    role = "test" if pools.test is not None else "train"
    rows = pools.test if pools.test is not None else pools.train
    origin = pools.origin.get("shared") or pools.origin.get(role)
    pool = _prepare(rows, formatter, seed, report, "shared", origin)
    pool = _balance(pool, seed, report["pools"]["shared"], "shared")
    k = min(sizes.n_test, len(pool) // 2)
    missing = "train" if role == "test" else "test"
    report["notes"].append(
        f"no {missing} pool in {pools.source}: test = first {k} rows of the balanced {origin} pool, "
        f"the train pool is its other {len(pool) - k} rows (their label balance is approximate)")
    return pool.take(range(k)), pool.take(range(k, len(pool)))


def _assign(train_pool: _Pool, test_pool: _Pool, seed: int, sizes: SplitSizes) -> dict[str, Split]:
    """Cut val/train from the train pool, halve train, cap test; in ``SPLIT_NAMES`` order."""
    # A small (e.g. carved) pool gives val at most half of it, so train is never left empty.
    val = train_pool.take(range(min(sizes.n_val, len(train_pool) // 2)))
    train = train_pool.take(range(len(val), min(len(val) + sizes.n_train, len(train_pool))))
    order = np.random.default_rng(HALVING_SEED_OFFSET + seed).permutation(len(train))
    n_strong = math.ceil(len(train) / 2)
    parts = {"weak_train": train.take(order[n_strong:]), "strong_train": train.take(order[:n_strong]),
             "val": val, "test": test_pool.take(range(min(sizes.n_test, len(test_pool))))}
    return {name: Split(name, part.ids, part.texts, part.labels.astype(np.float32))
            for name, part in parts.items()}


def _report_splits(name: str, splits: dict[str, Split], sizes: SplitSizes, report: dict) -> None:
    """Record achieved vs requested sizes; an empty split that was asked for is an error."""
    requested = sizes.requested()
    report["splits"] = {}
    for split_name, split in splits.items():
        positives = int(split.labels.sum())
        report["splits"][split_name] = {"size": len(split), "requested": requested[split_name],
                                        "label_counts": {"0": len(split) - positives, "1": positives}}
    for split_name, split in splits.items():
        if len(split) == 0 and requested[split_name] > 0:
            raise UsageError(f"dataset {name}: split {split_name} is empty after balancing "
                             f"({_pool_sizes(report)}); ask for smaller --n-test/--n-val")
        if len(split) < requested[split_name]:
            report["notes"].append(f"{split_name}: {len(split)} rows, fewer than the "
                                   f"{requested[split_name]} requested")


def _pool_sizes(report: dict) -> str:
    pools = [f"{pool} pool {stats['balanced_size']} rows" for pool, stats in report["pools"].items()]
    taken = [f"{split} {entry['size']}" for split, entry in report["splits"].items()]
    return f"{', '.join(pools)}; split sizes {', '.join(taken)}"


def _fingerprint(name: str, splits: dict[str, Split]) -> str:
    """Short hash over the dataset name and, per split in order, its ids and labels."""
    content = [name] + [[split.name, split.ids, split.labels.astype(int).tolist()]
                        for split in splits.values()]
    return short_hash(content)
