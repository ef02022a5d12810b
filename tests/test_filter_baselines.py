"""Filter baselines: random (seeded uniform removal) and oracle (uses ground truth)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import test_hints
import test_probe_cli
from conftest import run_cli

from w2sprobe.probes.baselines import OracleFilter, RandomFilter
from w2sprobe.report.figures import _filter_series
from w2sprobe.vocabulary import parse_experiment

#: The probe commands' workspace (tiny BERT layers, weak labels with 30% flips) and the
#: empty head workspace of the hint tests.
cached = test_probe_cli.cached
flags = test_hints.flags


def test_random_filter_removes_exactly_the_fraction_uniformly_and_is_seeded():
    acts, labels = np.zeros((50, 2)), np.full(50, 0.5)
    first = RandomFilter(seed=1).filter(acts, labels, 0.2)
    assert first.removed == 10 and first.keep.sum() == 40
    np.testing.assert_array_equal(RandomFilter(seed=1).filter(acts, labels, 0.2).keep, first.keep)
    assert not np.array_equal(RandomFilter(seed=2).filter(acts, labels, 0.2).keep, first.keep)
    removed = np.mean(
        [~RandomFilter(seed=s).filter(acts, labels, 0.2).keep for s in range(2000)], 0
    )
    assert np.abs(removed - 0.2).max() < 0.04  # every row is removed with probability 0.2


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.2, 0.3])
def test_oracle_drops_the_labels_furthest_from_truth(contamination):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200).astype(np.float32)
    flipped = rng.random(200) < 0.3
    soft = np.where(flipped, 1 - truth, truth) * 0.8 + 0.1 + rng.uniform(-0.05, 0.05, 200)
    result = OracleFilter().filter(np.zeros((200, 3)), soft, contamination, truth=truth)
    count = round(200 * contamination)
    brute = np.argsort(-np.abs(soft - truth), kind="stable")[:count]  # brute force
    assert sorted(np.flatnonzero(~result.keep)) == sorted(brute)
    wrong = (soft > 0.5) != (truth > 0.5)
    precision = wrong[~result.keep].mean()
    if contamination <= wrong.mean():
        assert precision == 1.0
    else:
        assert precision == pytest.approx(wrong.sum() / count)


def test_filter_baselines_through_the_command(capsys, cached):
    code, out, err = run_cli(capsys, "filter", "--probe", "oracle", "--contamination", "0.1")
    assert code == 0, err
    assert "oracle uses ground truth" in out
    code, out, err = run_cli(
        capsys, "filter", "--probe", "oracle", "--contamination", "0.1", "--json"
    )
    summary = json.loads(out)
    assert summary["uses_ground_truth"] is True
    for split in ("strong_train", "val"):
        assert summary["report"][split]["precision"] == 1.0  # 10% <= the 30% mislabel rate
    assert "uses ground truth" in summary["report"]["val"]["scored_by"]
    code, out, err = run_cli(
        capsys, "filter", "--probe", "random", "--contamination", "0.1", "--json"
    )
    assert code == 0, err
    report = json.loads(out)["report"]["strong_train"]
    assert report["removed"] == round(report["before"] * 0.1) and report["precision"] < 1.0
    code, out, err = run_cli(capsys, "probe", "--probe", "oracle")
    assert code == 2 and err.startswith("error: 'oracle' is a filter baseline")


def test_baselines_are_experiments_of_run_and_marked_in_the_report(capsys, flags):
    assert parse_experiment("oracle-filter").probe == "oracle"
    code, out, err = run_cli(
        capsys, "run", "--experiments", "random-filter,oracle-filter", "--json", *flags
    )
    assert code == 0, err
    stages = {s["stage"] for s in json.loads(out)["datasets"][0]["stages"]}
    assert {"random-filter", "oracle-filter"} <= stages
    row = {"probe": "oracle", "uses_ground_truth": True, "contamination": 0.1}
    assert _filter_series(row, False) == "oracle (uses ground truth)"
