"""Views of the cache in a report: per dataset, the most-disputed strong_train examples and how
the weak model's representations relate to the strong model's; across datasets, that
relation set against PGR.

Everything is read from the cache (no model runs):

* **Disputed examples**: a probe's relabeled set (``<probe>-relabel@weak``: its out-of-sample
  scores on strong_train) beside the weak labels it was fit on, ranked by
  :func:`w2sprobe.views.disputed_order` (the ranking ``w2sprobe view --top`` lists), ground
  truth from the strong activation file (else the weak run's predictions); texts from the
  dataset's splits when ``data_dir`` is given and they rebuild with the same fingerprint.
* **Alignment**: when the weak model's activations are cached on the same rows as the strong
  model's, linear CKA of every (weak layer, strong layer) pair (:func:`w2sprobe.views.cka_grid`)
  and the ridge map from the weak model's last layer to the strong model's last layer with its
  held-out R² (:func:`w2sprobe.views.ridge_map`; ``w2sprobe view --align`` maps every weak
  layer) on at most :data:`FIT_ROWS` strong_train and :data:`HELD_ROWS` test rows (the first ones,
  so the numbers do not depend on a seed), which keeps a report's cost bounded on large files;
  a report rebuilt over the same two files reuses what an earlier report under
  ``<cache>/reports/`` computed (by the files' keys).
* **Across datasets**: per dataset the CKA and R² at the last layers (what the weak model's
  predictions and the strong students read) against the baseline student's PGR, with
  Spearman's ρ over the stable datasets (:func:`w2sprobe.report.diagnose.spearman`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ..errors import UsageError, first_line
from ..labels import label_set_folders, load_label_set, read_label_meta
from .diagnose import spearman

#: Disputed rows a report lists per dataset.
TOP = 10
#: Characters of an example's text in the report's table.
TEXT_WIDTH = 160
#: Rows the CKA and ridge maps are fit on (strong_train) and scored on (test), at most.
FIT_ROWS = 1000
HELD_ROWS = 500
FIT_SPLIT, HELD_SPLIT = "strong_train", "test"


def collect_views(
    cache_dir: Path,
    datasets: list[str],
    data_dir: str | None = None,
    top: int = TOP,
) -> list[dict]:
    """One entry per dataset in ``datasets``: ``disputed`` (or None), ``alignment`` (or None),
    ``missing`` (keys of :data:`MISSING`: what it lacks for them) and ``notes`` (why a view
    could not be read)."""
    root = Path(cache_dir)
    sets = _label_sets(root)
    acts = _activation_files(root)
    memo = _Memo(root)
    return [
        _dataset_view(root, d, sets.get(d, []), acts.get(d, []), data_dir, top, memo)
        for d in datasets
    ]


class _Memo:
    """Alignments earlier reports under ``<cache>/reports/`` computed, by their inputs (the two
    activation files' keys -- content-addressed, complete files never change -- and the row
    bounds), read on first use: a report rebuilt over the same activations reuses them."""

    def __init__(self, root: Path):
        self.root, self._found = root, None
        #: (dataset fingerprint, data dir) -> id -> text, from earlier disputed tables
        self._texts: dict[tuple, dict[str, str]] = {}

    def get(self, inputs: dict) -> dict | None:
        self._read()
        return self._found.get(_signature(inputs))

    def texts(self, fingerprint: str, data_dir: str) -> dict[str, str]:
        """Texts earlier reports rebuilt from ``data_dir`` for rows of these splits."""
        self._read()
        return self._texts.get((fingerprint, str(data_dir)), {})

    def _read(self) -> None:
        if self._found is None:
            from .files import read_summary, report_folders

            self._found = {}
            for folder in report_folders(self.root):
                try:
                    summary = read_summary(folder) or {}
                except (UsageError, OSError, ValueError):
                    continue
                views = summary.get("views") if isinstance(summary, dict) else None
                for view in (views or {}).get("datasets") or []:
                    stored = view.get("alignment") if isinstance(view, dict) else None
                    if isinstance(stored, dict) and isinstance(stored.get("inputs"), dict):
                        self._found[_signature(stored["inputs"])] = stored
                    table = view.get("disputed") if isinstance(view, dict) else None
                    if isinstance(table, dict) and table.get("data_dir"):
                        known = self._texts.setdefault(
                            (table.get("dataset_fingerprint"), table["data_dir"]), {}
                        )
                        known.update(
                            {r["id"]: r["text"] for r in table["top"] if r.get("text") is not None}
                        )


def _signature(inputs: dict) -> str:
    return json.dumps(inputs, sort_keys=True)


#: What a dataset lacks for a view -> what makes it (the report says each once, listing the
#: datasets that lack it).
MISSING = {
    "weak_labels": "no weak label set (w2sprobe train weak --dataset D)",
    "relabel": "no probe relabel set of the weak labels, so no disputed examples "
    "(w2sprobe relabel --dataset D)",
    "weak_acts": "the weak model's activations are not cached beside the strong model's, so "
    "no CKA / ridge R² (w2sprobe extract --model WEAK --dataset D --layers all, or w2sprobe "
    "view --align --dataset D)",
}


def _dataset_view(root, dataset, sets, files, data_dir, top, memo=None) -> dict:
    out = {"dataset": dataset, "disputed": None, "alignment": None, "missing": [], "notes": []}
    weak = _newest(s for s in sets if s["manifest"].get("kind") == "weak")
    if weak is None:
        out["missing"].append("weak_labels")
        return out
    out["weak_model"] = weak["manifest"].get("model")
    relabel = _newest(
        s
        for s in sets
        if s["manifest"].get("kind") == "relabel" and s["manifest"].get("parent") == weak["key"]
    )
    strong = _strong_file(files, weak["manifest"], relabel)
    try:
        if relabel is None:
            out["missing"].append("relabel")
        else:
            out["disputed"] = disputed_table(
                root, dataset, weak, relabel, strong, data_dir, top, memo
            )
        weak_file = _weak_file(files, weak["manifest"])
        if strong is None or weak_file is None:
            out["missing"].append("weak_acts")
        else:
            inputs = alignment_inputs(weak_file, strong)
            stored = memo.get(inputs) if memo is not None else None
            out["alignment"] = (
                {**stored, "reused": True} if stored else alignment_summary(weak_file, strong)
            )
    except (UsageError, OSError, KeyError, ValueError) as exc:
        out["notes"].append(f"{dataset}: views skipped: {first_line(exc)}")
    return out


# --------------------------------------------------------------------------- disputed


def disputed_table(root, dataset, weak, relabel, strong, data_dir, top, memo=None) -> dict:
    """The ``top`` strong_train rows where the relabel set's probe score and the weak label
    differ most (the view's ranking), with ground truth and, where they rebuild, texts."""
    from ..views import disputed_order

    weak_set, probe_set = load_label_set(weak["folder"]), load_label_set(relabel["folder"])
    ids, truth = _truth(root, dataset, weak, strong)
    _, weak_soft = weak_set.align(FIT_SPLIT, ids)
    scored, probe = probe_set.align(FIT_SPLIT, ids)
    if not scored.all():
        raise UsageError(f"{relabel['name']} scores {int(scored.sum())} of {len(ids)} rows")
    order = disputed_order(probe, weak_soft)
    fingerprint = relabel["manifest"].get("dataset_fingerprint")
    wanted = [str(i) for i in ids[order[:top]]]
    known = memo.texts(fingerprint, data_dir) if memo is not None and data_dir else {}
    if data_dir and all(i in known for i in wanted):  # an earlier report rebuilt them
        texts, text_note = known, f"texts from {data_dir}"
    else:
        texts, text_note = _texts(dataset, relabel["manifest"], wanted, data_dir)
    rows = []
    for rank, i in enumerate(order[:top]):
        rows.append(
            {
                "rank": rank + 1,
                "id": str(ids[i]),
                "row": int(i),
                "weak_label": float(weak_soft[i]),
                "probe_score": float(probe[i]),
                "gap": float(abs(probe[i] - weak_soft[i])),
                "ground_truth": int(truth[i]) if truth is not None else None,
                "text": texts.get(str(ids[i])),
            }
        )
    wrong = None if truth is None else int(((weak_soft >= 0.5) != (truth >= 0.5)).sum())
    probe_info = relabel["manifest"].get("probe") or {}
    return {
        "label_set": relabel["name"],
        "label_set_key": relabel["key"],
        "weak_set": weak["name"],
        "probe": probe_info.get("probe"),
        "layer": probe_info.get("layer"),
        "rows": len(ids),
        "weak_wrong": wrong,
        "top": rows,
        "texts": text_note,
        "dataset_fingerprint": fingerprint,
        "data_dir": str(data_dir) if texts else None,
    }


def _truth(root, dataset, weak, strong):
    """strong_train's ids and ground truth: from the strong activation file, else from the weak
    run's predictions (ids only from the weak set when neither is readable)."""
    from ..cache import ActivationStore

    if strong is not None:
        with ActivationStore.open(strong["path"]) as store:
            return store.ids(FIT_SPLIT), store.labels(FIT_SPLIT)
    from ..runs import read_predictions

    run = weak["manifest"].get("run")
    path = root / "runs" / dataset / str(run) / "predictions.csv"
    if run and path.is_file():
        split = read_predictions(path).get(FIT_SPLIT)
        if split is not None:
            return np.asarray(split.ids, dtype=str), np.asarray(split.labels, np.float32)
    return load_label_set(weak["folder"]).ids[FIT_SPLIT], None


def _texts(dataset: str, manifest: dict, ids, data_dir) -> tuple[dict, str]:
    """id -> text of ``ids``, rebuilt from the dataset's splits (same sizes and seed as the set;
    the fingerprint must match); ({}, why not) otherwise."""
    if not data_dir:
        return {}, "texts not shown: no data dir (--data-dir); w2sprobe data ids --id ID shows one"
    from ..data.splits import SplitSizes, load_splits

    sizes = manifest.get("split_sizes") or {}
    try:
        splits = load_splits(
            dataset,
            data_dir=data_dir,
            seed=int(manifest.get("seed", 0)),
            sizes=SplitSizes(
                n_train=int(sizes["weak_train"]) + int(sizes["strong_train"]),
                n_val=int(sizes["val"]),
                n_test=int(sizes["test"]),
            ),
        )
    except (UsageError, OSError, KeyError, ValueError, TypeError) as exc:
        return {}, f"texts not shown: {first_line(exc)}"
    if splits.fingerprint != manifest.get("dataset_fingerprint"):
        return {}, "texts not shown: the splits rebuilt from the data dir differ from the cache's"
    split = splits.splits[FIT_SPLIT]
    wanted = set(map(str, ids))
    return {i: t for i, t in zip(split.ids, split.texts) if i in wanted}, f"texts from {data_dir}"


# --------------------------------------------------------------------------- alignment


#: Bumped when the alignment's numbers change meaning: stored ones then no longer match.
ALIGNMENT_VERSION = 1


def alignment_inputs(weak_file: dict, strong_file: dict) -> dict:
    """What an alignment is computed from: the two files (by key) and the row bounds."""
    return {
        "weak_key": weak_file["key"],
        "strong_key": strong_file["key"],
        "fit_rows": FIT_ROWS,
        "held_rows": HELD_ROWS,
        "version": ALIGNMENT_VERSION,
    }


def alignment_summary(weak_file: dict, strong_file: dict) -> dict:
    """Linear CKA of every (weak layer, strong layer) pair and the ridge map weak last layer ->
    strong last layer with its held-out R², on the first :data:`FIT_ROWS` / :data:`HELD_ROWS`
    rows; summarised per weak layer (its best-matching strong layer)."""
    from ..cache import ActivationStore
    from ..views import cka_grid, ridge_map

    start = time.perf_counter()
    with (
        ActivationStore.open(weak_file["path"]) as weak,
        ActivationStore.open(strong_file["path"]) as strong,
    ):
        for split in (FIT_SPLIT, HELD_SPLIT):
            if weak.ids(split).tolist() != strong.ids(split).tolist():
                raise UsageError(
                    f"the weak and strong activation files hold other {split} rows "
                    f"({weak.path.name}, {strong.path.name})"
                )
        fit = min(weak.num_rows(FIT_SPLIT), FIT_ROWS)
        held = min(weak.num_rows(HELD_SPLIT), HELD_ROWS)

        def read(store, split, rows, layers):
            return {i: np.asarray(store.get(split, i, rows=slice(0, rows))) for i in layers}

        weak_layers, strong_layers = weak.layers, strong.layers
        weak_last, last = max(weak_layers), max(strong_layers)
        grid = cka_grid(
            read(weak, FIT_SPLIT, fit, weak_layers), read(strong, FIT_SPLIT, fit, strong_layers)
        )
        ridge = ridge_map(
            *read(weak, FIT_SPLIT, fit, [weak_last]).values(),
            *read(strong, FIT_SPLIT, fit, [last]).values(),
            *read(weak, HELD_SPLIT, held, [weak_last]).values(),
            *read(strong, HELD_SPLIT, held, [last]).values(),
        )
    per_layer = []
    for w in weak_layers:
        best = max(strong_layers, key=lambda s: _or_minus(grid[w, s]))
        per_layer.append(
            {
                "weak_layer": w,
                "best_strong_layer": best,
                "best_cka": grid[w, best],
                "cka_last": grid[w, last],
            }
        )
    return {
        "weak_model": weak_file["model"],
        "strong_model": strong_file["model"],
        "weak_file": str(weak_file["path"]),
        "strong_file": str(strong_file["path"]),
        "fit_rows": fit,
        "held_rows": held,
        "weak_last": weak_last,
        "strong_last": last,
        "cka_last": grid[weak_last, last],
        "r2_last": ridge.r2,
        "ridge_alpha": ridge.alpha,
        "per_weak_layer": per_layer,
        "cka": [{"weak_layer": i, "strong_layer": j, "cka": v} for (i, j), v in grid.items()],
        "seconds": time.perf_counter() - start,
        "inputs": alignment_inputs(weak_file, strong_file),
        "reused": False,
    }


def _or_minus(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


# --------------------------------------------------------------------------- across datasets


def alignment_vs_pgr(
    views: list[dict], rows: list[dict], included: list[str], baseline: str | None
) -> dict:
    """Per dataset with an alignment: CKA and R² at the last layers and the baseline's PGR row;
    Spearman ρ of each against PGR over the stable (included, not unstable) datasets."""
    points = []
    for view in views:
        a = view.get("alignment")
        row = next(
            (
                r
                for r in rows
                if r["dataset"] == view["dataset"] and baseline and r["experiment"] == baseline
            ),
            None,
        )
        if a is None or row is None or row.get("pgr") is None:
            continue
        stable = view["dataset"] in included and not row.get("pgr_unstable")
        points.append(
            {
                "dataset": view["dataset"],
                "cka": a["cka_last"],
                "r2": a["r2_last"],
                "pgr": row["pgr"],
                "pgr_ci": row.get("pgr_ci"),
                "pgr_se": row.get("pgr_se"),
                "stable": stable,
            }
        )
    stable = [p for p in points if p["stable"]]
    return {
        "experiment": baseline,
        "points": points,
        "cka": spearman([p["cka"] for p in stable], [p["pgr"] for p in stable]),
        "r2": spearman([p["r2"] for p in stable], [p["pgr"] for p in stable]),
    }


def too_few(stats: dict) -> bool:
    """Fewer than 3 datasets, or a ρ scipy cannot define: no rank correlation to speak of."""
    return stats.get("rho") is None


# --------------------------------------------------------------------------- cache lookups


def _label_sets(root: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for folder in label_set_folders(root):
        meta = read_label_meta(folder)
        if meta is None or not isinstance(meta.get("manifest"), dict):
            continue
        dataset = meta.get("dataset", folder.parent.name)
        out.setdefault(dataset, []).append(
            {
                "folder": folder,
                "name": meta["name"],
                "key": meta.get("key", folder.name),
                "created": str(meta.get("created", "")),
                "manifest": meta["manifest"],
            }
        )
    return out


def _newest(sets) -> dict | None:
    """The most recently made set (ties: by key, so the choice is stable)."""
    return max(sets, key=lambda s: (s["created"], s["key"]), default=None)


def _activation_files(root: Path) -> dict[str, list[dict]]:
    """Complete activation files per dataset with their manifests, most layers first."""
    from ..cache import ActivationStore, list_entries

    out: dict[str, list[dict]] = {}
    for entry in list_entries(root):
        if not entry.complete:
            continue
        try:
            with ActivationStore.open(entry.path) as store:
                manifest, attrs = store.manifest, store.attrs
        except UsageError:
            continue  # `cache verify` reports it; never read
        out.setdefault(entry.dataset, []).append(
            {
                "path": entry.path,
                "key": entry.key,
                "model": entry.model,
                "revision": str(attrs.get("model_revision", "")),
                "layers": entry.layers,
                "manifest": manifest,
            }
        )
    for files in out.values():
        files.sort(key=lambda f: (-len(f["layers"]), str(f["path"])))
    return out


def _without_layers(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "layers"}


def _strong_file(files: list[dict], weak: dict, relabel: dict | None) -> dict | None:
    """The activation file the probe read (same manifest as the relabel set records), else one
    of another model on the same splits."""
    if relabel is not None and isinstance(relabel["manifest"].get("activations"), dict):
        made = _without_layers(relabel["manifest"]["activations"])
        for f in files:
            if _without_layers(f["manifest"]) == made:
                return f
    same = weak.get("dataset_fingerprint")
    return next(
        (
            f
            for f in files
            if f["manifest"].get("dataset_fingerprint") == same and f["model"] != weak.get("model")
        ),
        None,
    )


def _weak_file(files: list[dict], weak: dict) -> dict | None:
    """The weak model's activations on the splits its labels were made on (same model name
    and dataset fingerprint; one of the same model revision first: a revision recorded by an
    older fingerprint of the same weights may differ)."""
    same = [
        f
        for f in files
        if f["model"] == weak.get("model")
        and f["manifest"].get("dataset_fingerprint") == weak.get("dataset_fingerprint")
    ]
    same.sort(key=lambda f: f["revision"] != weak.get("model_revision"))  # stable: layers next
    return same[0] if same else None
