"""Datasets: the registry (name -> source + formatter), row sources, and balanced seeded splits.

Typical use::

    from w2sprobe.data import load_splits, SplitSizes
    splits = load_splits("sst2", data_dir="../shared/data", sizes=SplitSizes(n_train=2000))
    splits.splits["test"].texts, splits.splits["test"].labels, splits.fingerprint

Users' own data goes through the same call: a file, a folder of ``train/validation/test``
files, ``hub:org/name[:config]`` (with ``positive_label=`` for one class vs the rest), or a
name defined from a ``[datasets.NAME]`` config table with ``define_dataset``.  Notices meant
for the user (e.g. a hub repo read from its parquet branch) are in ``report["notes"]``.
"""

from __future__ import annotations

from .formatters import Example, Formatter
from .hub import HUB_SOURCES, PARQUET_REVISION, HubSource, load_with_fallback
from .registry import REGISTRY, DatasetSpec, get_spec, list_datasets
from .sources import (
    Pools,
    check_data_dir,
    is_user_file,
    load_hub_split,
    load_mirror_split,
    load_user_file,
    mirror_folder,
)
from .splits import SPLIT_NAMES, Split, SplitSet, SplitSizes, load_splits, text_id
from .user import (
    USER_DATASETS,
    UserDatasetSpec,
    define_dataset,
    define_datasets,
    is_hub_source,
    is_user_data,
    parse_hub_source,
)

__all__ = [
    "HUB_SOURCES",
    "PARQUET_REVISION",
    "REGISTRY",
    "SPLIT_NAMES",
    "USER_DATASETS",
    "DatasetSpec",
    "Example",
    "Formatter",
    "HubSource",
    "Pools",
    "Split",
    "SplitSet",
    "SplitSizes",
    "UserDatasetSpec",
    "check_data_dir",
    "define_dataset",
    "define_datasets",
    "get_spec",
    "is_hub_source",
    "is_user_data",
    "is_user_file",
    "list_datasets",
    "load_hub_split",
    "load_mirror_split",
    "load_splits",
    "load_user_file",
    "load_with_fallback",
    "mirror_folder",
    "parse_hub_source",
    "text_id",
]
