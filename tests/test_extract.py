"""Extraction into the HDF5 cache.

Contract, values, cache hits, crash resume, locking, bad files.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import REPO, WORDS

from w2sprobe.cache import (
    ActivationStore,
    ExtractRequest,
    extract,
    list_entries,
    plan_extraction,
    verify,
)
from w2sprobe.cache.layout import partial_path
from w2sprobe.cache.readout import pool
from w2sprobe.data import Split, SplitSet
from w2sprobe.errors import UsageError
from w2sprobe.models import ModelRef, load_model, load_tokenizer


def make_splits(sizes=(40, 30, 20, 25), seed: int = 0) -> SplitSet:
    """A synthetic SplitSet of random word sequences with very different lengths."""
    rng = random.Random(seed)
    splits = {}
    for name, n in zip(("weak_train", "strong_train", "val", "test"), sizes):
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))) for _ in range(n)]
        ids = [hashlib.sha1(f"{name}{i}{t}".encode()).hexdigest()[:16] for i, t in enumerate(texts)]
        labels = np.array([i % 2 for i in range(n)], dtype=np.float32)
        splits[name] = Split(name=name, ids=ids, texts=texts, labels=labels)
    return SplitSet(dataset="toy", splits=splits, fingerprint=f"toy-{seed}-{sizes}", report={})


def request(model: Path, **kwargs) -> ExtractRequest:
    defaults = dict(
        model=str(model),
        splits=make_splits(),
        layers="all",
        batch_size=8,
        window_rows=16,
        device="cpu",
    )
    return ExtractRequest(**{**defaults, **kwargs})


def file_contents(path: Path) -> dict:
    """Every dataset and attribute of an HDF5 file, for equality checks."""
    out = {}
    with h5py.File(path, "r") as handle:
        out["/"] = {k: np.asarray(v).tolist() for k, v in handle.attrs.items()}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()].tolist() if obj.dtype.kind == "O" else obj[()].tobytes()
            out[name + "@"] = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}

        handle.visititems(visit)
    return out


def assert_same_file(path: Path, reference: Path) -> None:
    """Identical structure, attributes, ids and labels; activations equal to within one float16 ulp.

    Rows written by another process may differ in the last bit: CPU GEMM kernels can pick
    alignment-dependent code paths, so two separate uninterrupted runs are not bit-identical
    either (seen here about once in a dozen runs, always a single fp16 ulp).
    """
    got, want = file_contents(path), file_contents(reference)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        if "/layer_" in name and not name.endswith("@"):
            with h5py.File(path, "r") as a, h5py.File(reference, "r") as b:
                x, y = a[name][()].astype(np.float32), b[name][()].astype(np.float32)
            np.testing.assert_allclose(x, y, rtol=2**-10, atol=2**-24, err_msg=name)
        else:
            assert got[name] == value, name


def test_file_follows_the_contract_and_values_equal_hidden_states(tiny_models, tmp_path):
    result = extract(request(tiny_models["gpt2"]), tmp_path)
    assert not result.cache_hit and result.path.exists() and not partial_path(result.path).exists()
    assert (
        result.path.parent.parent.parent == tmp_path / "acts"
        and result.path.name == f"{result.key}.h5"
    )
    with h5py.File(result.path, "r") as handle:
        for attr in (
            "model",
            "model_revision",
            "dataset",
            "dataset_fingerprint",
            "pooling",
            "max_length",
            "num_layers",
            "hidden_size",
            "layers",
            "complete",
            "w2sprobe_version",
        ):
            assert attr in handle.attrs, attr
        assert bool(handle.attrs["complete"]) and handle.attrs["pooling"] == "last"
        assert list(handle.attrs["layers"]) == [0, 1, 2, 3]
        assert list(handle.keys()) == ["weak_train", "strong_train", "val", "test"]
        group = handle["test"]
        assert group["layer_003"].dtype == np.float16 and group["layer_003"].shape == (25, 16)
        assert group["labels"].dtype == np.float32

    splits = make_splits()
    ref = ModelRef("tiny", str(tiny_models["gpt2"]), "x")
    model, tokenizer = (
        load_model(ref, device=torch.device("cpu"), dtype=torch.float32),
        load_tokenizer(ref),
    )
    with ActivationStore.open(result.path) as store:
        for name, split in splits.splits.items():
            assert list(store.ids(name)) == split.ids
            np.testing.assert_array_equal(store.labels(name), split.labels)
            for row in (0, len(split.texts) - 1):  # one example alone, no padding at all
                enc = tokenizer([split.texts[row]], return_tensors="pt")
                with torch.inference_mode():
                    hs = model(**enc, output_hidden_states=True).hidden_states
                for layer in (0, 2, 3):
                    want = (
                        pool(hs[layer], enc["attention_mask"], "last")[0].to(torch.float16).numpy()
                    )
                    np.testing.assert_allclose(
                        store.get(name, layer)[row], want, rtol=2e-3, atol=2e-3
                    )


def test_store_reads_slices_memory_maps_and_torch(tiny_models, tmp_path):
    path = extract(request(tiny_models["bert"], layers="1,3"), tmp_path).path
    with ActivationStore.open(path) as store:
        full = store.get("strong_train", 3)
        assert isinstance(full, np.memmap) and full.shape == (30, 16)
        np.testing.assert_array_equal(store.get("strong_train", 3, rows=slice(5, 9)), full[5:9])
        tensor = store.torch("strong_train", 1)
        assert tensor.dtype == torch.float32 and tensor.shape == (30, 16)
        with pytest.raises(UsageError, match=r"layer 2 is not in .*cached layers: \[1, 3\]"):
            store.get("test", 2)
        assert store.manifest["pooling"] == "mean"  # encoder default


def test_second_run_is_a_cache_hit_without_forward(tiny_models, tmp_path, monkeypatch):
    first = extract(request(tiny_models["llama"]), tmp_path)
    before = first.path.stat().st_mtime_ns

    def no_model(*_, **__):
        raise AssertionError("a cache hit must not load the model")

    monkeypatch.setattr("w2sprobe.cache.extraction.load_model", no_model)
    second = extract(request(tiny_models["llama"], batch_size=3), tmp_path)
    assert second.cache_hit and second.key == first.key and second.path.stat().st_mtime_ns == before


def test_changed_input_gives_a_new_key(tiny_models, tmp_path):
    base = plan_extraction(request(tiny_models["llama"]), tmp_path).key
    assert plan_extraction(request(tiny_models["llama"], layers="1"), tmp_path).key != base
    assert plan_extraction(request(tiny_models["llama"], pooling="mean"), tmp_path).key != base
    assert plan_extraction(request(tiny_models["llama"], max_length=7), tmp_path).key != base
    assert (
        plan_extraction(request(tiny_models["llama"], splits=make_splits(seed=1)), tmp_path).key
        != base
    )
    assert plan_extraction(request(tiny_models["gpt2"]), tmp_path).key != base
    assert plan_extraction(request(tiny_models["llama"], batch_size=2), tmp_path).key == base


def test_interrupted_run_resumes_to_the_identical_file(tiny_models, tmp_path):
    reference = extract(request(tiny_models["gpt2"]), tmp_path / "a").path
    calls = []

    def crash_after_three_windows(done, total, tokens):
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(request(tiny_models["gpt2"]), tmp_path / "b", progress=crash_after_three_windows)
    partial = partial_path(tmp_path / "b" / reference.relative_to(tmp_path / "a"))
    assert partial.exists() and not partial.with_suffix("").exists()
    resumed = extract(request(tiny_models["gpt2"]), tmp_path / "b")
    assert resumed.resumed_rows == 40 and not partial.exists()  # windows of 16, 16, 8 rows
    assert_same_file(resumed.path, reference)


KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_extract import request
    from w2sprobe.cache import extract, writer
    original = writer.PartialActivationFile.write_window
    count = [0]
    def write_then_maybe_die(self, split, start, acts):
        count[0] += 1
        if count[0] == {die_at} and {mid_write}:
            # die with the data written but the counter not advanced
            group = self._h5[split]
            for i, layer in enumerate(self.layers):
                group[f"layer_{{layer:03d}}"][start:start + acts.shape[1]] = acts[i]
            self._h5.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, split, start, acts)
        if count[0] == {die_at}:
            os.kill(os.getpid(), signal.SIGKILL)
    writer.PartialActivationFile.write_window = write_then_maybe_die
    extract(request({model!r}), {cache!r})
""")


