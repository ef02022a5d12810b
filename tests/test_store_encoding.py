"""The activation store's dtypes and compression: encoding against torch, files against the
float16 default, keys, verify and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import run_cli

from w2sprobe.cache import ActivationStore, list_entries, verify
from w2sprobe.cache.encoding import decode, encode

run = run_cli


def test_bfloat16_encoding_equals_torch_rounding():
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_000).astype(np.float32) * 10.0 ** rng.integers(-6, 6, 10_000)
    # exact ties: the lower 16 bits at 0x8000 round to the even upper half
    ties = (np.arange(64, dtype=np.uint32) << 16 | np.uint32(0x8000)) + np.uint32(0x3F800000)
    values = np.concatenate([values, ties.view(np.float32), np.float32([0.0, -0.0, 1e30])])
    reference = torch.from_numpy(values).to(torch.bfloat16)
    stored = encode(values, "bfloat16")
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored.view(np.int16), reference.view(torch.int16).numpy())
    np.testing.assert_array_equal(decode(stored, "bfloat16"), reference.float().numpy())
    assert encode(np.float32([1.5, -2.0]), "float16").dtype == np.float16


@pytest.fixture
def workspace(tmp_path, monkeypatch, shared_data, tiny_models):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2SPROBE_DATA_DIR", str(shared_data))
    (tmp_path / "w2sprobe.toml").write_text(
        f'strong_model = "{tiny_models["bert"]}"\ncache_dir = "c"\n'
        "n_train = 120\nn_val = 30\nn_test = 40\n"
    )
    return tmp_path


def _extract(capsys, *args):
    code, out, err = run(capsys, "extract", "--layers", "1,2", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_store_dtypes_and_compression_read_back_as_the_default_file(capsys, workspace):
    default = _extract(capsys)
    with ActivationStore.open(default["path"]) as store:
        base = {s: store.get(s, 2) for s in store.splits}
        assert store.store_dtype == "float16" and "store_dtype" not in store.manifest
    float32 = _extract(capsys, "--store-dtype", "float32")
    bfloat16 = _extract(capsys, "--store-dtype", "bfloat16", "--compression", "lzf")
    keys = {default["key"], float32["key"], bfloat16["key"]}
    assert len(keys) == 3  # a non-default dtype is in the key
    with ActivationStore.open(float32["path"]) as wide:
        assert wide.manifest["store_dtype"] == "float32"
        for split, values in base.items():
            full = wide.get(split, 2)
            assert full.dtype == np.float32
            # the float16 file is the float32 values rounded (the same forward pass)
            np.testing.assert_allclose(full.astype(np.float16), values, rtol=1e-3, atol=1e-3)
            with ActivationStore.open(bfloat16["path"]) as brain:
                got = brain.get(split, 2)
                assert got.dtype == np.float32
                np.testing.assert_allclose(
                    got, decode(encode(full, "bfloat16"), "bfloat16"), rtol=1e-2, atol=1e-2
                )
                np.testing.assert_array_equal(brain.get(split, 2, rows=slice(3, 7)), got[3:7])
    # compression is not in the key: the float16 file serves; a fresh workspace compresses
    again = _extract(capsys, "--compression", "gzip")
    assert again["key"] == default["key"]
    for compression in ("gzip", "lzf"):
        code, out, err = run(
            capsys, "extract", "--layers", "1,2", "--json", "--compression", compression,
            "--cache-dir", f"c-{compression}",
        )  # fmt: skip
        assert code == 0, err
        made = json.loads(out)
        assert made["key"] == default["key"]
        with h5py.File(made["path"]) as handle:
            assert handle["test/layer_002"].compression == compression
            assert handle.attrs["compression"] == compression
        with ActivationStore.open(made["path"]) as store:
            for split, values in base.items():
                np.testing.assert_array_equal(store.get(split, 2), values)
    for entry in list_entries(Path("c")) + list_entries(Path("c-gzip")):
        assert verify(entry.path) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--store-dtype", "float8"], "float8"),
        (["--compression", "zstd"], "zstd"),
    ],
)
def test_bad_store_options_are_one_error_line(capsys, workspace, args, message):
    code, _, err = run(capsys, "extract", "--layers", "1", *args)
    assert code == 2 and err.startswith("error:") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not Path("c").exists() or not list_entries(Path("c"))
