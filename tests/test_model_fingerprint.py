"""The model fingerprint covers every file that changes the model's outputs, and its memo is
never fooled by an in-place edit that restores the file's time."""

from __future__ import annotations

import os

import pytest

from w2sprobe.models import weights_fingerprint


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("W2SPROBE_ASSETS", str(tmp_path / "assets"))  # a memo of its own
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"a" * 100)
    (folder / "tokenizer.json").write_text('{"vocab": {"good": 1, "bad": 2}}')
    (folder / "vocab.txt").write_text("good\nbad\n")
    (folder / "special_tokens_map.json").write_text('{"pad_token": "[PAD]"}')
    (folder / "generation_config.json").write_text('{"eos_token_id": 2}')
    (folder / "README.md").write_text("a model card")
    return folder


@pytest.mark.parametrize(
    "name",
    ["tokenizer.json", "vocab.txt", "special_tokens_map.json", "generation_config.json"],
)
def test_tokenizer_and_generation_files_are_in_the_fingerprint(folder, name):
    before = weights_fingerprint(folder)
    path = folder / name
    edited = path.read_text().replace("good", "gooood").replace("2", "3").replace("PAD", "P")
    path.write_text(edited)
    assert weights_fingerprint(folder) != before


def test_an_added_adapter_changes_the_fingerprint(folder):
    before = weights_fingerprint(folder)
    (folder / "adapter_model.safetensors").write_bytes(b"lora")
    assert weights_fingerprint(folder) != before


def test_documentation_is_not_in_the_fingerprint(folder):
    before = weights_fingerprint(folder)
    (folder / "README.md").write_text("a longer model card")
    (folder / "LICENSE").write_text("MIT")
    assert weights_fingerprint(folder) == before


def test_an_in_place_edit_with_its_time_restored_is_rehashed(folder):
    weights = folder / "model.safetensors"
    before = weights_fingerprint(folder)  # memoised now
    stat = weights.stat()
    with weights.open("r+b") as fh:  # same size, one byte changed
        fh.write(b"b")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # what `touch -r` does
    assert weights.stat().st_size == stat.st_size
    assert weights.stat().st_mtime_ns == stat.st_mtime_ns
    assert weights_fingerprint(folder) != before


def test_the_memo_is_used_when_nothing_changed(folder, monkeypatch):
    first = weights_fingerprint(folder)
    import hashlib

    def no_hashing(*args, **kwargs):
        raise AssertionError("re-hashed an unchanged folder")

    monkeypatch.setattr(hashlib, "sha256", no_hashing)
    assert weights_fingerprint(folder) == first
