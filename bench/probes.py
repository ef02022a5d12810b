"""Probe speed and memory: ours vs faiss, scikit-learn and the reference study's dense method.

Every measurement runs in a fresh subprocess. It generates its data there (seeded Gaussian
clusters stored as float16, like the activation cache, built in small chunks), resets the
peak-RSS counter (``/proc/self/clear_refs``), runs the method, and reports
``extra MB = peak RSS during the method - RSS before it`` (the data itself excluded) and the
best wall time over ``repeats`` runs. Times include the float16 -> float32 conversion every
method needs.

* data: two Gaussian clusters, one per class, soft labels with 10% flipped (weak-label noise);
* ``knn``    k=50, 20k index x 2k queries at 1024-d and 4096-d: ours (``KnnProbe`` fit +
  predict, backend auto and torch) vs faiss ``IndexFlatL2`` vs sklearn brute
  ``NearestNeighbors`` vs the reference's dense ``torch.cdist`` + ``topk``;
* ``memory`` the same search at 100k x 4096 (800 MB of float16 data): ours must stay < 2 GiB;
* ``topo``   self-kNN (``KnnProbe.predict_fit_set``) and TopoFilter (k_cc = k_zeta = 50,
  contamination 0.1) at N = 5k, 20k, 100k, 1024-d; the dense reference where it fits;
* ``logreg`` 20k x 1024 and 20k x 4096, l2 = 1e-2: ours vs sklearn lbfgs on the duplicated
  rows with sample weights (C = 1 / (2 l2 N)); the final objective of both, in float64.

    python bench/probes.py                     # all groups, about 7 minutes on 2 cores
    python bench/probes.py --only knn logreg
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

K, K_CC, K_ZETA, CONTAMINATION, L2, SEED = 50, 50, 50, 0.1, 1e-2, 0
OUT = Path(__file__).resolve().parent / "out"


# --------------------------------------------------------------------------- data


def clusters(
    n: int, dim: int, seed: int = SEED, n_clusters: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float16 points around ``n_clusters`` Gaussian centres; soft labels by the centre's
    class, 10% flipped (weak-label noise). Built 2048 rows at a time: no float32 copy of it all."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    which = rng.integers(0, n_clusters, n)
    x = np.empty((n, dim), dtype=np.float16)
    for start in range(0, n, 2048):
        rows = which[start : start + 2048]
        x[start : start + rows.size] = centres[rows] + rng.standard_normal(
            (rows.size, dim), dtype=np.float32
        )
    positive = which % 2 == 0
    y = np.where(positive, rng.uniform(0.55, 1, n), rng.uniform(0, 0.45, n))
    flip = rng.random(n) < 0.1
    y[flip] = 1 - y[flip]
    return x, y.astype(np.float32)


# --------------------------------------------------------------------------- methods


def knn_ours(backend):
    def run(x, y, q):
        from w2sprobe.probes import KnnProbe

        return KnnProbe(k=K, backend=backend).fit(x, y).predict(q)

    return run


def knn_faiss(x, y, q):
    import faiss

    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x.astype(np.float32))
    return index.search(q.astype(np.float32), K)


def knn_sklearn(x, y, q):
    from sklearn.neighbors import NearestNeighbors

    return (
        NearestNeighbors(n_neighbors=K, algorithm="brute")
        .fit(x.astype(np.float32))
        .kneighbors(q.astype(np.float32))
    )


def knn_dense(x, y, q):
    import torch

    d = torch.cdist(torch.from_numpy(q.astype(np.float32)), torch.from_numpy(x.astype(np.float32)))
    return d.topk(K, largest=False)


def self_knn_ours(x, y, q):
    from w2sprobe.probes import KnnProbe

    return KnnProbe(k=K).fit(x, y).predict_fit_set()


def topo_ours(x, y, q):
    from w2sprobe.probes import TopoFilterProbe

    return TopoFilterProbe(k_cc=K_CC, k_zeta=K_ZETA).filter(x, y, CONTAMINATION).summary()


def topo_dense(x, y, q):
    """The reference study's method, dense: N x N distances, N x N boolean adjacency."""
    import torch
    from scipy.sparse.csgraph import connected_components

    def largest_component(adj):
        _, comp = connected_components(adj.numpy(), connection="strong")
        return torch.from_numpy(comp == np.bincount(comp).argmax())

    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    d = torch.cdist(xt, xt).fill_diagonal_(torch.inf)
    adj = torch.zeros(d.shape, dtype=torch.bool).scatter_(
        1, d.topk(K_CC, largest=False).indices, True
    )
    del d
    positive = yt[:, None] > 0.5
    kept = largest_component(adj & positive) | largest_component(adj & ~positive)
    del adj
    dc = torch.cdist(xt[kept], xt[kept]).fill_diagonal_(torch.inf)
    scores = (yt[kept] - yt[kept][dc.topk(K_ZETA, largest=False).indices].mean(1)).abs()
    n_remove = max(round(len(x) * CONTAMINATION) - (len(x) - int(kept.sum())), 0)
    return np.delete(kept.nonzero().squeeze(1).numpy(), scores.topk(n_remove).indices.numpy())


