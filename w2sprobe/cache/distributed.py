"""Data-parallel extraction: every torchrun rank computes a slice of the rows, rank 0 merges them.

The result is the file a single process writes — same key, path, attributes, ids, labels and
row order — so nothing downstream knows how many processes made it (the world size is not
part of the key).  Per split, rank ``r`` of ``W`` takes the contiguous rows
``[r*N//W, (r+1)*N//W)`` (:func:`shard_rows`) and writes them to its own shard,
``<key>.h5.rank<r>-of-<W>.partial``, with the resumable writer of :mod:`.writer`: a killed rank
continues after its last committed window when the same command runs again.  A shard is never
renamed or marked complete — it is finished when every split's counter is full — so no reader,
``cache ls`` or ``cache verify`` ever takes one for an activation file.

Rank 0 holds the key's file lock from the cache-hit check to the end of the merge, exactly like
a single process, so concurrent jobs on one key wait for each other.  The merge copies shard
rows in order into the normal ``<key>.h5.partial`` (itself resumable: a kill during the merge
re-merges from the finished shards), renames it atomically and deletes the shards.

Waiting for the slowest rank uses a separate gloo group with a long timeout: a rank resuming a
large shard can keep the others waiting far longer than NCCL's default collective timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

import h5py
import numpy as np
import torch.distributed as dist

from ..distributed import DistEnv
from ..errors import UsageError
from .encoding import decode
from .layout import layer_name, partial_path, shard_files, shard_path
from .lookup import find_cache_hit, key_lock
from .plan import ExtractPlan, ExtractRequest, ExtractResult, ProgressFn, file_attrs, ordered_splits
from .writer import PartialActivationFile, SplitData, manifest_json

#: How long finished ranks wait for the slowest one (a resumed shard can take hours).
WAIT_TIMEOUT = timedelta(hours=24)

T = TypeVar("T")

#: Computes and commits a writer's missing rows (:func:`~w2sprobe.cache.extraction.fill_rows`):
#: (writer, split -> texts, plan, request, progress) -> (tokens, seconds of forward passes).
#: Passed in, so this module shards and merges without knowing how rows are computed.
RowFiller = Callable[
    [PartialActivationFile, dict[str, list[str]], ExtractPlan, ExtractRequest, ProgressFn | None],
    tuple[int, float],
]


@dataclass(frozen=True)
class ShardStats:
    """What one rank did, gathered by every rank for the summary."""

    resumed_rows: int
    tokens: int
    seconds: float


def shard_rows(rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous slice ``[start, stop)`` of ``rows`` rows (sizes differ by <=1)."""
    return rows * rank // world_size, rows * (rank + 1) // world_size


def extract_data_parallel(
    plan: ExtractPlan,
    request: ExtractRequest,
    env: DistEnv,
    progress: ProgressFn | None,
    lock_timeout: float,
    fill_rows: RowFiller,
) -> ExtractResult:
    """:func:`~w2sprobe.cache.extraction.extract` as a collective over the torchrun group.

    Every rank returns the same result.  Only rank 0 reports ``progress`` (of its own shard).
    ``fill_rows`` computes a shard's rows (the single-process path's row loop).
    """
    plan = replace(plan, device_name=str(env.device(plan.device)))
    group = dist.new_group(backend="gloo", timeout=WAIT_TIMEOUT)
    finished = False
    try:
        with ExitStack() as held:

            def claim_key() -> ExtractResult | None:
                held.enter_context(key_lock(plan, lock_timeout))  # released when this rank returns
                return find_cache_hit(plan)

            result = _decided_by_main(env, group, claim_key)
            if result is None:
                mine = _write_shard(
                    plan, request, env, progress if env.is_main else None, fill_rows
                )
                stats: list[Any] = [None] * env.world_size
                dist.all_gather_object(stats, mine, group=group)  # once every shard is finished
                result = _decided_by_main(
                    env, group, lambda: _merge(plan, request, env.world_size, stats)
                )
            finished = True
            return result
    finally:
        if finished:
            # Every rank has its answer before any closes the group's connections (see
            # ..distributed.shutdown); after a failure the ranks are torn down by torchrun.
            dist.barrier(group=group)
        dist.destroy_process_group(group)


def _decided_by_main(env: DistEnv, group, compute: Callable[[], T]) -> T:
    """Run ``compute`` on rank 0 only and return its value on every rank.

    A UsageError on rank 0 is raised on every rank (each exits with the same ``error:`` line);
    any other failure is re-raised on rank 0 and reported to the others as a RuntimeError, so
    no rank waits for an answer that will never come.
    """
    box: list[Any] = [None]
    failure: BaseException | None = None
    if env.is_main:
        try:
            box[0] = ("ok", compute())
        except UsageError as exc:
            box[0] = ("usage", str(exc))
        except BaseException as exc:  # noqa: BLE001 - re-raised below after telling the others
            failure, box[0] = exc, ("failed", f"rank 0 failed: {exc!r}")
    dist.broadcast_object_list(box, src=0, group=group)
    kind, value = box[0]
    if failure is not None:
        raise failure
    if kind == "usage":
        raise UsageError(value)
    if kind == "failed":
        raise RuntimeError(value)
    return value


