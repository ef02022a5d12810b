"""Several poolings in one forward pass and bounded token-level activations
(w2sprobe.cache.onepass, .tokens): against single-pool extractions and transformers' hidden
states."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch
from test_extract import file_contents, make_splits, request

from w2sprobe.cache import plan_extraction
from w2sprobe.cache.extraction import extract
from w2sprobe.cache.onepass import extract_pass
from w2sprobe.cache.tokens import (
    DEFAULT_MAX_BYTES,
    TokenStore,
    parse_token_spec,
    plan_tokens,
)
from w2sprobe.errors import UsageError
from w2sprobe.models import ModelRef, load_model, load_tokenizer


def plans_of(model, cache, poolings, **kwargs):
    base = request(model, **kwargs)
    return [plan_extraction(dataclasses.replace(base, pooling=p), cache) for p in poolings]


def assert_identical(path, reference) -> None:
    """Same attributes, ids, labels and bit-identical layers (np.array_equal)."""
    got, want = file_contents(path), file_contents(reference)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name] == value, name
    with h5py.File(path, "r") as a, h5py.File(reference, "r") as b:
        for split in b:
            for name in b[split]:
                assert np.array_equal(a[split][name][()], b[split][name][()]), (split, name)


def test_two_poolings_in_one_pass_equal_two_single_pool_extractions(tiny_models, tmp_path):
    model = tiny_models["llama"]
    single = [
        extract(p, tmp_path / "single")
        for p in plans_of(model, tmp_path / "single", ["mean", "last"])
    ]
    plans = plans_of(model, tmp_path / "pass", ["mean", "last"])
    result = extract_pass(plans)
    assert [r.key for r in result.pooled] == [r.key for r in single]  # the single-pool keys
    assert not any(r.cache_hit for r in result.pooled)
    for made, reference in zip(result.pooled, single):
        assert made.path.name == reference.path.name
        assert_identical(made.path, reference.path)
    again = extract_pass(plans)
    assert all(r.cache_hit for r in again.pooled)


def test_only_the_missing_pooling_is_computed(tiny_models, tmp_path, monkeypatch):
    model = tiny_models["gpt2"]
    mean, last = plans_of(model, tmp_path, ["mean", "last"])
    first = extract(mean, tmp_path)
    stamp = first.path.stat().st_mtime_ns
    written = []
    from w2sprobe.cache import writer

    original = writer.PartialActivationFile.open
    monkeypatch.setattr(
        writer.PartialActivationFile,
        "open",
        classmethod(lambda cls, path, *a, **k: written.append(path) or original(path, *a, **k)),
    )
    result = extract_pass([mean, last])
    assert written == [last.path]  # the cached mean file is not reopened, let alone rewritten
    assert result.pooled[0].cache_hit and not result.pooled[1].cache_hit
    assert first.path.stat().st_mtime_ns == stamp
    reference = extract(plans_of(model, tmp_path / "ref", ["last"])[0], tmp_path / "ref")
    assert_identical(result.pooled[1].path, reference.path)


def test_a_pass_resumes_files_left_at_different_points(tiny_models, tmp_path, monkeypatch):
    """Killed mid-pass (after some windows), rerun: both files complete and equal to a clean run."""
    model = tiny_models["bert"]
    plans = plans_of(model, tmp_path, ["mean", "first"])
    from w2sprobe.cache import writer

    original, calls = writer.PartialActivationFile.write_window, []

    def dying(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # a kill between two commits
        return original(self, *args, **kwargs)

    monkeypatch.setattr(writer.PartialActivationFile, "write_window", dying)
    with pytest.raises(KeyboardInterrupt):
        extract_pass(plans)
    monkeypatch.setattr(writer.PartialActivationFile, "write_window", original)
    assert not any(p.path.exists() for p in plans)
    result = extract_pass(plans)
    assert result.pooled[0].resumed_rows > 0
    clean = plans_of(model, tmp_path / "clean", ["mean", "first"])
    for made, plan in zip(result.pooled, clean):
        reference = extract(plan, tmp_path / "clean")
        np.testing.assert_allclose(
            h5py.File(made.path)["test"]["layer_002"][()].astype(np.float32),
            h5py.File(reference.path)["test"]["layer_002"][()].astype(np.float32),
            rtol=2**-10,
            atol=2**-24,
        )


@pytest.mark.parametrize("arch", ["gpt2", "bert"])
def test_last_k_token_activations_equal_transformers_hidden_states(tiny_models, tmp_path, arch):
    model_dir = tiny_models[arch]
    (base,) = plans_of(model_dir, tmp_path, [None], layers="0,2,3")
    spec = parse_token_spec("last:4")
    tokens = plan_tokens(base, spec, tmp_path, DEFAULT_MAX_BYTES)
    result = extract_pass([base], tokens)
    assert (
        result.tokens.path == tokens.path
        and tokens.path.parent.parent.parent == tmp_path / "tokens"
    )
    ref = ModelRef("tiny", str(model_dir), "x")
    model = load_model(ref, device=torch.device("cpu"), dtype=torch.float32)
    tokenizer = load_tokenizer(ref)
    split = make_splits().splits["test"]
    with TokenStore.open(tokens.path) as store:
        assert store.ids("test") == split.ids
        lengths = store.lengths("test")
        assert store.get("test", 2).shape == (len(split.ids), 4, 16)
        for row, text in enumerate(split.texts):
            enc = tokenizer([text], return_tensors="pt")
            with torch.inference_mode():
                hs = model(**enc, output_hidden_states=True).hidden_states
            n = enc["input_ids"].shape[1]
            assert lengths[row] == min(n, 4)
            token_ids, _ = store.example("test", row, 0)
            np.testing.assert_array_equal(token_ids, enc["input_ids"][0, n - min(n, 4) :].numpy())
            np.testing.assert_array_equal(
                store.positions("test")[row, : lengths[row]], np.arange(n - lengths[row], n)
            )
            for layer in (0, 2, 3):
                _, acts = store.example("test", row, layer)
                want = hs[layer][0, n - min(n, 4) :].to(torch.float16).numpy()
                np.testing.assert_allclose(acts, want, rtol=2e-3, atol=2e-3)
            padded = store.get("test", 3)[row, lengths[row] :]
            assert not padded.any() and (store.token_ids("test")[row, lengths[row] :] == -1).all()
    # the pooled file of the same pass is the single-pool file
    reference = extract(
        plans_of(model_dir, tmp_path / "ref", [None], layers="0,2,3")[0], tmp_path / "ref"
    )
    assert_identical(result.pooled[0].path, reference.path)


def test_position_slice_holds_those_positions(tiny_models, tmp_path):
    (base,) = plans_of(tiny_models["llama"], tmp_path, ["last"], layers="1")
    tokens = plan_tokens(base, parse_token_spec("2:5"), tmp_path, DEFAULT_MAX_BYTES)
    extract_pass([base], tokens)
    with TokenStore.open(tokens.path) as store:
        positions, lengths = store.positions("val"), store.lengths("val")
    for row_positions, n in zip(positions, lengths):
        assert list(row_positions[:n]) == list(range(2, 2 + n)) and (row_positions[n:] == -1).all()
    assert lengths.max() == 3 and lengths.min() == 0  # some examples are 1-2 tokens long


def test_a_token_request_over_the_limit_is_refused_with_its_size(tiny_models, tmp_path):
    (base,) = plans_of(tiny_models["gpt2"], tmp_path, ["last"])
    rows = sum(len(s.ids) for s in make_splits().splits.values())
    need = rows * 8 * 4 * 16 * 2  # rows x K x layers x hidden x float16 bytes
    size = rf"\({rows} rows x 8 tokens x 4 layers x 16 x 2 bytes\)"
    message = rf"need .*{size}, over the limit of 1.0 KiB; allow it with --max-bytes {need}"
    with pytest.raises(UsageError, match=message):
        plan_tokens(base, parse_token_spec("last:8"), tmp_path, 1024)
    assert plan_tokens(base, parse_token_spec("last:8"), tmp_path, need).size == need
    assert not (tmp_path / "tokens").exists()


@pytest.mark.parametrize("text", ["last", "last:0", "5:5", "7:3", "first:3", "-1:4", "last:x"])
def test_bad_token_specs_are_refused(text):
    with pytest.raises(UsageError, match="--tokens"):
        parse_token_spec(text)
