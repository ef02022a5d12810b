"""What a sweep's weak-label choice achieves against the best in hindsight, on a cached file.

    python bench/sweep_choice.py --acts CACHE/acts/mpnet/sst2/KEY.h5 \\
        --labels CACHE/labels/sst2/WEAK_KEY --probe knn --grid 5,10,25,50,100,200 --layers all

Reads the activation file and the label set (read-only: nothing is written to that cache),
runs :func:`w2sprobe.probes.sweep.sweep_layer` on each layer (the rows ``w2sprobe sweep``
writes: the weak-label criterion on strong_train, test AUC with its bootstrap CI) and prints
one line per (layer, value) -- ``C`` marks the layer's choice on the weak labels, ``H`` its
best test AUC in hindsight -- then the sweep's summary line (w2sprobe/probes/choice.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from w2sprobe.cache import ActivationStore
from w2sprobe.labels import load_label_set
from w2sprobe.probes.choice import marked, summary_line, sweep_choice
from w2sprobe.probes.config import probe_config
from w2sprobe.probes.experiment import ProbeSpec
from w2sprobe.probes.sweep import sweep_layer
from w2sprobe.vocabulary import probe_kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", type=Path, required=True, help="an activation file (.h5)")
    parser.add_argument("--labels", type=Path, required=True, help="a label set's folder")
    parser.add_argument("--probe", default="knn")
    parser.add_argument("--grid", required=True, help="values of the probe's grid parameter")
    parser.add_argument("--layers", default="all", help="comma list or all (the file's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    param = probe_kind(args.probe).grid_param
    cast = float if param == "l2" else int
    grid = [cast(v) for v in args.grid.split(",")]
    labels = load_label_set(args.labels)
    rows, start = [], time.perf_counter()
    with ActivationStore.open(args.acts) as store:
        layers = store.layers if args.layers == "all" else [int(v) for v in args.layers.split(",")]
        for layer in layers:
            specs = [ProbeSpec(probe_config(args.probe, **{param: v}), layer) for v in grid]
            rows += sweep_layer(store, labels, specs, param)
    rows = marked(rows, param)
    print(f"layer {param} criterion test_auc [95% CI]  (C: chosen on weak labels, H: hindsight)")
    for r in rows:
        marks = ("C" if r["layer_choice"] else "") + ("H" if r["layer_hindsight"] else "")
        print(
            f"{r['layer']} {r[param]:g} {r['criterion']:.5f} {r['auc']:.4f} "
            f"[{r['auc_low']:.4f}, {r['auc_high']:.4f}] {marks}"
        )
    print(summary_line(sweep_choice(rows, param), param, labels.name))
    print(f"labels' own test AUC {rows[0]['labels_auc']:.4f}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
