"""From resolved options to what a probe experiment reads: cached activations and a label set.

The activation file is the one ``w2sprobe extract`` made with the same model, dataset, split
sizes, seed, pooling, max length and dtype — found by manifest, whatever layer set it stored.
Label sets are looked up by name or key; ``gt`` is the ground truth stored with the activations.
"""

from __future__ import annotations

from pathlib import Path

from ..cache import (
    ActivationStore,
    ExtractPlan,
    ExtractRequest,
    cached_layers,
    find_cached_layer,
    plan_extraction,
)
from ..config import Settings
from ..data import splits_from_settings
from ..errors import UsageError
from ..labels import LabelSet, find_label_set
from ..models import resolve_device
from .experiment import ProbeSpec, ground_truth_labels

#: Options of each probe, as named in settings / on the command line.
PROBE_OPTIONS = {
    "knn": {"k": "k", "metric": "metric", "backend": "knn_backend"},
    "logreg": {"l2": "l2", "standardize": "standardize"},
    "topo": {"k_cc": "k_cc", "k_zeta": "k_zeta", "metric": "metric", "backend": "knn_backend"},
}


def activation_plan(settings: Settings, cache_dir: Path) -> ExtractPlan:
    """The extraction these settings describe (the strong model on the dataset), keyed, not run."""
    request = ExtractRequest(
        model=settings["strong_model"], splits=splits_from_settings(settings), layers="all",
        pooling=settings["pooling"], max_length=int(settings["max_length"]), dtype=settings["dtype"],
        device=settings["device"],
    )
    return plan_extraction(request, cache_dir)


def default_layer(plan: ExtractPlan) -> int:
    """The reference study's probe layer: ``(L + 1) // 2`` (16 for Llama-3-8B's 32 blocks)."""
    return (plan.num_layers + 1) // 2


def resolve_layers(plan: ExtractPlan, spec: str | int | list | None) -> list[int]:
    """Layers to probe: a number, a comma list, ``all`` (= every cached layer) or the default."""
    if spec is None:
        return [default_layer(plan)]
    items = spec if isinstance(spec, list) else str(spec).split(",")
    layers: set[int] = set()
    for item in (str(i).strip().lower() for i in items if str(i).strip()):
        if item == "all":
            layers.update(cached_layers(plan))
        elif item.lstrip("-").isdigit():
            layers.add(int(item))
        else:
            raise UsageError(f"layers must be integers or 'all'; got '{item}'")
    if not layers:
        raise UsageError(f"no cached activations of {plan.ref.name} on {plan.manifest['dataset']}; "
                         "run w2sprobe extract first")
    bad = [layer for layer in sorted(layers) if not 0 <= layer <= plan.num_layers]
    if bad:
        raise UsageError(f"layer {bad[0]} is outside 0..{plan.num_layers} for {plan.ref.name}")
    return sorted(layers)


def open_store(plan: ExtractPlan, layer: int) -> ActivationStore:
    return ActivationStore.open(find_cached_layer(plan, layer))


def load_labels(settings: Settings, store: ActivationStore, cache_dir: Path) -> LabelSet:
    """The label set named by ``labels`` (default ``weak``); ``gt`` = ground truth."""
    name, dataset = str(settings["labels"]), store.manifest["dataset"]
    if name == "gt":
        return ground_truth_labels(store, dataset)
    try:
        return find_label_set(cache_dir, dataset, name)
    except UsageError as exc:
        if name != "weak":
            raise
        raise UsageError(f"{exc}; weak labels come from the weak model's stage "
                         "(w2sprobe train weak); --labels gt probes the ground truth") from None


def probe_spec(settings: Settings, probe: str, layer: int, overrides: dict | None = None) -> ProbeSpec:
    """The probe's parameters from settings (``overrides`` win: sweep grids)."""
    if probe not in PROBE_OPTIONS:
        raise UsageError(f"unknown probe '{probe}'; known: {', '.join(PROBE_OPTIONS)}")
    params = {param: settings[option] for param, option in PROBE_OPTIONS[probe].items()}
    params.update(overrides or {})
    return ProbeSpec(probe, params, layer, device=str(resolve_device(settings["device"])))
