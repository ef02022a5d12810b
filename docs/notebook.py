# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # w2sprobe from Python
#
# The commands are thin wrappers over a Python API; this notebook walks the same study with it:
# open the activation cache, fit probes on one layer, compare layers, build a label set, train
# a student on it, and read the report's rows as a pandas DataFrame. Open it in Jupyter with
# `jupytext --to notebook docs/notebook.py` (or the jupytext extension), or run it as a script:
# `python docs/notebook.py`.
#
# Every artifact is cached and keyed by everything that made it, like the CLI's: with the
# defaults below (the offline demo, MiniLM -> MPNet on SST-2) a cache that `w2sprobe run`
# already filled is read, not recomputed, and a fresh one is built on first use (a few minutes
# on a laptop CPU; each step says what it builds).
#
# Settings come from the environment so the same file runs anywhere (the test suite runs it
# with tiny random models):
#
# | variable | meaning | default |
# |---|---|---|
# | `W2SPROBE_NB_WEAK` | weak model (alias, folder, hub id) | `minilm` |
# | `W2SPROBE_NB_STRONG` | strong model | `mpnet` |
# | `W2SPROBE_NB_DATASET` | dataset (registry name, file, folder) | `sst2` |
# | `W2SPROBE_DATA_DIR` | local dataset mirror | `../shared/data` (from the repo or `docs/`) |
# | `W2SPROBE_CACHE` | workspace | `cache` |
# | `W2SPROBE_NB_OPTIONS` | other options as JSON, e.g. `{"n_train": 200, "epochs": 1}` | `{}` |

# %%
import json
import os
from pathlib import Path

import pandas as pd

from w2sprobe.graph import Graph, Reporter
from w2sprobe.metrics import roc_auc
from w2sprobe.options import resolve
from w2sprobe.pgr_rule import show_pgr
from w2sprobe.probes import KnnProbe, LogisticProbe
from w2sprobe.probes.auto import criteria
from w2sprobe.probes.config import probe_config
from w2sprobe.report import build_report
from w2sprobe.report.stats import auc_ci
from w2sprobe.study import Study, load_options_splits
from w2sprobe.vocabulary import DerivedSet


def mirror_dir() -> str | None:
    """The dataset mirror: $W2SPROBE_DATA_DIR, else ../shared/data from the repo or docs/."""
    if os.environ.get("W2SPROBE_DATA_DIR"):
        return os.environ["W2SPROBE_DATA_DIR"]
    found = [p for p in (Path("../shared/data"), Path("../../shared/data")) if p.is_dir()]
    return str(found[0]) if found else None  # None: datasets come from the Hugging Face hub


class Say(Reporter):
    """The library is silent; a notebook wants to know when something is being built."""

    def building(self, dataset, stage, what, prerequisite):
        print(f"building {what} ...")


opts = resolve(
    {
        "weak_model": os.environ.get("W2SPROBE_NB_WEAK", "minilm"),
        "strong_model": os.environ.get("W2SPROBE_NB_STRONG", "mpnet"),
        "data_dir": mirror_dir(),
        "cache_dir": os.environ.get("W2SPROBE_CACHE", "cache"),
        **json.loads(os.environ.get("W2SPROBE_NB_OPTIONS", "{}")),
    }
)
DATASET = os.environ.get("W2SPROBE_NB_DATASET", "sst2")
study = Study(opts, DATASET, Graph("build", Say()))
print(f"{opts.model.weak_model} -> {opts.model.strong_model} on {DATASET}")

# %% [markdown]
# ## 1. The activation cache
#
# `study.extraction()` makes sure the strong model's activations of every `--layers` layer
# (default: all) are cached: one forward pass, or nothing when a file already holds them.
# `study.store(layer)` then opens the cached file holding `layer` — of several, the one with
# the most layers, so section 3 can compare them. Layer 0 is the embeddings output, layer *i*
# the output of block *i*; the default probe layer is the reference study's (L + 1) // 2.
# Arrays are float16 and memory-mapped; rows are in split order and named by `ids`.

# %%
LAYER = study.probe_layer()
study.extraction()
store = study.store(LAYER)
print(store.path.name, "| layers", store.layers, "| probe layer", LAYER)
pd.DataFrame(
    {
        split: {"rows": store.num_rows(split), "width": store.get(split, LAYER).shape[1]}
        for split in store.splits
    }
).T

# %% [markdown]
# ## 2. Probes on one layer
#
# The weak labels are the weak model's predictions (trained once on weak_train, then cached).
# A probe fit on the strong model's activations against those labels can beat them: that is
# the signal filtering and relabeling use. Test AUC is always against the ground truth.

# %%
weak = study.weak_labels()
x_train, train_ids = store.get("strong_train", LAYER), store.ids("strong_train")
_, y_weak = weak.align("strong_train", train_ids)  # the weak labels in the store's row order
x_test, y_test = store.get("test", LAYER), store.labels("test")
_, weak_test = weak.align("test", store.ids("test"))