def _write_shard(
    plan: ExtractPlan,
    request: ExtractRequest,
    env: DistEnv,
    progress: ProgressFn | None,
    fill_rows: RowFiller,
) -> ShardStats:
    """Compute (or resume) this rank's rows of every split into its shard file."""
    splits = ordered_splits(request)
    ranges = {s.name: shard_rows(len(s.ids), env.rank, env.world_size) for s in splits}
    data = [
        SplitData(s.name, s.ids[slice(*ranges[s.name])], s.labels[slice(*ranges[s.name])])
        for s in splits
    ]
    attrs = {
        **file_attrs(plan),
        "shard_rank": env.rank,
        "shard_world_size": env.world_size,
        "shard_rows": manifest_json(ranges),
    }
    shard = PartialActivationFile.open(
        shard_path(plan.path, env.rank, env.world_size), attrs, data, plan.layers, plan.hidden_size
    )
    try:
        resumed = sum(shard.committed(s.name) for s in splits)
        texts = {s.name: s.texts[slice(*ranges[s.name])] for s in splits}
        tokens, seconds = fill_rows(shard, texts, plan, request, progress)
    finally:
        shard.close()  # never finish(): a shard must not become a complete activation file
    return ShardStats(resumed, tokens, seconds)


def _merge(
    plan: ExtractPlan, request: ExtractRequest, world_size: int, stats: list[ShardStats]
) -> ExtractResult:
    """Copy every shard's rows in order into the activation file, finish it, delete the shards."""
    started = time.perf_counter()
    splits = ordered_splits(request)
    data = [SplitData(s.name, s.ids, s.labels) for s in splits]
    target = PartialActivationFile.open(
        plan.path, file_attrs(plan), data, plan.layers, plan.hidden_size
    )
    try:
        for rank in range(world_size):
            with _open_shard(plan, rank, world_size) as shard:
                for split in splits:
                    _copy_rows(
                        shard,
                        target,
                        split,
                        shard_rows(len(split.ids), rank, world_size),
                        plan.layers,
                        request.window_rows,
                    )
    except BaseException:
        target.close()  # the partial file keeps its committed rows: a rerun re-merges the rest
        raise
    target.finish()
    for shard in shard_files(plan.path):
        shard.unlink(missing_ok=True)
    return ExtractResult(
        plan.key,
        plan.path,
        False,
        plan.layers,
        {s.name: len(s.ids) for s in splits},
        tokens=sum(s.tokens for s in stats),
        seconds=max(s.seconds for s in stats) + time.perf_counter() - started,
        resumed_rows=sum(s.resumed_rows for s in stats),
        manifest=plan.manifest,
        world_size=world_size,
    )


def _open_shard(plan: ExtractPlan, rank: int, world_size: int) -> h5py.File:
    """A finished shard of this plan, read-only; anything else is an error naming the file."""
    path = partial_path(shard_path(plan.path, rank, world_size))
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise UsageError(
            f"shard {path.name} is missing or unreadable ({exc}); rerun the extraction"
        ) from None
    ranges = json.loads(handle.attrs.get("shard_rows", "{}"))
    unfinished = [
        name
        for name, (start, stop) in ranges.items()
        if int(handle[name].attrs["committed_rows"]) != stop - start
    ]
    if handle.attrs.get("manifest") != manifest_json(plan.manifest) or unfinished:
        handle.close()
        raise UsageError(f"shard {path.name} is not a finished shard of this extraction; rerun it")
    return handle


def _copy_rows(
    shard: h5py.File,
    target: PartialActivationFile,
    split,
    rows: tuple[int, int],
    layers: list[int],
    window_rows: int,
) -> None:
    """Append the shard's rows of ``split`` (global rows ``[start, stop)``) to ``target``."""
    start, stop = rows
    group = shard[split.name]
    if list(group["ids"].asstr()[:]) != list(split.ids[start:stop]):
        raise UsageError(
            f"shard {shard.filename} holds other examples than this request; rerun the extraction"
        )
    # Resume after the merged prefix: windows before target's counter are already in place.
    for begin in range(max(start, target.committed(split.name)), stop, window_rows):
        end = min(begin + window_rows, stop)
        acts = np.stack(
            [
                decode(group[layer_name(layer)][begin - start : end - start], target.store_dtype)
                for layer in layers
            ]
        )  # decoded: write_window encodes again (bfloat16 -> float32 -> bfloat16 is exact)
        target.write_window(split.name, begin, acts)
