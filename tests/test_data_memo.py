"""The splits memo: a second load of the same mirror, seed and sizes reads no dataset, returns
exactly what a build returns, and any change to the mirror, the seed or the sizes builds again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from w2sprobe.data import SplitSizes, load_splits
from w2sprobe.data.memo import memo_dir

pytestmark = pytest.mark.usefixtures("no_hub")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZES = SplitSizes(n_train=200, n_val=20, n_test=100)


@pytest.fixture
def mirror(tmp_path) -> Path:
    """A private copy of CoLA's offline mirror (small), so a test may edit it."""
    root = tmp_path / "data"
    shutil.copytree(SHARED / "cola", root / "cola")
    return root


def _reads(monkeypatch) -> list[str]:
    """Count the mirror reads of load_pools."""
    from w2sprobe.data import sources, splits

    calls: list[str] = []
    real = sources.load_pools

    def counting(spec, data_dir):
        calls.append(spec.name)
        return real(spec, data_dir)

    monkeypatch.setattr(splits, "load_pools", counting)
    return calls


def _same(a, b) -> None:
    assert a.dataset == b.dataset and a.fingerprint == b.fingerprint and a.report == b.report
    assert list(a.splits) == list(b.splits)
    for name in a.splits:
        assert a.splits[name].ids == b.splits[name].ids
        assert a.splits[name].texts == b.splits[name].texts
        assert a.splits[name].labels.dtype == b.splits[name].labels.dtype == np.float32
        np.testing.assert_array_equal(a.splits[name].labels, b.splits[name].labels)


def test_second_load_reads_no_data_and_equals_a_fresh_build(mirror, monkeypatch, tmp_path):
    reads = _reads(monkeypatch)
    first = load_splits("cola", data_dir=mirror, seed=3, sizes=SIZES)
    second = load_splits("cola", data_dir=mirror, seed=3, sizes=SIZES)
    assert reads == ["cola"]  # the second came from the memo
    _same(first, second)
    monkeypatch.setenv("W2SPROBE_SPLITS_MEMO", str(tmp_path / "empty-memo"))
    _same(load_splits("cola", data_dir=mirror, seed=3, sizes=SIZES), second)
    assert reads == ["cola", "cola"]


def test_seed_sizes_and_mirror_changes_build_again(mirror, monkeypatch):
    reads = _reads(monkeypatch)
    base = load_splits("cola", data_dir=mirror, seed=0, sizes=SIZES)
    load_splits("cola", data_dir=mirror, seed=1, sizes=SIZES)
    load_splits(
        "cola", data_dir=mirror, seed=0, sizes=SplitSizes(n_train=100, n_val=20, n_test=100)
    )
    assert len(reads) == 3
    # an edit that keeps the size and restores the mtime still moves the ctime
    path = mirror / "cola" / "train.jsonl"
    st = path.stat()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(reversed(lines)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    _same(load_splits("cola", data_dir=mirror, seed=0, sizes=SIZES), base)  # ids, not order
    assert len(reads) == 4  # ... but it was read again


def test_a_damaged_memo_is_rebuilt(mirror, monkeypatch):
    reads = _reads(monkeypatch)
    first = load_splits("cola", data_dir=mirror, sizes=SIZES)
    (memo,) = memo_dir().glob("cola-*.json")
    memo.write_text(memo.read_text()[:100])
    _same(load_splits("cola", data_dir=mirror, sizes=SIZES), first)
    assert len(reads) == 2


def test_the_memo_keeps_the_most_recently_used_builds(mirror, monkeypatch):
    """Beyond MAX_FILES, storing a build deletes the least recently used ones; reading one
    counts as a use, so it survives."""
    from w2sprobe.data import memo

    monkeypatch.setattr(memo, "MAX_FILES", 2)
    reads = _reads(monkeypatch)
    for seed in (0, 1):
        load_splits("cola", data_dir=mirror, seed=seed, sizes=SIZES)
    (first,) = [p for p in memo_dir().glob("cola-*.json") if '"seed": 0' in p.read_text()]
    os.utime(first, ns=(1, 1))  # made long ago ...
    load_splits("cola", data_dir=mirror, seed=0, sizes=SIZES)  # ... but used just now
    assert len(reads) == 2 and first.stat().st_mtime_ns > 1
    load_splits("cola", data_dir=mirror, seed=2, sizes=SIZES)  # a third build: seed 1 goes
    assert len(list(memo_dir().glob("cola-*.json"))) == 2
    load_splits("cola", data_dir=mirror, seed=0, sizes=SIZES)
    load_splits("cola", data_dir=mirror, seed=1, sizes=SIZES)
    assert len(reads) == 4  # seed 0 still memoised, seed 1 built again
