"""Datasets: the registry (name -> source + formatter), row sources, and balanced seeded splits.

Typical use::

    from w2sprobe.data import load_splits, SplitSizes
    splits = load_splits("sst2", data_dir="../shared/data", sizes=SplitSizes(n_train=2000))
    splits.splits["test"].texts, splits.splits["test"].labels, splits.fingerprint
"""

from __future__ import annotations

from .formatters import Example, Formatter
from .registry import REGISTRY, DatasetSpec, get_spec, list_datasets
from .sources import Pools, is_user_file, load_hub_split, load_mirror_split, load_user_file, mirror_folder
from .splits import SPLIT_NAMES, Split, SplitSet, SplitSizes, load_splits, text_id

__all__ = [
    "REGISTRY", "SPLIT_NAMES", "DatasetSpec", "Example", "Formatter", "Pools", "Split", "SplitSet",
    "SplitSizes", "get_spec", "is_user_file", "list_datasets", "load_hub_split", "load_mirror_split",
    "load_splits", "load_user_file", "mirror_folder", "text_id",
]
