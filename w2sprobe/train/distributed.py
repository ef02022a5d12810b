"""Data-parallel training on ``torch.distributed``: who trains which rows, and what ranks exchange.

Under ``torchrun`` every rank builds the same batch schedule (:func:`.batching.epoch_batches` is
a pure function of seed and epoch), takes its share of each batch (:func:`rank_rows`), sums its
micro-batch losses and divides the gradient once by the whole batch's count (examples, or for
the window loss the in-window examples of every rank) exactly as a single process does, and
:func:`sum_gradients` adds the trainable gradients of all ranks before the optimizer step.  So a
step is the single-process step up to the order of float additions, whatever the world size.
Gradients are summed by hand (bucketed ``all_reduce``) rather than by ``DistributedDataParallel``
because a rank may get no rows of a short last batch, or fewer micro-batches than another: DDP
would then wait for gradients that never come.  LoRA gradients are small, so overlapping the
reduction with the backward pass (DDP's advantage) buys little.

Prediction is sharded too (:func:`inference_rows`) and the shards are combined with one
``all_reduce`` (:func:`combine_shards`), so every rank holds the same predictions and selects the
same checkpoint.  Only rank 0 writes files.

Everything here is a no-op in a single process (rank 0 of 1), so the trainer has one code path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..distributed import DistEnv

#: Elements per gradient ``all_reduce`` (float32): bounds the extra memory of full finetuning.
BUCKET_ELEMENTS = 1 << 24


def rank_rows(rows: np.ndarray, lengths: np.ndarray, env: DistEnv) -> np.ndarray:
    """This rank's rows of one training batch: every ``world_size``-th row in length order.

    Strided over the length-sorted batch so that every rank gets a similar number of tokens (and
    pads little); a rank may get no rows when the batch is smaller than the world.
    """
    if not env.enabled:
        return rows
    ordered = rows[np.argsort(lengths[rows], kind="stable")]
    return ordered[env.rank :: env.world_size]


def inference_rows(lengths: np.ndarray, env: DistEnv) -> np.ndarray:
    """The rows this rank predicts: strided over the length order, for balanced work."""
    if not env.enabled:
        return np.arange(len(lengths))
    return np.argsort(lengths, kind="stable")[env.rank :: env.world_size]


def combine_shards(values: np.ndarray, env: DistEnv, device: torch.device) -> np.ndarray:
    """Every rank's shard in one array, on every rank.

    Each rank fills only its own rows and leaves zeros elsewhere, so a summing ``all_reduce`` is
    exact (``x + 0 == x``) and costs one collective of N floats.
    """
    if not env.enabled:
        return values
    tensor = torch.as_tensor(values, dtype=torch.float32).to(_comm_device(device))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy().astype(values.dtype, copy=False)


def sum_gradients(params: Sequence[torch.nn.Parameter], env: DistEnv, loss: float) -> float:
    """Add every rank's gradients (and its share of the batch loss); returns the batch loss.

    A parameter without a gradient (a rank that saw no rows) contributes zeros.  Sums are taken
    in float32 even for bf16/fp16 parameters, in buckets of :data:`BUCKET_ELEMENTS`.
    """
    if not env.enabled:
        return loss
    device = _comm_device(params[0].device)
    buckets = list(_buckets(params))
    for index, bucket in enumerate(buckets):
        pieces = [
            p.grad.reshape(-1).float()
            if p.grad is not None
            else torch.zeros(p.numel(), device=p.device)
            for p in bucket
        ]
        if (
            index == len(buckets) - 1
        ):  # the loss rides along with the last bucket: no extra collective
            pieces.append(torch.tensor([loss], dtype=torch.float32, device=bucket[0].device))
        flat = torch.cat([piece.to(device) for piece in pieces])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in bucket:
            summed = flat[offset : offset + p.numel()].view_as(p).to(p.device, p.dtype)
            if p.grad is None:
                p.grad = summed.clone()
            else:
                p.grad.copy_(summed)
            offset += p.numel()
    return float(flat[-1])


def broadcast_parameters(params: Sequence[torch.nn.Parameter], env: DistEnv) -> None:
    """Start every rank from rank 0's trainable weights.

    They are seeded alike; this makes it certain.
    """
    if not env.enabled:
        return
    with torch.no_grad():
        for p in params:
            buffer = p.data.to(_comm_device(p.device))
            dist.broadcast(buffer, src=0)
            p.data.copy_(buffer.to(p.device))


def gather_objects(value: Any, env: DistEnv) -> list[Any]:
    """``value`` of every rank, in rank order, on every rank (e.g. per-rank RNG and loss state)."""
    if not env.enabled:
        return [value]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, value)
    return out


def from_rank0(value: Any, env: DistEnv) -> Any:
    """Rank 0's ``value`` on every rank (what the others pass is ignored)."""
    if not env.enabled:
        return value
    box = [value if env.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def main_rank_lock(lock_factory, env: DistEnv) -> Iterator[None]:
    """Hold ``lock_factory()`` on rank 0 only: the other ranks follow rank 0's decisions, so
    taking the lock on every rank would only make them wait on each other (or deadlock)."""
    if env.is_main:
        with lock_factory():
            yield
    else:
        yield


def _buckets(params: Sequence[torch.nn.Parameter]) -> Iterator[list[torch.nn.Parameter]]:
    bucket, size = [], 0
    for p in params:
        if bucket and size + p.numel() > BUCKET_ELEMENTS:
            yield bucket
            bucket, size = [], 0
        bucket.append(p)
        size += p.numel()
    if bucket:
        yield bucket


def _comm_device(device: torch.device) -> torch.device:
    """NCCL reduces CUDA tensors; gloo (CPU) reduces host tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
