"""Fitted probes as cache entries: save -> load -> the same predictions, cache ls/rm/gc/verify,
and ``w2sprobe apply``: a probe fit on one dataset scored on another's test split."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, tiny_bert_workspace

from w2sprobe.atomic import host_name
from w2sprobe.cache import ActivationStore, list_entries
from w2sprobe.errors import UsageError
from w2sprobe.labels import LabelSet, labels_root, load_label_set, save_label_set
from w2sprobe.probes import load_probe
from w2sprobe.runs import load_run

run = run_cli
LAYER = "2"
SKLEARN = "sklearn:sklearn.linear_model.LogisticRegression"

#: (probe flags) of every built-in probe that predicts, and a scikit-learn estimator.
PROBES = {
    "knn": ["--probe", "knn", "--k", "10"],
    "knn-auto": ["--probe", "knn", "--k", "auto"],
    "logreg": ["--probe", "logreg"],
    "logreg-std": ["--probe", "logreg", "--standardize"],
    "massmean": ["--probe", "massmean"],
    "mlp": ["--probe", "mlp", "--mlp-hidden", "8"],
    "topo": ["--probe", "topo", "--k-cc", "10", "--k-zeta", "10"],
    "sklearn": ["--probe", SKLEARN, "--probe-param", "C=0.5"],
    "class": ["--probe", "plugin_probes:CentroidProbe", "--probe-param", "scale=2.0"],
}


@pytest.fixture
def cached(tmp_path, monkeypatch, shared_data, tiny_models, capsys):
    """The tiny BERT's layer 2 on sst2 (with a noisy 'weak' label set) and on cola."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(shared_data))
    return {**tiny_bert_workspace(capsys, tmp_path, tiny_models, LAYER), "tmp": tmp_path}


def fit(capsys, *flags: str) -> dict:
    """``w2sprobe probe ... --json`` on layer 2: the run's metrics."""
    code, out, err = run(capsys, "probe", *flags, "--layer", LAYER, "--json")
    assert code == 0, err
    return load_run(Path(json.loads(out)["path"])).metrics


def test_run_names_its_saved_probe_and_it_predicts_the_same(capsys, cached):
    for flags in PROBES.values():
        metrics = fit(capsys, *flags)
        folder = Path("c/runs/sst2") / metrics["key"]
        saved = load_probe(metrics["probe_key"], cache_dir="c")
        assert json.loads((folder / "manifest.json").read_text())["probe_key"] == saved.key
        test = load_run(folder).predictions()["test"]
        with ActivationStore.open(cached["path"]) as store:
            assert store.ids("test").tolist() == test.ids.tolist()
            scores = saved.predict(store.get("test", int(LAYER)))
        # predictions.csv holds the fitted probe's float32 scores exactly
        np.testing.assert_array_equal(scores, test.soft, err_msg=" ".join(flags))
        assert saved.layer == int(LAYER) and saved.dataset == "sst2"


def test_each_kind_is_stored_as_it_should_be(capsys, cached):
    stored = {}
    for name, flags in PROBES.items():
        saved = load_probe(fit(capsys, *flags)["probe_key"], cache_dir="c")
        with np.load(saved.folder / "params.npz", allow_pickle=False) as npz:
            stored[name] = (saved.meta["storage"], sorted(npz.files))
    weights = {"check_scores"}
    assert stored["logreg"] == ("parameters", sorted(weights | {"coef", "intercept"}))
    assert set(stored["logreg-std"][1]) == weights | {"coef", "intercept", "shift", "scale"}
    assert set(stored["massmean"][1]) == weights | {"direction", "midpoint", "bias"}
    assert set(stored["mlp"][1]) == weights | {"w1", "b1", "w2", "b2", "shift", "scale"}
    for name in ("knn", "knn-auto", "topo", "sklearn", "class"):  # refit from the references
        assert stored[name] == ("refit", ["check_scores", "train_labels", "train_rows"]), name


