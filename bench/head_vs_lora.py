"""Does a head screen predict the LoRA result?  Head students on the LoRA study's own labels.

The committed MPNet study (``docs/results/mpnet``: MiniLM -> MPNet, LoRA, 1,200 / 100 / 400)
recorded, per dataset, the weak label set and the derived label sets its LoRA students trained
on.  For every dataset where that study has a stable gap (ceiling - weak >= ``--min-gap``),
this trains head students (``--student head``: the default head on MPNet's cached activations)
on exactly those label sets -- xent and logconf on the weak labels, xent on the kNN-filtered
and kNN-relabeled sets -- plus a head ceiling, and compares the interventions' test AUCs with
the LoRA students': Spearman's rho per dataset (over the interventions) and overall (over
every dataset's AUC differences to its xent student: does the head say whether an
intervention beats xent?).

    python bench/head_vs_lora.py --record docs/results/mpnet/cache --work /tmp/hvl \\
        --data-dir ../shared/data > head_vs_lora.json

The extraction of MPNet at the study's sizes is the only expensive step (the record holds no
activation files); everything is cached in ``--work``, so a rerun only reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from w2sprobe.graph import Graph
from w2sprobe.labels import find_label_set
from w2sprobe.options import resolve
from w2sprobe.runs import find_runs
from w2sprobe.study import Study

#: The LoRA study's students and what each trained on (label set named by the student's run).
INTERVENTIONS = {
    "xent": "xent",
    "logconf": "logconf",
    "knn-filter": "xent",
    "knn-relabel": "xent",
}


def lora_runs(cache: Path, dataset: str) -> dict[str, dict]:
    """The newest finished run of each experiment (metrics)."""
    out: dict[str, dict] = {}
    for record in find_runs(cache, dataset):  # newest first
        out.setdefault(record.metrics["experiment"], record.metrics)
    return out


def compare(work: Path, data_dir: str, dataset: str) -> dict:
    lora = lora_runs(work, dataset)
    # the study's sizes are the defaults (bench/study.sh passes none): the same splits and ids
    opts = resolve(
        {"cache_dir": str(work), "data_dir": data_dir, "dataset": [dataset], "student": "head"}
    )
    study = Study(opts, dataset, Graph("build"))
    heads = {"ceiling": study.ceiling().auc}
    for experiment, loss in INTERVENTIONS.items():
        labels = find_label_set(work, dataset, lora[experiment]["labels_key"])
        heads[experiment] = study.student(labels, loss, experiment=experiment).auc
    names = list(INTERVENTIONS)
    rho = spearmanr([lora[n]["auc"] for n in names], [heads[n] for n in names]).statistic
    return {
        "dataset": dataset,
        "weak": lora["weak"]["auc"],
        "lora": {n: lora[n]["auc"] for n in ["ceiling", *names]},
        "head": heads,
        "spearman": None if np.isnan(rho) else float(rho),
    }


def overall(rows: list[dict]) -> dict:
    """Spearman over every (dataset, intervention) of the AUC difference to that xent student."""
    lora, head = [], []
    for row in rows:
        for name in INTERVENTIONS:
            if name != "xent":
                lora.append(row["lora"][name] - row["lora"]["xent"])
                head.append(row["head"][name] - row["head"]["xent"])
    agree = float(np.mean(np.sign(lora) == np.sign(head)))
    return {
        "spearman_of_differences": float(spearmanr(lora, head).statistic),
        "pairs": len(lora),
        "same_side_of_xent": agree,
        "mean_per_dataset_spearman": float(
            np.nanmean([r["spearman"] for r in rows if r["spearman"] is not None])
        ),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", required=True, help="the LoRA study's record (a cache)")
    parser.add_argument("--work", required=True, help="a workspace for activations and heads")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--min-gap", type=float, default=0.02)
    parser.add_argument("--dataset", action="append", help="default: every stable one")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from study_record import restore

    work = Path(args.work)
    restore(Path(args.record), work)
    datasets = args.dataset or sorted(p.name for p in (work / "runs").iterdir() if p.is_dir())
    rows = []
    for dataset in datasets:
        lora = lora_runs(work, dataset)
        gap = lora["ceiling"]["auc"] - lora["weak"]["auc"]
        if gap < args.min_gap:
            print(f"{dataset}: gap {gap:+.3f} < {args.min_gap}: skipped", file=sys.stderr)
            continue
        rows.append(compare(work, args.data_dir, dataset))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"datasets": rows, "overall": overall(rows)}, indent=2))
