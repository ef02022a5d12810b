"""Wall time of ``w2sprobe probe`` on a cached extraction and weak set, 5,000 x 768 rows.

    python bench/probe_command.py --baseline 55c36d1   # vs 55c36d1 (before the start-up work)
    python bench/probe_command.py --baseline HEAD~3 --repeats 5
    python bench/probe_command.py --baseline a05f57b --probes topo,massmean

What a user waits for: a fresh ``python -m w2sprobe probe --probe logreg|knn|...`` process, from
start to the printed result, on a workspace where the activations (strong_train 5,000 rows of
hidden size 768) and the weak label set are cached, so the command only fits and evaluates.
The workspace is made once (not timed): SST-2 from the offline mirror (``--n-train 10000``,
halved into weak_train and strong_train), a random one-block BERT of hidden size 768 as the
strong model (real text, real extraction, 768 features), and a stored ``weak`` label set (30 %
of the ground truth flipped).  Each tree runs each command once untimed first (a warm-up: it
builds the splits memo, as a user's first command does).  Wall time and CPU time (user +
system of the child) are reported: on a loaded machine the wall time is mostly waiting for a
core.  Before each timed run the probe's result folder is removed, so
every run fits.  Baseline and current code run interleaved; the baseline is checked out with
``git worktree`` and removed again.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SIZES = ["--n-train", "10000", "--n-val", "100", "--n-test", "400"]
#: The probe commands by name (``--probes``): each probe at the study's settings.
PROBE_ARGS = {
    "logreg": ["--probe", "logreg"],
    "knn": ["--probe", "knn", "--k", "50"],
    "topo": ["--probe", "topo"],
    "massmean": ["--probe", "massmean"],
}


def build_model(folder: Path) -> Path:
    """A random BERT, one block, hidden size 768, with a word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(500)] + "the a good bad movie film great not very".split()
    vocab = {t: i for i, t in enumerate(["[UNK]", "[PAD]", "[CLS]", "[SEP]", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]"
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=768,
        pad_token_id=1,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def prepare(workspace: Path) -> None:
    """Extract layer 1 of the strong model and store a noisy weak label set (not timed)."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from w2sprobe.cache import ActivationStore, list_entries
    from w2sprobe.labels import LabelSet, save_label_set

    model = build_model(workspace / "model")
    (workspace / "w2sprobe.toml").write_text(
        f'strong_model = "{model}"\ndata_dir = "{DATA}"\ncache_dir = "c"\nlayer = 1\n'
        "max_length = 32\nn_train = 10000\nn_val = 100\nn_test = 400\n"
    )
    run(REPO, ["extract", "--layers", "1"], workspace)
    with ActivationStore.open(list_entries(workspace / "c")[0].path) as store:
        ids = {s: store.ids(s) for s in store.splits}
        truth = {s: store.labels(s) for s in store.splits}
        assert store.get("strong_train", 1).shape == (5000, 768)
    rng = np.random.default_rng(0)
    soft = {s: np.where(rng.random(len(y)) < 0.3, 1 - y, y) * 0.8 + 0.1 for s, y in truth.items()}
    save_label_set(LabelSet("weak", "sst2", ids, soft, {"made": "30% flips"}), workspace / "c")


def run(tree: Path, args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one fresh process.

    The CPU time is what the command costs whatever else the machine runs; on a loaded machine
    the wall time is mostly waiting for a core.
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("W2SPROBE_CACHE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "w2sprobe", *args],
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="04a88b6", help="git ref to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workspace", type=Path, help="reuse (or make once, here) the prepared workspace"
    )
    parser.add_argument(
        "--probes", default="logreg,knn", help=f"comma-separated: {', '.join(PROBE_ARGS)}"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        workspace = args.workspace or scratch / "ws"
        if not (workspace / "w2sprobe.toml").is_file():
            workspace.mkdir(parents=True, exist_ok=True)
            prepare(workspace)
        baseline = scratch / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline],
            check=True,
            capture_output=True,
        )
        try:
            trees = {"before": baseline, "now": REPO}
            header = " | ".join(f"{name}: wall best / median, CPU median" for name in trees)
            print(f"| command | {header} |")
            for probe in (PROBE_ARGS[name] for name in args.probes.split(",")):
                times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
                for name, tree in trees.items():  # warm-up, not timed: the splits memo
                    run(tree, ["probe", *probe], workspace)
                for _ in range(args.repeats):
                    for name, tree in trees.items():
                        shutil.rmtree(workspace / "c" / "runs", ignore_errors=True)
                        times[name].append(run(tree, ["probe", *probe], workspace))
                cells = " | ".join(
                    f"{min(w for w, _ in t):.2f} s / {statistics.median(w for w, _ in t):.2f} s, "
                    f"{statistics.median(c for _, c in t):.2f} s"
                    for t in times.values()
                )
                print(f"| `w2sprobe probe {' '.join(probe)}` | {cells} |", flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],
                check=False,
            )


if __name__ == "__main__":
    main()