def test_direction_is_the_fitted_one(capsys, cached):
    """mass-mean: mu+ - mu- of the label-weighted train rows, by hand; logreg: its weights."""
    saved = load_probe(fit(capsys, *PROBES["massmean"])["probe_key"], cache_dir="c")
    weak = np.array(
        [
            float(line.split(",")[2])
            for line in Path(next(Path("c/labels/sst2").glob("*/labels.csv")))
            .read_text()
            .splitlines()[1:]
            if line.startswith("strong_train,")
        ],
        dtype=np.float32,  # the labels the probe was fit on
    ).astype(np.float64)
    with ActivationStore.open(cached["path"]) as store:
        x = store.get("strong_train", int(LAYER)).astype(np.float64)
    expected = (weak @ x) / weak.sum() - ((1 - weak) @ x) / (1 - weak).sum()
    np.testing.assert_allclose(saved.direction, expected, rtol=1e-9)
    logreg = load_probe(fit(capsys, *PROBES["logreg"])["probe_key"], cache_dir="c")
    with ActivationStore.open(cached["path"]) as store:
        x = store.get("test", int(LAYER)).astype(np.float64)
    logits = x @ logreg.direction + float(logreg.probe.intercept_)
    np.testing.assert_allclose(logreg.predict(x), 1 / (1 + np.exp(-logits)), atol=1e-5)
    assert load_probe(fit(capsys, *PROBES["knn"])["probe_key"], cache_dir="c").direction is None


def test_a_removed_probe_is_fit_again_with_its_run(capsys, cached):
    first = fit(capsys, *PROBES["logreg"])
    code, _, err = run(capsys, "cache", "rm", first["probe_key"])
    assert code == 0, err
    again = fit(capsys, *PROBES["logreg"])
    assert again["key"] == first["key"] and again["probe_key"] == first["probe_key"]
    assert load_probe(again["probe_key"], cache_dir="c").key == first["probe_key"]


def test_cache_ls_rm_gc_verify_know_probes(capsys, cached):
    key = fit(capsys, *PROBES["logreg"])["probe_key"]
    code, out, err = run(capsys, "cache", "ls", "probes", "--json")
    assert code == 0, err
    (entry,) = json.loads(out)["entries"]
    assert (entry["kind"], entry["key"], entry["name"]) == ("probes", key, "logreg")
    assert entry["storage"] == "parameters" and entry["made_from"]["layer"] == int(LAYER)
    assert entry["made_from"]["activations"] == cached["path"].stem  # linked to its file
    code, out, _ = run(capsys, "cache", "ls", "probes")
    assert key in out and "fitted probes (1" in out
    code, out, err = run(capsys, "cache", "verify")
    assert code == 0 and f"ok  probes {Path('c').absolute() / 'probes/sst2' / key}" in out, err
    # a staging folder of a writer that is gone: gc's, never a probe
    stale = Path("c/probes/sst2") / f".probes-{key}.staging-{host_name()}-999999999"
    stale.mkdir()
    code, out, err = run(capsys, "cache", "gc", "--json")
    assert code == 0, err
    assert [Path(i["path"]).name for i in json.loads(out)["items"]] == [stale.name]
    assert not stale.exists() and (Path("c/probes/sst2") / key / "probe.json").is_file()
    code, out, err = run(capsys, "cache", "rm", key)
    assert code == 0 and f"removed probes {key}" in out, err
    assert not (Path("c/probes/sst2") / key).exists()
    code, out, _ = run(capsys, "cache", "ls", "probes")
    assert "no fitted probes" in out


def test_a_damaged_probe_is_refused_in_one_line(capsys, cached):
    key = fit(capsys, *PROBES["massmean"])["probe_key"]
    params = Path("c/probes/sst2") / key / "params.npz"
    params.write_bytes(params.read_bytes()[:-7])
    with pytest.raises(UsageError, match=f"probe {key} is damaged: .*cache rm {key}"):
        load_probe(key, cache_dir="c")
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1 and "BAD  probes" in out and f"fix: w2sprobe cache rm {key}" in out
    code, _, err = run(capsys, "apply", key, "--dataset", "cola")
    assert code == 2 and err.startswith("error: probe") and f"cache rm {key}" in err
    assert len(err.strip().splitlines()) == 1 and not Path("c/runs/cola").exists()


