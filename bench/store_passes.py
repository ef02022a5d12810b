"""Several outputs from one extraction pass: two poolings ÷ one, token-level last-8 ÷ pooled.

Over SST-2 from the local mirror with one packaged model (default MiniLM), every layer, side by
side in one process: each method extracts into a fresh cache folder through
``w2sprobe.cache.onepass.extract_pass`` (the code behind ``w2sprobe extract --pool mean,last
--tokens last:8``), ``--repeats`` times interleaved (the order rotating), best run counted:

* ``mean``          — one pooling (the baseline: what ``extract --pool mean`` does);
* ``mean,last``     — two poolings, one forward pass, two files;
* ``mean+last:8``   — the pooled file plus the token-level file of the last 8 tokens.

On a shared machine single runs scatter widely (other jobs take the cores), so the order
rotates every round and the ratio reported is paired: the median over rounds of a method's
time ÷ the baseline's in the same round; also the CPU time the process itself used
(``time.process_time``, all its threads, of the whole call: the same model load included for
every method).

Time is the row loop (tokenize, forward passes, read-outs, writes and commits: the
``seconds`` an extraction reports, model load excluded) and the wall time of the whole call;
bytes are the files' sizes on disk.  Then the read-out alone (``--readout-repeats``): the same
length-sorted batches through one loaded model's ``LayerReader`` with one reducer (mean), two
(mean, last) and mean plus the last-8 token slice, no I/O — what a second output costs the
forward pass itself, measured batch by batch in turn so that other jobs' load falls on every
reader alike (the robust ratio on a shared machine).

    nice python bench/store_passes.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

from w2sprobe.cache import ExtractRequest, plan_extraction
from w2sprobe.cache.onepass import extract_pass
from w2sprobe.cache.readout import LayerReader, pooler
from w2sprobe.cache.tokens import parse_token_spec, plan_tokens, token_reducer
from w2sprobe.data import SplitSizes, load_splits
from w2sprobe.models import describe, load_model, load_tokenizer, resolve_model, set_cpu_threads

METHODS = {"mean": (["mean"], None), "mean,last": (["mean", "last"], None)}
METHODS["mean+last:8"] = (["mean"], "last:8")


def sst2(data_dir: str, rows: int):
    """SST-2 splits of about ``rows`` examples in all (a tenth each for val and test)."""
    small = rows // 10
    return load_splits("sst2", data_dir=data_dir, sizes=SplitSizes(rows - 2 * small, small, small))


def run_once(base: ExtractRequest, poolings, tokens, cache: Path) -> dict:
    plans = [plan_extraction(dataclasses.replace(base, pooling=p), cache) for p in poolings]
    token_plan = tokens and plan_tokens(plans[0], parse_token_spec(tokens), cache, 1 << 40)
    start, cpu = time.perf_counter(), time.process_time()
    result = extract_pass(plans, token_plan)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    pooled = sum(r.path.stat().st_size for r in result.pooled)
    return {
        "loop_s": result.pooled[0].seconds,
        "wall_s": wall,
        "cpu_s": cpu,
        "pooled_bytes": pooled,
        "token_bytes": result.tokens.path.stat().st_size if result.tokens else 0,
        "tokens": result.pooled[0].tokens,
    }


def readout_only(model_name: str, texts: list[str], repeats: int) -> dict:
    """Seconds per reducer set over the same length-sorted batches of 32 (no I/O), the readers
    interleaved batch by batch (a round: one batch through every reader)."""
    import torch

    ref = resolve_model(model_name)
    model = load_model(ref, device=torch.device("cpu"), dtype=torch.float32)
    tokenizer = load_tokenizer(ref)
    texts = sorted(texts, key=lambda t: -len(tokenizer(t)["input_ids"]))
    batches = [
        tokenizer(texts[b : b + 32], padding="longest", truncation=True, return_tensors="pt")
        for b in range(0, len(texts), 32)
    ]
    layers = list(range(describe(model).num_layers + 1))
    reducers = {
        "mean": [pooler("mean")],
        "mean,last": [pooler("mean"), pooler("last")],
        "mean+last:8": [pooler("mean"), token_reducer(parse_token_spec("last:8"))],
    }
    readers = {k: LayerReader(model, describe(model), layers, r) for k, r in reducers.items()}
    seconds: dict[str, list[float]] = {name: [] for name in readers}
    with torch.inference_mode():
        for repeat in range(repeats):
            for index, batch in enumerate(batches):
                # every batch through each reader in turn: a busy spell hits all of them alike
                for name in rotated(list(readers), repeat + index):
                    start = time.perf_counter()
                    readers[name].read(batch["input_ids"], batch["attention_mask"])
                    seconds[name].append(time.perf_counter() - start)
    return summary(seconds)


def rotated(names: list[str], repeat: int) -> list[str]:
    """``names`` starting at ``repeat``: no method always runs first (or after another)."""
    shift = repeat % len(names)
    return names[shift:] + names[:shift]


def summary(seconds: dict[str, list[float]]) -> dict:
    """Per method: total and median seconds, and the median over rounds of its time ÷ the
    baseline's (the first method) in the same round — a paired ratio, which a busy spell of
    other jobs disturbs far less than a ratio of totals."""
    base = next(iter(seconds))
    return {
        "total_s": {k: sum(v) for k, v in seconds.items()},
        "median_s": {k: statistics.median(v) for k, v in seconds.items()},
        "paired_ratio": {
            k: statistics.median(a / b for a, b in zip(v, seconds[base]))
            for k, v in seconds.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--readout-rows", type=int, default=400)
    parser.add_argument("--readout-repeats", type=int, default=3)
    args = parser.parse_args()
    set_cpu_threads()
    splits, small = (sst2(args.data_dir, n) for n in (args.rows, 50))
    base = ExtractRequest(model=args.model, splits=splits, layers="all", device="cpu")
    runs: dict[str, list[dict]] = {name: [] for name in METHODS}
    with tempfile.TemporaryDirectory() as tmp:  # outside the repository
        warm_up = dataclasses.replace(base, splits=small)  # imports, first model load
        run_once(warm_up, ["first"], None, Path(tmp) / "warm-up")
        for repeat in range(args.repeats):
            for name in rotated(list(METHODS), repeat):
                poolings, tokens = METHODS[name]
                got = run_once(base, poolings, tokens, Path(tmp) / f"{name}-{repeat}")
                print(json.dumps({"method": name, "repeat": repeat, **got}), flush=True)
                runs[name].append(got)
    one, tok = runs["mean"][0], runs["mean+last:8"][0]
    passes = {
        "loop": summary({name: [r["loop_s"] for r in got] for name, got in runs.items()}),
        "cpu": summary({name: [r["cpu_s"] for r in got] for name, got in runs.items()}),
    }
    rows = sum(len(s.ids) for s in splits.splits.values())
    sizes = {"pooled_bytes": one["pooled_bytes"], "token_bytes": tok["token_bytes"]}
    ratio = tok["token_bytes"] / one["pooled_bytes"]
    print(json.dumps({"rows": rows, "passes": passes, **sizes, "token_over_pooled_bytes": ratio}))
    if args.readout_repeats:
        texts = [
            t
            for split in sst2(args.data_dir, args.readout_rows).splits.values()
            for t in split.texts
        ]
        print(json.dumps({"readout_only": readout_only(args.model, texts, args.readout_repeats)}))


if __name__ == "__main__":
    main()
