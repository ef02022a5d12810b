"""Reading pooled per-layer activations out of one forward pass with nnsight.

:class:`LayerReader` wraps a loaded model in ``nnsight.NNsight`` once, and for each batch
traces a single forward pass that taps the requested layers in execution order, pools each
(``last`` / ``mean`` / ``first`` token by attention mask, with :mod:`w2sprobe.pooling`) on the
model's device, and stops the forward right after the deepest requested layer.  Several
reductions of one tap (``--pool mean,last``, token slices) come out of the same forward pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from nnsight import NNsight
from torch import nn

from ..models import ModelLayout
from ..pooling import check_pooling, pool

#: (hidden (batch, seq, dim), attention mask (batch, seq)) -> one row per example (batch, ...).
Reducer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pooler(pooling: str) -> Reducer:
    """The reducer of one pooling name (``last`` / ``mean`` / ``first``)."""
    check_pooling(pooling)
    return lambda hidden, mask: pool(hidden, mask, pooling)


class LayerReader:
    """Pooled activations of selected layers (HF ``hidden_states`` numbering) per batch.

    ``pooling`` is one name (``__call__`` returns its tensor) or a sequence of reducers
    (:meth:`read` returns one tensor per reducer, all from one forward pass).
    """

    def __init__(
        self,
        model: nn.Module,
        layout: ModelLayout,
        layers: list[int],
        pooling: str | Sequence[Reducer],
    ):
        self.layers = sorted(layers)
        self.reducers = [pooler(pooling)] if isinstance(pooling, str) else list(pooling)
        self.layout = layout
        self.forward_kwargs = {"use_cache": False} if layout.is_decoder else {}
        with warnings.catch_warnings():
            # BERT-style blocks have a child named "output"; nnsight renames it and warns.
            warnings.simplefilter("ignore", UserWarning)
            self.traced = NNsight(model)
            self._taps = [self._tap(layer) for layer in self.layers]

    def _tap(self, layer: int):
        """(envoy, "input" | "output") whose value is ``hidden_states[layer]``."""
        blocks = _envoy(self.traced, self.layout.blocks_path)
        if layer == 0:
            return blocks[0], "input"
        if layer == self.layout.num_layers and self.layout.final_norm_path:
            return _envoy(self.traced, self.layout.final_norm_path), "output"
        return blocks[layer - 1], "output"

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(len(layers), batch, hidden) pooled activations, on the model's device."""
        return self.read(input_ids, attention_mask)[0]

    def read(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        """Per reducer, (len(layers), batch, ...) of one traced forward pass, on the device."""
        reduced: list[list[torch.Tensor]] = [[] for _ in self.reducers]
        taps, reducers, mask = self._taps, self.reducers, attention_mask
        with self.traced.trace(
            input_ids=input_ids, attention_mask=attention_mask, **self.forward_kwargs
        ) as tracer:
            for envoy, attr in taps:
                value = getattr(envoy, attr)
                hidden = value[0] if isinstance(value, tuple) else value
                for out, reduce in zip(reduced, reducers):
                    out.append(reduce(hidden, mask))
            tracer.stop()  # nothing after the deepest requested layer is needed
        return [torch.stack(out) for out in reduced]


def _envoy(root, path: str):
    envoy = root
    for part in path.split("."):
        envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
    return envoy
