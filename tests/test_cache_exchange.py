"""``cache export`` / ``cache import``: round trips in every format, readable by ordinary
tools, and bad input refused with one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from w2sprobe.cache import ActivationStore, verify

run = run_cli


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, shared_data, tiny_models):
    """float16 and bfloat16 files of the tiny BERT's layers 1, 2 on sst2 (made once)."""
    import contextlib
    import io
    import os

    from w2sprobe.cli.app import main

    root = tmp_path_factory.mktemp("exchange")
    (root / "w2sprobe.toml").write_text(
        f'strong_model = "{tiny_models["bert"]}"\ncache_dir = "c"\n'
        "n_train = 80\nn_val = 20\nn_test = 30\n"
    )
    here, before = os.getcwd(), os.environ.get("W2SPROBE_DATA_DIR")
    os.chdir(root)
    os.environ["W2SPROBE_DATA_DIR"] = str(shared_data)
    made = {}
    try:
        for dtype in ("float16", "bfloat16"):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                main(["extract", "--layers", "1,2", "--json", "--quiet", "--store-dtype", dtype])
            made[dtype] = json.loads(buffer.getvalue())
    finally:
        os.chdir(here)
        if before is None:
            os.environ.pop("W2SPROBE_DATA_DIR", None)
        else:
            os.environ["W2SPROBE_DATA_DIR"] = before
    return root, made


def _contents(path):
    with ActivationStore.open(path) as store:
        return {
            "attrs": {k: v for k, v in store.attrs.items() if k not in ("layers",)},
            "layers": store.layers,
            "data": {
                s: (store.ids(s).tolist(), store.labels(s), [store.get(s, i) for i in store.layers])
                for s in store.splits
            },
        }