def test_unknown_key_and_wrong_width_are_refused(capsys, cached):
    with pytest.raises(UsageError, match="no fitted probe .* has key 'deadbeef'"):
        load_probe("deadbeef", cache_dir="c")
    saved = load_probe(fit(capsys, *PROBES["logreg"])["probe_key"], cache_dir="c")
    with pytest.raises(UsageError, match="16-wide activations .* got shape \\(3, 17\\)"):
        saved.predict(np.zeros((3, 17), dtype=np.float32))
    code, _, err = run(capsys, "apply", "deadbeef", "--dataset", "cola")
    assert code == 2 and "no fitted probe" in err and not Path("c/runs/cola").exists()


def test_apply_scores_a_probe_on_another_dataset_and_the_report_shows_it(capsys, cached):
    from sklearn.metrics import roc_auc_score

    from w2sprobe.report.stats import id_set_seed

    key = fit(capsys, *PROBES["logreg"])["probe_key"]
    # cola has no activations yet: one line with the command that makes them, nothing written
    code, _, err = run(capsys, "apply", key, "--dataset", "cola")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert not Path("c/runs/cola").exists() and not list(Path("c/acts").glob("*/cola"))
    command = err.split("make them with: ")[1].strip()
    assert command.startswith("w2sprobe extract ") and "--dataset cola" in command
    assert "--layers 2" in command
    code, _, err = run(capsys, *shlex.split(command)[1:])  # run as printed
    assert code == 0, err
    code, out, err = run(capsys, "apply", key, "--dataset", "cola", "--n-boot", "200", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["fit_dataset"], summary["dataset"], summary["layer"]) == ("sst2", "cola", 2)
    cola = next(e.path for e in list_entries(Path("c")) if e.dataset == "cola")
    with ActivationStore.open(cola) as store:
        ids, truth = store.ids("test"), store.labels("test")
        scores = load_probe(key, cache_dir="c").predict(store.get("test", int(LAYER)))
    assert summary["auc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    # its CI: the report's bootstrap, here as a plain loop over resampled rows
    order = np.argsort(ids)
    rng = np.random.default_rng(id_set_seed(ids[order].tolist(), 0))
    draws = rng.integers(0, len(ids), size=(200, len(ids)))
    boot = [roc_auc_score(truth[order][d], scores[order][d]) for d in draws]
    assert summary["auc_ci"] == pytest.approx(list(np.percentile(boot, [2.5, 97.5])), abs=1e-9)
    ci = summary["auc_ci"]
    # the plain line says the same (the transfer run is cached now)
    code, out, err = run(capsys, "apply", key, "--dataset", "cola", "--n-boot", "200")
    assert code == 0, err
    assert f"on cola test: AUC {summary['auc']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]" in out
    assert f"probe {key} (logreg, layer 2, fit on sst2)" in out and summary["path"] in out
    run_folder = Path(summary["path"])
    assert run_folder.parent == Path("c/runs/cola").absolute() or run_folder.parts[-3:-1] == (
        "runs",
        "cola",
    )
    metrics = json.loads((run_folder / "metrics.json").read_text())
    assert (metrics["stage"], metrics["probe_key"]) == ("transfer", key)
    code, out, err = run(capsys, "cache", "verify")
    assert code == 0, out
    # the report: a transfer table (fit dataset x scored dataset, AUC [CI]) in md and html
    for fmt in ("md", "html"):
        code, out, err = run(capsys, "report", "--format", fmt, "--n-boot", "200", "--json")
        assert code == 0, err
        files = json.loads(out)["files"]
        text = Path(files[fmt] if fmt in files else next(iter(files.values()))).read_text()
        ci = summary["auc_ci"]
        cell = f"{summary['auc']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"
        assert "Probe transfer" in text and "Transfer of logreg probes, layer 2" in text, fmt
        assert cell in text and "fit on / scored on" in text, fmt
    # removing the probe keeps the transfer run made from it, and says so
    code, out, err = run(capsys, "cache", "rm", key)
    assert code == 0 and f"kept 1 artifact(s) made from it: runs {metrics['key']}" in out, err


def test_a_refit_that_is_not_reproducible_is_refused(capsys, cached):
    """A random forest without random_state fits other trees each time: refused on load; with
    one, it loads and predicts as it did."""
    forest = ["--probe", "sklearn:sklearn.ensemble.RandomForestClassifier"]
    key = fit(capsys, *forest, "--probe-param", "n_estimators=5")["probe_key"]
    with pytest.raises(UsageError, match=f"probe {key} refit does not reproduce .*random_state"):
        load_probe(key, cache_dir="c")
    seeded = fit(
        capsys, *forest, "--probe-param", "n_estimators=5", "--probe-param", "random_state=0"
    )
    test = load_run(Path("c/runs/sst2") / seeded["key"]).predictions()["test"]
    with ActivationStore.open(cached["path"]) as store:
        scores = load_probe(seeded["probe_key"], cache_dir="c").predict(store.get("test", 2))
    np.testing.assert_array_equal(scores, test.soft)


def test_a_plugin_class_changed_since_the_fit_is_refused(capsys, cached):
    key = fit(capsys, *PROBES["class"])["probe_key"]
    meta_file = Path("c/probes/sst2") / key / "probe.json"
    meta = json.loads(meta_file.read_text())
    meta["probe"]["source_sha256"] = "0" * 16  # as if the class's file was edited since
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="fit with another .*differs in source_sha256"):
        load_probe(key, cache_dir="c")


