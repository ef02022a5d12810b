"""MLP probe fit time by torch thread count, on an idle machine and beside one busy core.

``MlpProbe.fit`` runs full-batch L-BFGS: a hundred or more small steps, each a few matrix
products and many tiny vector operations, where torch's threads meet at every operation. Each
measurement runs in a fresh subprocess with ``torch.set_num_threads(n)``, on seeded float16
clusters (``probes.py``'s data), hidden 64, l2 1e-2, ``--max-iter`` L-BFGS iterations; best of
``--repeats``. With ``--busy`` one process per core spins meanwhile under ``nice 19``, each in
its own session, as a study started with ``setsid nice`` runs: Linux's autogroup gives each
session an equal CPU share whatever its nice value, so a fit's thread that waits for a core
stalls the other at every meeting (in this session nice would apply, and nothing would show).

    python bench/mlp_threads.py                 # idle machine, about 2 minutes on 2 cores
    python bench/mlp_threads.py --busy          # beside a background study's load
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = ((600, 768), (5000, 768), (5000, 4096), (10000, 4096))
SPIN = "while True: pass"


def measure(n: int, dim: int, threads: int, max_iter: int, repeats: int) -> dict:
    import torch
    from probes import clusters

    from w2sprobe.probes.mlp import MlpProbe

    torch.set_num_threads(threads)
    x, y = clusters(n, dim)
    best = float("inf")
    for _ in range(repeats):
        probe = MlpProbe(hidden=64, max_iter=max_iter)
        start = time.perf_counter()
        probe.fit(x, y)
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "n_iter": probe.n_iter_, "loss": probe.loss_}


def one(n: int, dim: int, threads: int, args) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--max-iter", str(args.max_iter), "--repeats",
         str(args.repeats), "--one", str(n), str(dim), str(threads)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--busy", action="store_true", help="spin every core, niced, meanwhile")
    parser.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.max_iter, args.repeats)))
        return
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN], preexec_fn=lambda: os.nice(19),
                         start_new_session=True)
        for _ in range(len(os.sched_getaffinity(0)) if args.busy else 0)
    ]  # fmt: skip
    try:
        print("| rows × dim | 1 thread (s) | 2 threads (s) | 2 / 1 | iterations |")
        print("|---|---|---|---|---|")
        for n, dim in SIZES:
            single, double = one(n, dim, 1, args), one(n, dim, 2, args)
            print(
                f"| {n:,} × {dim:,} | {single['seconds']:.2f} | {double['seconds']:.2f} | "
                f"{double['seconds'] / single['seconds']:.1f}× | "
                f"{single['n_iter']} / {double['n_iter']} |",
                flush=True,
            )
    finally:
        for spinner in spinners:
            spinner.kill()


if __name__ == "__main__":
    main()
