"""Reading activation files: the notebook API and what ``cache ls`` / ``cache verify`` use.

>>> store = ActivationStore.open("cache/acts/mpnet/sst2/3f2a....h5")
>>> x = store.get("strong_train", 12)            # (N, 768) float16, memory-mapped
                                                  # (float32 for bfloat16 and float32 files)
>>> x = store.get("test", 12, rows=slice(0, 100)) # reads only those rows
>>> y = store.labels("test"); ids = store.ids("test")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import UsageError, first_line
from ..workspace import cache_of, kind_root, rm_hint
from .encoding import DEFAULT_COMPRESSION, DEFAULT_STORE_DTYPE, decode
from .layout import PARTIAL_SUFFIX, layer_name
from .token_spec import parse_token_spec


class ActivationStore:
    """A complete activation file opened read-only.

    Activations come back as NumPy arrays: contiguous layers are memory-mapped (nothing is
    read until used), and ``rows=`` reads only the requested rows.
    """

    def __init__(self, path: Path, handle: h5py.File):
        self.path = path
        self._h5 = handle
        self.manifest: dict = json.loads(handle.attrs["manifest"])

    @classmethod
    def open(cls, path: str | Path) -> "ActivationStore":
        """Open a complete file; partial, corrupt or incomplete files raise UsageError."""
        path = Path(path)
        if path.name.endswith(PARTIAL_SUFFIX):
            raise UsageError(f"{path} is a partial file; rerun the extraction to complete it")
        try:
            handle = h5py.File(path, "r")
        except FileNotFoundError:
            raise UsageError(f"activation file {path} does not exist") from None
        except OSError as exc:
            raise UsageError(
                f"activation file {path} is corrupt: {first_line(exc)}; {_rm(path)}"
            ) from None
        if not bool(handle.attrs.get("complete", False)) or "manifest" not in handle.attrs:
            handle.close()
            raise UsageError(f"activation file {path} is not marked complete; {_rm(path)}")
        return cls(path, handle)

    # -- metadata ------------------------------------------------------------------------
    @property
    def attrs(self) -> dict:
        return dict(self._h5.attrs)

    @property
    def layers(self) -> list[int]:
        return [int(layer) for layer in self._h5.attrs["layers"]]

    @property
    def store_dtype(self) -> str:
        """How the activations are stored: float16 (files without the attribute), bfloat16
        or float32 (:mod:`.encoding`)."""
        return str(self._h5.attrs.get("store_dtype", DEFAULT_STORE_DTYPE))

    @property
    def compression(self) -> str:
        return str(self._h5.attrs.get("compression", DEFAULT_COMPRESSION))

    @property
    def splits(self) -> list[str]:
        return list(self._h5.keys())

    def num_rows(self, split: str) -> int:
        return len(self._group(split)["ids"])

    # -- data ----------------------------------------------------------------------------
    def ids(self, split: str) -> np.ndarray:
        """Example ids of ``split`` (str), aligned with rows of every layer."""
        return self._group(split)["ids"].asstr()[:]

    def labels(self, split: str) -> np.ndarray:
        """Ground-truth labels (float32 0/1) of ``split``."""
        return self._group(split)["labels"][:]

    def get(self, split: str, layer: int, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Activations (rows, hidden) of one split and layer: float16 as stored by default,
        float32 for float32 and bfloat16 files (bfloat16 widened exactly).

        Without ``rows`` the whole layer is memory-mapped when its storage allows it
        (uncompressed float16 and float32); with ``rows`` (a slice or sorted index array)
        only those rows are read.
        """
        dataset = self._layer(split, layer)
        if rows is None:
            mapped = _memmap(self.path, dataset)
            return decode(mapped if mapped is not None else dataset[:], self.store_dtype)
        return decode(dataset[rows], self.store_dtype)

    def torch(self, split: str, layer: int, *, dtype=None, device="cpu"):
        """:meth:`get` as a torch tensor (default float32, the dtype probe math wants)."""
        import torch

        array = np.array(self.get(split, layer))  # a writable copy, not the read-only map
        return torch.from_numpy(array).to(device=device, dtype=dtype or torch.float32)

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "ActivationStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------
    def _group(self, split: str) -> h5py.Group:
        if split not in self._h5:
            raise UsageError(
                f"split '{split}' is not in {self.path.name}; it has {', '.join(self.splits)}"
            )
        return self._h5[split]

    def _layer(self, split: str, layer: int) -> h5py.Dataset:
        group = self._group(split)
        name = layer_name(layer)
        if name not in group:
            raise UsageError(
                f"layer {layer} is not in {self.path.name}; cached layers: {self.layers}"
            )
        return group[name]


