"""Where rows come from: a local mirror folder, the Hugging Face hub, or a user's own file.

Rows are hub-schema rows behind a ``RowSource`` (``rows.py``): Arrow tables, turned into dicts
only a batch at a time.  The rule for registry datasets: with ``data_dir`` given, the mirror is
the *only* source: a missing data dir, or one without the dataset's folder, is an error, never a
silent hub fallback (an offline run must not half-depend on the network).  Without ``data_dir``,
the hub, through the resolution table and fallback of ``hub.py``.

A mirror folder holds either ``<split>.jsonl`` files (``../shared/data``) or a hub parquet
export, ``<config>/<split>/0000.parquet``, which loads exactly as the hub's parquet branch does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError, first_line
from . import hub
from .hub import INFERRED_CONFIG, HubSource, export_data_files, load_with_fallback
from .registry import DatasetSpec
from .rows import RowSource, as_source, concat, select

Rows = list[dict[str, Any]]
#: Reads one hub split by name; ``None`` when the source lacks it.
SplitReader = Callable[[str], RowSource | None]

#: Seed of the fixed permutation that splits pooled datasets (sciq): the same for every run.
POOLED_SPLIT_SEED = 0

USER_FILE_LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
MIRROR_LAYOUTS = (
    "<folder>/<split>.jsonl or a hub parquet export <folder>/<config>/<split>/0000.parquet"
)


@dataclass
class Pools:
    """The raw rows of a dataset's train, test and (optional) validation pools.

    ``None`` = not available here.  ``val`` is set only for user data that brings its own
    validation split; registry datasets cut val from the train pool.  ``notes`` are notices
    for the user (e.g. a hub fallback), copied into the split report.
    """

    train: RowSource | None
    test: RowSource | None
    source: str
    origin: dict[str, str] = field(default_factory=dict)  # pool -> the hub split(s) it came from
    val: RowSource | None = None
    notes: list[str] = field(default_factory=list)


def mirror_folder(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> Path | None:
    """The dataset's folder inside ``data_dir`` if it exists there, else ``None``."""
    if data_dir is None:
        return None
    folder = Path(data_dir) / spec.mirror_folder
    return folder if folder.is_dir() else None


def check_data_dir(data_dir: str | os.PathLike) -> Path:
    """``data_dir`` as a Path; a UsageError if it is not an existing folder."""
    path = Path(data_dir)
    if not path.is_dir():
        raise UsageError(
            f"data dir {path} does not exist or is not a folder; fix --data-dir, or "
            "drop it to load from the hub"
        )
    return path


def mirror_splits(folder: Path) -> list[str]:
    """Split names present in a mirror folder, in either layout."""
    names = {path.stem for path in folder.glob("*.jsonl")}
    config_dir = export_config_dir(folder)
    if config_dir is not None:
        names |= {path.name for path in config_dir.iterdir() if any(path.glob("*.parquet"))}
    return sorted(names)


def export_config_dir(folder: Path, preferred: tuple[str | None, ...] = ()) -> Path | None:
    """The config folder of a parquet export inside ``folder`` (``<config>/<split>/*.parquet``).

    The first of ``preferred`` that exists wins (the table's export folder, the hub config,
    ``default``); otherwise the only config folder there is, else ``None``.
    """
    configs = [
        path
        for path in sorted(folder.iterdir())
        if path.is_dir()
        and any(child.is_dir() and any(child.glob("*.parquet")) for child in path.iterdir())
    ]
    by_name = {path.name: path for path in configs}
    for name in (*preferred, INFERRED_CONFIG):
        if name and name in by_name:
            return by_name[name]
    return configs[0] if len(configs) == 1 else None


def load_mirror_split(folder: Path, split: str) -> Rows | None:
    """One mirror split as hub-schema rows (a list), or ``None`` if the mirror lacks it."""
    rows = read_mirror_split(folder, split)
    return None if rows is None else rows.take(range(len(rows)))


def read_mirror_split(
    folder: Path, split: str, preferred: tuple[str | None, ...] = ()
) -> RowSource | None:
    """One mirror split as a row source, from ``<split>.jsonl`` or a parquet export."""
    path = folder / f"{split}.jsonl"
    if path.is_file():
        return as_source(load_data_file("json", path, split), origin=f"file {path}")
    config_dir = export_config_dir(folder, preferred)
    if config_dir is None or not any((config_dir / split).glob("*.parquet")):
        return None
    return as_source(load_export_split(folder, config_dir.name, split))


