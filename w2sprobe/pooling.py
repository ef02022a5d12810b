"""Token pooling: one vector per sequence from a (batch, seq, dim) hidden-state tensor.

The activation cache and the trainer's classifier head both pool with these functions, so a
probe on cached activations and a finetuned head read the same representation.  Positions
always come from the attention mask of a right-padded batch, never from the pad id (any id may
be used as padding, e.g. a decoder's eos token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:  # imported where a tensor is pooled, so the pooling names cost no torch import
    import torch

#: Pooling names, as ``--pool`` and the activation-file ``pooling`` attribute spell them.
POOLINGS = ("last", "mean", "first")


def default_pooling(is_decoder: bool) -> str:
    """``last`` token for decoders (it has seen the whole text), ``mean`` for encoders."""
    return "last" if is_decoder else "mean"


def check_pooling(pooling: str) -> str:
    """``pooling`` itself when it is one of :data:`POOLINGS`, else a UsageError."""
    if pooling not in POOLINGS:
        raise UsageError(f"unknown pooling '{pooling}'; use one of {', '.join(POOLINGS)}")
    return pooling


def pool_first(hidden: torch.Tensor) -> torch.Tensor:
    """The first token (BERT's ``[CLS]``): (batch, seq, dim) -> (batch, dim)."""
    return hidden[:, 0]


def pool_last(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The last non-pad token of each row of a right-padded batch (position mask sum - 1)."""
    import torch

    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean over unmasked tokens (a fully masked row gives zeros, not NaN)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, seq, dim) -> (batch, dim) by ``pooling`` (``first``, ``last``, else ``mean``).

    Callers validate the name with :func:`check_pooling` where it enters (request, CLI option).
    """
    if pooling == "first":
        return pool_first(hidden)
    if pooling == "last":
        return pool_last(hidden, mask)
    return pool_mean(hidden, mask)