@pytest.mark.parametrize("fmt", ["safetensors", "npz", "hf"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_export_then_import_gives_back_the_same_file(capsys, extracted, monkeypatch, fmt, dtype):
    root, made = extracted
    monkeypatch.chdir(root)
    key = made[dtype]["key"]
    out = f"exp-{fmt}-{dtype}"
    code, printed, err = run(
        capsys, "cache", "export", key, "--format", fmt, "--out", out, "--json"
    )
    assert code == 0, err
    assert json.loads(printed)["key"] == key
    code, printed, err = run(capsys, "cache", "import", out, "--cache-dir", f"in-{out}", "--json")
    assert code == 0, err
    result = json.loads(printed)
    assert result["written"] and result["key"] == key
    original, back = _contents(made[dtype]["path"]), _contents(result["path"])
    assert back["attrs"] == original["attrs"] and back["layers"] == original["layers"]
    for split, (ids, labels, layers) in original["data"].items():
        ids2, labels2, layers2 = back["data"][split]
        assert ids2 == ids
        np.testing.assert_array_equal(labels2, labels)
        for a, b in zip(layers, layers2):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert verify(Path(result["path"])) == []
    code, printed, err = run(capsys, "cache", "import", out, "--cache-dir", f"in-{out}")
    assert code == 0 and "already cached" in printed


def test_exports_read_with_ordinary_tools(capsys, extracted, monkeypatch):
    root, made = extracted
    monkeypatch.chdir(root)
    key, path = made["float16"]["key"], made["float16"]["path"]
    for fmt in ("safetensors", "npz", "hf"):
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # a warning shown by an earlier test shows again
            code, _, err = run(
                capsys, "cache", "export", key, "--format", fmt, "--out", f"o-{fmt}", "--quiet"
            )
        # nothing but our own lines: no torch warning about the store's read-only arrays, no
        # progress bars of `datasets` under --quiet
        assert code == 0 and err == "", err
    with ActivationStore.open(path) as store:
        x, ids, y = store.get("test", 2), store.ids("test").tolist(), store.labels("test")
    from safetensors.numpy import load_file

    tensors = load_file("o-safetensors/activations.safetensors")
    np.testing.assert_array_equal(tensors["test/layer_002"], x)
    npz = np.load("o-npz/activations.npz")
    np.testing.assert_array_equal(npz["test.layer_002"], x)
    assert npz["test.ids"].tolist() == ids
    from datasets import load_from_disk

    test = load_from_disk("o-hf")["test"]
    assert test["id"] == ids and np.allclose(test["label"], y)
    np.testing.assert_array_equal(np.asarray(test[0]["layer_002"], dtype=np.float16), x[0])
    manifest = json.loads(Path("o-hf/manifest.json").read_text())
    assert manifest["key"] == key and manifest["layers"] == [1, 2]


def test_export_and_import_bad_input_is_one_error_line(capsys, extracted, monkeypatch):
    root, made = extracted
    monkeypatch.chdir(root)
    key = made["float16"]["key"]
    Path("taken").mkdir(exist_ok=True)
    (Path("taken") / "mine.txt").write_text("keep")
    cases = [
        (["cache", "export", key, "--format", "parquet", "--out", "x1"], "unknown export format"),
        (["cache", "export", key, "--out", "taken"], "already exists"),
        (["cache", "export", "ffffffffffff", "--out", "x2"], "no acts"),
        (["cache", "import", "taken"], "not a w2sprobe export"),
        (["cache", "export", key, "--out", "taken/mine.txt/x"], "cannot write the export to"),
    ]
    for args, message in cases:
        code, _, err = run(capsys, *args)
        assert code == 2 and err.startswith("error:") and message in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    assert (Path("taken") / "mine.txt").read_text() == "keep"
    assert not Path("x1").exists() and not Path("x2").exists()
    code, _, err = run(capsys, "cache", "export", key, "--out", "taken", "--force")
    assert code == 0, err
    assert not (Path("taken") / "mine.txt").exists()
    assert (Path("taken") / "activations.safetensors").is_file()
    # tampered: a changed manifest no longer hashes to its key; a changed file its record
    code, _, err = run(capsys, "cache", "export", key, "--format", "npz", "--out", "t1")
    assert code == 0, err
    manifest = json.loads(Path("t1/manifest.json").read_text())
    inner = json.loads(manifest["manifest"])
    inner["max_length"] = 7
    manifest["manifest"] = json.dumps(inner, sort_keys=True)
    Path("t1/manifest.json").write_text(json.dumps(manifest))
    code, _, err = run(capsys, "cache", "import", "t1", "--cache-dir", "t1-cache")
    assert code == 2 and "damaged" in err and not Path("t1-cache/acts").exists()
    record = json.loads(Path("t1/w2sprobe_export.json").read_text())
    from w2sprobe.atomic import file_record

    record["files"]["manifest.json"] = file_record(Path("t1/manifest.json"))
    Path("t1/w2sprobe_export.json").write_text(json.dumps(record))
    code, _, err = run(capsys, "cache", "import", "t1", "--cache-dir", "t1-cache")
    assert code == 2 and "not the hash of its manifest" in err
    assert not Path("t1-cache/acts").exists()


@pytest.fixture(scope="module")
def token_file(tiny_models, tmp_path_factory):
    """The last-4-tokens file (layers 0, 2) of the tiny GPT-2's one-pass extraction."""
    from test_cache_tokens import plans

    from w2sprobe.cache.onepass import extract_pass

    cache = tmp_path_factory.mktemp("token-exchange") / "cache"
    base, tokens = plans(tiny_models["gpt2"], cache, "last:4")
    extract_pass([base], tokens)
    return cache, tokens.key, tokens.path


def _token_contents(path):
    from w2sprobe.cache.tokens import TokenStore

    with TokenStore.open(path) as store:
        return {
            "attrs": {k: v for k, v in store.attrs.items() if k != "layers"},
            "layers": store.layers,
            "data": {
                s: [store.ids(s), store.labels(s), store.lengths(s), store.token_ids(s)]
                + [store.positions(s)]
                + [store.get(s, x) for x in store.layers]
                for s in store.splits
            },
        }


def _export_tokens(capsys, cache: Path, key: str, fmt: str, out: Path) -> str:
    """``cache export KEY --format FMT --out OUT`` of the token file; its JSON output."""
    args = ["cache", "export", key, "--format", fmt, "--out", str(out), "--cache-dir", str(cache)]
    code, printed, err = run(capsys, *args, "--json")
    assert code == 0, err
    return printed


@pytest.mark.parametrize("fmt", ["safetensors", "npz", "hf"])
def test_a_token_file_exports_and_imports_as_itself(capsys, token_file, tmp_path, fmt):
    """Every array of a token-level file, its token ids, positions and lengths too, comes back
    under the same key and kind; the import is a sound token file."""
    from w2sprobe.inventory import verify_path

    cache, key, path = token_file
    out = tmp_path / f"exp-{fmt}"
    assert json.loads(_export_tokens(capsys, cache, key[:8], fmt, out))["key"] == key
    code, printed, err = run(
        capsys, "cache", "import", str(out), "--cache-dir", str(tmp_path / "in"), "--json"
    )
    assert code == 0, err
    result = json.loads(printed)
    assert result["written"] and result["key"] == key
    assert Path(result["path"]).relative_to(tmp_path / "in" / "tokens")  # its own kind
    original, back = _token_contents(path), _token_contents(result["path"])
    assert back["attrs"] == original["attrs"] and back["layers"] == original["layers"]
    for split, arrays in original["data"].items():
        assert back["data"][split][0] == arrays[0]  # ids
        for a, b in zip(arrays[1:], back["data"][split][1:]):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    assert verify_path(Path(result["path"])).status == "ok"


def test_a_token_export_reads_with_ordinary_tools(capsys, token_file, tmp_path):
    """(N, K, D) layers and (N, K) token ids as numpy/safetensors arrays; in the Hugging Face
    folder, each row's layer is K lists of D."""
    from datasets import load_from_disk
    from safetensors.numpy import load_file

    from w2sprobe.cache.tokens import TokenStore

    cache, key, path = token_file
    for fmt in ("safetensors", "npz", "hf"):
        _export_tokens(capsys, cache, key, fmt, tmp_path / fmt)
    with TokenStore.open(path) as store:
        x, tokens, lengths = store.get("test", 2), store.token_ids("test"), store.lengths("test")
        ids = store.ids("test")
    assert x.ndim == 3 and x.shape[1] == 4
    tensors = load_file(str(tmp_path / "safetensors" / "activations.safetensors"))
    np.testing.assert_array_equal(tensors["test/layer_002"], x)
    np.testing.assert_array_equal(tensors["test/token_ids"], tokens)
    npz = np.load(tmp_path / "npz" / "activations.npz")
    np.testing.assert_array_equal(npz["test.lengths"], lengths)
    assert npz["test.ids"].tolist() == ids
    test = load_from_disk(str(tmp_path / "hf"))["test"]
    row = test[1]
    assert row["id"] == ids[1] and row["lengths"] == lengths[1]
    assert row["token_ids"] == tokens[1].tolist()
    np.testing.assert_array_equal(np.asarray(row["layer_002"], dtype=x.dtype), x[1])


def test_an_edited_token_export_is_refused_with_one_line(capsys, token_file, tmp_path):
    """Edits that keep every file's record consistent (the record rewritten too) still cannot
    import under the key: an attribute that disagrees with the manifest the key hashes, an
    array of the wrong shape, a manifest without its attributes."""
    from w2sprobe.atomic import file_record

    cache, key, _ = token_file

    def export(name: str) -> Path:
        _export_tokens(capsys, cache, key, "npz", tmp_path / name)
        return tmp_path / name

    def rerecord(out: Path) -> None:
        record = json.loads((out / "w2sprobe_export.json").read_text())
        for name in record["files"]:
            record["files"][name] = file_record(out / name)
        (out / "w2sprobe_export.json").write_text(json.dumps(record))

    spec = export("spec")
    manifest = json.loads((spec / "manifest.json").read_text())
    (spec / "manifest.json").write_text(json.dumps({**manifest, "tokens": "last:2"}))
    shape = export("shape")
    arrays = dict(np.load(shape / "activations.npz"))
    arrays["test.layer_002"] = arrays["test.layer_002"][:, :2]
    np.savez(shape / "activations.npz", **arrays)
    bare = export("bare")
    (bare / "manifest.json").write_text(json.dumps({"key": key}))
    cases = [
        (spec, "its tokens 'last:2' is not its manifest's 'last:4'"),
        (shape, "test/layer_002 has shape"),
        (bare, "manifest.json lacks model, model_revision"),
    ]
    for out, message in cases:
        rerecord(out)
        code, _, err = run(capsys, "cache", "import", str(out), "--cache-dir", str(out) + "-in")
        assert code == 2 and err.startswith("error:") and message in err, err
        assert len(err.strip().splitlines()) == 1
        assert not Path(str(out) + "-in", "tokens").exists() or not any(
            Path(str(out) + "-in", "tokens").rglob("*.h5")
        )


#: ``python -m w2sprobe ARGS`` where executing torch fails: any ``import torch`` raises.  The
#: hook fails the import, not the lookup: ``datasets`` looks torch up (``find_spec``) to know it
#: is installed, and imports it whenever the name is in ``sys.modules``, so neither a failing
#: lookup nor a ``None`` in ``sys.modules`` would model an installed torch left unimported.
NO_TORCH = """
import importlib.abc, importlib.util, runpy, sys

class NoTorch(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError("torch was imported")

sys.meta_path.insert(0, NoTorch())
sys.argv = ["w2sprobe", *sys.argv[1:]]
runpy.run_module("w2sprobe", run_name="__main__")
"""


@pytest.mark.parametrize("fmt", ["npz", "hf"])
def test_npz_and_hf_exchange_needs_no_torch(token_file, extracted, tmp_path, fmt):
    """Moving files between machines in numpy and arrow formats never starts torch (seconds of
    import): pooled and token files alike (safetensors' writer is torch's)."""
    import subprocess
    import sys

    cache, key, path = token_file
    root, made = extracted
    for name, source, kind in (
        (key, cache, "tokens"),
        (made["float16"]["key"], root / "c", "acts"),
    ):
        out, target = tmp_path / f"{kind}-{fmt}", tmp_path / f"{kind}-in"
        for args in (
            [
                "cache",
                "export",
                name,
                "--format",
                fmt,
                "--out",
                str(out),
                "--cache-dir",
                str(source),
            ],
            ["cache", "import", str(out), "--cache-dir", str(target)],
        ):
            done = subprocess.run(
                [sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
        assert len(list((target / kind).rglob(f"{name}.h5"))) == 1
