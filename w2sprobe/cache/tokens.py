"""Token-level activations: a bounded slice of each example's tokens at the requested layers.

Made only when asked (``w2sprobe extract --tokens last:8``), in the same forward pass as the
pooled files, into a file kind of its own, ``<cache>/tokens/<model>/<dataset>/<key>.h5``, so
no reader of pooled activations ever meets one.  A spec is ``last:K`` (the last K tokens of
each example) or ``A:B`` (positions A..B-1 of the tokenized text, 0 = the first token).

Layout (ragged-safe by padding, with a length column): besides ``ids`` and ``labels``, each
split group holds ``layer_016`` (N, K, D) in the store dtype, ``token_ids`` (N, K) int64,
``positions`` (N, K) int32 (the slot's position in the tokenized text) and ``lengths`` (N,)
int32.  Row i's tokens are slots ``0 .. lengths[i] - 1`` in text order; slots past them hold
zeros and token id / position -1 (an example shorter than K, or than A for ``A:B``).  Padding
rather than a flat array with offsets keeps every row at a fixed place, so the file is
preallocated, written a window at a time and resumed after a crash like a pooled file, and its
size is known before any forward pass: rows x K x layers x hidden x bytes.  A request whose
size is over ``--max-bytes`` (default :data:`DEFAULT_MAX_BYTES`) is refused with that size.

>>> store = TokenStore.open(path)
>>> token_ids, acts = store.example("test", 3, layer=6)   # (n,), (n, D): that example's tokens
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from ..errors import UsageError, first_line, human_bytes
from ..hashing import short_hash
from ..vocabulary import DEFAULT_MAX_TOKEN_BYTES
from ..workspace import kind_root, slug_dir
from .encoding import decode, h5_dtype
from .layout import PARTIAL_SUFFIX, layer_name
from .plan import ExtractPlan, file_attrs
from .token_spec import TokenSpec, parse_token_spec
from .writer import Extra, manifest_json

if TYPE_CHECKING:
    import torch

#: Bytes a token-level file may take unless ``--max-bytes`` allows more (2 GiB).
DEFAULT_MAX_BYTES = DEFAULT_MAX_TOKEN_BYTES

#: The folder of token-level files under the cache, beside ``acts``.
TOKENS_DIR = "tokens"


def slot_positions(lengths: torch.Tensor, spec: TokenSpec) -> torch.Tensor:
    """(rows, K) position of each slot in its row's tokens (``lengths``: tokens per row);
    -1 where the row has no token for the slot.  The one place the selection rule lives."""
    import torch  # here, not at import: reading, exporting and verifying token files need none

    slot = torch.arange(spec.slots, device=lengths.device)
    lengths = lengths.to(torch.long).unsqueeze(1)
    if spec.start is None:
        positions = (lengths - spec.slots).clamp_min(0) + slot
        valid = slot < lengths.clamp_max(spec.slots)
    else:
        positions = spec.start + slot.unsqueeze(0).expand(lengths.shape[0], -1)
        valid = positions < lengths
    return torch.where(valid, positions, -1)


def token_reducer(spec: TokenSpec):
    """The reducer (:mod:`.readout`) of a spec: (batch, seq, D) -> (batch, K, D), zero padded."""

    def reduce(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = slot_positions(mask.sum(dim=1), spec)
        index = positions.clamp_min(0).unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        picked = hidden.gather(1, index)
        return picked * (positions >= 0).unsqueeze(-1).to(hidden.dtype)

    return reduce


def token_extras(spec: TokenSpec):
    """(input ids, mask) of a window -> its per-row ``token_ids``, ``positions``, ``lengths``."""

    def extras(input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        positions = slot_positions(torch.from_numpy(mask.sum(axis=1)), spec).numpy()
        ids = np.take_along_axis(input_ids, np.maximum(positions, 0), axis=1)
        return {
            "token_ids": np.where(positions >= 0, ids, -1).astype(np.int64),
            "positions": positions.astype(np.int32),
            "lengths": (positions >= 0).sum(axis=1).astype(np.int32),
        }

    return extras


def extra_datasets(spec: TokenSpec) -> dict[str, Extra]:
    """The per-row datasets a token file holds beside its layers (:func:`token_extras`)."""
    return {
        "token_ids": ("int64", (spec.slots,)),
        "positions": ("int32", (spec.slots,)),
        "lengths": ("int32", ()),
    }


@dataclass
class TokenPlan:
    """A token-level file: the pooled extraction it rides on, its spec, key, path and size."""

    base: ExtractPlan
    spec: TokenSpec
    key: str
    path: Path
    manifest: dict
    #: Bytes of its activations (rows x K x layers x hidden x bytes per value).
    size: int

    @property
    def row_shape(self) -> tuple[int, int]:
        return (self.spec.slots, self.base.hidden_size)

    def attrs(self) -> dict:
        """Root attributes: the pooled file's, with the token spec in place of the pooling."""
        attrs = {k: v for k, v in file_attrs(self.base).items() if k != "pooling"}
        return {
            **attrs,
            "kind": TOKENS_DIR,
            "tokens": self.spec.text,
            "key": self.key,
            "manifest": manifest_json(self.manifest),
        }