def load_export_split(
    base: str | os.PathLike, export_dir: str, split: str, revision: str | None = None
):
    """One split of a parquet export, local or on the hub: the call the hub fallback makes.

    ``load_dataset(base, "default", data_files={split: "<export_dir>/<split>/*.parquet"})``;
    only a hub repo gets a ``revision`` (the parquet branch).
    """
    files = export_data_files(export_dir, [split])
    if revision is not None:
        return hub.load_hub_dataset(
            str(base), config=INFERRED_CONFIG, split=split, revision=revision, data_files=files
        )
    with datasets_quietly() as datasets:
        return datasets.load_dataset(str(base), INFERRED_CONFIG, data_files=files, split=split)


class HubReader:
    """Reads one dataset's splits from the hub, keeping a fallback once one was needed."""

    def __init__(self, source: HubSource, dataset: str):
        self.source, self.dataset = source, dataset
        self.notes: list[str] = []

    def __call__(self, split: str) -> RowSource:
        with datasets_quietly():
            loaded = load_with_fallback(self.source, split, self.dataset)
        if loaded.notice:
            self.notes.append(loaded.notice)
        self.source = loaded.source  # later splits go straight to the branch that worked
        return as_source(loaded.data)


def load_hub_split(hub_id: str, config: str | None, split: str) -> Rows:
    """One hub split as rows (a list); the parquet-branch fallback applies as for the registry."""
    reader = HubReader(HubSource(hub_id, config, (split,)), hub_id)
    rows = reader(split)
    return rows.take(range(len(rows)))


