"""From options to a probe: its name, parameters and layer."""

from __future__ import annotations

from ..errors import UsageError
from ..options import Options
from .experiment import ProbeSpec

#: Each probe's parameters, named as the options that set them.
PROBE_OPTIONS = {
    "knn": {"k": "k", "metric": "metric", "backend": "knn_backend"},
    "logreg": {"l2": "l2", "standardize": "standardize"},
    "topo": {"k_cc": "k_cc", "k_zeta": "k_zeta", "metric": "metric", "backend": "knn_backend"},
}


def probe_spec(
    options: Options, probe: str, layer: int, overrides: dict | None = None
) -> ProbeSpec:
    """The probe's parameters from the options (``overrides`` win: sweep grids)."""
    if probe not in PROBE_OPTIONS:
        raise UsageError(f"unknown probe '{probe}'; known: {', '.join(PROBE_OPTIONS)}")
    params = {
        param: getattr(options.probe, option) for param, option in PROBE_OPTIONS[probe].items()
    }
    params.update(overrides or {})
    from ..models import resolve_device  # torch: only once a probe is really built

    return ProbeSpec(probe, params, layer, device=str(resolve_device(options.workspace.device)))


def check_probe(options: Options, probe: str, overrides: dict | None = None) -> None:
    """Build the probe once, unfitted, so a bad parameter (or a kNN backend that cannot run
    here) fails before any work starts."""
    spec = probe_spec(options, probe, layer=0, overrides=overrides)
    spec.build()
    if "backend" in spec.params:
        from .knn_search import check_backend

        check_backend(spec.params["backend"], spec.device)
