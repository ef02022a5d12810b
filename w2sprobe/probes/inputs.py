"""From options to a probe on a layer: its typed config, checked before any work starts."""

from __future__ import annotations

from typing import Any

from ..options import Options
from .config import ProbeConfig, probe_config
from .experiment import ProbeSpec


def probe_spec(options: Options, probe: str, layer: int, **overrides: Any) -> ProbeSpec:
    """``probe`` configured from the options (``overrides`` win: a sweep's grid value)."""
    from ..models import device_name  # no torch import where no CUDA GPU can be

    config = probe_config(probe, options.probe, **overrides)
    return ProbeSpec(config, layer, device=device_name(options.workspace.device))


def check_probe(options: Options, probe: str, **overrides: Any) -> ProbeConfig:
    """The probe's config: a bad parameter (or a kNN backend that cannot run here) fails here,
    before any work starts."""
    config = probe_config(probe, options.probe, **overrides)
    backend = config.params().get("backend")
    if backend is not None:
        from .search import check_backend

        check_backend(backend, options.workspace.device)
    return config
