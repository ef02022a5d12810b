"""``docs/notebook.py`` parses as a jupytext notebook and runs top to bottom on tiny models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

NOTEBOOK = REPO / "docs" / "notebook.py"

#: Tiny sizes and a short recipe: the whole notebook in well under a minute on 2 CPU cores.
TINY = {
    "n_train": 80,
    "n_val": 20,
    "n_test": 40,
    "epochs": 1,
    "batch_size": 8,
    "minibatch": 8,
    "eval_every": 5,
    "warmup_steps": 1,
    "max_length": 32,
    "k": 5,
}


def notebook_cells():
    import jupytext  # dev extra: the notebook's format is jupytext's percent format

    return jupytext.read(NOTEBOOK).cells


def test_notebook_is_a_percent_format_notebook():
    cells = notebook_cells()
    kinds = [cell.cell_type for cell in cells]
    assert kinds[0] == "markdown" and kinds.count("code") >= 8 and kinds.count("markdown") >= 7
    titles = [cell.source.splitlines()[0] for cell in cells if cell.cell_type == "markdown"]
    assert "## 4. A label set" in titles and "## 7. The report as a DataFrame" in titles


@pytest.mark.slow  # a fresh interpreter, like a user's kernel: nothing inherited from the tests
def test_notebook_runs_top_to_bottom(tmp_path, tiny_models, mirror):
    cells = [cell.source for cell in notebook_cells() if cell.cell_type == "code"]
    # A researcher who cached the probe layer alone first (`w2sprobe extract --layer N`): the
    # notebook must still compare every layer, not the one that file holds.
    cells.insert(1, "study.extraction(layers=[study.probe_layer()])")
    script = tmp_path / "notebook_code.py"
    script.write_text(
        "\n\n".join(cells)
        + "\n\nprint('ROWS', json.dumps(rows.to_dict('records'), default=str))\n"
        + "print('LAYERS', json.dumps([int(layer) for layer in by_layer.index]))\n"
    )
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "W2SPROBE_NB_WEAK": str(tiny_models["bert"]),
        "W2SPROBE_NB_STRONG": str(tiny_models["llama"]),
        "W2SPROBE_DATA_DIR": str(mirror),
        "W2SPROBE_CACHE": str(cache),
        "W2SPROBE_NB_OPTIONS": json.dumps(TINY),
        "MPLBACKEND": "Agg",
        # Tiny matrices: one thread. Two threads spin against each other on a busy 2-core box
        # (20x slower per op measured), turning a 40 s run into minutes.
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout
    assert "building weak labels" in out and "building student knn-filter" in out
    rows = json.loads(out.split("ROWS ", 1)[1].splitlines()[0])
    assert {row["experiment"] for row in rows} >= {"weak", "ceiling", "knn-filter"}
    assert len(list(Path(cache, "acts").rglob("*.h5"))) == 2  # the one-layer file, and all
    assert Path(cache, "labels", "sst2").is_dir()
    blocks = json.loads((tiny_models["llama"] / "config.json").read_text())["num_hidden_layers"]
    compared = json.loads(out.split("LAYERS ", 1)[1].splitlines()[0])
    assert compared == list(range(blocks + 1)), "compare layers compared only " + str(compared)
