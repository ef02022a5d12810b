"""Folder names in the workspace: visible, safe, and old caches' hidden folders still found."""

from __future__ import annotations

import pytest

from w2sprobe.cache.layout import activation_path
from w2sprobe.workspace import legacy_slug, slug, slug_dir


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("Qwen/Qwen1.5-0.5B", "Qwen--Qwen1.5-0.5B"),
        ("mpnet", "mpnet"),
        ("./my-minilm", "my-minilm"),
        ("../models/my-minilm/", "models--my-minilm"),
        ("/data/reviews.csv", "data--reviews.csv"),
        ("hub:org/name:config", "hub_org--name_config"),
        (".hidden", "hidden"),
        ("...", "model"),
    ],
)
def test_slug_is_a_visible_safe_name(name, folder):
    assert slug(name) == folder
    assert not folder.startswith((".", "-")) and "/" not in folder


def test_old_hidden_folder_is_still_found(tmp_path):
    acts = tmp_path / "acts"
    legacy = acts / legacy_slug("./my-minilm") / "sst2"
    legacy.mkdir(parents=True)
    assert legacy.parent.name == ".--my-minilm"
    assert activation_path(tmp_path, "./my-minilm", "sst2", "k") == legacy / "k.h5"
    # A cache that has both (or only the new one) uses the visible folder.
    (acts / "my-minilm" / "sst2").mkdir(parents=True)
    assert slug_dir(acts, "./my-minilm") == acts / "my-minilm"


def test_new_caches_use_visible_folders(tmp_path):
    path = activation_path(tmp_path, "./my-minilm", "./reviews.csv", "k")
    assert path.relative_to(tmp_path).parts == ("acts", "my-minilm", "reviews.csv", "k.h5")