@pytest.mark.slow  # a subprocess: torchrun, kill -9 or a fresh interpreter
@pytest.mark.parametrize("die_at,mid_write", [(1, False), (4, True), (7, False)])
def test_kill_9_then_rerun_gives_the_identical_file(tiny_models, tmp_path, die_at, mid_write):
    reference = extract(request(tiny_models["gpt2"]), tmp_path / "ref").path
    cache = tmp_path / "killed"
    script = KILLER.format(
        tests=str(REPO / "tests"),
        die_at=die_at,
        mid_write=mid_write,
        model=str(tiny_models["gpt2"]),
        cache=str(cache),
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == -9, proc.stderr[-2000:]
    target = cache / reference.relative_to(tmp_path / "ref")
    assert partial_path(target).exists() and not target.exists()
    assert verify(partial_path(target))  # a partial file is reported, never taken as complete
    with pytest.raises(UsageError, match="partial"):
        ActivationStore.open(partial_path(target))
    resumed = extract(request(tiny_models["gpt2"]), cache)
    windows = [16, 16, 8, 16, 14, 16, 4, 16, 9]  # splits of 40, 30, 20, 25 rows in windows of 16
    assert resumed.resumed_rows == sum(windows[: die_at - (1 if mid_write else 0)])
    assert_same_file(resumed.path, reference)
    assert verify(resumed.path) == []


def _extract_in_process(model: str, cache: str, queue) -> None:
    result = extract(request(Path(model)), Path(cache))
    queue.put(result.cache_hit)


@pytest.mark.slow  # spawns processes (or reuses the torchrun reference run)
def test_two_processes_on_one_key_do_not_corrupt_each_other(tiny_models, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(
            target=_extract_in_process, args=(str(tiny_models["gpt2"]), str(tmp_path), queue)
        )
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    hits = sorted(queue.get(timeout=5) for _ in procs)
    assert hits == [False, True]  # one computed, the other waited and found it cached
    entries = list_entries(tmp_path)
    assert len(entries) == 1 and entries[0].complete and verify(entries[0].path) == []


def test_manifest_mismatch_is_never_reused(tiny_models, tmp_path):
    path = extract(request(tiny_models["gpt2"]), tmp_path).path
    with h5py.File(path, "r+") as handle:
        manifest = json.loads(handle.attrs["manifest"])
        manifest["pooling"] = "mean"
        handle.attrs["manifest"] = json.dumps(manifest, sort_keys=True)
    before = path.read_bytes()
    with pytest.raises(UsageError, match="different request"):
        extract(request(tiny_models["gpt2"]), tmp_path)
    assert path.read_bytes() == before


def test_corrupt_and_truncated_files_are_detected_and_left_alone(tiny_models, tmp_path):
    path = extract(request(tiny_models["gpt2"]), tmp_path).path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    problems = verify(path)
    assert problems and "truncated or corrupt" in problems[0]
    with pytest.raises(UsageError, match="corrupt"):
        extract(request(tiny_models["gpt2"]), tmp_path)
    assert path.read_bytes() == data[: len(data) // 2]


def test_verify_flags_missing_rows_and_non_finite_values(tiny_models, tmp_path):
    path = extract(request(tiny_models["gpt2"]), tmp_path).path
    assert verify(path) == []
    with h5py.File(path, "r+") as handle:
        handle["val/layer_002"][3, 0] = np.nan
        handle["test"].attrs.modify("committed_rows", np.int64(5))
    problems = verify(path)
    assert any("non-finite" in p and "val/layer_002" in p for p in problems)
    assert any("only 5 of 25 rows committed" in p for p in problems)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(layers="0,9"), r"layer 9 is outside 0\.\.3"),
        (dict(layers="x"), "layers must be"),
        (dict(pooling="max"), "unknown pooling"),
        (dict(max_length=0), "max-length must be > 0"),
    ],
)
def test_bad_requests_raise_before_touching_the_cache(tiny_models, tmp_path, kwargs, message):
    with pytest.raises(UsageError, match=message):
        extract(request(tiny_models["gpt2"], **kwargs), tmp_path)
    assert not (tmp_path / "acts").exists()


