"""Run a model once over a dataset's splits and cache pooled activations of every requested layer.

The work is keyed (see :func:`plan_extraction`): a complete file with the same key is a cache
hit that loads no model and runs no forward pass.  Otherwise, under a per-key file lock, rows
are processed in windows of ``window_rows``: each window is tokenized in one call, its rows are
sorted by length into batches (little padding), every batch is one traced forward pass, and the
window is written back in the original row order and committed (see :mod:`.writer`).

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`extract` is a collective that every rank calls:
each rank computes its slice of the rows and rank 0 merges them into the same file a single
process writes (see :mod:`.distributed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from filelock import FileLock, Timeout

from .. import __version__
from ..distributed import init_from_env
from ..errors import UsageError
from ..hashing import short_hash
from ..models import (
    ModelRef,
    describe,
    is_decoder_type,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
    resolve_model,
)
from ..workspace import ensure_writable_dir
from .layout import FORMAT_VERSION, SPLIT_ORDER, activation_path, lock_path, shard_files
from .readout import LayerReader, check_pooling
from .store import ActivationStore
from .writer import PartialActivationFile, SplitData, manifest_json

if TYPE_CHECKING:  # only for annotations: the cache does not need the dataset registry
    from ..data import SplitSet

#: Called after each batch with (rows done, rows total, tokens done) for progress display.
ProgressFn = Callable[[int, int, int], None]


@dataclass
class ExtractRequest:
    """Everything that decides what an extraction computes (and how fast)."""

    model: str
    splits: "SplitSet"
    layers: list[int] | str = "all"
    pooling: str | None = None
    max_length: int = 512
    batch_size: int = 32
    dtype: str = "auto"
    device: str = "auto"
    #: Rows per commit: memory and the work lost to a kill are bounded by one window.
    window_rows: int = 512


@dataclass
class ExtractPlan:
    """A request resolved against the model's config: its key, file and manifest."""

    ref: ModelRef
    layers: list[int]
    pooling: str
    num_layers: int
    hidden_size: int
    device: torch.device
    dtype: torch.dtype
    key: str
    path: Path
    manifest: dict


@dataclass
class ExtractResult:
    """What ``w2sprobe extract`` reports."""

    key: str
    path: Path
    cache_hit: bool
    layers: list[int]
    rows: dict[str, int]
    tokens: int = 0
    seconds: float = 0.0
    resumed_rows: int = 0
    manifest: dict = field(default_factory=dict)
    #: Processes that computed the rows (torchrun ranks); 1 for a single process or a cache hit.
    world_size: int = 1

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def plan_extraction(request: ExtractRequest, cache_dir: Path) -> ExtractPlan:
    """Validate the request and compute its key without loading weights."""
    if request.max_length <= 0:
        raise UsageError(f"max-length must be > 0, got {request.max_length}")
    if request.batch_size <= 0:
        raise UsageError(f"batch-size must be > 0, got {request.batch_size}")
    ref = resolve_model(request.model)
    config = _text_config(ref)
    num_layers, hidden = int(config.num_hidden_layers), int(config.hidden_size)
    layers = parse_layers(request.layers, num_layers)
    default_pool = "last" if is_decoder_type(config.model_type) else "mean"
    pooling = check_pooling(request.pooling or default_pool)
    device = resolve_device(request.device)
    dtype = resolve_dtype(request.dtype, device)
    splits = request.splits
    manifest = {
        "format_version": FORMAT_VERSION,
        "model_revision": ref.revision,
        "dataset": splits.dataset,
        "dataset_fingerprint": splits.fingerprint,
        "split_sizes": {name: len(split.ids) for name, split in splits.splits.items()},
        "pooling": pooling,
        "max_length": request.max_length,
        "layers": layers,
        "compute_dtype": str(dtype).removeprefix("torch."),
    }
    key = short_hash(manifest)
    path = activation_path(cache_dir, ref.name, splits.dataset, key)
    return ExtractPlan(ref, layers, pooling, num_layers, hidden, device, dtype, key, path, manifest)