def _rm(path: Path) -> str:
    """``remove it with: w2sprobe cache rm <key>`` for the activation file ``path``."""
    return f"remove it with: {rm_hint(cache_of(path, 'acts'), path.name.split('.h5')[0])}"


def _memmap(path: Path, dataset: h5py.Dataset) -> np.ndarray | None:
    """A read-only memory map of a contiguous, unfiltered dataset, else ``None``."""
    offset = dataset.id.get_offset()
    if dataset.chunks is not None or offset is None:
        return None
    return np.memmap(path, mode="r", dtype=dataset.dtype, offset=offset, shape=dataset.shape)


def serving_order(holder: tuple[Path, list[int]]) -> tuple:
    """Sort key of the files made alike that could serve a layer: most layers first, then the
    newest, then by path (a stable choice).  Probes read the first
    (:func:`w2sprobe.cache.lookup.cached_layers`) and ``cache ls`` links them to it."""
    path, layers = holder
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return (-len(layers), -mtime, str(path))


# --------------------------------------------------------------------------- listing


@dataclass
class CacheEntry:
    """One activation file as ``cache ls`` shows it."""

    path: Path
    key: str
    model: str
    dataset: str
    layers: list[int]
    rows: int
    size_bytes: int
    complete: bool
    problem: str | None = None

    def as_dict(self) -> dict:
        return {**self.__dict__, "path": str(self.path)}


def list_entries(cache_dir: Path, kind: str = "acts") -> list[CacheEntry]:
    """Every activation file (complete and partial) under ``<cache_dir>/acts``, or with
    ``kind="tokens"`` every token-level file (:mod:`.tokens`, the same writer and layout)."""
    root = kind_root(cache_dir, kind)
    if not root.is_dir():
        return []
    files = sorted(p for p in root.rglob("*") if p.name.endswith((".h5", ".h5" + PARTIAL_SUFFIX)))
    return [_describe(path) for path in files]


def _describe(path: Path) -> CacheEntry:
    key = path.name.split(".h5")[0]
    entry = CacheEntry(
        path=path,
        key=key,
        model="?",
        dataset="?",
        layers=[],
        rows=0,
        size_bytes=path.stat().st_size,
        complete=False,
    )
    try:
        with h5py.File(path, "r") as handle:
            entry.model = str(handle.attrs.get("model", "?"))
            entry.dataset = str(handle.attrs.get("dataset", "?"))
            entry.layers = [int(x) for x in handle.attrs.get("layers", [])]
            entry.rows = sum(len(handle[s]["ids"]) for s in handle if "ids" in handle[s])
            entry.complete = bool(handle.attrs.get("complete", False)) and not path.name.endswith(
                PARTIAL_SUFFIX
            )
    except (OSError, KeyError) as exc:
        entry.problem = f"unreadable: {exc}"
    return entry


def verify(path: Path) -> list[str]:
    """Problems found in one activation file (empty list = healthy).

    Checks: it opens, it is complete (not partial), its manifest matches its attrs, every
    split has ids/labels/each layer with matching row counts and the manifest's hidden size,
    every row was committed, and the activations are finite (read in blocks).  A token-level
    file (:mod:`.tokens`, root attribute ``tokens``) is checked the same way with rows of
    (K, hidden), plus its ``token_ids`` / ``positions`` / ``lengths`` columns.
    """
    problems: list[str] = []
    if path.name.endswith(PARTIAL_SUFFIX):
        problems.append("partial (extraction not finished; rerun it to resume)")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        return problems + [f"cannot be opened (truncated or corrupt): {exc}"]
    with handle:
        problems += _verify_handle(handle, partial=bool(problems))
    return problems


