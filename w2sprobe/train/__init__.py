"""Training: a LoRA classifier on soft labels, the losses of the literature, the study's stages.

The re-exports are lazy (PEP 562): a name's module is imported on first use, so reading a
loss's config (:mod:`.loss_config`) loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "LoraSettings": "classifier",
    "SequenceClassifier": "classifier",
    "build_classifier": "classifier",
    "lora_target_modules": "classifier",
    "LossConfig": "loss_config",
    "loss_config": "loss_config",
    "midweak_radius": "loss_config",
    "Examples": "trainer",
    "FitResult": "trainer",
    "TrainConfig": "trainer",
    "Trainer": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
