"""A probe on cached activations runs without torch: the kNN search through faiss (kNN and
TopoFilter), the logistic and mass-mean probes in numpy on the CPU, the device chosen without
asking torch where no GPU can be, and the stages planned from torch-free recipes.  Importing
torch is most of a short probe command's start (issue 30's target: under 3 s from process start
to printed result)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli, tiny_bert_workspace

from w2sprobe.cache import ActivationStore
from w2sprobe.errors import UsageError
from w2sprobe.metrics import roc_auc
from w2sprobe.models import devices
from w2sprobe.models.devices import device_name, dtype_name, set_cpu_threads
from w2sprobe.probes import KnnProbe, LogisticProbe, MassMeanProbe, TopoFilterProbe
from w2sprobe.probes.logistic import lbfgs_fit, objective_and_gradient

#: Runs ``python -m w2sprobe ARGS`` with torch unimportable: any ``import torch`` fails.
NO_TORCH = (
    "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['w2sprobe', *sys.argv[1:]]; "
    "runpy.run_module('w2sprobe', run_name='__main__')"
)


@pytest.fixture
def workspace(tmp_path, monkeypatch, shared_data, tiny_models, capsys):
    """The tiny BERT's layer 2 on sst2, cached, and a noisy stored 'weak' label set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(shared_data))
    made = tiny_bert_workspace(capsys, tmp_path, tiny_models, "2", settings="layer = 2\n")
    with ActivationStore.open(made["path"]) as store:
        acts = {s: np.asarray(store.get(s, 2)) for s in ("strong_train", "test")}
    return {"acts": acts, "soft": made["soft"], "truth": made["truth"], "dir": tmp_path}


def _probe_without_torch(folder: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, "probe", *args, "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "args, probe",
    [
        (("--probe", "knn", "--k", "10"), lambda: KnnProbe(k=10)),
        (("--probe", "logreg", "--l2", "0.01"), lambda: LogisticProbe(l2=0.01)),
        (
            ("--probe", "topo", "--k-cc", "8", "--k-zeta", "10"),
            lambda: TopoFilterProbe(k_cc=8, k_zeta=10),
        ),
        (("--probe", "massmean"), MassMeanProbe),
    ],
    ids=["knn", "logreg", "topo", "massmean"],
)
def test_cached_probe_command_never_imports_torch(workspace, args, probe):
    """With ``import torch`` made to fail, the command still fits, scores and saves the probe,
    and its test AUC is the one the probe API gives on the same rows and labels."""
    summary = _probe_without_torch(workspace["dir"], *args)
    fitted = probe().fit(workspace["acts"]["strong_train"], workspace["soft"]["strong_train"])
    expected = roc_auc(workspace["truth"]["test"], fitted.predict(workspace["acts"]["test"]))
    assert summary["auc"] == pytest.approx(expected, abs=1e-6)
    assert summary["probe_key"]


def test_probe_on_a_cached_weak_run_never_imports_torch(
    tmp_path, monkeypatch, shared_data, tiny_models, capsys
):
    """The usual case: the weak labels come from a cached weak *run* (its stage is planned from
    the torch-free recipes, and found cached), and PGR says what it needs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w2sprobe.toml").write_text(
        f'weak_model = "{tiny_models["bert"]}"\nstrong_model = "{tiny_models["bert"]}"\n'
        f'data_dir = "{shared_data}"\ncache_dir = "c"\nlayer = 2\n'
        "n_train = 120\nn_val = 30\nn_test = 40\nepochs = 1\nwarmup_steps = 1\n"
    )
    assert run_cli(capsys, "train", "weak")[0] == 0
    assert run_cli(capsys, "extract", "--layers", "2")[0] == 0
    summary = _probe_without_torch(tmp_path, "--probe", "knn", "--k", "5")
    assert summary["labels"] == "weak" and summary["pgr"] is None
    assert "ceiling" in summary["pgr_needs"]


def test_numpy_objective_and_gradient_equal_torch_autograd():
    """The hand-worked gradient (numpy, and the same code on torch tensors) against autograd
    of torch's own binary cross-entropy with logits."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((50, 7)), rng.random(50)
    theta, l2 = rng.standard_normal(8), 0.03
    reference = torch.tensor(theta, requires_grad=True)
    t = torch.from_numpy
    loss = F.binary_cross_entropy_with_logits(t(x) @ reference[:7] + reference[7], t(y))
    loss = loss + l2 * reference[:7].square().sum()
    (grad,) = torch.autograd.grad(loss, reference)
    for arrays in ((x, y, theta), (t(x), t(y), t(theta.copy()))):
        value, gradient = objective_and_gradient(*arrays, l2)
        assert float(value) == pytest.approx(float(loss.detach()), abs=1e-12)
        np.testing.assert_allclose(np.asarray(gradient), grad.numpy(), atol=1e-12)


def test_lbfgs_fit_gives_the_same_weights_in_numpy_and_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 5))
    y = 1 / (1 + np.exp(-(x @ rng.standard_normal(5))))
    w, b, _ = lbfgs_fit(x, y, 0.01, max_iter=500, tol=1e-10)
    tw, tb, _ = lbfgs_fit(torch.from_numpy(x), torch.from_numpy(y), 0.01, max_iter=500, tol=1e-10)
    np.testing.assert_allclose(w, tw.numpy(), atol=1e-8)
    assert float(b) == pytest.approx(float(tb), abs=1e-8)


def test_device_names(monkeypatch):
    assert device_name("cpu") == "cpu"
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        device_name("tpu")
    assert devices.cuda_available() == torch.cuda.is_available()
    monkeypatch.setattr(devices, "cuda_impossible", lambda: False)  # then torch is asked
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_name("auto") == "cuda" and device_name("cuda:1") == "cuda:1"
    monkeypatch.setattr(devices, "cuda_impossible", lambda: True)  # torch is not asked
    assert device_name("auto") == "cpu"
    with pytest.raises(UsageError, match="no CUDA GPU"):
        device_name("cuda:1")


def test_dtype_names():
    assert [dtype_name(d, "cpu") for d in ("auto", "fp32", "fp16", "bf16", "bfloat16")] == [
        "float32",
        "float32",
        "float16",
        "bfloat16",
        "bfloat16",
    ]
    with pytest.raises(UsageError, match="unknown dtype 'int8'"):
        dtype_name("int8", "cpu")


def test_cpu_threads_before_torch_is_imported_reach_torch():
    """Set before torch's import (through OMP_NUM_THREADS), the thread count is torch's once it
    loads; the parent's own setting of the variable is overridden, as torch.set_num_threads
    would."""
    code = (
        "import os, sys; from w2sprobe.models import set_cpu_threads; cores = set_cpu_threads(); "
        "assert 'torch' not in sys.modules; import torch; "
        "print(cores, os.environ['OMP_NUM_THREADS'], torch.get_num_threads())"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "7"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    cores = len(os.sched_getaffinity(0))
    assert out == [str(cores)] * 3
    assert set_cpu_threads() == cores and torch.get_num_threads() == cores  # torch loaded here
