"""Benchmark: build blog-size splits (10k/1k/5k) from a 3M-row dataset in amazon_polarity's schema.

Generates ``<work>/amazon_polarity/default/{train,test}/0000.parquet`` (train 3,000,000 rows,
test 400,000; ``label`` int64, ``title`` and ``content`` strings of review-like length), i.e. a
hub parquet export in a ``--data-dir`` mirror, and builds the splits through the registry path,
side by side in one run:

* **old**: the code before this change (``git archive`` of ``--old-commit``): every row becomes
  a Python dict (``Dataset.to_list``), every row is formatted and kept as text;
* **new**: ``load_splits("amazon_polarity", data_dir=work)``: rows stay in Arrow, one pass keeps
  8-byte ids and labels, only the 16,000 kept rows are formatted again.

Each runs in a fresh subprocess; the figure is the growth of peak RSS (``ru_maxrss``) over the
process's RSS after imports, and the wall time of load + build.  The datasets Arrow cache is
warmed first (its one-time conversion is reported separately), as it is on a second run of any
real study.  Both paths must give the same split fingerprint.

    python bench/data.py [--rows 3000000] [--work /tmp/w2s-bench-data] [--skip-old]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OLD_COMMIT = "4bbe1cd"  # the branch point: the eager split builder
SIZES = (10_000, 1_000, 5_000)
WORDS = [
    "good",
    "great",
    "bad",
    "awful",
    "product",
    "quality",
    "price",
    "delivery",
    "battery",
    "screen",
    "sound",
    "works",
    "broke",
    "returned",
    "love",
    "hate",
    "recommend",
    "never",
    "again",
    "cheap",
    "sturdy",
    "flimsy",
    "perfect",
    "gift",
    "kids",
    "easy",
    "hard",
    "manual",
    "setup",
    "minutes",
    "hours",
    "days",
    "months",
    "years",
    "fine",
    "okay",
    "excellent",
    "terrible",
]


def generate(work: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Write the parquet export; rows are unique (a serial number) so nothing is deduplicated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    # A pool of review bodies (~70 words, ~420 characters), reused with a serial number.
    bodies = [" ".join(rng.choice(WORDS, size=rng.integers(40, 100))) for _ in range(20_000)]
    titles = [
        " ".join(rng.choice(WORDS, size=rng.integers(2, 7))).capitalize() for _ in range(5_000)
    ]
    for split, n in (("train", n_train), ("test", n_test)):
        folder = work / "amazon_polarity" / "default" / split
        folder.mkdir(parents=True, exist_ok=True)
        schema = pa.schema(
            [("label", pa.int64()), ("title", pa.string()), ("content", pa.string())]
        )
        with pq.ParquetWriter(folder / "0000.parquet", schema) as writer:
            for start in range(0, n, 200_000):
                m = min(200_000, n - start)
                body = rng.integers(0, len(bodies), m)
                title = rng.integers(0, len(titles), m)
                labels = rng.integers(0, 2, m)
                writer.write_table(
                    pa.table(
                        {
                            "label": labels,
                            "title": [titles[t] for t in title],
                            "content": [
                                f"{bodies[b]} (review {split}-{start + i})"
                                for i, b in enumerate(body)
                            ],
                        },
                        schema=schema,
                    ),
                    row_group_size=50_000,
                )
    return work


_MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    import psutil
    import numpy as np
    import datasets
    datasets.disable_progress_bars()
    {imports}
    start_rss = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    {build}
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({{"seconds": seconds, "rss_start": start_rss, "rss_peak": peak,
                      "growth": peak - start_rss, "fingerprint": split_set.fingerprint,
                      "sizes": {{k: len(v) for k, v in split_set.splits.items()}}}}))
""")

_NEW_IMPORTS = "from w2sprobe.data import SplitSizes, load_splits"
_NEW_BUILD = "split_set = load_splits('amazon_polarity', data_dir=WORK, sizes=SplitSizes(*SIZES))"
_OLD_IMPORTS = (
    "from w2sprobe.data.splits import SplitSizes, build_splits\n"
    "from w2sprobe.data.sources import Pools\n"
    "from w2sprobe.data import get_spec"
)
# Today's code read every split with ``load_dataset(...).to_list()`` (sources.load_mirror_split
# and load_hub_split alike); the old mirror reader knew only <split>.jsonl, so the same call is
# made on the parquet files here.
_OLD_BUILD = textwrap.dedent("""
    files = {s: f"{WORK}/amazon_polarity/default/{s}/0000.parquet" for s in ("train", "test")}
    rows = {
        s: datasets.load_dataset("parquet", data_files={s: f}, split=s).to_list()
        for s, f in files.items()
    }
    spec = get_spec("amazon_polarity")
    split_set = build_splits(
        spec.name,
        Pools(train=rows["train"], test=rows["test"], source="bench"),
        spec.formatter,
        0,
        SplitSizes(*SIZES),
    )
""")