def logreg_ours(x, y, q):
    from w2sprobe.probes import LogisticProbe

    probe = LogisticProbe(l2=L2).fit(x, y)
    return {"loss": objective(x, y, probe.coef_, probe.intercept_), "iterations": probe.n_iter_}


def logreg_sklearn(x, y, q):
    from sklearn.linear_model import LogisticRegression

    n, x32 = len(x), x.astype(np.float32)
    model = LogisticRegression(C=1 / (2 * L2 * n), max_iter=2000, tol=1e-6)
    model.fit(np.vstack([x32, x32]), np.r_[np.ones(n), np.zeros(n)], sample_weight=np.r_[y, 1 - y])
    return {
        "loss": objective(x, y, model.coef_[0], model.intercept_[0]),
        "iterations": int(model.n_iter_[0]),
    }


def objective(x, y, w, b) -> float:
    """The probe's objective in float64 on the stored (float16) features."""
    import torch

    from w2sprobe.probes.logistic import logistic_objective

    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    return float(logistic_objective(t(x), t(y), t(w), t(b), L2))


METHODS = {
    "ours": knn_ours("auto"),
    "ours-torch": knn_ours("torch"),
    "faiss": knn_faiss,
    "sklearn": knn_sklearn,
    "dense-cdist": knn_dense,
    "self-knn ours": self_knn_ours,
    "topo ours": topo_ours,
    "topo dense": topo_dense,
    "logreg ours": logreg_ours,
    "logreg sklearn": logreg_sklearn,
}


# --------------------------------------------------------------------------- measuring


def rss_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def child(spec: dict) -> dict:
    """Run one method in this (fresh) process; report time, extra memory and its result."""
    import faiss  # noqa: F401  (imported up front: library code is not the method's memory)
    import sklearn.neighbors  # noqa: F401
    import torch  # noqa: F401

    import w2sprobe.probes  # noqa: F401

    x, y = clusters(spec["n"] + spec["queries"], spec["dim"])
    x, q, y = x[: spec["n"]], x[spec["n"] :], y[: spec["n"]]
    method, times, peak = METHODS[spec["method"]], [], 0.0
    for _ in range(spec["repeats"]):
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset the peak-RSS counter to the current RSS
        before = rss_mb("VmRSS")
        start = time.perf_counter()
        result = method(x, y, q)
        times.append(time.perf_counter() - start)
        peak = max(peak, rss_mb("VmHWM") - before)
    return {
        "seconds": min(times),
        "extra_mb": peak,
        "result": result if isinstance(result, dict) else None,
    }


def measure(method: str, n: int, dim: int, queries: int = 0, repeats: int = 2) -> dict:
    spec = {"method": method, "n": n, "dim": dim, "queries": queries, "repeats": repeats}
    repo = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": repo},
    )
    if done.returncode != 0:
        error = (
            done.stderr.strip().splitlines()[-1]
            if done.stderr.strip()
            else f"exit {done.returncode}"
        )
        print(f"  {method:15s} n={n:>6} d={dim:>4} q={queries:>5}  failed: {error}", flush=True)
        return {**spec, "error": error}
    row = {**spec, **json.loads(done.stdout.strip().splitlines()[-1])}
    print(
        f"  {method:15s} n={n:>6} d={dim:>4} q={queries:>5}  {row['seconds']:8.2f} s  "
        f"{row['extra_mb']:8.0f} MB extra  {row['result'] or ''}",
        flush=True,
    )
    return row


# --------------------------------------------------------------------------- groups


def group_knn() -> list[dict]:
    return [
        measure(m, 20_000, dim, 2_000)
        for dim in (1024, 4096)
        for m in ("ours", "ours-torch", "faiss", "sklearn", "dense-cdist")
    ]


def group_memory() -> list[dict]:
    return [measure(m, 100_000, 4096, 2_000, repeats=1) for m in ("ours", "ours-torch", "faiss")]


def group_topo() -> list[dict]:
    rows = []
    for n in (5_000, 20_000, 100_000):
        repeats = 1 if n > 20_000 else 2
        methods = ["self-knn ours", "topo ours"] + (["topo dense"] if n <= 20_000 else [])
        rows += [measure(m, n, 1024, repeats=repeats) for m in methods]
    return rows


def group_logreg() -> list[dict]:
    return [
        measure(m, 20_000, dim, repeats=1)
        for dim in (1024, 4096)
        for m in ("logreg ours", "logreg sklearn")
    ]


GROUPS = {"knn": group_knn, "memory": group_memory, "topo": group_topo, "logreg": group_logreg}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(GROUPS), default=list(GROUPS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    rows = []
    for name in args.only:
        print(f"[{name}]", flush=True)
        rows += GROUPS[name]()
    print(f"load average after: {os.getloadavg()}")
    OUT.mkdir(exist_ok=True)
    (OUT / "probes.json").write_text(json.dumps(rows, indent=1))
    print(f"raw rows: {OUT / 'probes.json'}")


if __name__ == "__main__":
    main()
