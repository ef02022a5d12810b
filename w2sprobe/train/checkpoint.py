"""Training checkpoints: one file per run, replaced atomically, loadable with ``weights_only``.

A checkpoint is written at every evaluation; a killed run (even ``kill -9``) that is started
again with the same command continues from the last one instead of starting over.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

import torch

from ..atomic import replacing


@dataclass
class TrainingState:
    """What a checkpoint restores besides model, optimizer and schedule."""

    step: int = 0
    tokens: int = 0
    seconds: float = 0.0
    best_auc: float = -math.inf
    best_step: int = 0
    best: dict | None = None
    history: list[dict] = field(default_factory=list)
    resumed_from: int | None = None


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` (dataclasses become dicts) to ``path`` via a temporary file + rename."""
    payload = {
        key: asdict(value) if is_dataclass(value) else value for key, value in payload.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:  # fsync + rename; a full disk -> DiskFull, no temp left
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict | None:
    """The saved payload with ``state`` rebuilt as a TrainingState, or None if absent/unreadable."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        payload["state"] = TrainingState(**payload["state"])
    except Exception:  # noqa: BLE001 - a torn or foreign file only costs a restart, never a crash
        return None
    return payload