_WARM = {
    "new": "from w2sprobe.data.sources import read_mirror_split\nfrom pathlib import Path\n"
    "[read_mirror_split(Path(WORK) / 'amazon_polarity', s) for s in ('train', 'test')]",
    "old": "[datasets.load_dataset('parquet', data_files={s: f'{WORK}/amazon_polarity/default/{s}/"
    "0000.parquet'}, split=s) for s in ('train', 'test')]",
}


def _run(code: str, pythonpath: Path, env_extra: dict, limit_gib: float) -> dict:
    """Run ``code`` in a fresh interpreter; kill it if its RSS passes ``limit_gib``."""
    import psutil

    env = {**os.environ, "PYTHONPATH": str(pythonpath), **env_extra}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    watched, killed = psutil.Process(proc.pid), False
    while proc.poll() is None:
        try:
            if watched.memory_info().rss > limit_gib * 2**30:
                proc.kill()
                killed = True
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    if killed:
        return {"killed_over_gib": limit_gib}
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _program(imports: str, build: str, work: Path) -> str:
    head = f"WORK = {str(work)!r}\nSIZES = {SIZES!r}\n"
    return head + _MEASURE.format(imports=imports, build=build)


def _old_package(tmp: Path, commit: str) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "w2sprobe"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return tmp


def _warm(which: str, pythonpath: Path, work: Path, env: dict) -> float:
    code = (
        f"WORK = {str(work)!r}\nimport datasets\ndatasets.disable_progress_bars()\n{_WARM[which]}"
    )
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**os.environ, "PYTHONPATH": str(pythonpath), **env},
        cwd=tempfile.gettempdir(),
        capture_output=True,
    )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--test-rows", type=int, default=400_000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "w2s-bench-data")
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    parser.add_argument("--skip-old", action="store_true")
    parser.add_argument(
        "--old-limit-gib",
        type=float,
        default=12.0,
        help="kill the old path above this RSS (shared machines)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files and caches")
    args = parser.parse_args()

    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    generate(work, args.rows, args.test_rows)
    print(
        f"generated {args.rows:,} + {args.test_rows:,} rows in {time.perf_counter() - t0:.1f} s "
        f"({sum(p.stat().st_size for p in work.rglob('*.parquet')) / 2**20:.0f} MiB parquet)"
    )
    env = {"HF_DATASETS_CACHE": str(work / "hf-cache"), "HF_HUB_OFFLINE": "1"}
    results = {}
    runs = [("new", REPO, _NEW_IMPORTS, _NEW_BUILD)]
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_old:
            runs.insert(
                0, ("old", _old_package(Path(tmp), args.old_commit), _OLD_IMPORTS, _OLD_BUILD)
            )
        for name, path, imports, build in runs:
            warm = _warm(name, path, work, env)
            limit = args.old_limit_gib if name == "old" else 64.0
            results[name] = {
                **_run(_program(imports, build, work), path, env, limit),
                "cache_build_s": warm,
            }
    for name, result in results.items():
        if "killed_over_gib" in result:
            print(f"{name}: killed above {result['killed_over_gib']} GiB RSS")
            continue
        print(
            f"{name}: {result['seconds']:.1f} s, "
            f"peak RSS growth {result['growth'] / 2**30:.2f} GiB "
            f"(peak {result['rss_peak'] / 2**30:.2f} GiB), fingerprint {result['fingerprint']}, "
            f"sizes {result['sizes']}; one-time Arrow cache build {result['cache_build_s']:.1f} s"
        )
    if {"old", "new"} <= set(results) and all("fingerprint" in r for r in results.values()):
        same = results["old"]["fingerprint"] == results["new"]["fingerprint"]
        print(f"same splits (fingerprint) old vs new: {same}")
    print(json.dumps(results))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
