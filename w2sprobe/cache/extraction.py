"""Run a model once over a dataset's splits and cache pooled activations of every requested layer.

The work is keyed (see :mod:`.plan`): a complete file with the same key is a cache hit (see
:mod:`.lookup`) that loads no model and runs no forward pass.  Otherwise, under a per-key file
lock, rows are processed in windows of ``window_rows``: each window is tokenized in one call, its
rows are sorted by length into batches (little padding), every batch is one traced forward pass,
and the window is written back in the original row order and committed (see :mod:`.writer`).

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`extract` is a collective that every rank calls:
each rank computes its slice of the rows and rank 0 merges them into the same file a single
process writes (see :mod:`.distributed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..distributed import init_from_env
from ..models import describe, load_model, load_tokenizer
from ..workspace import ensure_writable_dir
from .distributed import extract_data_parallel
from .encoding import window_dtype
from .layout import shard_files
from .lookup import find_cache_hit, key_lock
from .plan import (
    ExtractPlan,
    ExtractRequest,
    ExtractResult,
    ProgressFn,
    file_attrs,
    ordered_splits,
    plan_extraction,
)
from .readout import LayerReader, Reducer, pooler
from .writer import PartialActivationFile, SplitData

#: The torch dtype a window is pooled into, by its NumPy name.
_TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def extract(
    work: ExtractRequest | ExtractPlan,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
    lock_timeout: float = -1,
) -> ExtractResult:
    """Cache the activations of ``work`` (find them cached): a request, planned here under
    ``cache_dir``, or a plan made by :func:`~.plan.plan_extraction` (run as it is).

    Launched by torchrun with several processes, every rank must call it: the rows are split
    across ranks and the result (the same file and key as one process) is returned on every rank.
    """
    if isinstance(work, ExtractPlan):
        plan, request = work, work.request
    elif cache_dir is None:
        raise TypeError("extract(request) needs the cache_dir to plan it in")
    else:
        plan, request = plan_extraction(work, cache_dir), work
    env = init_from_env(plan.device)
    ensure_writable_dir(plan.path.parent)
    if env.enabled:
        # Handed the row computation, so the sharding module needs nothing from this one.
        return extract_data_parallel(plan, request, env, progress, lock_timeout, fill_rows)
    hit = find_cache_hit(plan)
    if hit:
        return hit
    with key_lock(plan, lock_timeout):
        return find_cache_hit(plan) or _run(plan, request, progress)


def _run(plan: ExtractPlan, request: ExtractRequest, progress: ProgressFn | None) -> ExtractResult:
    splits = ordered_splits(request)
    data = [SplitData(s.name, s.ids, s.labels) for s in splits]
    partial = PartialActivationFile.open(
        plan.path, file_attrs(plan), data, plan.layers, plan.hidden_size
    )
    result = ExtractResult(
        plan.key,
        plan.path,
        False,
        plan.layers,
        {s.name: len(s.ids) for s in splits},
        manifest=plan.manifest,
    )
    result.resumed_rows = sum(partial.committed(s.name) for s in splits)
    try:
        texts = {s.name: s.texts for s in splits}
        result.tokens, result.seconds = fill_rows(partial, texts, plan, request, progress)
    except BaseException:
        partial.close()
        raise
    partial.finish()
    # Shards left by a killed data-parallel run of this key are obsolete now.
    for shard in shard_files(plan.path):
        shard.unlink(missing_ok=True)
    return result


@dataclass
class Sink:
    """One file a forward pass fills: its writer, what it keeps of each tapped layer, and the
    per-row datasets it stores beside the layers (token ids), from the window's tokens."""

    partial: PartialActivationFile
    reduce: Reducer
    #: One row of a layer: (hidden,) pooled, (K, hidden) for K token slots.
    row_shape: tuple[int, ...]
    #: (input ids, attention mask) of a window -> name -> one value per row.
    extras: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]] | None = None


def fill_rows(
    partial: PartialActivationFile,
    texts: dict[str, list[str]],
    plan: ExtractPlan,
    request: ExtractRequest,
    progress: ProgressFn | None,
) -> tuple[int, float]:
    """Compute and commit every row of ``partial`` past its committed counters.

    ``texts`` maps each split of ``partial`` to the texts of its rows, in row order.  The model
    is loaded only when rows remain.  Returns (tokens processed, seconds of forward passes).
    """
    sink = Sink(partial, pooler(plan.pooling), (plan.hidden_size,))
    return fill_sinks([sink], texts, plan, request, progress)


def fill_sinks(
    sinks: list[Sink],
    texts: dict[str, list[str]],
    plan: ExtractPlan,
    request: ExtractRequest,
    progress: ProgressFn | None,
) -> tuple[int, float]:
    """:func:`fill_rows` for several files of one model, dataset and layers at once: every
    window is one forward pass whose taps each sink reduces its own way.

    A window is written to the sinks that have not committed it yet, so files resumed at
    different points all end complete (the rows every sink has are not computed again).
    """

    def resume_at(name: str) -> int:
        return min(sink.partial.committed(name) for sink in sinks)

    done = sum(resume_at(name) for name in texts)
    total = sum(len(rows) for rows in texts.values())
    if done == total:
        return 0, 0.0
    tokenizer = load_tokenizer(plan.ref)
    model = load_model(plan.ref, device=plan.device, dtype=plan.dtype)
    reader = LayerReader(model, describe(model), plan.layers, [sink.reduce for sink in sinks])
    tokens, started = 0, time.perf_counter()
    for name, rows in texts.items():
        for start in range(resume_at(name), len(rows), request.window_rows):
            window = rows[start : start + request.window_rows]
            outs, ids, mask = _extract_window(
                window, tokenizer, reader, plan, request.batch_size, sinks
            )
            for sink, acts in zip(sinks, outs):
                if sink.partial.committed(name) >= start + len(window):
                    continue  # this file has the window already
                if sink.extras:
                    sink.partial.write_window(name, start, acts, sink.extras(ids, mask))
                else:
                    sink.partial.write_window(name, start, acts)
            done += len(window)
            tokens += int(mask.sum())
            if progress:
                progress(done, total, tokens)
    return tokens, time.perf_counter() - started


def _extract_window(
    texts: list[str],
    tokenizer,
    reader: LayerReader,
    plan: ExtractPlan,
    batch_size: int,
    sinks: list[Sink],
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per sink, (layers, rows, *row shape) activations of one window in the window's row
    order (float16 when float16 is stored, float32 otherwise: encoded by the writer); and the
    window's input ids and attention mask."""
    encoded = tokenizer(
        texts,
        truncation=True,
        max_length=plan.manifest["max_length"],
        padding="longest",
        return_tensors="np",
    )
    input_ids, mask = encoded["input_ids"], encoded["attention_mask"]
    lengths = mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")  # longest first: an OOM shows up at once
    dtype = window_dtype(plan.store_dtype)
    outs = [
        np.empty((len(plan.layers), len(texts), *sink.row_shape), dtype=dtype) for sink in sinks
    ]
    with torch.inference_mode():
        for begin in range(0, len(texts), batch_size):
            rows = order[begin : begin + batch_size]
            width = int(lengths[rows[0]])  # right padding: columns past the longest row are pad
            ids = torch.from_numpy(input_ids[rows, :width]).to(plan.device)
            batch_mask = torch.from_numpy(mask[rows, :width]).to(plan.device)
            for out, reduced in zip(outs, reader.read(ids, batch_mask)):
                out[:, rows] = reduced.to(_TORCH_DTYPES[dtype.name]).cpu().numpy()
    return outs, input_ids, mask