def load_pools(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> Pools:
    """Load a registry dataset's pools: only from its mirror folder if ``data_dir`` is given."""
    if data_dir is not None:
        folder = require_mirror_folder(spec, data_dir)
        source = f"mirror {folder}"
        preferred = (spec.hub.export_dir, spec.hub_config)

        def read(split: str) -> RowSource | None:
            return read_mirror_split(folder, split, preferred)

        notes: list[str] = []
    elif spec.manual_download:
        raise _manual_download_error(spec)
    else:
        reader = HubReader(spec.hub, spec.name)
        source, read, notes = f"hub {spec.hub.describe()}", reader, reader.notes
    pools = _pooled(spec, read, source) if spec.pooled_test_size else _separate(spec, read, source)
    pools.notes = notes
    if pools.train is None and pools.test is None:
        raise UsageError(
            f"mirror folder {folder} has none of the splits {', '.join(spec.hub_splits)} "
            f"(found: {', '.join(mirror_splits(folder)) or 'nothing'})"
        )
    return pools


def require_mirror_folder(spec: DatasetSpec, data_dir: str | os.PathLike) -> Path:
    root = check_data_dir(data_dir)
    folder = mirror_folder(spec, root)
    if folder is not None:
        return folder
    if spec.manual_download:
        raise _manual_download_error(spec)
    raise UsageError(
        f"data dir {root} has no folder {spec.mirror_folder}/ for dataset {spec.name} "
        f"(layouts: {MIRROR_LAYOUTS}); add it, or drop --data-dir to use the hub"
    )


def _manual_download_error(spec: DatasetSpec) -> UsageError:
    return UsageError(
        f"dataset '{spec.name}' needs a manual download (hub {spec.hub_id}/{spec.hub_config}): "
        f"put {', '.join(s + '.jsonl' for s in spec.hub_splits)} in hub schema under "
        f"<data_dir>/{spec.mirror_folder}/ and pass --data-dir"
    )


def _separate(spec: DatasetSpec, read: SplitReader, source: str) -> Pools:
    parts = [read(split) for split in spec.train_splits]
    train = (
        None
        if any(part is None for part in parts)
        else (parts[0] if len(parts) == 1 else concat(parts))
    )
    return Pools(
        train=train,
        test=read(spec.test_split),
        source=source,
        origin={"train": "+".join(spec.train_splits), "test": spec.test_split},
    )


def _pooled(spec: DatasetSpec, read: SplitReader, source: str) -> Pools:
    """Concatenate the hub splits in order; a fixed permutation carves the test pool off."""
    parts = [read(split) for split in spec.train_splits]
    missing = [split for split, part in zip(spec.train_splits, parts) if part is None]
    if missing:
        raise UsageError(
            f"dataset '{spec.name}' pools all of {', '.join(spec.train_splits)}; "
            f"{source} lacks {', '.join(missing)}"
        )
    rows = concat(parts)
    order = np.random.default_rng(POOLED_SPLIT_SEED).permutation(len(rows))
    n = spec.pooled_test_size
    pooled = "+".join(spec.train_splits)
    return Pools(
        train=select(rows, order[n:]),
        test=select(rows, order[:n]),
        source=source,
        origin={
            "train": f"{pooled} minus the fixed test pool",
            "test": f"fixed {n} rows of {pooled}",
        },
    )


# --- user files -----------------------------------------------------------------------------


def is_user_file(name: str) -> bool:
    """Whether a dataset argument names a data file rather than a registry entry."""
    return Path(name).suffix.lower() in USER_FILE_LOADERS


def load_user_file(
    path: str | os.PathLike, text_field: str = "text", label_field: str = "label"
) -> Rows:
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
            raise UsageError(
                f"{path} has no field '{name}'; fields: {', '.join(table.column_names)}"
            )
    labels = [binary_label(value) for value in table[label_field]]
    if any(label is None for label in labels):
        bad = sorted({repr(v) for v, lab in zip(table[label_field], labels) if lab is None})
        raise UsageError(
            f"labels of {path} are not binary: found values {', '.join(bad[:5])}"
            + (" ..." if len(bad) > 5 else "")
        )
    texts = ["" if value is None else str(value) for value in table[text_field]]
    return [{"text": txt, "label": label} for txt, label in zip(texts, labels)]


def _read_table(loader: str, path: Path):
    try:
        with datasets_quietly() as datasets:
            return datasets.load_dataset(loader, data_files={"train": str(path)}, split="train")
    except Exception as exc:  # noqa: BLE001 - malformed files: the parser's complaint, one line
        raise UsageError(f"cannot read {path}: {first_line(exc)}") from None


@contextmanager
def datasets_quietly() -> Iterator[Any]:
    """The ``datasets`` module with its progress bars off: our stderr is for our own messages.

    Imported here because it is heavy and only needed once rows are actually loaded.
    """
    import datasets
    from datasets.utils import logging as datasets_logging

    was_disabled = datasets.are_progress_bars_disabled()
    verbosity = datasets_logging.get_verbosity()
    datasets.disable_progress_bars()
    # Its loaders log a file's parse error ("Failed to load JSON from file ...") before raising
    # a vaguer one; the error we raise says it in one line, so its log stays silent.
    datasets_logging.set_verbosity(datasets_logging.CRITICAL)
    try:
        yield datasets
    finally:
        datasets_logging.set_verbosity(verbosity)
        if not was_disabled:
            datasets.enable_progress_bars()


def load_data_file(loader: str, path: Path, split: str = "train"):
    """One local data file through ``datasets`` (``loader``: json, csv or parquet).

    An empty, malformed or undecodable file is one UsageError naming the file and, where it can
    be found, the line and what is wrong there (not datasets' "An error occurred while
    generating the dataset").
    """
    path = Path(path)
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or first_line(exc)}") from None
    if empty:
        raise UsageError(f"cannot read {path}: the file is empty")
    try:
        with datasets_quietly() as datasets:
            data = datasets.load_dataset(loader, data_files={split: str(path)}, split=split)
    except Exception as exc:  # noqa: BLE001 - malformed files: where and what, one line
        raise UsageError(f"cannot read {path}: {bad_file_reason(path, exc)}") from None
    if data.num_rows == 0:
        raise UsageError(f"cannot read {path}: it holds no rows")
    return data


def bad_file_reason(path: Path, exc: BaseException | None = None) -> str:
    """Why ``path`` cannot be read: its first undecodable (or, JSON Lines, unparseable) line,
    else the innermost error ``exc`` wraps."""
    found = first_bad_line(path)
    if found is not None:
        return found
    if exc is None:
        return "unreadable"
    while exc.__cause__ is not None or (
        exc.__context__ is not None and not exc.__suppress_context__
    ):
        exc = exc.__cause__ or exc.__context__
    return first_line(exc)


def first_bad_line(path: Path) -> str | None:
    """``line 7 is not valid UTF-8 ...`` / ``line 10 is not valid JSON ...`` for a text data
    file (JSON Lines, JSON, CSV), or None when every line decodes (and parses)."""
    import json

    path = Path(path)
    if path.suffix.lower() not in (".jsonl", ".json", ".csv"):
        return None
    try:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return (
                        f"line {number} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                        f"column {exc.start + 1}); save the file as UTF-8"
                    )
                if path.suffix.lower() == ".jsonl" and line.strip():
                    try:
                        json.loads(line.strip())
                    except ValueError as exc:
                        return f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})"
    except OSError as exc:
        return exc.strerror or first_line(exc)
    return None


def binary_label(value: Any) -> int | None:
    """0 or 1 when ``value`` spells a binary label (bool, 0/1 number, "0"/"1" text), else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return None
