"""Where rows come from: a local mirror folder, the Hugging Face hub, or a user's own file.

Rows are plain dicts in hub schema.  The rule for registry datasets: if ``data_dir`` is given and
holds the dataset's mirror folder, the mirror is the *only* source (no silent hub fallback, so an
offline run never half-depends on the network); otherwise the hub.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..errors import UsageError
from .registry import DatasetSpec

Rows = list[dict[str, Any]]
#: Reads one hub split by name; ``None`` when the source lacks it.
SplitReader = Callable[[str], Optional[Rows]]

#: Seed of the fixed permutation that splits pooled datasets (sciq): the same for every run.
POOLED_SPLIT_SEED = 0

USER_FILE_LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class Pools:
    """The raw rows of a dataset's train and test pools; ``None`` = not available here."""

    train: Optional[Rows]
    test: Optional[Rows]
    source: str
    origin: dict[str, str] = field(default_factory=dict)  # pool -> the hub split(s) it came from


def mirror_folder(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> Optional[Path]:
    """The dataset's folder inside ``data_dir`` if it exists there, else ``None``."""
    if data_dir is None:
        return None
    folder = Path(data_dir) / spec.mirror_folder
    return folder if folder.is_dir() else None


def mirror_splits(folder: Path) -> list[str]:
    """Split names present in a mirror folder (``<split>.jsonl``)."""
    return sorted(path.stem for path in folder.glob("*.jsonl"))


def load_mirror_split(folder: Path, split: str) -> Optional[Rows]:
    """One mirror split as hub-schema rows, or ``None`` if the mirror lacks that split."""
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        return None
    with _datasets_quietly() as datasets:
        return datasets.load_dataset("json", data_files={split: str(path)}, split=split).to_list()


def load_hub_split(hub_id: str, config: Optional[str], split: str) -> Rows:
    """One hub split as rows (needs network access and the hub's copy of the dataset)."""
    try:
        with _datasets_quietly() as datasets:
            dataset = datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:  # any hub/network failure becomes one readable line
        raise UsageError(
            f"cannot load {hub_id}{'/' + config if config else ''} split {split} from the hub "
            f"({_first_line(exc)}); pass --data-dir with a local mirror"
        ) from None
    return dataset.to_list()


def load_pools(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> Pools:
    """Load a registry dataset's pools from its mirror folder if present, else from the hub."""
    folder = mirror_folder(spec, data_dir)
    if folder is None and spec.manual_download:
        raise UsageError(
            f"dataset '{spec.name}' needs a manual download (hub {spec.hub_id}/{spec.hub_config}): "
            f"put {', '.join(s + '.jsonl' for s in spec.hub_splits)} in hub schema under "
            f"<data_dir>/{spec.mirror_folder}/ and pass --data-dir"
        )
    if folder is not None:
        source = f"mirror {folder}"
        read: SplitReader = lambda split: load_mirror_split(folder, split)  # noqa: E731
    else:
        source = f"hub {spec.hub_id}" + (f" ({spec.hub_config})" if spec.hub_config else "")
        read = lambda split: load_hub_split(spec.hub_id, spec.hub_config, split)  # noqa: E731
    pools = _pooled(spec, read, source) if spec.pooled_test_size else _separate(spec, read, source)
    if pools.train is None and pools.test is None:
        raise UsageError(
            f"mirror folder {folder} has none of the splits {', '.join(spec.hub_splits)} "
            f"(found: {', '.join(mirror_splits(folder)) or 'nothing'})"
        )
    return pools


def _separate(spec: DatasetSpec, read: SplitReader, source: str) -> Pools:
    parts = [read(split) for split in spec.train_splits]
    train = None if any(part is None for part in parts) else [row for part in parts for row in part]
    return Pools(train=train, test=read(spec.test_split), source=source,
                 origin={"train": "+".join(spec.train_splits), "test": spec.test_split})


def _pooled(spec: DatasetSpec, read: SplitReader, source: str) -> Pools:
    """Concatenate the hub splits in order; a fixed permutation carves the test pool off."""
    parts = [read(split) for split in spec.train_splits]
    missing = [split for split, part in zip(spec.train_splits, parts) if part is None]
    if missing:
        raise UsageError(f"dataset '{spec.name}' pools all of {', '.join(spec.train_splits)}; "
                         f"{source} lacks {', '.join(missing)}")
    rows = [row for part in parts for row in part]
    order = np.random.default_rng(POOLED_SPLIT_SEED).permutation(len(rows))
    n = spec.pooled_test_size
    pooled = "+".join(spec.train_splits)
    return Pools(train=[rows[i] for i in order[n:]], test=[rows[i] for i in order[:n]],
                 source=source,
                 origin={"train": f"{pooled} minus the fixed test pool",
                         "test": f"fixed {n} rows of {pooled}"})


# --- user files -----------------------------------------------------------------------------

def is_user_file(name: str) -> bool:
    """Whether a dataset argument names a data file rather than a registry entry."""
    return Path(name).suffix.lower() in USER_FILE_LOADERS


def load_user_file(path: str | os.PathLike, text_field: str = "text", label_field: str = "label") -> Rows:
    """Rows ``{"text": str, "label": 0|1}`` from a ``.jsonl/.json/.csv/.parquet`` file.

    Labels may be ints, bools, floats 0.0/1.0 or the strings "0"/"1"; anything else is an error,
    as is a missing field.  A missing text (null) becomes ``""`` and the row is later dropped.
    """
    path = Path(path)
    loader = USER_FILE_LOADERS.get(path.suffix.lower())
    if loader is None:
        raise UsageError(f"cannot read {path}: use a {', '.join(USER_FILE_LOADERS)} file")
    if not path.is_file():
        raise UsageError(f"dataset file {path} does not exist")
    table = _read_table(loader, path)
    for name in (text_field, label_field):
        if name not in table.column_names:
            raise UsageError(f"{path} has no field '{name}'; fields: {', '.join(table.column_names)}")
    labels = [_binary_label(value) for value in table[label_field]]
    if any(label is None for label in labels):
        bad = sorted({repr(v) for v, lab in zip(table[label_field], labels) if lab is None})
        raise UsageError(f"labels of {path} are not binary: found values {', '.join(bad[:5])}"
                         + (" ..." if len(bad) > 5 else ""))
    texts = ["" if value is None else str(value) for value in table[text_field]]
    return [{"text": txt, "label": label} for txt, label in zip(texts, labels)]


def _read_table(loader: str, path: Path):
    try:
        with _datasets_quietly() as datasets:
            return datasets.load_dataset(loader, data_files={"train": str(path)}, split="train")
    except Exception as exc:  # malformed files: report the parser's complaint in one line
        raise UsageError(f"cannot read {path}: {_first_line(exc)}") from None


@contextmanager
def _datasets_quietly() -> Iterator[Any]:
    """The ``datasets`` module with its progress bars off: our stderr is for our own messages.

    Imported here because it is heavy and only needed once rows are actually loaded.
    """
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield datasets
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _first_line(exc: Exception) -> str:
    message = str(exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _binary_label(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return None