knn = KnnProbe(k=opts.probe.k).fit(x_train, y_weak)
logreg = LogisticProbe(l2=opts.probe.l2).fit(x_train, y_weak)
pd.Series(
    {
        "weak labels": roc_auc(y_test, weak_test),
        f"kNN (k={opts.probe.k})": roc_auc(y_test, knn.predict(x_test)),
        f"logreg (l2={opts.probe.l2})": roc_auc(y_test, logreg.predict(x_test)),
    },
    name=f"test AUC, layer {LAYER}",
)

# %% [markdown]
# ## 3. Comparing layers
#
# The same logistic probe on every layer of the store. A layer is *chosen* by the weak-label
# criterion on strong_train (5-fold cross-validated cross-entropy against the weak labels, the
# one `--layer auto` and `sweep` use) — never by test AUC, which is shown with its 95 %
# bootstrap CI only to see what the choice achieved next to the best in hindsight.

# %%
logreg_config = probe_config("logreg", l2=opts.probe.l2)


def layer_row(layer: int) -> dict:
    x = store.get("strong_train", layer)
    (score,) = criteria([logreg_config], x, y_weak)
    scores = LogisticProbe(l2=opts.probe.l2).fit(x, y_weak).predict(store.get("test", layer))
    low, high = auc_ci(store.ids("test"), y_test, scores) or (None, None)
    return {
        "layer": layer,
        "weak-label CV xent": score["criterion"],
        "logreg AUC": roc_auc(y_test, scores),
        "CI low": low,
        "CI high": high,
    }


by_layer = pd.DataFrame([layer_row(layer) for layer in store.layers]).set_index("layer")
by_layer["minus weak AUC"] = by_layer["logreg AUC"] - roc_auc(y_test, weak_test)
chosen, hindsight = by_layer["weak-label CV xent"].idxmin(), by_layer["logreg AUC"].idxmax()
print(
    f"chosen on weak labels: layer {chosen}, test AUC {by_layer['logreg AUC'][chosen]:.3f}; "
    f"best in hindsight: layer {hindsight}, test AUC {by_layer['logreg AUC'][hindsight]:.3f}"
)
by_layer

# %%
axes = by_layer["logreg AUC"].plot(marker="o", title="probe test AUC by layer", ylabel="AUC")

# %% [markdown]
# ## 4. A label set
#
# `study.derived` builds a filtered or relabeled set exactly as `w2sprobe filter` / `relabel`
# do (same key, so the CLI finds it too). A filtered set drops the strong_train rows the probe
# disagrees with most (`contamination`, 10% by default; val likewise); its manifest reports how
# many of the dropped labels were really wrong.

# %%
filtered = study.derived(DerivedSet("knn", "filter"))
print(filtered.name, filtered.key, filtered.sizes())
pd.DataFrame(filtered.manifest["report"]).loc[  # one column per filtered split
    ["before", "removed", "precision", "mislabel_rate_before", "mislabel_rate_after"]
]

# %% [markdown]
# ## 5. A student
#
# The strong model trained on the filtered labels; PGR = (student − weak) / (ceiling − weak)
# on test AUC, against the weak run and the ceiling (both built first when missing).

# %%
student = study.student(filtered)
pd.Series(
    {
        "weak": study.weak().auc,
        "ceiling": study.ceiling().auc,
        "student (knn-filter)": student.auc,
        # flagged "(unstable: ...)" when the ceiling - weak gap's CI does not clear --min-gap
        "PGR": show_pgr(student.metrics),
    }
)

# %% [markdown]
# ## 6. From ids back to text
#
# Every prediction, label and activation row is named by an id; the splits (rebuilt from the
# same options, as `w2sprobe data ids` does) give each id's text. Here: the student's most
# confident mistakes on test.

# %%
test = load_options_splits(opts, DATASET).splits["test"]
texts = pd.DataFrame({"id": test.ids, "text": test.texts})
predicted = student.predictions()["test"]
mistakes = (
    pd.DataFrame({"id": predicted.ids, "soft_pred": predicted.soft, "label": predicted.labels})
    .merge(texts, on="id")
    .assign(error=lambda df: (df["soft_pred"] - df["label"]).abs())
    .sort_values("error", ascending=False)
)
mistakes.head(5)

# %% [markdown]
# ## 7. The report as a DataFrame
#
# `build_report` reads only the result files under the cache (every finished run, from the CLI
# or from here); its `rows` are one dict per (dataset, experiment), `seed_rows` one per run.

# %%
results = build_report(opts.workspace.cache_dir, datasets=[DATASET], n_boot=200)
rows = pd.DataFrame(results.rows)
rows[[c for c in ("experiment", "stage", "auc", "accuracy", "pgr", "pgr_ci") if c in rows]]

# %%
store.close()
