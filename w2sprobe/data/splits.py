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
  pool; the report says so;
* user data may bring its own validation split: val then comes from it, not from the train pool.

Memory: a pool is never held as Python dicts or texts.  A first pass formats every row once,
keeping a 64-bit id key and a label per row (about 30 bytes a row with the shuffle permutation);
dedup, overlap and balancing run on those arrays; a second pass formats only the rows that end
up in a split.  Formatters marked ``rng_free`` are scanned in storage order and their kept rows
fetched by index; the others (MC rule, anthropic_hh) are replayed in shuffled order with the
same ``random.Random(seed)``, so the texts are exactly those of the first pass.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from ..hashing import short_hash
from ..options import DataOptions
from .formatters import Formatter, draws_per_row
from .memo import memoised
from .registry import get_spec
from .rows import RowSource, as_source
from .sources import Pools, is_user_file, load_pools, load_user_file, require_mirror_folder
from .user import is_user_data, user_pools

SPLIT_NAMES = ("weak_train", "strong_train", "val", "test")
ID_HEX_CHARS = 16
#: Offset of the seed that halves train, so that seed 0 matches the reference's ``seed=42``.
HALVING_SEED_OFFSET = 42
#: Rows per formatting batch in the shuffled-order passes.
SCAN_BATCH = 4096
_NO_KEYS = np.zeros(0, dtype=np.uint64)
#: Why a scanned row is dropped before dedup: it is not, its text is empty, or the formatter
#: returned None (a row that is no example of the task, e.g. a neutral tweet for polarity).
_KEPT, _EMPTY_TEXT, _NOT_AN_EXAMPLE = 0, 1, 2


