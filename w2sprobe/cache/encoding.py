"""How activations are stored: the storage dtype and the HDF5 compression of each layer.

``float16`` (the default) and ``float32`` are HDF5's own float types. HDF5 has no bfloat16,
so ``bfloat16`` is stored as the upper 16 bits of each float32 (``uint16``, rounded to nearest
even, what ``torch.bfloat16`` does) and the file's ``store_dtype`` attribute says so; readers
decode it to float32 with NumPy alone (no torch). Files made before the attribute existed are
float16.

Compression (``gzip`` or ``lzf``, with HDF5's byte shuffle, which groups the exponent bytes of
neighbouring floats) needs chunked storage: chunks of :data:`CHUNK_ROWS` rows, written a window
at a time, so a crash-resume still rewrites only uncommitted rows. Compressed layers are read
through HDF5 (no memory map); uncompressed ones stay contiguous and memory-mappable.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError

STORE_DTYPES = ("float16", "bfloat16", "float32")
COMPRESSIONS = ("none", "gzip", "lzf")
DEFAULT_STORE_DTYPE, DEFAULT_COMPRESSION = "float16", "none"
#: Rows per HDF5 chunk of a compressed layer (256 x 768 float16 = 384 KiB).
CHUNK_ROWS = 256


def check_store_dtype(name: str) -> str:
    if name not in STORE_DTYPES:
        raise UsageError(f"unknown store dtype '{name}'; choose one of {', '.join(STORE_DTYPES)}")
    return name


def check_compression(name: str) -> str:
    if name not in COMPRESSIONS:
        raise UsageError(f"unknown compression '{name}'; choose one of {', '.join(COMPRESSIONS)}")
    return name


def h5_dtype(store_dtype: str) -> np.dtype:
    """The NumPy dtype HDF5 stores for ``store_dtype``."""
    return np.dtype(
        {"float16": np.float16, "bfloat16": np.uint16, "float32": np.float32}[store_dtype]
    )


def window_dtype(store_dtype: str) -> np.dtype:
    """The dtype an extraction window is computed in before :func:`encode`: float16 when that
    is what is stored (the rounding of every file before this option), float32 otherwise."""
    return np.dtype(np.float16 if store_dtype == "float16" else np.float32)


def encode(acts: np.ndarray, store_dtype: str) -> np.ndarray:
    """``acts`` as stored: cast, or for bfloat16 the rounded upper half of each float32."""
    if store_dtype != "bfloat16":
        return np.asarray(acts, dtype=h5_dtype(store_dtype))
    bits = np.ascontiguousarray(acts, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)  # round half to even
    return ((bits + rounding) >> 16).astype(np.uint16)


def decode(stored: np.ndarray, store_dtype: str) -> np.ndarray:
    """Stored values as floats: float16/float32 unchanged, bfloat16 widened to float32."""
    if store_dtype != "bfloat16":
        return stored
    return (np.asarray(stored, dtype=np.uint32) << 16).view(np.float32)


def dataset_options(compression: str, rows: int, hidden: int | tuple[int, ...]) -> dict:
    """``h5py.create_dataset`` keywords for a layer of ``rows`` x ``hidden`` (one row's shape:
    ``D``, or ``(K, D)`` for token slots)."""
    if compression == "none" or rows == 0:
        return {}
    row_shape = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    return {
        "compression": compression,
        "shuffle": True,
        "chunks": (min(rows, CHUNK_ROWS), *row_shape),
    }
