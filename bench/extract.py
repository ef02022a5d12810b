"""Extraction speed and memory: ours vs a bare forward vs the reference study's method.

For each model, over SST-2 from the local mirror, all layers, side by side in one process:

* ``ours``   — ``w2sprobe.cache.extract`` end to end: tokenization, length-sorted batches,
  nnsight read-out of every layer, pooling, HDF5 writes and commits;
* ``bare``   — ``model(**batch)`` alone over the very same length-sorted batches (no read-out,
  no tokenization, no I/O), on a freshly loaded model as ours runs on (load time excluded from
  both): the ceiling for any extraction;
* ``reference`` — the study's method: batch size 1, ``output_hidden_states=True``, every
  layer of every example stacked and kept in memory.

Throughput is real (non-pad) tokens per second; each method runs ``--repeats`` times,
interleaved, and the best run counts (the reference on its first ``--reference-rows`` only: at
batch size 1 its tokens/s does not depend on how many rows it sees). Memory is the peak RSS
growth during the extraction itself (sampled every 5 ms, after data and model are loaded and a
warm-up ran), in fresh subprocesses at two dataset sizes, for ours and for the reference.

    python bench/extract.py --data-dir ../shared/data --models minilm mpnet
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from w2sprobe.cache import ExtractRequest, extract
from w2sprobe.cache.readout import pool
from w2sprobe.data import SplitSet, SplitSizes, load_splits
from w2sprobe.models import describe, load_model, load_tokenizer, resolve_model, set_cpu_threads

WINDOW, BATCH, MAX_LENGTH = 512, 32, 512


def sst2_splits(data_dir: str, rows: int) -> SplitSet:
    """SST-2 splits holding about ``rows`` examples in all (val and test kept small)."""
    n_val, n_test = rows // 10, rows // 10
    return load_splits(
        "sst2", data_dir=data_dir, sizes=SplitSizes(rows - n_val - n_test, n_val, n_test)
    )


def all_texts(splits: SplitSet) -> list[str]:
    return [text for split in splits.splits.values() for text in split.texts]


def sorted_batches(texts: list[str], tokenizer) -> list[dict[str, torch.Tensor]]:
    """The batches ours runs: per window of 512 rows, longest first, trimmed to their width."""
    batches = []
    for start in range(0, len(texts), WINDOW):
        enc = tokenizer(
            texts[start : start + WINDOW],
            truncation=True,
            max_length=MAX_LENGTH,
            padding="longest",
            return_tensors="np",
        )
        lengths = enc["attention_mask"].sum(1)
        order = np.argsort(-lengths, kind="stable")
        for begin in range(0, len(order), BATCH):
            rows = order[begin : begin + BATCH]
            width = int(lengths[rows[0]])
            batches.append(
                {
                    "input_ids": torch.from_numpy(enc["input_ids"][rows, :width]),
                    "attention_mask": torch.from_numpy(enc["attention_mask"][rows, :width]),
                }
            )
    return batches


def time_bare(model_name: str, batches) -> tuple[float, int]:
    """A freshly loaded model, like ours gets: first-batch warm-up costs are paid by both."""
    model = load_model(resolve_model(model_name), device=torch.device("cpu"), dtype=torch.float32)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            model(**batch)
    return time.perf_counter() - start, tokens


def time_ours(model_name: str, splits: SplitSet) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as cache:
        result = extract(
            ExtractRequest(
                model=model_name,
                splits=splits,
                layers="all",
                batch_size=BATCH,
                max_length=MAX_LENGTH,
                window_rows=WINDOW,
                device="cpu",
            ),
            Path(cache),
        )
    return result.seconds, result.tokens


def reference_extract(model, tokenizer, texts: list[str], pooling: str) -> tuple[torch.Tensor, int]:
    """The study's way: one example at a time, all hidden states, everything kept in memory."""
    kept, tokens = [], 0
    with torch.inference_mode():
        for text in texts:
            enc = tokenizer([text], truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            hidden = model(**enc, output_hidden_states=True).hidden_states
            kept.append(torch.stack([pool(h, enc["attention_mask"], pooling)[0] for h in hidden]))
            tokens += int(enc["attention_mask"].sum())
    return torch.stack(kept), tokens


def time_reference(model, tokenizer, texts, pooling) -> tuple[float, int]:
    start = time.perf_counter()
    _, tokens = reference_extract(model, tokenizer, texts, pooling)
    return time.perf_counter() - start, tokens


def throughput(
    model_name: str, data_dir: str, rows: int, repeats: int, reference_rows: int
) -> dict:
    splits = sst2_splits(data_dir, rows)
    texts = all_texts(splits)
    ref = resolve_model(model_name)
    model = load_model(ref, device=torch.device("cpu"), dtype=torch.float32)
    tokenizer = load_tokenizer(ref)
    pooling = describe(model).default_pooling
    batches = sorted_batches(texts, tokenizer)
    best = {"ours": 0.0, "bare": 0.0, "reference": 0.0}
    for _ in range(repeats):
        for name, run in (
            ("bare", lambda: time_bare(model_name, batches)),
            ("ours", lambda: time_ours(model_name, splits)),
            (
                "reference",
                lambda: time_reference(model, tokenizer, texts[:reference_rows], pooling),
            ),
        ):
            seconds, tokens = run()
            best[name] = max(best[name], tokens / seconds)
    return {
        "model": model_name,
        "rows": len(texts),
        "layers": describe(model).num_layers + 1,
        "tokens_per_s": {k: round(v, 1) for k, v in best.items()},
        "ours_over_bare": round(best["ours"] / best["bare"], 3),
        "ours_over_reference": round(best["ours"] / best["reference"], 2),
    }


def peak_rss_mib(method: str, model_name: str, data_dir: str, rows: int) -> float:
    """Peak RSS of a fresh process that extracts ``rows`` examples with ``method``."""
    code = (
        f"import sys; sys.argv=['x']; sys.path.insert(0, {str(Path(__file__).parent)!r});"
        f"import extract as b; b.rss_child({method!r}, {model_name!r}, {data_dir!r}, {rows})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


class PeakSampler:
    """Samples this process's RSS every 5 ms in a thread; ``peak`` is the maximum seen."""

    def __init__(self) -> None:
        self.peak = current_rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, current_rss_mib())

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def rss_child(method: str, model_name: str, data_dir: str, rows: int) -> None:
    """Print the RSS growth (MiB) of the extraction itself, after data and model are loaded."""
    set_cpu_threads()
    splits, warm_up = sst2_splits(data_dir, rows), sst2_splits(data_dir, 64)
    if (
        method == "ours"
    ):  # extract() loads its own model; the warm-up run leaves it freed but mapped
        run = lambda data: time_ours(model_name, data)  # noqa: E731
    else:
        ref = resolve_model(model_name)
        model = load_model(ref, device=torch.device("cpu"), dtype=torch.float32)
        tokenizer, pooling = load_tokenizer(ref), describe(model).default_pooling
        run = lambda data: reference_extract(model, tokenizer, all_texts(data), pooling)  # noqa: E731
    run(
        warm_up
    )  # first-call allocations (thread pools, allocator arenas) are not the method's cost
    baseline = current_rss_mib()
    with PeakSampler() as sampler:
        run(splits)
    print(sampler.peak - baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--models", nargs="+", default=["minilm", "mpnet"])
    parser.add_argument(
        "--rows", type=int, default=6000, help="examples per throughput run (ours, bare)"
    )
    parser.add_argument(
        "--reference-rows",
        type=int,
        default=1000,
        help="examples for the (slow, batch-1) reference's throughput",
    )
    parser.add_argument("--rss-rows", type=int, nargs=2, default=[4000, 16000])
    parser.add_argument(
        "--rss-models",
        nargs="+",
        default=["minilm"],
        help="models whose memory is measured (the reference at batch 1 is slow)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    set_cpu_threads()
    results = []
    for name in args.models:
        row = throughput(name, args.data_dir, args.rows, args.repeats, args.reference_rows)
        if name in args.rss_models:
            row["peak_rss_growth_mib"] = {
                method: {
                    n: round(peak_rss_mib(method, name, args.data_dir, n), 1) for n in args.rss_rows
                }
                for method in ("ours", "reference")
            }
        print(json.dumps(row), flush=True)
        results.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