def parse_layers(layers: list[int] | str | int, num_layers: int) -> list[int]:
    """``"all"`` / ``"4,8,16"`` / ``[16]`` -> sorted unique layers, each checked against 0..L."""
    if isinstance(layers, int):
        layers = [layers]
    if isinstance(layers, str):
        text = layers.strip().lower()
        if text == "all":
            return list(range(num_layers + 1))
        try:
            layers = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise UsageError(f"layers must be 'all' or integers like 4,8,16; got '{text}'") from None
    if not layers:
        raise UsageError("no layers requested")
    bad = [layer for layer in layers if not 0 <= int(layer) <= num_layers]
    if bad:
        raise UsageError(
            f"layer {bad[0]} is outside 0..{num_layers} for this model "
            f"({num_layers} blocks; layer 0 = embeddings, layer i = output of block i)"
        )
    return sorted({int(layer) for layer in layers})


def extract(request: ExtractRequest, cache_dir: Path, progress: ProgressFn | None = None,
            lock_timeout: float = -1) -> ExtractResult:
    """Cache the activations of ``request`` under ``cache_dir`` (or find them cached).

    Launched by torchrun with several processes, every rank must call it: the rows are split
    across ranks and the result (the same file and key as one process) is returned on every rank.
    """
    plan = plan_extraction(request, cache_dir)
    env = init_from_env(plan.device)
    ensure_writable_dir(plan.path.parent)
    if env.enabled:
        from .distributed import extract_data_parallel  # it builds on this module's functions

        return extract_data_parallel(plan, request, env, progress, lock_timeout)
    hit = find_cache_hit(plan)
    if hit:
        return hit
    with key_lock(plan, lock_timeout):
        return find_cache_hit(plan) or _run(plan, request, progress)


def key_lock(plan: ExtractPlan, timeout: float):
    """Acquire the per-key file lock every writer of ``plan.path`` holds (a context manager that
    releases it); a timeout is a UsageError."""
    try:
        return FileLock(str(lock_path(plan.path)), timeout=timeout).acquire()
    except Timeout:
        raise UsageError(f"another process is extracting {plan.path.name}; try again when it finishes") from None


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
    return ExtractResult(path.name.removesuffix(".h5"), path, True, plan.layers, rows, manifest=manifest)


def _run(plan: ExtractPlan, request: ExtractRequest, progress: ProgressFn | None) -> ExtractResult:
    splits = ordered_splits(request)
    data = [SplitData(s.name, s.ids, s.labels) for s in splits]
    partial = PartialActivationFile.open(plan.path, file_attrs(plan), data, plan.layers, plan.hidden_size)
    result = ExtractResult(plan.key, plan.path, False, plan.layers,
                           {s.name: len(s.ids) for s in splits}, manifest=plan.manifest)
    result.resumed_rows = sum(partial.committed(s.name) for s in splits)
    try:
        result.tokens, result.seconds = fill_rows(partial, {s.name: s.texts for s in splits}, plan, request,
                                                  progress)
    except BaseException:
        partial.close()
        raise
    partial.finish()
    for shard in shard_files(plan.path):  # left by a killed data-parallel run of this key: obsolete now
        shard.unlink(missing_ok=True)
    return result


def ordered_splits(request: ExtractRequest) -> list:
    """The request's splits in the order they are stored (:data:`SPLIT_ORDER`)."""
    return [split for name in SPLIT_ORDER if (split := request.splits.splits.get(name))]


def fill_rows(partial: PartialActivationFile, texts: dict[str, list[str]], plan: ExtractPlan,
              request: ExtractRequest, progress: ProgressFn | None) -> tuple[int, float]:
    """Compute and commit every row of ``partial`` past its committed counters.

    ``texts`` maps each split of ``partial`` to the texts of its rows, in row order.  The model
    is loaded only when rows remain.  Returns (tokens processed, seconds of forward passes).
    """
    done = sum(partial.committed(name) for name in texts)
    total = sum(len(rows) for rows in texts.values())
    if done == total:
        return 0, 0.0
    tokenizer = load_tokenizer(plan.ref)
    model = load_model(plan.ref, device=plan.device, dtype=plan.dtype)
    reader = LayerReader(model, describe(model), plan.layers, plan.pooling)
    tokens, started = 0, time.perf_counter()
    for name, rows in texts.items():
        for start in range(partial.committed(name), len(rows), request.window_rows):
            window = rows[start:start + request.window_rows]
            acts, window_tokens = _extract_window(window, tokenizer, reader, plan, request.batch_size)
            partial.write_window(name, start, acts)
            done += len(window)
            tokens += window_tokens
            if progress:
                progress(done, total, tokens)
    return tokens, time.perf_counter() - started


