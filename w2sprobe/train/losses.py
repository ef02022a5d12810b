"""Losses of the weak-to-strong literature, on one logit per example (``p = sigmoid(z)``).

Every loss takes the student's logits ``z`` (B,) and soft targets ``y`` in [0, 1] (B,) and
returns the batch mean.  Names as on the command line (``--loss``):

* ``xent``    cross-entropy against the soft labels: ``-(y log p + (1 - y) log(1 - p))``;
* ``kl``      ``KL(y || p) = xent - H(y)``: the same gradient as xent, a loss that is 0 at a perfect fit;
* ``logconf`` Burns et al.'s auxiliary confidence loss: xent against
  ``(1 - a) y + a * 1[p > t]``, ``a`` rising linearly to ``weight`` over ``warmup`` steps, ``t``
  the quantile of the last 32 student predictions at ``1 - mean(y)`` (``0.5`` with
  ``balance_batch``), so that the hardened labels have the batch's weak-label prior;
* ``entropy`` ``(1 - a) CE(p, y) + a H(p)`` (the blog's entropy loss): a real entropy penalty,
  so its gradient pushes predictions away from 1/2 (it is not a rescaled xent);
* ``window``  xent on the examples whose confidence ``|p - 1/2|`` is at most ``radius`` only.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError

LOSSES = ("xent", "kl", "logconf", "entropy", "window")
#: The rolling buffer of student predictions that sets logconf's hardening threshold.
LOGCONF_BUFFER = 32


def bernoulli_entropy_from_logits(z: torch.Tensor) -> torch.Tensor:
    """H(sigmoid(z)) in nats, stable for large |z|."""
    p = torch.sigmoid(z)
    return -(p * F.logsigmoid(z) + (1 - p) * F.logsigmoid(-z))


def bernoulli_entropy(y: torch.Tensor) -> torch.Tensor:
    """H(y) for probabilities y, with 0 log 0 = 0."""
    return -(torch.special.xlogy(y, y) + torch.special.xlogy(1 - y, 1 - y))


def ramp(step: int, weight: float, warmup: int) -> float:
    """Auxiliary weight at ``step``: linear from 0 to ``weight`` over ``warmup`` steps."""
    return weight if warmup <= 0 else weight * min(1.0, step / warmup)


class Loss:
    """Base: ``loss(z, y, step)``; stateful losses also implement ``state_dict``."""

    name = "xent"

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, step: int) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float())

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


class XentLoss(Loss):
    name = "xent"


class KLLoss(Loss):
    name = "kl"

    def __call__(self, logits, targets, step):
        targets = targets.float()
        return super().__call__(logits, targets, step) - bernoulli_entropy(targets).mean()


class LogConfLoss(Loss):
    """Cross-entropy against the weak labels mixed with the student's hardened predictions."""

    name = "logconf"

    def __init__(self, weight: float = 0.5, warmup: int = 100, balance_batch: bool = False):
        self.weight, self.warmup, self.balance_batch = weight, warmup, balance_batch
        # Bounded: the reference code's buffer grows for the whole run.
        self.buffer: deque[float] = deque(maxlen=LOGCONF_BUFFER)

    def threshold(self, probs: torch.Tensor, targets: torch.Tensor) -> float:
        """Feed this batch's predictions to the buffer, then its quantile at ``1 - prior``."""
        self.buffer.extend(probs.detach().float().cpu().tolist())
        prior = 0.5 if self.balance_batch else float(targets.float().mean())
        return float(np.quantile(np.fromiter(self.buffer, dtype=np.float64), 1.0 - prior))

    def __call__(self, logits, targets, step):
        logits, targets = logits.float(), targets.float()
        probs = torch.sigmoid(logits)
        hard = (probs.detach() > self.threshold(probs, targets)).float()
        alpha = ramp(step, self.weight, self.warmup)
        return F.binary_cross_entropy_with_logits(logits, (1 - alpha) * targets + alpha * hard)

    def state_dict(self) -> dict:
        return {"buffer": list(self.buffer)}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.clear()
        self.buffer.extend(state.get("buffer", []))


class EntropyLoss(Loss):
    """``(1 - a) CE(p, y) + a H(p)``: the student's own soft prediction as the auxiliary target."""

    name = "entropy"

    def __init__(self, weight: float = 0.5, warmup: int = 100):
        self.weight, self.warmup = weight, warmup

    def __call__(self, logits, targets, step):
        logits, targets = logits.float(), targets.float()
        alpha = ramp(step, self.weight, self.warmup)
        xent = F.binary_cross_entropy_with_logits(logits, targets)
        return (1 - alpha) * xent + alpha * bernoulli_entropy_from_logits(logits).mean()


class WindowLoss(Loss):
    """Cross-entropy on the examples the student is unconfident about: ``|p - 1/2| <= radius``."""

    name = "window"

    def __init__(self, radius: float):
        self.radius = check_radius(radius)

    def __call__(self, logits, targets, step):
        logits, targets = logits.float(), targets.float()
        inside = (torch.sigmoid(logits.detach()) - 0.5).abs() <= self.radius
        if not inside.any():
            return logits.sum() * 0.0  # keeps the graph: a step with nothing to learn
        return F.binary_cross_entropy_with_logits(logits[inside], targets[inside])


def check_radius(radius: float) -> float:
    radius = float(radius)
    if not (0 < radius <= 0.5) or math.isnan(radius):
        raise UsageError(f"--radius must be in (0, 0.5] or 'midweak', got {radius}")
    return radius


def parse_radius(radius: str | float) -> str | float:
    """``midweak`` stays symbolic (resolved per run); a number is checked."""
    if isinstance(radius, str) and radius.strip().lower() == "midweak":
        return "midweak"
    try:
        return check_radius(float(radius))
    except ValueError:
        raise UsageError(f"--radius must be a number in (0, 0.5] or 'midweak', got '{radius}'") from None


def midweak_radius(train_labels: np.ndarray) -> float:
    """The blog's window: the median confidence ``|y - 1/2|`` of this run's training labels."""
    radius = float(np.median(np.abs(np.asarray(train_labels, dtype=np.float64) - 0.5)))
    # Hard labels give 0.5 (everything inside); all-1/2 labels would give 0: keep it usable.
    return min(0.5, max(radius, 1e-6))


def make_loss(name: str, *, aux_weight: float = 0.5, aux_warmup: int = 100, balance_batch: bool = False,
              radius: float = 0.15) -> Loss:
    """The loss called ``name``; ``radius`` must already be a number (see :func:`midweak_radius`)."""
    check_loss_name(name)
    if name == "logconf":
        return LogConfLoss(aux_weight, aux_warmup, balance_batch)
    if name == "entropy":
        return EntropyLoss(aux_weight, aux_warmup)
    if name == "window":
        return WindowLoss(radius)
    return KLLoss() if name == "kl" else XentLoss()


def check_loss_name(name: str) -> str:
    if name not in LOSSES:
        raise UsageError(f"unknown loss '{name}'; known: {', '.join(LOSSES)}")
    return name
