"""Plug-in probes: a user's class (tests/plugin_probes.py), any scikit-learn estimator and entry
points, through probe, filter, relabel, sweep, run, report and cache ls; and bad input."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import test_hints
import test_probe_cli
from conftest import REPO, run_cli
from plugin_probes import CentroidProbe
from sklearn.svm import LinearSVC

from w2sprobe.cache import ActivationStore
from w2sprobe.labels import find_label_set
from w2sprobe.metrics import roc_auc

#: The workspace of the probe commands' tests: tiny BERT layers and noisy weak labels.
cached = test_probe_cli.cached
#: Non-default tiny models, sizes and head stages on the command line, from an empty cache.
flags = test_hints.flags

USER = "plugin_probes:CentroidProbe"
SVC = "sklearn:sklearn.svm.LinearSVC"


def _train(cached, layer: int = 2):
    """strong_train activations and the weak soft labels, aligned (the probes' inputs)."""
    with ActivationStore.open(cached["path"]) as store:
        acts = np.asarray(store.get("strong_train", layer), dtype=np.float32)
        test = np.asarray(store.get("test", layer), dtype=np.float32)
        val = np.asarray(store.get("val", layer), dtype=np.float32)
    return acts, cached["soft"]["strong_train"], val, test


def _test_predictions(folder: Path) -> np.ndarray:
    with (folder / "predictions.csv").open() as fh:
        return np.array([float(r["soft_pred"]) for r in csv.DictReader(fh) if r["split"] == "test"])


def test_a_user_class_is_a_probe_with_typed_params_in_its_key(capsys, cached):
    code, out, err = run_cli(
        capsys, "probe", "--probe", USER, "--probe-param", "scale=2", "--layer", "2", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    acts, soft, _, test = _train(cached)
    expected = CentroidProbe(scale=2.0).fit(acts, soft).predict(test)
    np.testing.assert_allclose(_test_predictions(Path(summary["path"])), expected, rtol=1e-5)
    metrics = json.loads((Path(summary["path"]) / "metrics.json").read_text())
    assert metrics["probe"]["probe"] == USER and metrics["probe"]["plugin"] == USER
    assert metrics["probe"]["params"] == {"scale": 2.0}  # typed from the signature: a float
    assert metrics["probe"]["source_sha256"]  # a module of no distribution: its source's hash
    assert metrics["auc"] == pytest.approx(roc_auc(cached["truth"]["test"], expected))
    # another parameter is another result
    code, out, err = run_cli(
        capsys, "probe", "--probe", USER, "--probe-param", "center=false", "--layer", "2", "--json"
    )
    assert code == 0, err and json.loads(out)["key"] != summary["key"]


def test_sklearn_estimator_with_soft_labels_by_duplicated_rows(capsys, cached):
    code, out, err = run_cli(
        capsys, "probe", "--probe", SVC, "--probe-param", "C=0.1", "--layer", "2", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["soft_labels"] == "duplicate" and summary["distribution"] == "scikit-learn"
    assert summary["scores"] == "sigmoid(decision_function)"
    acts, soft, _, test = _train(cached)
    # The rule by hand: each row as (x, 1) weight y and (x, 0) weight 1 - y.
    x = np.concatenate([acts, acts])
    y = np.r_[np.ones(len(acts)), np.zeros(len(acts))]
    reference = LinearSVC(C=0.1).fit(x, y, sample_weight=np.r_[soft, 1 - soft])
    expected = 1 / (1 + np.exp(-reference.decision_function(test)))
    np.testing.assert_allclose(_test_predictions(Path(summary["path"])), expected, rtol=1e-4)


def test_plugins_filter_relabel_and_sweep(capsys, cached):
    code, out, err = run_cli(
        capsys, "filter", "--probe", SVC, "--contamination", "0.2", "--layer", "2", "--json"
    )
    assert code == 0, err
    filtered = json.loads(out)
    assert filtered["label_set"] == f"{SVC}-filter@weak"
    assert filtered["report"]["strong_train"]["removed"] == round(150 * 0.2)

    code, out, err = run_cli(capsys, "relabel", "--probe", USER, "--layer", "2", "--json")
    assert code == 0, err
    relabeled = find_label_set(Path("c"), "sst2", json.loads(out)["key"])
    acts, soft, val, _ = _train(cached)
    probe = CentroidProbe().fit(acts, soft)
    np.testing.assert_allclose(relabeled.soft["strong_train"], probe.predict(acts), rtol=1e-5)
    np.testing.assert_allclose(relabeled.soft["val"], probe.predict(val), rtol=1e-5)
    assert relabeled.manifest["probe"]["plugin"] == USER

    code, out, err = run_cli(capsys, "sweep", "--probe", USER, "--layers", "1,3", "--json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [r["layer"] for r in rows] == [1, 3] and all(r["probe"] == USER for r in rows)


def test_probe_params_table_of_the_config_file(capsys, cached):
    with open("w2sprobe.toml", "a") as fh:
        fh.write("\n[probe_params]\nscale = 3\n")
    code, out, err = run_cli(capsys, "probe", "--probe", USER, "--layer", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["params"] == {"scale": 3.0}


def test_entry_point_registers_a_probe_by_name(capsys, cached, tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "myprobes-1.2.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myprobes\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text(f"[w2sprobe.probes]\ncentroid = {USER}\n")
    monkeypatch.syspath_prepend(str(site))
    code, out, err = run_cli(capsys, "probe", "--probe", "centroid", "--layer", "2", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["probe"] == "centroid" and summary["plugin"] == USER
    code, out, err = run_cli(capsys, "relabel", "--probe", "centroid", "--layer", "2", "--json")
    assert code == 0 and json.loads(out)["label_set"] == "centroid-relabel@weak", err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--probe", "nosuchmodule:Probe"], "cannot import module nosuchmodule"),
        (["--probe", "plugin_probes:Missing"], "module plugin_probes has no Missing"),
        (["--probe", "plugin_probes:NoPredict"], "lacks predict"),
        (["--probe", USER, "--probe-param", "alpha=1"], "takes no parameter 'alpha'"),
        (["--probe", USER, "--probe-param", "scale=big"], "parameter scale: expected a number"),
        (["--probe", USER, "--probe-param", "scale"], "must be name=value"),
        (["--probe", "plugin_probes:FailsOnData"], "failed to fit on the data: ValueError"),
        (["--probe", "plugin_probes:OutOfRange"], "soft labels in [0, 1]"),
        (["--probe", SVC, "--probe-param", "C=-1"], "failed to fit on the data"),
        (["--probe", "knn", "--probe-param", "k=3"], "--probe-param is for plug-in probes"),
        (["--probe", "svm"], "unknown probe 'svm'"),
    ],
)
def test_bad_plugin_input_is_one_error_line_and_writes_nothing(capsys, cached, args, message):
    before = sorted(str(p) for p in Path("c").rglob("*"))
    code, out, err = run_cli(capsys, "probe", "--layer", "2", "--quiet", *args)
    err = "".join(line for line in err.splitlines(True) if not line.startswith("warning: "))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert sorted(str(p) for p in Path("c").rglob("*")) == before


def test_plugin_module_is_found_in_the_working_folder(capsys, cached):
    """As ``python -m`` does: a console script's sys.path has no working folder of its own."""
    Path("localprobe.py").write_text(
        "from plugin_probes import CentroidProbe\n\nclass Local(CentroidProbe):\n    pass\n"
    )
    code, out, err = run_cli(capsys, "probe", "--probe", "localprobe:Local", "--layer", "2")
    assert code == 0, err


def test_readme_probe_runs_as_written(capsys, cached):
    section = (REPO / "README.md").read_text().split("\n## Write your own probe\n", 1)[1]
    Path("myprobe.py").write_text(section.split("```python\n", 1)[1].split("```", 1)[0])
    commands = section.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    probe_line, relabel_line = (shlex.split(line, comments=True) for line in commands[:2])
    code, out, err = run_cli(capsys, *probe_line[1:], "--json")
    assert code == 0, err
    summary = json.loads(out)
    import myprobe  # the README's module, as the command imported it

    acts, soft, val, test = _train(cached)
    expected = myprobe.CosineProbe(temperature=0.05).fit(acts, soft).predict(test)
    np.testing.assert_allclose(_test_predictions(Path(summary["path"])), expected, rtol=1e-4)
    assert summary["params"] == {"temperature": 0.05}
    code, out, err = run_cli(capsys, *relabel_line[1:], "--json")
    assert code == 0 and json.loads(out)["label_set"] == "myprobe:CosineProbe-relabel@weak", err


def test_plugins_in_run_report_and_cache_ls(capsys, flags):
    experiments = f"{SVC}-relabel,{USER}-probe"
    code, out, err = run_cli(capsys, "run", "--experiments", experiments, "--json", *flags)
    assert code == 0, err
    (result,) = json.loads(out)["datasets"]
    stages = {s["stage"]: s for s in result["stages"]}
    assert {f"{SVC}-relabel", f"{USER}-probe"} <= set(stages), stages
    code, out, err = run_cli(capsys, "report", "--format", "json", "--cache-dir", "c", "--json")
    assert code == 0, err
    assert f"{SVC}-relabel" in out and f"{USER}-probe" in out
    code, out, err = run_cli(capsys, "cache", "ls", "labels", "--cache-dir", "c")
    assert code == 0 and f"{SVC}-relabel@weak" in out, err
