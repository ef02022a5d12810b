"""What an extraction computes: a request, resolved (without loading weights) into a keyed plan.

:func:`plan_extraction` validates an :class:`ExtractRequest` against the model's config and
fixes everything that changes the stored numbers — weights revision, dataset fingerprint, split
sizes, pooling, max length, layers, compute dtype — in the plan's manifest, whose hash is the
cache key and names the file.  The single-process path (:mod:`.extraction`) and the
data-parallel one (:mod:`.distributed`) both work from the same :class:`ExtractPlan`, write the
same root attributes (:func:`file_attrs`) and report an :class:`ExtractResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..errors import UsageError
from ..hashing import short_hash
from ..layers import parse_layer_spec
from ..models import ModelRef, device_name, dtype_name, read_model_shape, resolve_model
from ..pooling import check_pooling
from .encoding import (
    DEFAULT_COMPRESSION,
    DEFAULT_STORE_DTYPE,
    check_compression,
    check_store_dtype,
)
from .layout import FORMAT_VERSION, SPLIT_ORDER, activation_path
from .writer import manifest_json

if TYPE_CHECKING:  # only for annotations: the cache does not need the dataset registry
    import torch

    from ..data import SplitSet
    from ..options import Options

#: Called after each batch with (rows done, rows total, tokens done) for progress display.
ProgressFn = Callable[[int, int, int], None]


@dataclass
class ExtractRequest:
    """Everything that decides what an extraction computes (and how fast)."""

    model: str
    splits: SplitSet
    layers: list[int] | str = "all"
    pooling: str | None = None
    max_length: int = 512
    batch_size: int = 32
    dtype: str = "auto"
    device: str = "auto"
    #: How the activations are stored (:mod:`.encoding`): in the key only when not float16.
    store_dtype: str = DEFAULT_STORE_DTYPE
    #: HDF5 compression: bytes on disk only, never in the key (the values are the same).
    compression: str = DEFAULT_COMPRESSION
    #: Rows per commit: memory and the work lost to a kill are bounded by one window.
    window_rows: int = 512

    @classmethod
    def from_options(
        cls,
        options: Options,
        splits: SplitSet,
        layers: str | list[int] | None = None,
        model: str | None = None,
    ) -> ExtractRequest:
        """The extraction the options describe: of the strong model unless ``model`` is given,
        of ``--layers`` unless ``layers`` is."""
        return cls(
            model=model or options.model.strong_model,
            splits=splits,
            layers=options.extract.layers if layers is None else layers,
            pooling=options.extract.pooling,
            max_length=options.extract.max_length,
            batch_size=options.extract.extract_batch_size,
            dtype=options.model.dtype,
            device=options.workspace.device,
            store_dtype=options.extract.store_dtype,
            compression=options.extract.compression,
        )


@dataclass
class ExtractPlan:
    """A request resolved against the model's config: its key, file and manifest."""

    ref: ModelRef
    layers: list[int]
    pooling: str
    num_layers: int
    hidden_size: int
    #: Where and in which dtype the model runs, by name (no torch import to plan a cache hit).
    device_name: str
    dtype_name: str
    key: str
    path: Path
    manifest: dict
    #: What was asked: :func:`~w2sprobe.cache.extraction.extract` runs a plan without re-planning.
    request: ExtractRequest | None = None
    store_dtype: str = DEFAULT_STORE_DTYPE
    compression: str = DEFAULT_COMPRESSION

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device(self.device_name)

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype_name)


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
    # config.json alone, as `models layers` reads it: importing transformers for its config
    # classes would cost every cached probe command seconds of start-up
    shape = read_model_shape(request.model)
    num_layers, hidden = shape.num_blocks, shape.hidden_size
    layers = parse_layers(request.layers, num_layers)
    pooling = check_pooling(request.pooling or shape.default_pooling)
    device = device_name(request.device)
    dtype = dtype_name(request.dtype, device)
    store_dtype = check_store_dtype(request.store_dtype)
    compression = check_compression(request.compression)
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
        "compute_dtype": dtype,
    }
    if store_dtype != DEFAULT_STORE_DTYPE:  # so every float16 file keeps its key
        manifest["store_dtype"] = store_dtype
    key = short_hash(manifest)
    path = activation_path(cache_dir, ref.name, splits.dataset, key)
    return ExtractPlan(
        ref,
        layers,
        pooling,
        num_layers,
        hidden,
        device,
        dtype,
        key,
        path,
        manifest,
        request,
        store_dtype,
        compression,
    )


def parse_layers(layers: list[int] | str | int, num_layers: int) -> list[int]:
    """``"all"`` / ``"4,8,16"`` / ``[16]`` -> sorted unique layers of a model with ``num_layers``
    blocks (``all`` = every layer 0..L), each checked against 0..L: :mod:`w2sprobe.layers`."""
    chosen = parse_layer_spec(
        layers if not isinstance(layers, int) else [layers], list(range(num_layers + 1)), num_layers
    )
    if not chosen:
        raise UsageError("no layers requested")
    return chosen


def ordered_splits(request: ExtractRequest) -> list:
    """The request's splits in the order they are stored (:data:`SPLIT_ORDER`)."""
    return [split for name in SPLIT_ORDER if (split := request.splits.splits.get(name))]


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
        "store_dtype": plan.store_dtype,
        "compression": plan.compression,
    }
