"""CUDA and cuML paths against the CPU paths: same neighbours, same optimum, bf16 ≈ fp32.

Marked ``gpu``; every test skips (with the reason) where there is no CUDA device, and the cuML
ones also where cuML is not installed, so the default test command passes on a CPU machine.
``bash bench/gpu_check.sh`` runs them (``python -m pytest -m gpu tests/test_gpu.py -rs``).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from w2sprobe.probes import LogisticProbe, knn_search

HAS_CUDA = torch.cuda.is_available()
HAS_CUML = importlib.util.find_spec("cuml") is not None

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not HAS_CUDA,
        reason="needs a CUDA GPU: torch.cuda.is_available() is False "
        f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})",
    ),
]
needs_cuml = pytest.mark.skipif(
    HAS_CUDA and not HAS_CUML,
    reason="cuML is not installed: pip install 'w2sprobe[gpu]' "
    "(cuml-cu13, matching torch's CUDA 13 wheels)",
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def integer_points(rng, n: int, dim: int = 16) -> np.ndarray:
    """Small integers: every squared distance is exact in float32, so any exact search must
    return the very same neighbours, ties (duplicates) resolved by index included."""
    x = rng.integers(-3, 4, size=(n, dim)).astype(np.float32)
    x[100:130] = x[0]
    return x


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_torch_cuda_knn_equals_cpu(rng, metric):
    x = (
        integer_points(rng, 3000)
        if metric == "euclidean"
        else rng.standard_normal((3000, 64)).astype(np.float32)
    )
    if metric == "cosine":
        x[7] = 0  # the zero-row convention holds on the GPU too
    cpu = knn_search(x, x, 50, metric=metric, exclude_self=True, backend="torch", device="cpu")
    gpu = knn_search(
        x,
        x,
        50,
        metric=metric,
        exclude_self=True,
        backend="torch",
        device="cuda",
        memory_budget_bytes=4 * 2**20,
    )  # several blocks on the GPU too
    if metric == "euclidean":
        np.testing.assert_array_equal(gpu[1], cpu[1])
        np.testing.assert_array_equal(gpu[0], cpu[0])
    else:  # float data: products round differently on the GPU; neighbours agree off near-ties
        np.testing.assert_allclose(gpu[0], cpu[0], atol=1e-5)
        assert (gpu[1] == cpu[1]).mean() > 0.999


@needs_cuml
def test_cuml_knn_equals_cpu(rng):
    x = integer_points(rng, 3000)
    cpu = knn_search(x, x, 50, exclude_self=True, backend="torch", device="cpu")
    gpu = knn_search(x, x, 50, exclude_self=True, backend="cuml", device="cuda")
    np.testing.assert_array_equal(gpu[1], cpu[1])
    np.testing.assert_allclose(gpu[0], cpu[0], atol=1e-4)


def logistic_data(rng, n: int = 4000, dim: int = 64):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    w = rng.standard_normal(dim) / np.sqrt(dim)
    soft = (1 / (1 + np.exp(-(x @ w) * 3))).astype(np.float32)  # soft labels, as weak labels are
    return x, soft


def test_torch_cuda_logistic_reaches_the_cpu_optimum(rng):
    x, y = logistic_data(rng)
    cpu = LogisticProbe(l2=1e-3, dtype="float64", tol=1e-9).fit(x, y)
    gpu = LogisticProbe(l2=1e-3, dtype="float64", tol=1e-9, device="cuda").fit(x, y)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, atol=1e-6)
    assert gpu.loss_ == pytest.approx(cpu.loss_, abs=1e-10)
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), atol=1e-6)


@needs_cuml
def test_cuml_logistic_reaches_the_cpu_optimum(rng):
    """cuML minimises the same objective through the mapping in probes/logistic.py."""
    x, y = logistic_data(rng)
    cpu = LogisticProbe(l2=1e-3, dtype="float64", tol=1e-9).fit(x, y)
    gpu = LogisticProbe(l2=1e-3, backend="cuml", device="cuda", tol=1e-8, max_iter=2000).fit(x, y)
    assert gpu.loss_ == pytest.approx(cpu.loss_, abs=1e-5)  # float32 solver: the objective, tightly
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, atol=2e-3)


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_bf16_extraction_equals_fp32_within_tolerance(tiny_models, tmp_path, arch):
    pytest.importorskip("nnsight", reason="extraction needs nnsight (a w2sprobe dependency)")
    from test_extract import request

    from w2sprobe.cache import ActivationStore, extract

    stores = {}
    for dtype in ("float32", "bfloat16"):
        result = extract(request(tiny_models[arch], device="cuda", dtype=dtype), tmp_path / dtype)
        stores[dtype] = ActivationStore.open(result.path)
    fp32, bf16 = stores["float32"], stores["bfloat16"]
    for split in fp32.splits:
        for layer in fp32.layers:
            a = np.asarray(fp32.get(split, layer), dtype=np.float64)
            b = np.asarray(bf16.get(split, layer), dtype=np.float64)
            # bf16 keeps 8 bits of mantissa (relative step 2^-8 = 0.4%); a few blocks compound it
            # (on CPU: median 0.5%, max 0.8% for these tiny models).
            relative = np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-6)
            assert np.median(relative) < 0.015 and relative.max() < 0.05, (
                split,
                layer,
                relative.max(),
            )
    for store in stores.values():
        store.close()


def test_a_head_on_cuda_gives_the_cpu_answer():
    from w2sprobe.train.head import HeadConfig, fit_head, predict_head
    from w2sprobe.train.loss_config import LogconfConfig

    generator = np.random.default_rng(0)
    truth = generator.integers(0, 2, 512)
    x = torch.from_numpy((generator.normal(size=(512, 64)) + truth[:, None]).astype(np.float32))
    y = np.where(truth == 1, 0.8, 0.2).astype(np.float32)
    for config in (HeadConfig(lr=3e-3), HeadConfig(lr=3e-3, hidden=32, loss=LogconfConfig())):
        cpu = predict_head(fit_head(x, y, x[:128], y[:128], config).model, x)
        cuda = predict_head(fit_head(x, y, x[:128], y[:128], config, device="cuda").model, x)
        np.testing.assert_allclose(cuda, cpu, atol=2e-4)
