"""Probes fit on cached activations: kNN, logistic regression, TopoFilter, plug-ins (your own
class, any scikit-learn classifier: :mod:`.plugin`); and the kNN search.  A fitted probe is a
cache entry: ``load_probe(key)`` reads it back (:mod:`.artifact`).

Each built-in probe has a typed config (:mod:`.config`) that builds it; ``make_probe(name,
**params)`` is the shortcut for library use.  The re-exports are lazy (PEP 562): reading a
probe's config loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "DEFAULT_MEMORY_BUDGET": "base",
    "FilterResult": "base",
    "Probe": "base",
    "ProbeConfig": "config",
    "SavedProbe": "artifact",
    "load_probe": "artifact",
    "PluginConfig": "plugin",
    "PluginProbe": "plugin",
    "SklearnProbe": "plugin",
    "plugin_config": "plugin",
    "probe_config": "config",
    "KnnProbe": "knn",
    "knn_graph": "search",
    "knn_search": "search",
    "LogisticProbe": "logistic",
    "MassMeanProbe": "massmean",
    "MlpProbe": "mlp",
    "TopoFilterProbe": "topo",
}

__all__ = sorted([*_EXPORTS, "make_probe"])


def make_probe(name: str, device: str = "cpu", **params: Any):
    """The built-in probe called ``name`` with ``params`` (its config's fields; others are a
    UsageError naming the ones it takes)."""
    import dataclasses

    from ..errors import UsageError
    from ..vocabulary import is_plugin, probe_kind

    if is_plugin(name):  # module:Class, sklearn:..., an entry point: typed like --probe-param
        from .plugin import plugin_config

        return plugin_config(name, [f"{k}={v!r}" for k, v in params.items()]).build(device)
    cls = probe_kind(name).config_class()
    accepted = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UsageError(
            f"probe '{name}' takes no parameter {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(accepted)}"
        )
    return cls(**params).build(device)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
