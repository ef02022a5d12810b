"""``--tracker mlflow|wandb``: built stages are logged (offline), cached ones are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import modules_imported_by, run_cli

from w2sprobe.tracking import flat_params, numeric_metrics

TINY = "n_train = 80\nn_val = 30\nn_test = 30\nepochs = 1\neval_every = 2\nwarmup_steps = 1\n"


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_models, shared_data):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w2sprobe.toml").write_text(
        f'weak_model = "{tiny_models["bert"]}"\nstrong_model = "{tiny_models["llama"]}"\n'
        f'data_dir = "{shared_data}"\ncache_dir = "c"\n{TINY}'
    )
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_flat_params_and_numeric_metrics():
    manifest = {"stage": "weak", "train": {"lr": 5e-4, "lora": {"r": 8}}, "layers": [1, 2]}
    assert flat_params(manifest) == {
        "stage": "weak",
        "train.lr": "0.0005",
        "train.lora.r": "8",
        "layers": "[1, 2]",
    }
    metrics = {"auc": 0.75, "n": 30, "pgr": float("nan"), "ok": True, "weak": {"auc": 0.6}}
    assert numeric_metrics(metrics) == {"auc": 0.75, "n": 30.0, "weak.auc": 0.6}


def test_mlflow_logs_each_built_stage_once(workspace, capsys):
    from mlflow.tracking import MlflowClient  # the dev extra installs it

    code, out, err = run_cli(capsys, "train", "weak", "--tracker", "mlflow", "--json")
    assert code == 0, err
    (run,) = json.loads(out)["runs"]
    store = (workspace / "c" / "mlruns").resolve().as_uri()
    client = MlflowClient(store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "w2sprobe"]
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "sst2/weak"
    assert logged.data.metrics["auc"] == pytest.approx(run["auc"])
    assert logged.data.params["stage"] == "weak" and logged.data.params["dataset"] == "sst2"
    # A rerun is a cache hit: nothing new is logged.
    code, _, err = run_cli(capsys, "train", "weak", "--tracker", "mlflow")
    assert code == 0, err
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_wandb_offline_logs_each_built_stage(workspace, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    code, out, err = run_cli(capsys, "train", "weak", "--tracker", "wandb", "--json")
    assert code == 0, err
    (run,) = json.loads(out)["runs"]
    import wandb

    wandb.teardown()  # what the CLI's exit does: the service flushes the offline run
    (record,) = (workspace / "c" / "wandb").glob("offline-run-*/run-*.wandb")
    data = record.read_bytes()  # protobuf records: names and JSON-encoded values in the clear
    assert b"sst2/weak" in data and json.dumps(run["auc"]).encode() in data


def test_tracker_without_its_package_names_the_extra(workspace, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    code, out, err = run_cli(capsys, "run", "--tracker", "wandb")
    assert code == 2 and out == ""
    assert err.strip() == (
        "error: --tracker wandb needs the wandb package: pip install 'w2sprobe[wandb]'"
    )
    assert not (workspace / "c").exists()


def test_unknown_tracker_is_refused(workspace, capsys):
    code, _, err = run_cli(capsys, "train", "weak", "--tracker", "tensorboard")
    assert code == 2 and "tensorboard" in err and len(err.strip().splitlines()) == 1
    assert not Path("c").exists()


@pytest.mark.slow  # a fresh interpreter, so imports are measured, not inherited
def test_no_tracker_imports_neither_library(workspace):
    command = ["run", "--experiments", "weak", "--plan", "--quiet"]
    assert modules_imported_by([command], ("mlflow", "wandb"), Path.cwd()) == []


def test_report_logs_its_figures_to_mlflow(tmp_path, monkeypatch, capsys):
    import shutil

    from mlflow.tracking import MlflowClient

    fixture = Path(__file__).parent / "fixtures" / "cache_v1"
    shutil.copytree(fixture, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, err = run_cli(capsys, "report", "--tracker", "mlflow", "--json")
    assert code == 0, err
    pngs = sorted(Path(f).name for f in json.loads(out)["all_files"] if f.endswith(".png"))
    assert pngs  # the old cache still draws figures
    client = MlflowClient((Path("cache") / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "w2sprobe"]
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "report"
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert set(pngs) <= artifacts
