"""Probes fit on cached activations: kNN, logistic regression, TopoFilter; and the kNN search.

``make_probe(name, **params)`` builds one by name from :data:`PROBES`.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import UsageError
from .base import DEFAULT_MEMORY_BUDGET, FilterResult, Probe
from .knn import KnnProbe
from .knn_search import knn_graph, knn_search
from .logistic import LogisticProbe
from .topo import TopoFilterProbe

#: Probe name (as the CLI spells it) -> class.
PROBES: dict[str, type] = {"knn": KnnProbe, "logreg": LogisticProbe, "topo": TopoFilterProbe}


def make_probe(name: str, **params: Any) -> Probe:
    """The probe called ``name`` built with ``params``.

    Unknown names or parameters are UsageErrors.
    """
    if name not in PROBES:
        raise UsageError(f"unknown probe '{name}'; known: {', '.join(PROBES)}")
    cls = PROBES[name]
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UsageError(
            f"probe '{name}' takes no parameter {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(accepted)}"
        )
    return cls(**params)


__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "FilterResult",
    "KnnProbe",
    "LogisticProbe",
    "PROBES",
    "Probe",
    "TopoFilterProbe",
    "knn_graph",
    "knn_search",
    "make_probe",
]
