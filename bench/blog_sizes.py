"""The blog's split sizes for one dataset, capped by what the offline mirror holds.

The blog asks for 10,000 train / 1,000 val / 5,000 test.  A dataset with separate train and
test pools gets exactly that, each capped by its pool.  A dataset with a single pool (the
mirror holds only its validation split: boolq, piqa, quail, ...) is carved by the splitter as
test = min(n_test, N/2), val = min(n_val, rest/2), which at the blog's request would leave a
quarter of it for training; so there the request keeps the blog's 10 : 1 : 5 proportions over
the pool's N balanced rows instead.  Prints the size flags for ``w2sprobe``:

    python bench/blog_sizes.py boolq --data-dir ../shared/data   ->   --n-train 1547 ...
"""

from __future__ import annotations

import argparse
import json
import subprocess

BLOG = {"n_train": 10_000, "n_val": 1_000, "n_test": 5_000}


def blog_sizes(dataset: str, data_dir: str) -> dict[str, int]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in BLOG.items()]
    shown = subprocess.run(
        ["w2sprobe", "data", "show", dataset, "--data-dir", data_dir, "--json", *flags],
        check=True,
        capture_output=True,
        text=True,
    )
    pools = json.loads(shown.stdout)["report"]["pools"]
    if "shared" not in pools:
        return dict(BLOG)
    held = int(pools["shared"]["balanced_size"])
    total = sum(BLOG.values())
    n_test = min(BLOG["n_test"], held * BLOG["n_test"] // total)
    n_val = min(BLOG["n_val"], held * BLOG["n_val"] // total)
    return {
        "n_train": min(BLOG["n_train"], held - n_test - n_val),
        "n_val": n_val,
        "n_test": n_test,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    sizes = blog_sizes(args.dataset, args.data_dir)
    print(" ".join(f"--{k.replace('_', '-')} {v}" for k, v in sizes.items()))
