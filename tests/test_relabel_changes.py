"""``relabel`` says what it made: labels changed against its parent, their balance, as a table.

And ``run``'s final table stays one aligned table whatever the length of a stage's name.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import run_cli
from test_probe_cli import cached  # noqa: F401 - the fixture: tiny BERT layers + a 'weak' set

from w2sprobe.labels import LabelSet, label_changes, list_label_sets, load_label_set


def _set(name, ids, soft):
    return LabelSet(name, "toy", {"strong_train": ids}, {"strong_train": np.array(soft)})


def test_label_changes_count_hard_flips_on_shared_ids():
    parent = _set("weak", ["a", "b", "c", "d", "e"], [0.9, 0.2, 0.6, 0.5, 0.1])
    # d (0.5 is negative) -> 0.7 flips; c 0.6 -> 0.4 flips; a stays positive; e is not in it
    new = _set("knn-relabel@weak", ["d", "c", "b", "a"], [0.7, 0.4, 0.3, 0.8])
    (split,) = label_changes(new, parent).items()
    name, c = split
    assert name == "strong_train" and c["n"] == 4 and c["changed"] == 2
    assert c["changed_fraction"] == 0.5
    assert c["mean_abs_change"] == pytest.approx((0.2 + 0.2 + 0.1 + 0.1) / 4)
    assert (c["positive_before"], c["positive_after"]) == (0.5, 0.5)  # a, c before; a, d after
    assert c["mean_before"] == pytest.approx((0.9 + 0.2 + 0.6 + 0.5) / 4)


def test_relabel_prints_a_table_of_what_changed(capsys, cached):  # noqa: F811
    code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "10", "--layer", "2")
    assert code == 0, err
    assert "{" not in out and "'" not in out  # no Python dict repr
    lines = out.splitlines()
    assert lines[0].startswith("label set knn-relabel@weak (") and "relabeled by knn" in lines[0]
    assert "layer 2" in lines[0]
    header = next(line for line in lines if "labels changed" in line)
    assert "positive before → after" in header and "mean |change|" in header
    (meta,) = [m for m in list_label_sets(Path("c"), "sst2") if m["name"] == "knn-relabel@weak"]
    new = load_label_set(Path("c") / "labels" / "sst2" / meta["key"])
    weak = SimpleNamespace(ids=cached["ids"], soft=cached["soft"])
    changes = label_changes(new, LabelSet("weak", "sst2", weak.ids, weak.soft))
    train = changes["strong_train"]
    assert 0 < train["changed"] < train["n"]
    row = next(line for line in lines if "strong_train" in line)
    assert f"{train['changed']} ({train['changed_fraction']:.1%})" in row
    assert changes["test"]["changed"] == 0  # test labels pass through unchanged

    code, out, _ = run_cli(
        capsys, "relabel", "--probe", "knn", "--k", "10", "--layer", "2", "--json"
    )
    summary = json.loads(out)
    assert summary["changes"] == json.loads(json.dumps(changes))
    assert summary["parent"] == "weak" and summary["parent_key"]


def test_run_table_stays_aligned_with_long_stage_names(capsys):
    from w2sprobe.cli.params import Control
    from w2sprobe.cli.run import _show

    names = ["weak", "logreg-filter@knn-relabel@weak", "knn-filter@logreg-relabel@knn-relabel@weak"]
    stages = [
        SimpleNamespace(
            stage=name, status="ran", metrics={"auc": 0.93, "pgr": -0.5}, key="0" * 16, shard=1
        )
        for name in names
    ]
    results = [
        SimpleNamespace(dataset=d, seed=0, stages=stages, error=None)
        for d in ("ethics-utilitarianism", "sst2")
    ]
    _show(results, Control(), "1/3", min_gap=0.02)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    rows = [line for line in lines if line.split()[0] in names]
    assert len(rows) == 6 and all(name in " ".join(lines) for name in names)  # never cut
    assert "…" not in "".join(lines) and "│" not in "".join(lines)
    for column in ("0.9300", "-0.500", "0" * 16):  # each column starts at one place
        assert len({row.index(column) for row in rows}) == 1, column
    headers = [line for line in lines if line.startswith("stage")]
    assert len({h.index("test AUC") for h in headers}) == 1 and "shard" in headers[0]
