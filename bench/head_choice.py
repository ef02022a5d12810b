"""Which layer and learning rate should a head student use by default? Chosen without peeking.

For each dataset of a workspace that holds the strong model's activations (every layer) and
the LoRA weak run's labels, a head student (xent on the weak labels) is trained for every
(layer, learning rate) of the grid.  The choice criterion is the **weak-labelled val AUC**
(val AUC against the weak labels, the only labels a student has).  The candidates for the
default are the two principled layers -- the last one (what a model's own classifier head
reads) and the reference's probe layer (L+1)//2 -- at each learning rate; a cell's score is
its mean rank by weak-labelled val AUC over the datasets whose val split has at least
``--min-val`` rows (a 30-row val AUC is noise), so no one dataset's scale dominates.  Test AUC
against ground truth is printed beside it to show what that choice costs against the best in
hindsight; it never takes part in the choice.  Every layer is measured and shown.

    python bench/head_choice.py --cache-dir /work/blog-cache --data-dir ../shared/data \
        --dataset sst2 --dataset cola --n-train 10000 --n-val 1000 --n-test 5000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from w2sprobe.graph import Graph
from w2sprobe.metrics import roc_auc
from w2sprobe.options import resolve
from w2sprobe.study import Study
from w2sprobe.train.head import HeadConfig, as_float32, fit_head, predict_head


def measure(opts, dataset: str, layers: list[int] | None, lrs: list[float]) -> list[dict]:
    study = Study(opts.replace(dataset=[dataset]), dataset, Graph("no-build"))
    weak = study.weak_labels()
    candidates = layers or list(range(study.num_layers + 1))
    rows = []
    for layer in candidates:
        with study.store(layer) as store:
            mask, train_y = weak.align("strong_train", store.ids("strong_train"))
            train_x = as_float32(store.get("strong_train", layer), np.flatnonzero(mask))
            _, val_y = weak.align("val", store.ids("val"))
            val_x = as_float32(store.get("val", layer))
            test_x, truth = as_float32(store.get("test", layer)), store.labels("test")
            for lr in lrs:
                started = time.perf_counter()
                fit = fit_head(train_x, train_y[mask], val_x, val_y, HeadConfig(lr=lr))
                rows.append(
                    {
                        "dataset": dataset,
                        "layer": layer,
                        "lr": lr,
                        "weak_val_auc": fit.best_val_auc,
                        "val_n": int(len(val_y)),
                        "test_auc": roc_auc(truth, predict_head(fit.model, test_x)),
                        "seconds": round(time.perf_counter() - started, 2),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def summarise(rows: list[dict], candidates: set[int], min_val: int) -> None:
    cells = sorted({(r["layer"], r["lr"]) for r in rows})
    voters = sorted({r["dataset"] for r in rows if r["val_n"] >= min_val})
    rank: dict[tuple, list[float]] = {cell: [] for cell in cells}
    for dataset in voters:
        mine = sorted(
            (r for r in rows if r["dataset"] == dataset), key=lambda r: -r["weak_val_auc"]
        )
        for position, r in enumerate(mine, start=1):
            rank[(r["layer"], r["lr"])].append(position)
    table = []
    for layer, lr in cells:
        mine = [r for r in rows if (r["layer"], r["lr"]) == (layer, lr)]
        table.append(
            (
                layer,
                lr,
                float(np.mean(rank[(layer, lr)])),
                float(np.mean([r["weak_val_auc"] for r in mine if r["dataset"] in voters])),
                float(np.mean([r["test_auc"] for r in mine])),
            )
        )
    chosen = min((t for t in table if t[0] in candidates), key=lambda t: t[2])
    hindsight = max(table, key=lambda t: t[4])
    print(f"\nvoting datasets (val >= {min_val} rows): {', '.join(voters)}")
    print(
        "\n| layer | lr | mean rank (weak-labelled val) | mean weak-labelled val AUC | "
        "mean test AUC |"
    )
    print("|---|---|---|---|---|")
    for layer, lr, mean_rank, val, test in table:
        mark = " **chosen**" if (layer, lr) == chosen[:2] else ""
        print(f"| {layer} | {lr:g} | {mean_rank:.1f}{mark} | {val:.4f} | {test:.4f} |")
    print(
        f"\nchosen on weak-labelled val among layers {sorted(candidates)}: layer {chosen[0]}, "
        f"lr {chosen[1]:g} (mean test AUC {chosen[4]:.4f}); best in hindsight on test: layer "
        f"{hindsight[0]}, lr {hindsight[1]:g} (mean test AUC {hindsight[4]:.4f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", action="append", required=True)
    parser.add_argument("--layers", default=None, help="comma list (default: every layer)")
    parser.add_argument("--lrs", default="3e-4,1e-3,3e-3,1e-2")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-val", type=int, default=1_000)
    parser.add_argument("--n-test", type=int, default=5_000)
    parser.add_argument("--sizes-of", default=None, help="'blog': each dataset's blog_sizes")
    parser.add_argument("--min-val", type=int, default=200, help="val rows for a dataset to vote")
    parser.add_argument("--rows", default=None, help="JSON lines of an earlier run to summarise")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    if args.rows:  # re-summarise measured rows without training again
        rows = [json.loads(line) for line in open(args.rows) if line.startswith("{")]
    for name in [] if args.rows else args.dataset:
        sizes = {"n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test}
        if args.sizes_of == "blog":
            from blog_sizes import blog_sizes

            sizes = blog_sizes(name, args.data_dir)
        opts = resolve(
            {"cache_dir": args.cache_dir, "data_dir": args.data_dir, "dataset": [name], **sizes}
        )
        layers = [int(x) for x in args.layers.split(",")] if args.layers else None
        rows += measure(opts, name, layers, [float(x) for x in args.lrs.split(",")])
    last = max(r["layer"] for r in rows)
    summarise(rows, {last, (last + 1) // 2}, args.min_val)
