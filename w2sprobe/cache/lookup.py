"""Finding what the cache already holds for a plan, and the per-key lock its writers hold.

A plan is a cache hit when the complete file of its key exists (and its manifest matches), or
when a complete file made the same way already stores every requested layer.  Both the
single-process and the data-parallel extraction check here, under :func:`key_lock`, before
computing anything; probes use :func:`find_cached_layer` to read one layer of any such file.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import UsageError
from .layout import lock_path
from .plan import ExtractPlan, ExtractResult
from .store import ActivationStore, serving_order


def key_lock(plan: ExtractPlan, timeout: float):
    """Acquire the per-key file lock every writer of ``plan.path`` holds (a context manager that
    releases it); a timeout is a UsageError."""
    try:
        return FileLock(str(lock_path(plan.path)), timeout=timeout).acquire()
    except Timeout:
        raise UsageError(
            f"another process is extracting {plan.path.name}; try again when it finishes"
        ) from None


def find_cache_hit(plan: ExtractPlan) -> ExtractResult | None:
    """The complete file of this key (checked against the request's manifest), else a complete
    file made the same way that already holds every requested layer (``--layer 16`` after
    ``--layers all`` runs no model), else ``None``."""
    if not plan.path.exists():
        return _superset_hit(plan)
    with ActivationStore.open(plan.path) as store:
        if store.manifest != plan.manifest:
            raise UsageError(
                f"cached file {plan.path} was made for a different request (manifest mismatch); "
                "delete it to recompute"
            )
        rows = {split: store.num_rows(split) for split in store.splits}
    return ExtractResult(plan.key, plan.path, True, plan.layers, rows, manifest=plan.manifest)


def _superset_hit(plan: ExtractPlan) -> ExtractResult | None:
    holders = cached_layers(plan)
    files = {holders.get(layer) for layer in plan.layers}
    if len(files) != 1 or None in files:
        return None
    (path,) = files
    with ActivationStore.open(path) as store:
        rows = {split: store.num_rows(split) for split in store.splits}
        manifest = store.manifest
    return ExtractResult(
        path.name.removesuffix(".h5"), path, True, plan.layers, rows, manifest=manifest
    )


def cached_layers(plan: ExtractPlan) -> dict[int, Path]:
    """Layer -> a complete activation file made like ``plan`` (any layer set) that stores it.

    Probes need single layers; whichever extraction stored one (``--layer 16`` or ``--layers
    all``) serves, as long as everything else in the manifest (model weights, dataset
    fingerprint, pooling, max length, dtype) matches.  Where several files hold a layer, the
    one with the most layers serves (ties: the newest), so a store opened for one layer also
    holds its neighbours for comparison.  Partial or corrupt files are skipped.
    """
    wanted = {k: v for k, v in plan.manifest.items() if k != "layers"}
    holders: list[tuple[Path, list[int]]] = []
    for path in sorted(plan.path.parent.glob("*.h5")):
        try:
            with ActivationStore.open(path) as store:
                if {k: v for k, v in store.manifest.items() if k != "layers"} == wanted:
                    holders.append((path, store.layers))
        except UsageError:
            continue  # `cache verify` reports such files; they are never read
    found: dict[int, Path] = {}
    for path, layers in sorted(holders, key=serving_order):
        found.update({layer: path for layer in layers if layer not in found})
    return found


def find_cached_layer(plan: ExtractPlan, layer: int) -> Path:
    """The file holding ``layer`` (see :func:`cached_layers`); else a UsageError naming those."""
    found = cached_layers(plan)
    if layer in found:
        return found[layer]
    where = f"{plan.ref.name} on {plan.manifest['dataset']}"
    if found:
        raise UsageError(
            f"layer {layer} is not in the cache for {where}; cached layers: {sorted(found)} "
            f"(run w2sprobe extract --layer {layer})"
        )
    raise UsageError(
        f"no cached activations of {where} with these settings; "
        f"run w2sprobe extract --layer {layer} first"
    )