def test_transfer_to_activations_of_another_width_is_refused(capsys, cached, tmp_path):
    """The library's own check (the CLI always reads the probe's model): nothing is written."""
    from types import SimpleNamespace

    from w2sprobe.probes.transfer import transfer_run

    saved = load_probe(fit(capsys, *PROBES["logreg"])["probe_key"], cache_dir="c")
    wide = np.zeros((5, saved.hidden_size + 1), dtype=np.float16)
    store = SimpleNamespace(
        layers=[saved.layer],
        manifest={"dataset": "cola"},
        path=Path("x.h5"),
        get=lambda split, layer, rows=None: wide,
    )
    with pytest.raises(UsageError, match="is 17 wide; probe .* was fit on 16-wide ones"):
        transfer_run(Path("c"), saved, store, n_boot=10, seed=0)
    assert not Path("c/runs/cola").exists()
    code, out, err = run(capsys, "probe", *PROBES["logreg"], "--layer", LAYER)
    assert code == 0 and saved.key in out, err  # the probe command names its saved probe


# --------------------------------------------------------------------------- filter, relabel


def derive(capsys, command: str, *flags: str) -> tuple[dict, LabelSet]:
    """``w2sprobe filter|relabel ... --json`` on layer 2: its summary and the set it wrote."""
    code, out, err = run(capsys, command, *flags, "--layer", LAYER, "--json")
    assert code == 0, err
    summary = json.loads(out)
    return summary, load_label_set(labels_root(Path("c"), "sst2") / summary["key"])


