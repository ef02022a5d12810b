"""Architecture layout: where a loaded transformer's layers are, found from its module tree.

Layer numbering follows Hugging Face ``hidden_states``: layer 0 is the input of the first
transformer block (the embeddings output), layer ``i`` the output of block ``i`` (1-based), and
layer ``L`` goes through the final norm where HF applies one (GPT-2 ``ln_f``, Llama ``norm``).
:func:`describe` finds the blocks and that norm from the module tree and the config, not from
a table of model names; :func:`~.config.is_decoder_type` (config only, no torch) tells
decoders from encoders by ``model_type``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import UsageError
from ..pooling import default_pooling
from .config import default_pooling_for, is_decoder_type

__all__ = ["ModelLayout", "default_pooling_for", "describe", "is_decoder_type", "text_config"]


@dataclass
class ModelLayout:
    """Where the layers of a loaded transformer are.

    ``blocks`` is the ``ModuleList`` of transformer blocks (its length = ``num_hidden_layers``),
    ``final_norm`` the norm HF applies before reporting ``hidden_states[L]`` (or ``None``).
    """

    model_type: str
    num_layers: int
    hidden_size: int
    blocks_path: str
    final_norm_path: str | None
    is_decoder: bool

    @property
    def default_pooling(self) -> str:
        """This architecture's pooling when none is asked for (see :func:`default_pooling`)."""
        return default_pooling(self.is_decoder)


def text_config(config):
    """The text part of a config (multimodal configs nest it), else the config itself."""
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def describe(model: nn.Module) -> ModelLayout:
    """Find the block list, final norm and sizes of a loaded model from its config and modules."""
    config = text_config(model.config)
    num_layers = int(config.num_hidden_layers)
    candidates = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) == num_layers
    ]
    if not candidates:
        raise UsageError(
            f"cannot find the {num_layers} transformer blocks of {type(model).__name__}"
        )
    # Several lists of that length can exist (e.g. per-layer norms); the blocks hold the most
    # weights.
    blocks_path, _ = max(candidates, key=lambda item: sum(p.numel() for p in item[1].parameters()))
    return ModelLayout(
        model_type=config.model_type,
        num_layers=num_layers,
        hidden_size=int(config.hidden_size),
        blocks_path=blocks_path,
        final_norm_path=_final_norm_path(model, blocks_path),
        is_decoder=is_decoder_type(config.model_type),
    )


def _final_norm_path(model: nn.Module, blocks_path: str) -> str | None:
    """A norm that is a sibling of the blocks' container and comes after it (``ln_f``, ``norm``)."""
    parent_path, _, blocks_name = blocks_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    seen_blocks = False
    for name, child in parent.named_children():
        if name == blocks_name:
            seen_blocks = True
        elif seen_blocks and "norm" in type(child).__name__.lower():
            return f"{parent_path}.{name}" if parent_path else name
    return None