def _verify_handle(handle: h5py.File, partial: bool) -> list[str]:
    problems: list[str] = []
    try:
        manifest = json.loads(handle.attrs["manifest"])
        layers = [int(x) for x in handle.attrs["layers"]]
        hidden = int(handle.attrs["hidden_size"])
    except (KeyError, ValueError) as exc:
        return [f"manifest missing or unreadable: {exc}"]
    if manifest.get("layers") != layers:
        problems.append("manifest layers disagree with the file's layers attribute")
    if not partial and not bool(handle.attrs.get("complete", False)):
        problems.append("not marked complete")
    for split in handle:
        group = handle[split]
        row_shape: tuple[int, ...] = (hidden,)
        if "tokens" in handle.attrs:
            slots, found = _token_slots(group, split, str(handle.attrs["tokens"]))
            problems += found
            if not slots:  # no row shape to check the layers against
                continue
            row_shape = (slots, hidden)
        problems += _verify_split(group, split, layers, row_shape, partial, handle)
    return problems


def _token_slots(group: h5py.Group, split: str, spec: str) -> tuple[int, list[str]]:
    """(K, problems) of one split of a token-level file: its per-row columns (``token_ids``
    and ``positions`` (N, K), ``lengths`` (N,)) have the rows of ``ids``, K slots (the spec's
    ``last:K`` or ``A:B``), and every length lies in 0..K."""
    try:
        rows = len(group["ids"])
        slots = group["token_ids"].shape[1] if group["token_ids"].ndim == 2 else -1
        shapes = {name: group[name].shape for name in ("token_ids", "positions", "lengths")}
        lengths = group["lengths"][()]
    except (KeyError, OSError) as exc:
        return 0, [f"{split}: token columns unreadable ({exc})"]
    try:
        want = parse_token_spec(spec).slots
    except UsageError:
        want = None
    if slots != want:
        return 0, [f"{split}: token_ids has {slots} slots, --tokens {spec} asks for {want}"]
    expected = {"token_ids": (rows, slots), "positions": (rows, slots), "lengths": (rows,)}
    problems = [
        f"{split}/{name}: shape {shapes[name]}, expected {shape}"
        for name, shape in expected.items()
        if shapes[name] != shape
    ]
    if not problems and ((lengths < 0) | (lengths > slots)).any():
        problems.append(f"{split}/lengths: values outside 0..{slots}")
    if not problems:
        problems += _verify_padding(group, split, lengths)
    return slots, problems


def _verify_padding(group: h5py.Group, split: str, lengths: np.ndarray) -> list[str]:
    """Row i's first ``lengths[i]`` slots hold a token (position >= 0) and the rest the -1
    padding, in ``positions`` and ``token_ids`` alike (read in blocks of rows)."""
    block = 1 << 16
    for name in ("positions", "token_ids"):
        for start in range(0, len(lengths), block):
            stored = group[name][start : start + block]
            pad = np.arange(stored.shape[1]) >= lengths[start : start + block, None]
            if (stored[pad] != -1).any() or (stored[~pad] < 0).any():
                return [f"{split}/{name}: padding disagrees with lengths near row {start}"]
    return []


def _verify_split(
    group: h5py.Group,
    split: str,
    layers: list[int],
    row_shape: tuple[int, ...],
    partial: bool,
    handle,
) -> list[str]:
    problems = []
    try:
        rows = len(group["ids"])
        if len(group["labels"]) != rows:
            problems.append(f"{split}: labels has {len(group['labels'])} rows, ids {rows}")
        committed = int(group.attrs.get("committed_rows", -1))
        if committed != rows and not partial:
            problems.append(f"{split}: only {committed} of {rows} rows committed")
        for layer in layers:
            problems += _verify_layer(group, split, layer, rows, row_shape, handle)
    except (KeyError, OSError) as exc:
        problems.append(f"{split}: unreadable ({exc})")
    return problems


def _verify_layer(
    group: h5py.Group, split: str, layer: int, rows: int, row_shape: tuple[int, ...], handle
) -> list[str]:
    name = layer_name(layer)
    if name not in group:
        return [f"{split}: {name} missing"]
    dataset = group[name]
    if dataset.shape != (rows, *row_shape):
        return [f"{split}/{name}: shape {dataset.shape}, expected {(rows, *row_shape)}"]
    block = max(1, (64 << 20) // max(1, int(np.prod(row_shape)) * dataset.dtype.itemsize))
    for start in range(0, rows, block):
        stored = dataset[start : start + block]
        if not np.isfinite(
            decode(stored, str(handle.attrs.get("store_dtype", DEFAULT_STORE_DTYPE)))
        ).all():
            return [f"{split}/{name}: non-finite values near row {start}"]
    return []
