"""Head students vs LoRA students on the same labels: time and memory, side by side in one run.

A workspace that holds the strong model's activations and the weak labels at the blog's sizes
(``bench/blog_study.sh``) is the input.  For one dataset this times, in one process:

* **head**: a head student (xent, the default recipe: 3 epochs, batch 32, val every 25 steps)
  from the cached activation file: read its layer (float16 -> float32), train, predict
  strong_train/val/test, write the run -- the whole stage, as ``train student --student head``
  runs it;
* **lora**: the LoRA MPNet student on the very same weak labels (the study's student: model
  load, tokenization, 3 epochs, predictions, the run written) -- skipped with ``--no-lora``.

Both runs go to a fresh temporary workspace (so nothing is a cache hit) that links the source
workspace's activation file and weak run.  Peak RSS is sampled every 10 ms in each stage's own
child process, so the head's figure is its process alone.

    python bench/head.py --cache-dir /work/blog-cache --data-dir ../shared/data --dataset sst2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path


def _peak_rss_of(fn, *args) -> tuple[object, float]:
    """Run ``fn(*args)`` in this process while sampling its RSS; (result, peak MiB)."""
    import psutil

    process, peak, done = psutil.Process(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.01)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        result = fn(*args)
    finally:
        done.set()
        watcher.join()
    return result, peak[0] / 2**20


def _stage(kind: str, options: dict, queue) -> None:
    """One student of ``kind`` in this (child) process; puts (seconds, peak MiB, auc)."""
    import torch

    from w2sprobe.graph import Graph
    from w2sprobe.options import resolve
    from w2sprobe.study import Study

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    opts = resolve({**options, "student": kind})
    study = Study(opts, opts.dataset, Graph("build"))
    labels = study.weak_labels()
    started = time.perf_counter()
    # the student stage alone: its ceiling (for PGR) is not part of what is timed
    study.ceiling = lambda: None  # type: ignore[method-assign]
    run, peak = _peak_rss_of(study.student, labels, "xent")
    queue.put((time.perf_counter() - started, peak, run.auc, run.metrics.get("train_n")))


def time_stage(kind: str, options: dict) -> dict:
    queue = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(target=_stage, args=(kind, options, queue))
    child.start()
    seconds, peak, auc, n = queue.get()
    child.join()
    return {
        "kind": kind,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak),
        "auc": auc,
        "train_n": n,
    }


def fresh_workspace(source: Path, dataset: str, target: Path) -> None:
    """``target`` holds ``source``'s activation files (hard links) and weak runs and labels."""
    for kind in ("acts", "runs", "labels"):
        for path in (source / kind).rglob("*"):
            if dataset not in path.parts or path.is_dir() or path.name.endswith(".lock"):
                continue
            if kind == "runs" and _stage_of(path.parent) != "weak":
                continue
            copy = target / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, copy)
            except OSError:
                shutil.copy2(path, copy)


def _stage_of(run_folder: Path) -> str | None:
    metrics = run_folder / "metrics.json"
    return json.loads(metrics.read_text()).get("stage") if metrics.is_file() else None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="sst2")
    parser.add_argument("--sizes", default="10000,1000,5000", help="n_train,n_val,n_test")
    parser.add_argument("--no-lora", action="store_true")
    args = parser.parse_args()
    n_train, n_val, n_test = (int(x) for x in args.sizes.split(","))
    with tempfile.TemporaryDirectory(dir=Path(args.cache_dir).parent) as tmp:
        fresh_workspace(Path(args.cache_dir), args.dataset, Path(tmp))
        options = {
            "cache_dir": tmp,
            "data_dir": args.data_dir,
            "dataset": [args.dataset],
            "n_train": n_train,
            "n_val": n_val,
            "n_test": n_test,
        }
        rows = [time_stage("head", options)]
        if not args.no_lora:
            rows.append(time_stage("lora", options))
    for row in rows:
        print(json.dumps(row))
    if len(rows) == 2:
        print(f"lora / head time: {rows[1]['seconds'] / rows[0]['seconds']:.0f}x")
