"""The activation cache: extraction (one forward pass, every requested layer) and HDF5 storage."""

from .extraction import extract
from .lookup import cached_layers, find_cached_layer
from .plan import ExtractPlan, ExtractRequest, ExtractResult, parse_layers, plan_extraction
from .store import ActivationStore, CacheEntry, list_entries, verify

__all__ = [
    "ActivationStore",
    "CacheEntry",
    "ExtractPlan",
    "ExtractRequest",
    "ExtractResult",
    "cached_layers",
    "extract",
    "find_cached_layer",
    "list_entries",
    "parse_layers",
    "plan_extraction",
    "verify",
]
