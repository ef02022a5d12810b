"""Training: a LoRA classifier on soft labels, the losses of the literature, the study's stages."""

from .classifier import LoraSettings, SequenceClassifier, build_classifier, lora_target_modules
from .losses import LOSSES, make_loss, midweak_radius
from .trainer import Examples, FitResult, TrainConfig, Trainer

__all__ = [
    "LOSSES",
    "Examples",
    "FitResult",
    "LoraSettings",
    "SequenceClassifier",
    "TrainConfig",
    "Trainer",
    "build_classifier",
    "lora_target_modules",
    "make_loss",
    "midweak_radius",
]