def test_unknown_model_name(tmp_path):
    with pytest.raises(UsageError, match="unknown model 'no-such-model-here'"):
        extract(request(Path("no-such-model-here")), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_model_folder_without_config_is_unreadable(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(UsageError, match="no config.json"):
        extract(request(tmp_path / "m"), tmp_path / "cache")


def test_peak_memory_does_not_hold_all_activations(tiny_models, tmp_path):
    """Windows bound what is in memory: the writer only ever sees window-sized arrays."""
    seen = []
    from w2sprobe.cache import writer

    original = writer.PartialActivationFile.write_window

    def spy(self, split, start, acts):
        seen.append(acts.shape[1])
        original(self, split, start, acts)

    writer.PartialActivationFile.write_window = spy
    try:
        extract(request(tiny_models["gpt2"], window_rows=16), tmp_path)
    finally:
        writer.PartialActivationFile.write_window = original
    assert max(seen) == 16 and sum(seen) == 115
    assert os.path.getsize(next((tmp_path / "acts").rglob("*.h5"))) > 115 * 16 * 2 * 4


def test_find_cached_layer_serves_any_extraction_that_stored_it(tiny_models, tmp_path):
    from w2sprobe.cache import find_cached_layer

    with pytest.raises(UsageError, match="no cached activations"):
        find_cached_layer(plan_extraction(request(tiny_models["gpt2"], layers=[3]), tmp_path), 3)
    stored = extract(request(tiny_models["gpt2"], layers="1,3"), tmp_path).path
    assert (
        find_cached_layer(plan_extraction(request(tiny_models["gpt2"], layers=[3]), tmp_path), 3)
        == stored
    )
    with pytest.raises(UsageError, match=r"layer 2 is not in the cache .*cached layers: \[1, 3\]"):
        find_cached_layer(plan_extraction(request(tiny_models["gpt2"], layers=[2]), tmp_path), 2)
    other_pooling = plan_extraction(
        request(tiny_models["gpt2"], layers=[3], pooling="mean"), tmp_path
    )
    with pytest.raises(UsageError, match="no cached activations"):
        find_cached_layer(other_pooling, 3)


def test_a_layer_subset_of_a_cached_file_is_a_hit_without_forward(
    tiny_models, tmp_path, monkeypatch
):
    everything = extract(request(tiny_models["gpt2"], layers="all"), tmp_path)

    def no_model(*_, **__):
        raise AssertionError("layers already cached must not load the model")

    monkeypatch.setattr("w2sprobe.cache.extraction.load_model", no_model)
    subset = extract(request(tiny_models["gpt2"], layers="1,3"), tmp_path)
    assert subset.cache_hit and subset.path == everything.path and subset.layers == [1, 3]
    assert len(list(tmp_path.rglob("*.h5"))) == 1
    with pytest.raises(
        AssertionError, match="must not load"
    ):  # other pooling: a real new extraction
        extract(request(tiny_models["gpt2"], layers="1", pooling="mean"), tmp_path)