def plan_tokens(base: ExtractPlan, spec: TokenSpec, cache_dir: Path, max_bytes: int) -> TokenPlan:
    """The token file of ``spec`` beside ``base``'s extraction; a UsageError stating its size
    when that is over ``max_bytes``."""
    manifest = {k: v for k, v in base.manifest.items() if k != "pooling"}
    manifest["tokens"] = spec.text
    rows = sum(manifest["split_sizes"].values())
    itemsize = h5_dtype(base.store_dtype).itemsize
    size = rows * spec.slots * len(base.layers) * base.hidden_size * itemsize
    if size > max_bytes:
        raise UsageError(
            f"token activations {spec.text} need {human_bytes(size)} ({rows} rows x "
            f"{spec.slots} tokens x {len(base.layers)} layers x {base.hidden_size} x {itemsize} "
            f"bytes), over the limit of {human_bytes(max_bytes)}; allow it with --max-bytes "
            f"{size} or ask for fewer layers or tokens"
        )
    key = short_hash(manifest)
    path = token_path(cache_dir, base.ref.name, manifest["dataset"], key)
    return TokenPlan(base, spec, key, path, manifest, size)


def token_path(cache_dir: Path, model: str, dataset: str, key: str) -> Path:
    """``<cache>/tokens/<model-slug>/<dataset-slug>/<key>.h5``."""
    return slug_dir(slug_dir(kind_root(cache_dir, TOKENS_DIR), model), dataset) / f"{key}.h5"


class TokenStore:
    """A complete token-level file opened read-only."""

    def __init__(self, path: Path, handle: h5py.File):
        self.path = path
        self._h5 = handle
        self.manifest: dict = json.loads(handle.attrs["manifest"])
        self.spec = parse_token_spec(str(handle.attrs["tokens"]))
        self.layers = [int(x) for x in handle.attrs["layers"]]
        self.store_dtype = str(handle.attrs["store_dtype"])

    @classmethod
    def open(cls, path: str | Path) -> TokenStore:
        """Open a complete token file; partial, corrupt or pooled files raise UsageError."""
        path = Path(path)
        if path.name.endswith(PARTIAL_SUFFIX):
            raise UsageError(f"{path} is a partial file; rerun the extraction to complete it")
        try:
            handle = h5py.File(path, "r")
        except OSError as exc:
            raise UsageError(f"cannot open token file {path}: {first_line(exc)}") from None
        if not bool(handle.attrs.get("complete", False)) or "tokens" not in handle.attrs:
            handle.close()
            raise UsageError(f"{path} is not a complete token-level activation file")
        return cls(path, handle)

    def __enter__(self) -> TokenStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._h5.close()

    @property
    def attrs(self) -> dict:
        return dict(self._h5.attrs)

    @property
    def splits(self) -> list[str]:
        return list(self._h5.keys())

    def ids(self, split: str) -> list[str]:
        return [x.decode() if isinstance(x, bytes) else x for x in self._h5[split]["ids"][()]]

    def labels(self, split: str) -> np.ndarray:
        return self._h5[split]["labels"][()]

    def lengths(self, split: str) -> np.ndarray:
        """(N,) tokens stored per example (K, or fewer for a shorter example)."""
        return self._h5[split]["lengths"][()]

    def token_ids(self, split: str) -> np.ndarray:
        """(N, K) token ids, -1 past each example's length."""
        return self._h5[split]["token_ids"][()]

    def positions(self, split: str) -> np.ndarray:
        """(N, K) positions of the slots in the tokenized texts, -1 past each length."""
        return self._h5[split]["positions"][()]

    def get(self, split: str, layer: int, rows: slice | None = None) -> np.ndarray:
        """(N, K, D) activations of ``layer`` (zeros past each length), float16 or float32."""
        if layer not in self.layers:
            raise UsageError(f"layer {layer} is not in {self.path}; stored layers: {self.layers}")
        data = self._h5[split][layer_name(layer)]
        return decode(data[()] if rows is None else data[rows], self.store_dtype)

    def example(self, split: str, row: int, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(token ids (n,), activations (n, D)) of one example's stored tokens, in text order."""
        n = int(self._h5[split]["lengths"][row])
        ids = self._h5[split]["token_ids"][row, :n]
        return ids, self.get(split, layer, rows=slice(row, row + 1))[0, :n]