@dataclass(frozen=True)
class SplitSizes:
    """Requested sizes: ``n_train`` (before halving into weak/strong), ``n_val``, ``n_test``."""

    # The defaults are the data options' (the demo's 1,200/100/400; --preset blog: 10k/1k/5k).
    n_train: int = DataOptions().n_train
    n_val: int = DataOptions().n_val
    n_test: int = DataOptions().n_test

    def __post_init__(self) -> None:
        for name, minimum in (("n_train", 2), ("n_val", 0), ("n_test", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")

    def requested(self) -> dict[str, int]:
        """The size each split asks for."""
        strong = math.ceil(self.n_train / 2)
        return {
            "weak_train": self.n_train - strong,
            "strong_train": strong,
            "val": self.n_val,
            "test": self.n_test,
        }


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
class _Scan:
    """One pool's source, formatter and shuffle: enough to re-create any row's text."""

    source: RowSource
    formatter: Formatter
    seed: int
    order: np.ndarray  # storage index of each shuffled position
    _draws: np.ndarray | None = None

    @property
    def order_free(self) -> bool:
        """Whether rows may be formatted in any order (``rng_free`` or ``fixed_draws``)."""
        return draws_per_row(self.formatter) is not None

    def draws(self) -> np.ndarray:
        """A ``fixed_draws(d)`` formatter's rng values, (rows, d), by shuffled position.

        Exactly what one ``random.Random(seed)`` would hand out row after row in shuffled order.
        """
        if self._draws is None:
            d = draws_per_row(self.formatter) or 0
            rng = random.Random(self.seed)
            self._draws = np.array(
                [rng.random() for _ in range(len(self.order) * d)], dtype=np.float64
            ).reshape(len(self.order), d)
        return self._draws

    def rng_for(self, position: int, draws: np.ndarray):
        """The rng to format the row at a shuffled position with, in an order-free pass."""
        return _NoRng() if draws.shape[1] == 0 else _ReplayRng(draws[position])


@dataclass
class _Pool:
    """Rows of one pool in their current order: id key, label, shuffled position (no texts)."""

    keys: np.ndarray  # uint64: the id's 16 hex characters as a number
    labels: np.ndarray  # int64 0/1
    positions: np.ndarray  # int64 shuffled position in ``scan``
    scan: _Scan

    def take(self, index) -> _Pool:
        index = np.asarray(index, dtype=np.int64)
        return _Pool(self.keys[index], self.labels[index], self.positions[index], self.scan)

    def __len__(self) -> int:
        return len(self.keys)


class _NoRng:
    """Handed to ``rng_free`` formatters: a draw means the marking is wrong, so fail loudly."""

    def __getattr__(self, name):
        raise RuntimeError("a formatter marked rng_free used its rng")


class _ReplayRng:
    """Serves a ``fixed_draws`` formatter its pre-drawn values; anything else fails loudly."""

    def __init__(self, values: np.ndarray):
        self.values, self.used = values.tolist(), 0

    def random(self) -> float:
        if self.used >= len(self.values):
            raise RuntimeError("a formatter marked fixed_draws drew more values than declared")
        self.used += 1
        return self.values[self.used - 1]

    def __getattr__(self, name):
        raise RuntimeError(f"a formatter marked fixed_draws called rng.{name}")


def text_id(txt: str) -> str:
    """The stable id of an example: first 16 hex characters of SHA-1 of its UTF-8 text."""
    return hashlib.sha1(txt.encode("utf-8")).hexdigest()[:ID_HEX_CHARS]


def _id_key(txt: str) -> int:
    # The first 8 digest bytes are exactly the 16 hex characters of ``text_id``.
    return int.from_bytes(hashlib.sha1(txt.encode("utf-8")).digest()[:8], "big")


def _key_id(key: int) -> str:
    return f"{key:016x}"


def load_splits(
    dataset: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    sizes: SplitSizes = SplitSizes(),
    text_field: str = "text",
    label_field: str = "label",
    positive_label: str | None = None,
) -> SplitSet:
    """Build the splits of a dataset: a registry name, a user-defined name, or the user's data.

    ``dataset`` is a registry name (``w2sprobe data list``), a name defined from a
    ``[datasets.NAME]`` table (``define_dataset``), a ``.jsonl/.json/.csv/.parquet`` file, a
    folder with ``train.*``/``validation.*``/``test.*`` files, or ``hub:org/name[:config]``.
    ``data_dir`` is a local mirror for registry names (then the hub is never used).
    ``text_field``/``label_field``/``positive_label`` apply to files, folders and ``hub:``
    sources; ``positive_label`` makes a multi-class label one-vs-rest.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    if is_user_data(dataset):
        name, pools, formatter = user_pools(
            dataset, text_field=text_field, label_field=label_field, positive_label=positive_label
        )
        return build_splits(name, pools, formatter, seed, sizes)
    if is_user_file(dataset):  # a file whose suffix is known but that is not there: say so
        load_user_file(dataset, text_field, label_field)
    spec = get_spec(dataset)
    if positive_label is not None:  # registry labels are fixed: silently ignoring it would mislead
        raise UsageError(
            f"--positive-label applies to files, folders and hub: sources; {spec.name} "
            f"is a registry dataset with fixed labels ({spec.label_note})"
        )

    def build() -> SplitSet:
        return build_splits(spec.name, load_pools(spec, data_dir), spec.formatter, seed, sizes)

    if data_dir is None:  # the hub: no local files to stamp
        return build()
    return memoised(  # a local mirror: built once per mirror state, seed and sizes
        build,
        name=spec.name,
        folder=require_mirror_folder(spec, data_dir),
        params={"seed": seed, "sizes": sizes.requested()},
        encode=_splits_to_json,
        decode=_splits_from_json,
    )


def _splits_to_json(splits: SplitSet) -> dict:
    return {
        "dataset": splits.dataset,
        "fingerprint": splits.fingerprint,
        "report": splits.report,
        "splits": {
            name: {"ids": s.ids, "texts": s.texts, "labels": s.labels.tolist()}
            for name, s in splits.splits.items()
        },
    }


def _splits_from_json(data: dict) -> SplitSet:
    return SplitSet(
        dataset=data["dataset"],
        splits={
            name: Split(name, s["ids"], s["texts"], np.asarray(s["labels"], dtype=np.float32))
            for name, s in data["splits"].items()
        },
        fingerprint=data["fingerprint"],
        report=data["report"],
    )


def build_splits(
    name: str, pools: Pools, formatter: Formatter, seed: int, sizes: SplitSizes
) -> SplitSet:
    """Process loaded pools into a SplitSet (see the module docstring for the steps)."""
    report: dict[str, Any] = {
        "dataset": name,
        "source": pools.source,
        "seed": seed,
        "requested": asdict(sizes),
        "pools": {},
        "notes": list(pools.notes),
    }
    val_pool = None
    if pools.train is not None and pools.test is not None:
        test_pool = _prepare(pools.test, formatter, seed, report, "test", pools.origin.get("test"))
        exclude = test_pool.keys
        if pools.val is not None:
            val_pool = _prepare(
                pools.val, formatter, seed, report, "val", pools.origin.get("val"), exclude=exclude
            )
            exclude = np.concatenate([exclude, val_pool.keys])
        train_pool = _prepare(
            pools.train,
            formatter,
            seed,
            report,
            "train",
            pools.origin.get("train"),
            exclude=exclude,
        )
        test_pool = _balance(test_pool, seed, report["pools"]["test"], "test")
        if val_pool is not None:
            val_pool = _balance(val_pool, seed, report["pools"]["val"], "val")
        train_pool = _balance(train_pool, seed, report["pools"]["train"], "train")
    else:
        test_pool, train_pool = _carve(pools, formatter, seed, sizes, report)
        if pools.val is not None:  # user data with validation beside a single other split
            shared = np.concatenate([test_pool.keys, train_pool.keys])
            val_pool = _prepare(
                pools.val, formatter, seed, report, "val", pools.origin.get("val"), exclude=shared
            )
            val_pool = _balance(val_pool, seed, report["pools"]["val"], "val")
    parts = _assign(train_pool, test_pool, seed, sizes, val_pool)
    splits = _materialise(parts)
    _report_splits(name, splits, sizes, report)
    return SplitSet(
        dataset=name, splits=splits, fingerprint=_fingerprint(name, splits), report=report
    )


def _prepare(
    rows,
    formatter: Formatter,
    seed: int,
    report: dict,
    pool: str,
    origin: str | None,
    exclude: np.ndarray = _NO_KEYS,
) -> _Pool:
    """Shuffle and format a pool; drop empty texts, duplicates and ids in ``exclude``, counting
    the drops."""
    source = as_source(rows)
    scan = _Scan(source, formatter, seed, np.random.default_rng(seed).permutation(len(source)))
    keys, labels, dropped = _scan_keys(scan)
    positions = np.flatnonzero(dropped == _KEPT)
    keys, labels = keys[positions], labels[positions]
    first = np.zeros(len(keys), dtype=bool)
    first[np.unique(keys, return_index=True)[1]] = True
    # Every occurrence of an excluded id counts as overlap (none is kept), as the reference does.
    excluded = np.isin(keys, exclude) if len(exclude) else np.zeros(len(keys), dtype=bool)
    keep = first & ~excluded
    report["pools"][pool] = {
        "from": origin,
        "rows_loaded": len(source),
        "dropped_empty": int((dropped == _EMPTY_TEXT).sum()),
        "dropped_by_formatter": int((dropped == _NOT_AN_EXAMPLE).sum()),
        "dropped_duplicates": int((~first & ~excluded).sum()),
        "dropped_test_overlap": int(excluded.sum()),
    }
    return _Pool(keys[keep], labels[keep], positions[keep], scan)


def _scan_keys(scan: _Scan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per shuffled position: id key, label and why the row is dropped (``_KEPT``: it is not)."""
    n = len(scan.order)
    keys, labels = np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.int64)
    dropped = np.full(n, _KEPT, dtype=np.int8)
    if scan.order_free:
        # Read in storage order (sequential, batch by batch), then apply the shuffle.
        draws = scan.draws()
        if draws.shape[1]:
            by_storage = np.empty_like(draws)
            by_storage[scan.order] = draws
            draws = by_storage
        start = 0
        for batch in scan.source.batches():
            for offset, row in enumerate(batch):
                i = start + offset
                _record(scan.formatter(row, scan.rng_for(i, draws)), i, keys, labels, dropped)
            start += len(batch)
        return keys[scan.order], labels[scan.order], dropped[scan.order]
    for position, example in _shuffled_examples(scan, n):
        _record(example, position, keys, labels, dropped)
    return keys, labels, dropped


def _record(example, index: int, keys: np.ndarray, labels: np.ndarray, dropped: np.ndarray) -> None:
    if example is None:  # the formatter's "not an example" (e.g. a neutral tweet)
        dropped[index] = _NOT_AN_EXAMPLE
    elif example[0] == "":
        dropped[index] = _EMPTY_TEXT
    else:
        keys[index] = _id_key(example[0])
        labels[index] = example[1]


def _shuffled_examples(scan: _Scan, stop: int):
    """``(position, example)`` for shuffled positions ``0..stop-1``, one fresh rng per pool."""
    rng = random.Random(scan.seed)  # fresh per pool: MC labels depend on the pool's row order
    for start in range(0, stop, SCAN_BATCH):
        rows = scan.source.take(scan.order[start : min(start + SCAN_BATCH, stop)])
        for offset, row in enumerate(rows):
            yield start + offset, scan.formatter(row, rng)


def _texts(pool: _Pool) -> list[str]:
    """The texts of a pool's rows, formatted again from the source (only these rows)."""
    scan = pool.scan
    wanted = {int(p): None for p in pool.positions}
    if not wanted:
        return []
    if scan.order_free:
        positions = np.fromiter(wanted, dtype=np.int64)
        rows = scan.source.gather(scan.order[positions])
        draws = scan.draws()
        found = {
            int(p): scan.formatter(row, scan.rng_for(int(p), draws))[0]
            for p, row in zip(positions, rows)
        }
    else:
        found = {
            position: example[0]
            for position, example in _shuffled_examples(scan, max(wanted) + 1)
            if position in wanted
        }
    texts = [found[int(p)] for p in pool.positions]
    for txt, key in zip(texts, pool.keys.tolist()):
        if _id_key(txt) != key:
            raise RuntimeError(
                "a formatter gave a different text for the same row twice; "
                "formatters must be deterministic given the row and the rng"
            )
    return texts


def _materialise(parts: dict[str, _Pool]) -> dict[str, Split]:
    """Splits with texts: each pool's source is re-read once for all the splits it feeds."""
    texts: dict[str, list[str]] = {}
    by_scan: dict[int, list[str]] = {}
    for name, part in parts.items():
        by_scan.setdefault(id(part.scan), []).append(name)
    for names in by_scan.values():
        merged = _Pool(
            np.concatenate([parts[n].keys for n in names]),
            np.concatenate([parts[n].labels for n in names]),
            np.concatenate([parts[n].positions for n in names]),
            parts[names[0]].scan,
        )
        all_texts, start = _texts(merged), 0
        for n in names:
            texts[n] = all_texts[start : start + len(parts[n])]
            start += len(parts[n])
    return {
        name: Split(
            name,
            [_key_id(k) for k in part.keys.tolist()],
            texts[name],
            part.labels.astype(np.float32),
        )
        for name, part in parts.items()
    }


def _balance(pool: _Pool, seed: int, stats: dict, pool_name: str) -> _Pool:
    """Undersample the majority label to the minority count, exactly as the reference.

    Majority = the more frequent label (the first one seen on a tie); its rows are shuffled and
    cut to the minority count; minority then majority rows are concatenated and shuffled again.
    """
    counts = Counter(pool.labels.tolist())
    stats["label_counts_before_balance"] = {str(k): counts.get(k, 0) for k in (0, 1)}
    if len(counts) != 2:
        if not counts:
            raise UsageError(
                f"the {pool_name} pool ({stats['from']}) has no rows left after dropping "
                "empty, duplicate and test-overlapping rows"
            )
        only = f"only label {min(counts)}" if len(counts) == 1 else f"{len(counts)} label values"
        raise UsageError(
            f"the {pool_name} pool ({stats['from']}) has {only} after dropping empty "
            f"and duplicate rows ({len(pool)} rows); balancing needs both 0 and 1"
        )
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


def _carve(
    pools: Pools, formatter: Formatter, seed: int, sizes: SplitSizes, report: dict
) -> tuple[_Pool, _Pool]:
    """Only one pool exists: split it into test and train.

    Test is its first min(n_test, N // 2) balanced rows, train the rest.
    """
    role = "test" if pools.test is not None else "train"
    rows = pools.test if pools.test is not None else pools.train
    origin = pools.origin.get("shared") or pools.origin.get(role)
    pool = _prepare(rows, formatter, seed, report, "shared", origin)
    pool = _balance(pool, seed, report["pools"]["shared"], "shared")
    k = min(sizes.n_test, len(pool) // 2)
    missing = "train" if role == "test" else "test"
    report["notes"].append(
        f"no {missing} pool in {pools.source}: "
        f"test = first {k} rows of the balanced {origin} pool, "
        f"the train pool is its other {len(pool) - k} rows (their label balance is approximate)"
    )
    return pool.take(range(k)), pool.take(range(k, len(pool)))


def _assign(
    train_pool: _Pool, test_pool: _Pool, seed: int, sizes: SplitSizes, val_pool: _Pool | None = None
) -> dict[str, _Pool]:
    """Cut val/train from the train pool (val from ``val_pool`` if given), halve train, cap test."""
    if val_pool is not None:
        val = val_pool.take(range(min(sizes.n_val, len(val_pool))))
        train = train_pool.take(range(min(sizes.n_train, len(train_pool))))
    else:
        # A small (e.g. carved) pool gives val at most half of it, so train is never left empty.
        val = train_pool.take(range(min(sizes.n_val, len(train_pool) // 2)))
        train = train_pool.take(range(len(val), min(len(val) + sizes.n_train, len(train_pool))))
    order = np.random.default_rng(HALVING_SEED_OFFSET + seed).permutation(len(train))
    n_strong = math.ceil(len(train) / 2)
    return {
        "weak_train": train.take(order[n_strong:]),
        "strong_train": train.take(order[:n_strong]),
        "val": val,
        "test": test_pool.take(range(min(sizes.n_test, len(test_pool)))),
    }


def _report_splits(name: str, splits: dict[str, Split], sizes: SplitSizes, report: dict) -> None:
    """Record achieved vs requested sizes; an empty split that was asked for is an error."""
    requested = sizes.requested()
    report["splits"] = {}
    for split_name, split in splits.items():
        positives = int(split.labels.sum())
        report["splits"][split_name] = {
            "size": len(split),
            "requested": requested[split_name],
            "label_counts": {"0": len(split) - positives, "1": positives},
        }
    for split_name, split in splits.items():
        if len(split) == 0 and requested[split_name] > 0:
            raise UsageError(
                f"dataset {name}: split {split_name} is empty after balancing "
                f"({_pool_sizes(report)}); ask for smaller --n-test/--n-val"
            )
        if len(split) < requested[split_name]:
            report["notes"].append(
                f"{split_name}: {len(split)} rows, fewer than the {requested[split_name]} requested"
            )


def _pool_sizes(report: dict) -> str:
    pools = [
        f"{pool} pool {stats['balanced_size']} rows" for pool, stats in report["pools"].items()
    ]
    taken = [f"{split} {entry['size']}" for split, entry in report["splits"].items()]
    return f"{', '.join(pools)}; split sizes {', '.join(taken)}"


def _fingerprint(name: str, splits: dict[str, Split]) -> str:
    """Short hash over the dataset name and, per split in order, its ids and labels."""
    content = [name] + [
        [split.name, split.ids, split.labels.astype(int).tolist()] for split in splits.values()
    ]
    return short_hash(content)
