"""The design card's commands, exactly as written, on an empty cache: they build what they need."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_model, run_cli

from w2sprobe.cache import ActivationStore, list_entries
from w2sprobe.labels import find_label_set, list_label_sets
from w2sprobe.probes import KnnProbe


@pytest.fixture
def empty(tmp_path, monkeypatch, tiny_models, shared_data):
    """An empty workspace whose w2sprobe.toml names tiny models.

    The option mechanism, not flags.
    """
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w2sprobe.toml").write_text(
        f'weak_model = "{tiny_models["bert"]}"\nstrong_model = "{tiny_models["llama"]}"\n'
        f'data_dir = "{shared_data}"\ncache_dir = "c"\nn_train = 120\nn_val = 30\nn_test = 40\n'
        "epochs = 1\neval_every = 3\nwarmup_steps = 2\n"
    )
    return tmp_path


def files_under(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_relabel_exactly_as_written_builds_weak_labels_and_activations(empty, capsys):
    code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "50", "--plan")
    assert code == 0, err
    planned = [line.split() for line in out.splitlines() if line.startswith("to run")]
    assert [row[3] for row in planned] == ["weak", "extract", "labels:knn-relabel@weak"]
    assert out.splitlines()[-1] == "3 of 3 stage(s) to run, 0 cached"
    assert files_under(empty / "c") == []  # a plan writes nothing

    code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "50")
    assert code == 0, err
    assert "building weak labels: train weak" in err and "building activations: extract" in err
    (meta,) = [m for m in list_label_sets(Path("c"), "sst2") if m["name"] == "knn-relabel@weak"]
    assert meta["key"] in out
    relabeled = find_label_set(Path("c"), "sst2", meta["key"])
    weak = find_label_set(Path("c"), "sst2", "weak")
    assert relabeled.manifest["parent"] == weak.key
    (entry,) = list_entries(Path("c"))
    with ActivationStore.open(entry.path) as store:
        layer = (max(store.layers) + 1) // 2  # all layers 0..L were cached: L = max
        mask, soft = weak.align("strong_train", store.ids("strong_train"))
        expected = KnnProbe(k=50).fit(store.get("strong_train", layer), soft).predict_fit_set()
    np.testing.assert_allclose(relabeled.soft["strong_train"], expected, rtol=1e-5, atol=1e-6)

    code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "50", "--json")
    assert code == 0 and json.loads(out)["key"] == meta["key"] and "building" not in err


def test_no_build_names_the_missing_node_and_writes_nothing(empty, capsys):
    code, out, err = run_cli(capsys, "relabel", "--probe", "knn", "--k", "50", "--no-build")
    assert code == 2 and out == ""
    assert err.startswith("error: weak labels: train weak ") and len(err.strip().splitlines()) == 1
    assert "is not built yet (--no-build); make it with: w2sprobe train weak --dataset sst2 " in err
    # The hint spells out what the config file sets: run anywhere, it makes the same weak run.
    hint = err.split("make it with: ", 1)[1]
    assert "--weak " in hint and "--n-train 120" in hint and "--epochs 1" in hint
    assert files_under(empty / "c") == []


def test_extract_layer_16_exactly_as_written(tmp_path, monkeypatch, capsys, shared_data):
    monkeypatch.chdir(tmp_path)
    model = build_tiny_model(tmp_path / "llama16", "llama", num_layers=16)
    (tmp_path / "w2sprobe.toml").write_text(
        f'strong_model = "{model}"\ndata_dir = "{shared_data}"\n'
        'cache_dir = "c"\nn_train = 40\nn_val = 10\nn_test = 20\n'
    )
    code, _, err = run_cli(capsys, "extract", "--layer", "16")
    assert code == 0, err
    (entry,) = list_entries(Path("c"))
    assert entry.layers == [16] and entry.complete
