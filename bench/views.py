"""Issue 32's numbers, each side by side with its baseline in one run.

* PCA view of 10k x 768 rows: ``w2sprobe.views.project_2d`` (randomized, seeded) vs an exact
  full-SVD PCA (sklearn ``svd_solver="full"``); time, and how far apart the coordinates are.
* Linear CKA between two 10k-row activation sets (384-d and 768-d): feature-space products
  over row blocks (``w2sprobe.views.linear_cka``) vs the textbook N x N Gram-matrix formula;
  time and peak traced memory (tracemalloc, which NumPy reports its buffers to).
* Storage per dtype and compression: file bytes, a full read of every layer, and a read of 100
  random rows, on real activations (``--acts FILE``: any complete activation file; default:
  the largest under --cache-dir), rewritten through the cache's own writer per setting.

    python bench/views.py [--cache-dir cache] [--acts FILE] [--rows 10000]

Inputs are real activations when a file is found (rows repeated up to --rows for the PCA and
CKA parts), else seeded Gaussian data with a decaying spectrum (stated in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from w2sprobe.cache import ActivationStore, list_entries  # noqa: E402
from w2sprobe.cache.writer import PartialActivationFile, SplitData  # noqa: E402
from w2sprobe.views import linear_cka, project_2d  # noqa: E402


def best_of(fn, repeats=3):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def peak_memory(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, result


def gram_cka(x, y):
    """The N x N baseline: HSIC of centred linear kernels (Kornblith et al. 2019)."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    k = x @ x.T  # centring the features centres the kernel: H K H = Xc Xc^T
    l_ = y @ y.T
    return float(np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_)))


def source(args):
    path = Path(args.acts) if args.acts else None
    if path is None:
        entries = [e for e in list_entries(Path(args.cache_dir)) if e.complete]
        path = max(entries, key=lambda e: e.size_bytes).path if entries else None
    return path


def rows_of(path, layer, n, hidden_fallback, seed=0):
    if path is None:
        rng = np.random.default_rng(seed)
        scale = 1.0 / np.sqrt(np.arange(1, hidden_fallback + 1))
        return (rng.normal(size=(n, hidden_fallback)) * scale).astype(np.float32), "synthetic"
    with ActivationStore.open(path) as store:
        parts = [np.asarray(store.get(s, layer), np.float32) for s in store.splits]
    data = np.concatenate(parts)
    reps = int(np.ceil(n / len(data)))
    noise = np.random.default_rng(seed).normal(scale=1e-3, size=(reps * len(data), data.shape[1]))
    return (np.tile(data, (reps, 1)) + noise)[:n].astype(np.float32), f"{path.name} layer {layer}"


def bench_pca(x):
    from sklearn.decomposition import PCA

    ours_s, ours = best_of(lambda: project_2d(x, seed=0))
    exact_s, exact = best_of(lambda: PCA(n_components=2, svd_solver="full").fit_transform(x))
    gap = max(
        float(np.max(np.abs(np.abs(ours.coords[:, i]) - np.abs(exact[:, i])))) for i in range(2)
    )
    spread = float(np.max(np.abs(exact)))
    return {"ours_s": ours_s, "exact_s": exact_s, "max_abs_diff_over_range": gap / spread}


def bench_cka(x, y):
    ours_s, ours_peak, ours = peak_memory(lambda: linear_cka(x, y))
    gram_s, gram_peak, gram = peak_memory(
        lambda: gram_cka(x.astype(np.float64), y.astype(np.float64))
    )
    return {
        "ours_s": ours_s,
        "ours_peak_mb": ours_peak / 2**20,
        "gram_s": gram_s,
        "gram_peak_mb": gram_peak / 2**20,
        "cka": ours,
        "abs_diff": abs(ours - gram),
    }


def bench_storage(path, folder: Path):
    with ActivationStore.open(path) as store:
        attrs = store.attrs
        layers = store.layers
        data = {
            s: (store.ids(s).tolist(), store.labels(s), np.stack([store.get(s, i) for i in layers]))
            for s in store.splits
        }
    rows = []
    for dtype in ("float16", "bfloat16", "float32"):
        for compression in ("none", "gzip", "lzf"):
            target = folder / f"{dtype}-{compression}.h5"
            file_attrs = {**attrs, "store_dtype": dtype, "compression": compression}
            splits = [SplitData(s, ids, labels) for s, (ids, labels, _) in data.items()]
            hidden = next(iter(data.values()))[2].shape[2]
            start = time.perf_counter()
            out = PartialActivationFile.open(target, file_attrs, splits, layers, hidden)
            for s, (_, _, acts) in data.items():
                out.write_window(s, 0, acts.astype(np.float32))
            out.finish()
            write_s = time.perf_counter() - start

            def read_all():
                with ActivationStore.open(target) as st:
                    return sum(
                        float(np.asarray(st.get(s, i)).sum()) for s in st.splits for i in layers
                    )

            def read_rows():
                with ActivationStore.open(target) as st:
                    n = st.num_rows("strong_train")
                    pick = np.sort(np.random.default_rng(0).choice(n, min(100, n), replace=False))
                    return sum(float(st.get("strong_train", i, rows=pick).sum()) for i in layers)

            os.sync()
            read_s, _ = best_of(read_all)
            rows_s, _ = best_of(read_rows)
            rows.append(
                {
                    "dtype": dtype,
                    "compression": compression,
                    "bytes": target.stat().st_size,
                    "write_s": write_s,
                    "read_all_s": read_s,
                    "read_100_rows_s": rows_s,
                }
            )
            target.unlink()
    values = sum(acts.size for _, _, acts in data.values())
    return {"values": values, "rows": rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", default="cache")
    parser.add_argument("--acts", default=None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--skip-storage", action="store_true")
    args = parser.parse_args()
    path = source(args)
    x, what = rows_of(path, 6, args.rows, 768)
    print(f"# PCA input: {args.rows} x {x.shape[1]} from {what}")
    print(json.dumps({"pca": bench_pca(x)}))
    y, _ = rows_of(path, 2, args.rows, 768, seed=1)
    weak = y[:, :384]  # a 384-d partner (the weak model's width)
    print(json.dumps({"cka": bench_cka(weak, x)}))
    if path is not None and not args.skip_storage:
        with tempfile.TemporaryDirectory(dir=".") as tmp:
            print(f"# storage input: {path}")
            print(json.dumps({"storage": bench_storage(path, Path(tmp))}))


if __name__ == "__main__":
    main()
