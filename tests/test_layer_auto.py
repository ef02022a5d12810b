"""``--layer auto``: the probe layer chosen among the extracted layers by the weak-label
criterion on strong_train, against a brute-force loop over the layers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import test_probe_cli
from conftest import run_cli
from test_probe_auto import sklearn_cv_cross_entropy

from w2sprobe.cache import ActivationStore
from w2sprobe.labels import list_label_sets, load_label_set

#: The probe commands' workspace: tiny BERT layers 1..3, weak labels with 30% flips.
cached = test_probe_cli.cached


def _train(cached, layer):
    with ActivationStore.open(cached["path"]) as store:
        return np.asarray(store.get("strong_train", layer), dtype=np.float64)


def _loo_brier(x, y, k):
    distance = ((x[:, None, :] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(distance, np.inf)
    loo = [y[np.lexsort((np.arange(len(y)), row))[:k]].mean() for row in distance]
    return float(np.mean((np.array(loo) - y) ** 2))


def test_knn_layer_auto_equals_a_brute_force_loop_over_the_layers(capsys, cached):
    code, out, err = run_cli(capsys, "probe", "--k", "10", "--layer", "auto", "--json")
    assert code == 0, err
    summary = json.loads(out)
    y = cached["soft"]["strong_train"].astype(np.float64)
    brute = {layer: _loo_brier(_train(cached, layer), y, 10) for layer in (1, 2, 3)}
    choice = summary["layer_choice"]
    assert choice["scores"] == pytest.approx({str(k): v for k, v in brute.items()}, rel=1e-4)
    assert choice["value"] == min(brute, key=brute.get) == summary["layer"]
    assert "leave-one-out" in choice["criterion"] and choice["labels"] == "weak"
    metrics = json.loads((Path(summary["path"]) / "metrics.json").read_text())
    assert metrics["layer_choice"] == choice and metrics["probe"]["layer_from"] == "auto"
    # the same probe asked for that layer by number gives the same test AUC
    code, out, err = run_cli(
        capsys, "probe", "--k", "10", "--layer", str(choice["value"]), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["auc"] == pytest.approx(summary["auc"])
    code, out, err = run_cli(capsys, "probe", "--k", "10", "--layer", "auto")  # cached
    assert code == 0, err
    assert f"chosen: layer={choice['value']} (" in out and "layer 3: " in out


def test_logreg_layer_auto_equals_sklearn_cross_validation_per_layer(capsys, cached):
    code, out, err = run_cli(
        capsys, "probe", "--probe", "logreg", "--l2", "0.1", "--layer", "auto", "--json"
    )
    assert code == 0, err
    choice = json.loads(out)["layer_choice"]
    y = cached["soft"]["strong_train"].astype(np.float64)
    brute = {layer: sklearn_cv_cross_entropy(_train(cached, layer), y, 0.1) for layer in (1, 2, 3)}
    assert choice["scores"] == pytest.approx({str(k): v for k, v in brute.items()}, rel=1e-3)
    assert choice["value"] == min(brute, key=brute.get)


def test_a_probe_fit_at_an_auto_layer_loads_and_predicts_as_recorded(capsys, cached):
    from w2sprobe.probes import load_probe
    from w2sprobe.runs import load_run

    code, out, err = run_cli(capsys, "probe", "--probe", "logreg", "--layer", "auto", "--json")
    assert code == 0, err
    metrics = json.loads(out)
    saved = load_probe(metrics["probe_key"], cache_dir="c")  # layer_from is not a parameter
    assert saved.layer == metrics["layer_choice"]["value"]
    test = load_run(Path("c/runs/sst2") / metrics["key"]).predictions()["test"]
    with ActivationStore.open(cached["path"]) as store:
        np.testing.assert_array_equal(saved.predict(store.get("test", saved.layer)), test.soft)


def test_relabel_layer_auto_records_the_choice_in_the_label_set(capsys, cached):
    code, out, err = run_cli(capsys, "relabel", "--k", "10", "--layer", "auto", "--json")
    assert code == 0, err
    summary = json.loads(out)
    layer = summary["layer_choice"]["value"]
    assert summary["layer"] == layer
    (meta,) = [m for m in list_label_sets(Path("c"), "sst2") if m["key"] == summary["key"]]
    stored = load_label_set(Path("c") / "labels" / "sst2" / meta["key"])
    assert stored.manifest["layer_choice"] == summary["layer_choice"]
    code, out, err = run_cli(
        capsys, "relabel", "--k", "10", "--layer", str(layer), "--name", "by-number", "--json"
    )
    assert code == 0, err
    by_number = load_label_set(Path("c") / "labels" / "sst2" / json.loads(out)["key"])
    np.testing.assert_allclose(by_number.soft["strong_train"], stored.soft["strong_train"])


def test_layer_auto_refuses_a_filter_baseline(capsys, cached):
    code, _, err = run_cli(capsys, "filter", "--probe", "random", "--layer", "auto")
    assert code == 2 and "error: --layer auto needs a probe that predicts" in err


def test_layer_scores_are_listed_in_layer_order_not_string_order(capsys):
    from w2sprobe.cli.probe import _show_chosen

    scores = {str(layer): 0.5 + layer / 100 for layer in (0, 1, 10, 11, 2, 9)}
    json_order = dict(sorted(scores.items()))  # "0", "1", "10", "11", "2", "9"
    choice = {"param": "layer", "value": 0, "criterion": "c", "scores": json_order}
    _show_chosen({"layer_choice": choice}, False)
    out = capsys.readouterr().out.replace("\n", " ")
    listed = [int(part.split(":")[0]) for part in out.split("layer ")[1:]]
    assert listed == [0, 1, 2, 9, 10, 11]
