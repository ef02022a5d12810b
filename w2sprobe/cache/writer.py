"""Crash-safe writing of one activation file.

The file is created as ``<key>.h5.partial`` with every dataset at its final shape and its
storage allocated up front, so later writes only fill raw data; each split group carries a
``committed_rows`` counter that is advanced (and the file flushed) only after a window of
rows is fully written.  After ``kill -9`` the same request reopens the partial file and
continues after the last committed window; rows past the counter are simply rewritten.
When every split is committed the file is marked ``complete`` and renamed atomically, so a
reader never sees a half-written ``<key>.h5``.

A filesystem without room for the rest of the file is refused before anything is written, and
a disk that fills up meanwhile (``ENOSPC``/``EDQUOT``) raises :class:`~w2sprobe.errors.DiskFull`
naming the file and the bytes it needs; the partial file keeps its committed rows, so the same
command resumes once there is space.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..atomic import disk_full, free_bytes, is_disk_full
from ..errors import DiskFull
from .encoding import (
    DEFAULT_COMPRESSION,
    DEFAULT_STORE_DTYPE,
    dataset_options,
    encode,
    h5_dtype,
)
from .layout import layer_name, partial_path

#: A per-row dataset beside the layers: (NumPy dtype, shape of one row), e.g. token ids (K,).
Extra = tuple[str, tuple[int, ...]]


@dataclass(frozen=True)
class SplitData:
    """What the file must hold for one split besides activations."""

    name: str
    ids: list[str]
    labels: np.ndarray


class PartialActivationFile:
    """An activation file being written; use :meth:`open` to create or resume one."""

    def __init__(self, final_path: Path, handle: h5py.File, layers: list[int], size: int = 0):
        self.final_path = final_path
        self.store_dtype = str(handle.attrs.get("store_dtype", DEFAULT_STORE_DTYPE))
        self.path = partial_path(final_path)
        self.layers = layers
        self.size = size  # bytes of activations the whole file holds (for DiskFull messages)
        self._h5 = handle

    @classmethod
    def open(
        cls,
        final_path: Path,
        attrs: dict,
        splits: list[SplitData],
        layers: list[int],
        hidden_size: int | tuple[int, ...],
        extras: dict[str, Extra] | None = None,
    ) -> "PartialActivationFile":
        """Resume the partial file if it was made for the same manifest, else start it afresh.

        ``attrs`` may name a ``store_dtype`` and ``compression`` (:mod:`.encoding`); without
        them the file is float16, uncompressed.  ``hidden_size`` is the shape of one row of a
        layer: ``D`` for pooled activations, ``(K, D)`` for K token slots (:mod:`.tokens`);
        ``extras``: further per-row datasets of each split (token ids), written with each
        window.
        """
        path = partial_path(final_path)
        row_shape = (hidden_size,) if isinstance(hidden_size, int) else tuple(hidden_size)
        itemsize = h5_dtype(attrs.get("store_dtype", DEFAULT_STORE_DTYPE)).itemsize
        # uncompressed bytes: an upper bound for a compressed file, checked the same way
        size = sum(len(s.ids) for s in splits) * len(layers) * int(np.prod(row_shape)) * itemsize
        handle = _reopen_if_same(path, attrs["manifest"])
        if handle is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _check_space(path, size)
            with _space(path, size):
                handle = _create(path, attrs, splits, layers, row_shape, extras or {})
        else:
            _check_space(path, size, handle)
        return cls(final_path, handle, layers, size)

    def committed(self, split: str) -> int:
        """Rows of ``split`` already written and committed."""
        return int(self._h5[split].attrs["committed_rows"])

    def write_window(
        self, split: str, start: int, acts: np.ndarray, extras: dict[str, np.ndarray] | None = None
    ) -> None:
        """Write ``acts`` (layers, rows, *row shape; floats, encoded here for the file's storage
        dtype) and ``extras`` (name -> rows, ...) at rows ``start:`` of ``split`` and commit them.

        Windows are written in order, so the committed rows are always a prefix of the split.
        """
        group = self._h5[split]
        stop = start + acts.shape[1]
        with _space(self.path, self.size):
            for index, layer in enumerate(self.layers):
                group[layer_name(layer)][start:stop] = encode(acts[index], self.store_dtype)
            for name, values in (extras or {}).items():
                group[name][start:stop] = values
            self._h5.flush()  # data reaches the OS before the counter says it is there
            group.attrs.modify("committed_rows", np.int64(stop))
            self._h5.flush()

    def finish(self) -> Path:
        """Mark the file complete, close it and rename it to its final name (atomic)."""
        with _space(self.path, self.size):
            self._h5.attrs.modify("complete", True)
            self._h5.close()
        os.replace(self.path, self.final_path)
        return self.final_path

    def close(self) -> None:
        """Close without completing (the partial file stays for a later resume).

        After a full disk the final flush fails too; the committed rows are on disk already,
        and the error that stopped the writing is the one to report.
        """
        if self._h5.id.valid:
            try:
                self._h5.close()
            except OSError as exc:
                if not is_disk_full(exc, self.path.parent):
                    raise


def _check_space(path: Path, size: int, handle: h5py.File | None = None) -> None:
    """Refuse to start when the filesystem cannot hold the rest of the file: HDF5 copes badly
    with a disk that fills up under it (it can even crash), and no forward pass is wasted."""
    have = 0
    if path.exists():
        have = path.stat().st_blocks * 512  # what is already allocated of a resumed file
    needed = max(0, size - have) + SPACE_MARGIN
    free = free_bytes(path.parent)
    if free is not None and free < needed:
        if handle is not None:
            handle.close()
        raise DiskFull(path, needed, free)


#: Room for HDF5's own metadata beyond the activations.
SPACE_MARGIN = 1 << 20


@contextmanager
def _space(path: Path, size: int) -> Iterator[None]:
    """Turn a full disk while writing ``path`` into one DiskFull error."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc, path.parent):
            raise disk_full(path, size) from None
        raise