def val_of(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with ActivationStore.open(path) as store:
        return store.ids("val"), np.asarray(store.get("val", int(LAYER)))


def test_relabel_names_its_probe_and_it_predicts_the_new_val_labels(capsys, cached):
    ids, acts = val_of(cached["path"])
    for probe in ("knn", "logreg"):
        summary, labels = derive(capsys, "relabel", *PROBES[probe])
        key = labels.manifest["probe_key"]
        assert summary["probe_key"] == key, probe
        saved = load_probe(key, cache_dir="c")
        assert saved.name == probe and saved.meta["labels"]["name"] == "weak"
        assert saved.meta["storage"] == ("refit" if probe == "knn" else "parameters")
        mask, soft = labels.align("val", ids)
        assert mask.all()  # relabel labels every val row: the probe's prediction
        np.testing.assert_array_equal(saved.predict(acts), soft, err_msg=probe)
    # the same probe on the same labels as a probe run: one entry, shared
    assert fit(capsys, *PROBES["logreg"])["probe_key"] == key
    assert len(list(Path("c/probes/sst2").iterdir())) == 2
    # removing the probe keeps the set made with it, and says so
    code, out, err = run(capsys, "cache", "rm", key)
    assert code == 0 and f"kept 1 artifact(s) made from it: labels {labels.key}" in out, err


def test_filter_names_its_probe_and_its_val_scores_are_the_filters(capsys, cached):
    ids, acts = val_of(cached["path"])
    weak = load_label_set(next(p for p in Path("c/labels/sst2").iterdir() if _named(p, "weak")))
    _, weak_val = weak.align("val", ids)
    keys = []
    for probe in ("logreg", "knn"):
        summary, labels = derive(capsys, "filter", *PROBES[probe], "--contamination", "0.2")
        key = labels.manifest["probe_key"]
        assert (
            summary["probe_key"] == key and (Path("c/probes/sst2") / key / "probe.json").is_file()
        )
        saved = load_probe(key, cache_dir="c")
        # val is filtered by |weak label - prediction| of this probe: the top round(0.2 n) go
        disagreement = np.abs(weak_val - saved.predict(acts))
        dropped = np.argsort(-disagreement, kind="stable")[: round(0.2 * len(ids))]
        kept = sorted(np.delete(ids, dropped).tolist())
        assert sorted(labels.ids["val"].tolist()) == kept, probe
        keys.append(key)
    code, out, err = run(
        capsys, "filter", *PROBES["knn"], "--contamination", "0.2", "--layer", LAYER
    )
    assert code == 0 and f"probe_key {keys[-1]}" in out, err  # the text output names it too
    # TopoFilter filters val on its own graph: it judged by no probe, it saves none
    summary, labels = derive(capsys, "filter", *PROBES["topo"], "--contamination", "0.2")
    assert summary["probe_key"] is None and "probe_key" not in labels.manifest
    assert sorted(p.name for p in Path("c/probes/sst2").iterdir()) == sorted(keys)


def _named(folder: Path, name: str) -> bool:
    return json.loads((folder / "manifest.json").read_text()).get("name") == name


def test_a_set_without_probe_key_stays_a_hit_and_one_whose_probe_went_is_made_again(capsys, cached):
    summary, labels = derive(capsys, "relabel", *PROBES["logreg"])
    key = summary["probe_key"]
    # a set made before probes were saved: the same set, no probe_key, and no probe entry
    old = LabelSet(
        labels.name,
        labels.dataset,
        labels.ids,
        labels.soft,
        {k: v for k, v in labels.manifest.items() if k != "probe_key"},
    )
    save_label_set(old, Path("c"))
    code, _, err = run(capsys, "cache", "rm", labels.key, key)
    assert code == 0, err
    again, _ = derive(capsys, "relabel", *PROBES["logreg"])
    assert again["key"] == old.key and again["probe_key"] is None  # a hit: nothing refit
    assert not Path("c/probes/sst2").exists() or not any(Path("c/probes/sst2").iterdir())
    # a set whose saved probe was removed since: derived again, which saves the probe again
    code, _, err = run(capsys, "cache", "rm", old.key)
    assert code == 0, err
    first, _ = derive(capsys, "relabel", *PROBES["logreg"])
    code, _, err = run(capsys, "cache", "rm", key)
    assert code == 0, err
    second, _ = derive(capsys, "relabel", *PROBES["logreg"])
    assert (second["key"], second["probe_key"]) == (first["key"], key)
    assert load_probe(key, cache_dir="c").key == key
