"""The activation cache: extraction (one forward pass, every requested layer) and HDF5 storage.

Reading the cache (:mod:`.store`) needs only h5py; planning and extracting need torch and
transformers, so those names are imported on first use: ``w2sprobe cache ls`` stays instant.
"""

from importlib import import_module

from .store import ActivationStore, CacheEntry, list_entries, verify

_LAZY = {
    "extract": ".extraction",
    "cached_layers": ".lookup",
    "find_cached_layer": ".lookup",
    "ExtractPlan": ".plan",
    "ExtractRequest": ".plan",
    "ExtractResult": ".plan",
    "parse_layers": ".plan",
    "plan_extraction": ".plan",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ActivationStore", "CacheEntry", "list_entries", "verify", *_LAZY]
