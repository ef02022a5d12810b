"""Datasets: the registry (name -> source + formatter), row sources, and balanced seeded splits.

Typical use::

    from w2sprobe.data import load_splits, SplitSizes
    splits = load_splits("sst2", data_dir="../shared/data", sizes=SplitSizes(n_train=2000))
    splits.splits["test"].texts, splits.splits["test"].labels, splits.fingerprint
"""

from __future__ import annotations

from ..config import Settings
from .formatters import Example, Formatter
from .registry import REGISTRY, DatasetSpec, get_spec, list_datasets
from .sources import Pools, is_user_file, load_hub_split, load_mirror_split, load_user_file, mirror_folder
from .splits import SPLIT_NAMES, Split, SplitSet, SplitSizes, load_splits, text_id

__all__ = [
    "REGISTRY", "SPLIT_NAMES", "DatasetSpec", "Example", "Formatter", "Pools", "Split", "SplitSet",
    "SplitSizes", "get_spec", "is_user_file", "list_datasets", "load_hub_split", "load_mirror_split",
    "load_splits", "load_user_file", "mirror_folder", "splits_from_settings", "text_id",
]


def splits_from_settings(settings: Settings) -> SplitSet:
    """Build the splits the resolved options ask for (dataset, data_dir, seed, sizes, fields)."""
    sizes = SplitSizes(n_train=settings["n_train"], n_val=settings["n_val"], n_test=settings["n_test"])
    return load_splits(settings["dataset"], data_dir=settings["data_dir"], seed=settings["seed"],
                       sizes=sizes, text_field=settings["text_field"], label_field=settings["label_field"])