def _extract_window(texts: list[str], tokenizer, reader: LayerReader, plan: ExtractPlan,
                    batch_size: int) -> tuple[np.ndarray, int]:
    """(layers, rows, hidden) float16 activations of one window, in the window's row order."""
    encoded = tokenizer(texts, truncation=True, max_length=plan.manifest["max_length"],
                        padding="longest", return_tensors="np")
    input_ids, mask = encoded["input_ids"], encoded["attention_mask"]
    lengths = mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")  # longest first: an OOM shows up at once
    out = np.empty((len(plan.layers), len(texts), plan.hidden_size), dtype=np.float16)
    with torch.inference_mode():
        for begin in range(0, len(texts), batch_size):
            rows = order[begin:begin + batch_size]
            width = int(lengths[rows[0]])  # right padding: columns past the longest row are pad
            ids = torch.from_numpy(input_ids[rows, :width]).to(plan.device)
            batch_mask = torch.from_numpy(mask[rows, :width]).to(plan.device)
            pooled = reader(ids, batch_mask)
            out[:, rows] = pooled.to(torch.float16).cpu().numpy()
    return out, int(lengths.sum())


def file_attrs(plan: ExtractPlan) -> dict:
    """Root attributes of the DESIGN.md activation-file contract."""
    return {
        "model": plan.ref.name,
        "model_revision": plan.ref.revision,
        "dataset": plan.manifest["dataset"],
        "dataset_fingerprint": plan.manifest["dataset_fingerprint"],
        "pooling": plan.pooling,
        "max_length": plan.manifest["max_length"],
        "num_layers": plan.num_layers,
        "hidden_size": plan.hidden_size,
        "layers": np.array(plan.layers, dtype=np.int64),
        "w2sprobe_version": __version__,
        "key": plan.key,
        "manifest": manifest_json(plan.manifest),
    }


def _text_config(ref: ModelRef):
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(ref.location)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot read the config of model {ref.name}: {exc}") from None
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def cached_layers(plan: ExtractPlan) -> dict[int, Path]:
    """Layer -> a complete activation file made like ``plan`` (any layer set) that stores it.

    Probes need single layers; whichever extraction stored one (``--layer 16`` or ``--layers
    all``) serves, as long as everything else in the manifest (model weights, dataset
    fingerprint, pooling, max length, dtype) matches.  Partial or corrupt files are skipped.
    """
    wanted = {k: v for k, v in plan.manifest.items() if k != "layers"}
    found: dict[int, Path] = {}
    for path in sorted(plan.path.parent.glob("*.h5")):
        try:
            with ActivationStore.open(path) as store:
                if {k: v for k, v in store.manifest.items() if k != "layers"} == wanted:
                    found.update({layer: path for layer in store.layers if layer not in found})
        except UsageError:
            continue  # `cache verify` reports such files; they are never read
    return found


def find_cached_layer(plan: ExtractPlan, layer: int) -> Path:
    """The file holding ``layer`` (see :func:`cached_layers`); UsageError names the cached layers."""
    found = cached_layers(plan)
    if layer in found:
        return found[layer]
    where = f"{plan.ref.name} on {plan.manifest['dataset']}"
    if found:
        raise UsageError(f"layer {layer} is not in the cache for {where}; cached layers: {sorted(found)} "
                         f"(run w2sprobe extract --layer {layer})")
    raise UsageError(f"no cached activations of {where} with these settings; "
                     f"run w2sprobe extract --layer {layer} first")
