"""Any HF transformer as a binary sequence classifier: backbone (+ LoRA) -> pooled -> fp32 logit.

The head reads the same pooled representation the activation cache stores (``last`` non-pad
token for decoders, mask-aware ``mean`` for encoders, positions from the attention mask), so
one architecture-agnostic class covers encoders and decoders without relying on each model's
``*ForSequenceClassification`` (which finds the last token from the pad id).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..errors import UsageError
from ..models import ModelRef, describe, load_model
from ..pooling import pool
from .configs import LoraSettings  # re-exported: importable from here as before


class SequenceClassifier(nn.Module):
    """``logit = head(pool(backbone(x)))`` with the head kept in float32."""

    def __init__(self, backbone: nn.Module, hidden_size: int, pooling: str, is_decoder: bool):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.forward_kwargs = {"use_cache": False} if is_decoder else {}
        self.head = nn.Linear(hidden_size, 1, dtype=torch.float32)
        # A small head starts every prediction near 1/2, as the reference initialises its score
        # head.
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, **self.forward_kwargs
        )
        pooled = pool(out.last_hidden_state, attention_mask, self.pooling)
        # With --device-map the last block may sit on another device than the head.
        return self.head(pooled.float().to(self.head.weight.device)).squeeze(-1)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what training changes, for small checkpoints.

        That is LoRA + head, or everything without LoRA.
        """
        names = {name for name, p in self.named_parameters() if p.requires_grad}
        return {name: t.detach().clone() for name, t in self.state_dict().items() if name in names}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(state) - set(self.state_dict())
        if missing:
            raise ValueError(f"checkpoint has unknown parameters: {sorted(missing)[:3]}")
        self.load_state_dict(state, strict=False)


def lora_target_modules(backbone: nn.Module, blocks_path: str) -> list[str]:
    """Full names of every linear projection (attention and MLP) inside the transformer blocks.

    Found from the module tree, so Llama/Mistral/Qwen (``q_proj`` ... ``down_proj``), GPT-2
    (``c_attn``/``c_proj``/``c_fc``, Conv1D), BERT and MPNet (``query``/``q`` ... ``dense``) all
    work without a table of names, and nothing outside the blocks (e.g. BERT's pooler) is adapted.
    """
    from transformers.pytorch_utils import Conv1D

    prefix = blocks_path + "."
    return [
        name
        for name, module in backbone.named_modules()
        if name.startswith(prefix) and isinstance(module, (nn.Linear, Conv1D))
    ]


def build_classifier(
    ref: ModelRef,
    *,
    device: torch.device,
    dtype: torch.dtype,
    pooling: str | None,
    lora: LoraSettings,
    seed: int,
    device_map: str | None = None,
) -> SequenceClassifier:
    """Load ``ref`` and wrap it for training: LoRA on the blocks (or full finetuning), fp32 head.

    With ``device_map`` the backbone stays where ``from_pretrained`` placed it (possibly over
    several devices) and only the head goes to ``device``.
    """
    torch.manual_seed(seed)  # LoRA A matrices and the head are random
    backbone = load_model(ref, device=device, dtype=dtype, device_map=device_map)
    layout = describe(backbone)
    if lora.enabled:
        backbone = _with_lora(backbone, layout.blocks_path, lora)
    classifier = SequenceClassifier(
        backbone, layout.hidden_size, pooling or layout.default_pooling, layout.is_decoder
    )
    if device_map:
        classifier.head.to(device)  # moving the whole model would undo the backbone's placement
        return classifier
    return classifier.to(device)


def _with_lora(backbone: nn.Module, blocks_path: str, lora: LoraSettings) -> nn.Module:
    from peft import LoraConfig, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = list(lora.targets) if lora.targets else lora_target_modules(backbone, blocks_path)
    if not targets:
        raise UsageError(
            "no linear layers found in the transformer blocks to put LoRA on; use --no-lora"
        )
    # GPT-2's Conv1D stores its weight transposed; peft must be told.
    transposed = any(
        isinstance(m, Conv1D) for n, m in backbone.named_modules() if n in set(targets)
    )
    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        fan_in_fan_out=transposed,
    )
    try:
        with warnings.catch_warnings():
            # peft probes a transformers attribute that transformers 5 deprecates; not ours to fix.
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(backbone, config)
    except ValueError as exc:
        raise UsageError(
            f"--lora-targets {','.join(targets)}: {str(exc).splitlines()[0]}"
        ) from None
