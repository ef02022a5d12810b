"""GPU benchmarks: extraction vs a bare forward, kNN and logistic backends at study scale.

Three sections, each timed on its own and written to the results file as soon as it finishes
(a section that fails or runs out of time leaves the others' numbers intact):

* ``extraction`` — ``w2sprobe.cache.extract`` end to end (tokenise, length-sorted batches,
  nnsight read-out of every layer, pooling, HDF5 writes) vs ``model(**batch)`` alone over the
  very same batches, bf16, on a random-weight Llama-shaped model (no hub on a GPU box); the
  figure is ``extract seconds / bare seconds`` (1.0 would be free read-out);
* ``knn`` — exact k = 50 search in a 100k x 4096 float16 index (the study's activation size
  for an 8B model): torch on CUDA, cuML (when installed), and faiss-cpu on a query subset
  (the CPU is ~100x slower); queries per second, and agreement of the GPU neighbours with
  faiss's on the shared queries;
* ``logistic`` — the soft-label L2 logistic probe on N x 4096 float32 through torch L-BFGS on
  CUDA and through cuML's QN solver: seconds, iterations and the objective each reached.

    python bench/gpu_bench.py --out bench/out/gpu_bench.json            # full (about 4 minutes)
    python bench/gpu_bench.py --quick --out /tmp/gpu_bench.json         # smaller sizes
    python bench/gpu_bench.py --dry-run                                 # print the plan only
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

SIZES = {
    "full": {
        "extract_rows": 4096,
        "extract_layers": 16,
        "extract_hidden": 2048,
        "knn_index": 100_000,
        "knn_dim": 4096,
        "knn_queries": 10_000,
        "knn_cpu_queries": 500,
        "logistic_rows": 50_000,
        "logistic_dim": 4096,
    },
    "quick": {
        "extract_rows": 512,
        "extract_layers": 4,
        "extract_hidden": 512,
        "knn_index": 20_000,
        "knn_dim": 1024,
        "knn_queries": 2_000,
        "knn_cpu_queries": 200,
        "logistic_rows": 10_000,
        "logistic_dim": 1024,
    },
}
SIZES["smoke"] = {
    "extract_rows": 64,
    "extract_layers": 2,
    "extract_hidden": 256,
    "knn_index": 3000,
    "knn_dim": 64,
    "knn_queries": 200,
    "knn_cpu_queries": 50,
    "logistic_rows": 2000,
    "logistic_dim": 64,
}
K, L2 = 50, 1e-2
#: Where the "GPU" runs go: cuda, or cpu for --smoke (checks this script itself on a CPU machine).
DEVICE = "cuda"


def plan(sizes: dict) -> list[str]:
    return [
        (
            f"extraction: random Llama ({sizes['extract_layers']} blocks, "
            f"hidden {sizes['extract_hidden']}, bf16), {sizes['extract_rows']} synthetic texts: "
            "w2sprobe extract (all layers) vs bare forward, same batches"
        ),
        (
            f"knn: k={K}, index {sizes['knn_index']} x {sizes['knn_dim']} float16; "
            f"torch-CUDA and cuML on {sizes['knn_queries']} queries, "
            f"faiss-cpu on {sizes['knn_cpu_queries']}"
        ),
        (
            f"logistic: {sizes['logistic_rows']} x {sizes['logistic_dim']} float32, l2={L2}; "
            "torch L-BFGS on CUDA vs cuML QN"
        ),
    ]


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    synchronize()
    start = time.perf_counter()
    out = fn()
    synchronize()
    return out, time.perf_counter() - start


# --------------------------------------------------------------------------- extraction


def random_llama(folder: Path, layers: int, hidden: int) -> Path:
    """A random-weight Llama-shaped model plus a word-level tokenizer, saved as an HF folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(8000)]
    vocab = {tok: i for i, tok in enumerate(["[UNK]", "[PAD]", "</s>", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", eos_token="</s>", pad_token="[PAD]"
    ).save_pretrained(folder)
    heads = max(2, hidden // 128)  # head size 128, grouped-query attention with 2 heads per group
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads // 2,
        eos_token_id=2,
        bos_token_id=2,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    del model
    return folder


def synthetic_splits(rows: int):
    from w2sprobe.data import Split, SplitSet

    rng = np.random.default_rng(0)
    texts = [
        " ".join(f"w{i}" for i in rng.integers(0, 8000, rng.integers(16, 256))) for _ in range(rows)
    ]
    split = Split(
        name="strong_train",
        ids=[f"r{i}" for i in range(rows)],
        texts=texts,
        labels=(np.arange(rows) % 2).astype(np.float32),
    )
    return SplitSet(
        dataset="synthetic",
        splits={"strong_train": split},
        fingerprint=f"synthetic-{rows}",
        report={},
    )


def bench_extraction(sizes: dict) -> dict:
    from w2sprobe.cache import ExtractRequest, extract
    from w2sprobe.models import load_model, load_tokenizer, resolve_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = random_llama(Path(tmp) / "model", sizes["extract_layers"], sizes["extract_hidden"])
        splits = synthetic_splits(sizes["extract_rows"])
        request = ExtractRequest(
            model=str(folder),
            splits=splits,
            layers="all",
            batch_size=32,
            dtype="bfloat16",
            device=DEVICE,
            window_rows=512,
        )
        extract(
            ExtractRequest(**{**request.__dict__, "splits": synthetic_splits(64)}),
            Path(tmp) / "warm",
        )
        result, ours_s = timed(lambda: extract(request, Path(tmp) / "cache"))
        # The bare forward: the same length-sorted, trimmed batches ours runs (windows of 512).
        ref = resolve_model(str(folder))
        model = load_model(ref, device=torch.device(DEVICE), dtype=torch.bfloat16)
        tokenizer = load_tokenizer(ref)
        texts = splits.splits["strong_train"].texts
        batches = []
        for start in range(0, len(texts), 512):
            enc = tokenizer(
                texts[start : start + 512],
                truncation=True,
                max_length=512,
                padding="longest",
                return_tensors="pt",
            )
            order = enc["attention_mask"].sum(1).argsort(descending=True)
            for b in range(0, len(order), 32):
                rows = order[b : b + 32]
                width = int(enc["attention_mask"][rows].sum(1).max())
                batches.append(
                    {k: v[rows, :width].to(DEVICE) for k, v in enc.items() if k != "token_type_ids"}
                )

        def bare():
            with torch.inference_mode():
                for batch in batches:
                    model(**batch)

        bare()  # warm-up
        _, bare_s = timed(bare)
        tokens = int(sum(int(b["attention_mask"].sum()) for b in batches))
    return {
        "rows": sizes["extract_rows"],
        "layers_stored": len(result.layers),
        "tokens": tokens,
        "extract_s": ours_s,
        "bare_forward_s": bare_s,
        "extract_over_bare": ours_s / bare_s,
        "extract_tokens_per_s": tokens / ours_s,
        "bare_tokens_per_s": tokens / bare_s,
        "note": "extract_s includes tokenisation, read-out of every layer, pooling and HDF5 writes",
    }


# --------------------------------------------------------------------------- kNN


def bench_knn(sizes: dict) -> dict:
    from w2sprobe.probes import knn_search

    rng = np.random.default_rng(0)
    n, dim = sizes["knn_index"], sizes["knn_dim"]
    index = rng.standard_normal((n, dim), dtype=np.float32).astype(np.float16)
    queries = index[: sizes["knn_queries"]]
    cpu_queries = queries[: sizes["knn_cpu_queries"]]
    out: dict = {"index": [n, dim], "k": K, "dtype": "float16"}
    runs = {
        "torch_cuda": ("torch", DEVICE, queries),
        "cuml": ("cuml", "cuda", queries),
        "faiss_cpu": ("faiss", "cpu", cpu_queries),
    }
    found = {}
    for name, (backend, device, q) in runs.items():
        if backend == "cuml" and (importlib.util.find_spec("cuml") is None or DEVICE != "cuda"):
            out[name] = {
                "skipped": "cuML not installed" if DEVICE == "cuda" else "smoke run: no CUDA"
            }
            continue
        if backend == "faiss" and importlib.util.find_spec("faiss") is None:
            out[name] = {"skipped": "faiss-cpu not installed"}
            continue
        budget = 8 * 2**30 if device == "cuda" else 2**30
        try:
            knn_search(
                index[:2000], q[:10], K, backend=backend, device=device
            )  # warm-up: context, threads
            synchronize()
            started = time.perf_counter()
            _, neighbours = knn_search(
                index, q, K, backend=backend, device=device, memory_budget_bytes=budget
            )
            synchronize()
            seconds = time.perf_counter() - started
            found[name] = neighbours[: len(cpu_queries)]
            out[name] = {"queries": len(q), "seconds": seconds, "queries_per_s": len(q) / seconds}
        except Exception as exc:  # noqa: BLE001 -- one backend failing must not lose the others' numbers
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    if "faiss_cpu" in found:
        for name in ("torch_cuda", "cuml"):
            if name in found:
                out[name]["same_neighbours_as_faiss"] = float(
                    (found[name] == found["faiss_cpu"]).mean()
                )
    return out


# --------------------------------------------------------------------------- logistic


def bench_logistic(sizes: dict) -> dict:
    from w2sprobe.probes import LogisticProbe

    rng = np.random.default_rng(0)
    n, dim = sizes["logistic_rows"], sizes["logistic_dim"]
    x = rng.standard_normal((n, dim), dtype=np.float32)
    w = rng.standard_normal(dim).astype(np.float32) / np.sqrt(dim)
    y = (1 / (1 + np.exp(-3 * (x @ w)))).astype(np.float32)
    out: dict = {"rows": n, "dim": dim, "l2": L2}
    for name, backend in (("torch_cuda", "torch"), ("cuml", "cuml")):
        if backend == "cuml" and (importlib.util.find_spec("cuml") is None or DEVICE != "cuda"):
            out[name] = {
                "skipped": "cuML not installed" if DEVICE == "cuda" else "smoke run: no CUDA"
            }
            continue
        try:
            LogisticProbe(l2=L2, backend=backend, device=DEVICE).fit(
                x[:1000, :64], y[:1000]
            )  # warm-up
            synchronize()
            started = time.perf_counter()
            probe = LogisticProbe(l2=L2, backend=backend, device=DEVICE).fit(x, y)
            synchronize()
            out[name] = {
                "seconds": time.perf_counter() - started,
                "iterations": probe.n_iter_,
                "objective": probe.loss_,
            }
        except Exception as exc:  # noqa: BLE001 -- keep the other backend's numbers
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# --------------------------------------------------------------------------- main


SECTIONS = {"extraction": bench_extraction, "knn": bench_knn, "logistic": bench_logistic}


def environment() -> dict:
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    for module in ("cuml", "faiss", "nnsight"):
        spec = importlib.util.find_spec(module)
        info[module] = getattr(__import__(module), "__version__", "installed") if spec else None
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/gpu_bench.json"))
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (a first look, or a slow GPU)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes on the CPU: checks this script itself where there is no GPU",
    )
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    args = parser.parse_args(argv)
    global DEVICE
    sizes = SIZES["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.smoke:
        DEVICE = "cpu"
    elif args.dry_run or not torch.cuda.is_available():
        why = "dry run" if args.dry_run else "no CUDA device (torch.cuda.is_available() is False)"
        print(f"gpu_bench: {why}; would run, writing {args.out}:")
        for line in plan(sizes):
            print(f"  - {line}")
        return 0
    results = {"environment": environment(), "sizes": sizes, "sections": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.sections:
        print(f"gpu_bench: {name} ...", flush=True)
        started = time.perf_counter()
        try:
            results["sections"][name] = SECTIONS[name](sizes)
        except Exception as exc:  # noqa: BLE001 -- a failed section is recorded, the next one still runs
            results["sections"][name] = {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5),
            }
        results["sections"][name]["section_s"] = time.perf_counter() - started
        print(json.dumps({name: results["sections"][name]}, indent=1, default=str), flush=True)
        args.out.write_text(json.dumps(results, indent=1, default=str))  # after every section
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print(f"gpu_bench: results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
