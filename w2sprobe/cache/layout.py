"""Names and places inside the activation cache (the DESIGN.md file contract)."""

from __future__ import annotations

from pathlib import Path

from ..workspace import kind_root, slug_dir

#: Splits in the order they are stored and extracted.
SPLIT_ORDER = ("weak_train", "strong_train", "val", "test")

#: Bumped when the file layout changes, so old files get new keys instead of being misread.
FORMAT_VERSION = 1

PARTIAL_SUFFIX = ".partial"


def layer_name(layer: int) -> str:
    """Dataset name of a stored layer: ``layer_016`` (3-digit, zero-padded)."""
    return f"layer_{layer:03d}"


def acts_root(cache_dir: Path) -> Path:
    return kind_root(cache_dir, "acts")


def activation_path(cache_dir: Path, model: str, dataset: str, key: str) -> Path:
    """``<cache>/acts/<model-slug>/<dataset-slug>/<key>.h5``."""
    return slug_dir(slug_dir(acts_root(cache_dir), model), dataset) / f"{key}.h5"


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def shard_path(path: Path, rank: int, world_size: int) -> Path:
    """Rank ``rank``'s shard of ``path`` in a data-parallel extraction: ``<key>.h5.rank<r>-of-<W>``.

    The writer adds :data:`PARTIAL_SUFFIX` and a shard is never renamed to a complete file, so
    shards never match ``*.h5`` / ``*.h5.partial`` and readers and ``cache ls`` never see them.
    """
    return path.with_name(f"{path.name}.rank{rank}-of-{world_size}")


def shard_files(path: Path) -> list[Path]:
    """Every shard file of ``path`` on disk, of any world size."""
    return sorted(path.parent.glob(f"{path.name}.rank*-of-*{PARTIAL_SUFFIX}"))