def _reopen_if_same(path: Path, manifest: str) -> h5py.File | None:
    """The existing partial file if it is readable and was started for ``manifest``."""
    if not path.exists():
        return None
    try:
        handle = h5py.File(path, "r+")
    except OSError:  # torn by a crash mid-metadata-write: start over
        path.unlink()
        return None
    if handle.attrs.get("manifest") != manifest:
        handle.close()
        path.unlink()
        return None
    return handle


def _create(
    path: Path,
    attrs: dict,
    splits: list[SplitData],
    layers: list[int],
    row_shape: tuple[int, ...],
    extras: dict[str, Extra],
) -> h5py.File:
    handle = h5py.File(path, "w", track_order=True)
    for name, value in attrs.items():
        handle.attrs[name] = value
    handle.attrs["complete"] = False
    store_dtype = h5_dtype(str(attrs.get("store_dtype", DEFAULT_STORE_DTYPE)))
    compression = str(attrs.get("compression", DEFAULT_COMPRESSION))
    for split in splits:
        _create_split(handle, split, layers, row_shape, store_dtype, compression, extras)
    handle.flush()
    return handle


def _create_split(
    handle: h5py.File,
    split: SplitData,
    layers: list[int],
    row_shape: tuple[int, ...],
    dtype: np.dtype,
    compression: str,
    extras: dict[str, Extra],
) -> None:
    group = handle.create_group(split.name, track_order=True)
    group.create_dataset("ids", data=np.array(split.ids, dtype=object), dtype=h5py.string_dtype())
    group.create_dataset("labels", data=np.asarray(split.labels, dtype=np.float32))
    rows = len(split.ids)
    for name, (extra_dtype, shape) in extras.items():
        group.create_dataset(name, shape=(rows, *shape), dtype=extra_dtype, track_times=False)
    compressed = dataset_options(compression, rows, row_shape)
    for layer in layers:
        # Uncompressed: contiguous, allocated now, so writes never change metadata and readers
        # can memory-map. Compressed: chunks, allocated as they are written.
        group.create_dataset(
            layer_name(layer),
            shape=(rows, *row_shape),
            dtype=dtype,
            track_times=False,
            **(compressed or {"dcpl": _early_allocation()}),
        )
    group.attrs["committed_rows"] = np.int64(0)


def _early_allocation():
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    return dcpl


def manifest_json(manifest: dict) -> str:
    """The manifest as stored in the file (sorted keys: byte-stable across runs)."""
    return json.dumps(manifest, sort_keys=True)
