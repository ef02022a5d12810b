"""Losses of the weak-to-strong literature, on one logit per example (``p = sigmoid(z)``).

Every loss takes the student's logits ``z`` (B,) and soft targets ``y`` in [0, 1] (B,) and
returns the batch mean.  Names as on the command line (``--loss``):

* ``xent``    cross-entropy against the soft labels: ``-(y log p + (1 - y) log(1 - p))``;
* ``kl``      ``KL(y || p) = xent - H(y)``: the same gradient as xent, a loss that is 0 at a
  perfect fit;
* ``logconf`` Burns et al.'s auxiliary confidence loss: xent against
  ``(1 - a) y + a * 1[p > t]``, ``a`` rising linearly to ``weight`` over ``warmup`` steps, ``t``
  set from the last 32 student predictions: ``threshold="quantile"`` (default, the reference
  code) takes their quantile at ``1 - mean(y)`` (``0.5`` with ``balance_batch``), so that the
  hardened labels have the batch's weak-label prior; ``threshold="median"`` takes their median,
  as the blog words it ("the median of the most recent 32 predictions");
* ``entropy`` ``(1 - a) CE(p, y) + a H(p)`` (the blog's entropy loss): a real entropy penalty,
  so its gradient pushes predictions away from 1/2 (it is not a rescaled xent);
* ``window``  xent on the examples whose confidence ``|p - 1/2|`` is at most ``radius`` only,
  averaged over those examples.

Gradient accumulation.  A loss is a mean over an optimizer batch, but the trainer sees the batch
in micro-batches.  So every loss also offers :meth:`Loss.terms`: the *sum* of its per-example
terms over a micro-batch and the number of examples the batch mean divides by (all of them, or
window's in-window ones).  The trainer sums both over the micro-batches (and ranks) and divides
the accumulated gradient by the total count once, so each example weighs ``1 / count`` of the
whole batch however it was split.  What depends on the whole batch's predictions (logconf's
threshold) is set once per batch by :meth:`Loss.begin_batch` before any micro-batch's terms.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from .loss_config import check_logconf_threshold, check_radius

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
    """Base: ``loss(z, y, step)`` is the batch mean; the trainer uses ``begin_batch`` + ``terms``.

    Stateful losses also implement ``state_dict``.
    """

    name = "xent"
    #: Whether :meth:`begin_batch` needs the whole batch's predictions before any gradient.
    needs_batch_predictions = False
    #: Whether the batch mean counts every example (then the count is known without the ranks).
    counts_every_example = True

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, step: int) -> torch.Tensor:
        """The loss of one whole batch: ``begin_batch`` on it, then its terms' mean."""
        self.begin_batch(torch.sigmoid(logits.detach().float()), targets)
        total, count = self.terms(logits, targets, step)
        return total / max(count, 1)  # count 0 (an empty window): total is a graph-keeping 0

    def begin_batch(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        """See the predictions ``probs`` and ``targets`` of the whole optimizer batch.

        No gradient flows here.
        """

    def terms(
        self, logits: torch.Tensor, targets: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, int]:
        """(sum of the per-example terms of these examples, how many the batch mean counts)."""
        logits, targets = logits.float(), targets.float()
        return self.per_example(logits, targets, step).sum(), int(logits.numel())

    def per_example(self, logits: torch.Tensor, targets: torch.Tensor, step: int) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


class XentLoss(Loss):
    name = "xent"


class KLLoss(Loss):
    name = "kl"

    def per_example(self, logits, targets, step):
        return super().per_example(logits, targets, step) - bernoulli_entropy(targets)


class LogConfLoss(Loss):
    """Cross-entropy against the weak labels mixed with the student's hardened predictions.

    The threshold is set once per optimizer batch (:meth:`begin_batch`) from the buffer after
    the whole batch's predictions joined it, and with the whole batch's prior, so it is the
    same for every micro-batch (the reference code recomputes it per micro-batch).
    """

    name = "logconf"
    needs_batch_predictions = True

    def __init__(
        self,
        weight: float = 0.5,
        warmup: int = 100,
        balance_batch: bool = False,
        threshold: str = "quantile",
    ):
        self.weight, self.warmup, self.balance_batch = weight, warmup, balance_batch
        self.threshold_rule = check_logconf_threshold(threshold)
        # Bounded: the reference code's buffer grows for the whole run.
        self.buffer: deque[float] = deque(maxlen=LOGCONF_BUFFER)
        self.current_threshold: float | None = None

    def threshold(self, probs: torch.Tensor, targets: torch.Tensor) -> float:
        """Feed this batch's predictions to the buffer, then read the threshold off it.

        ``quantile``: the buffer's quantile at ``1 - prior`` (prior = mean target, 0.5 with
        ``balance_batch``); ``median``: its median, whatever the prior.
        """
        self.buffer.extend(probs.detach().float().cpu().tolist())
        if self.threshold_rule == "median":
            level = 0.5
        else:
            level = 1.0 - (0.5 if self.balance_batch else float(targets.float().mean()))
        return float(np.quantile(np.fromiter(self.buffer, dtype=np.float64), level))

    def begin_batch(self, probs, targets):
        self.current_threshold = self.threshold(probs, targets)

    def per_example(self, logits, targets, step):
        if self.current_threshold is None:
            raise RuntimeError("logconf: begin_batch must see the batch before its terms")
        hard = (torch.sigmoid(logits.detach()) > self.current_threshold).float()
        alpha = ramp(step, self.weight, self.warmup)
        return F.binary_cross_entropy_with_logits(
            logits, (1 - alpha) * targets + alpha * hard, reduction="none"
        )

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

    def per_example(self, logits, targets, step):
        alpha = ramp(step, self.weight, self.warmup)
        xent = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return (1 - alpha) * xent + alpha * bernoulli_entropy_from_logits(logits)


class WindowLoss(Loss):
    """Cross-entropy on the examples the student is unconfident about: ``|p - 1/2| <= radius``."""

    name = "window"
    counts_every_example = False

    def __init__(self, radius: float):
        self.radius = check_radius(radius)

    def terms(self, logits, targets, step):
        """Only the in-window examples count, in the sum and in the mean's denominator."""
        logits, targets = logits.float(), targets.float()
        inside = (torch.sigmoid(logits.detach()) - 0.5).abs() <= self.radius
        if not inside.any():
            return logits.sum() * 0.0, 0  # keeps the graph: nothing to learn here
        xent = F.binary_cross_entropy_with_logits(logits[inside], targets[inside], reduction="sum")
        return xent, int(inside.sum())
