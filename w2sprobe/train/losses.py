"""Losses of the weak-to-strong literature, on one logit per example (``p = sigmoid(z)``).

Every loss takes the student's logits ``z`` (B,) and soft targets ``y`` in [0, 1] (B,) and
returns the batch mean.  Names as on the command line (``--loss``); ``logit(y) = log y -
log(1 - y)``, ``CE(z, t) = -(t log p + (1 - t) log(1 - p))``:

* ``xent``     ``CE(z, y)``, cross-entropy against the soft labels;
* ``kl``       ``KL(y || p) = xent - H(y)``: the same gradient as xent, a loss that is 0 at a
  perfect fit;
* ``logconf``  Burns et al.'s auxiliary confidence loss: ``CE(z, (1 - a) y + a 1[p > t])``,
  ``a`` rising linearly to ``weight`` over ``warmup`` steps, ``t`` set from the last 32 student
  predictions: ``threshold="quantile"`` (default, the reference code) takes their quantile at
  ``1 - mean(y)``, so that the hardened labels have the batch's weak-label prior;
  ``threshold="median"`` takes their median, as the blog words it ("the median of the most
  recent 32 predictions").  ``balance_batch`` (EleutherAI/w2s ``log_confidence_loss``): the
  batch's labels are first re-centred in log-odds, ``y' = sigmoid(l - mean(l))`` with ``l =
  log(y + 1e-7) - log(1 - y + 1e-7)`` over the optimizer batch, the mix uses ``y'``, and the
  quantile is taken at 0.5;
* ``entropy``  ``(1 - a) CE(z, y) + a H(p)`` (the blog's entropy loss): a real entropy penalty,
  so its gradient pushes predictions away from 1/2 (it is not a rescaled xent);
* ``window``   CE on the examples whose confidence ``|p - 1/2|`` is at most ``radius`` only;
  ``average="batch"`` (default, EleutherAI/w2s ``confidence_window_loss``) divides their sum by
  the batch size, ``average="inside"`` by the number of in-window examples;
* ``product``  (openai/weak-to-strong and EleutherAI/weak-to-strong ``product_loss_fn``, a soft
  bootstrapping loss) ``CE(z, t)`` against the detached ``t ∝ p^beta y^alpha`` normalised over
  the two classes, i.e. ``logit(t) = beta z + alpha logit(y)``; ``alpha = 0`` is self-training
  on the student's own (sharpened by ``beta``) predictions, ``beta = 0`` is xent;
* ``adaptive`` (Guo et al. 2024, "Vision Superalignment", code ``AdaptConf``) per example
  ``(1 - a) KL(y || p) + a CE(z, h_s)`` with the student's hard label ``h_s = 1[z > 0]``, the
  teacher's ``h_w = 1[y > 1/2]`` and the detached ``a = sigmoid((CE(z, h_s) - CE(z, h_w)) / T)``
  (= 1/2 where the two hard labels agree, ``sigmoid(-|z| / T)`` where they differ).

Gradient accumulation.  A loss is a mean over an optimizer batch, but the trainer sees the batch
in micro-batches.  So every loss also offers :meth:`Loss.terms`: the *sum* of its per-example
terms over a micro-batch and the number of examples the batch mean divides by (all of them, or
window's in-window ones with ``average="inside"``).  The trainer sums both over the micro-batches
(and ranks) and divides the accumulated gradient by the total count once, so each example weighs
``1 / count`` of the whole batch however it was split.  What depends on the whole batch (logconf's
threshold and balance_batch's re-centring) is set once per batch by :meth:`Loss.begin_batch`
before any micro-batch's terms.

Students of every kind use these same objects: the LoRA trainer through ``begin_batch`` +
``terms`` per micro-batch, a classifier on cached activations (a head student) through
``loss(logits, targets, step)`` on whole batches, which is ``begin_batch`` then ``terms``' mean.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from .loss_config import check_logconf_threshold, check_radius, check_window_average

#: The rolling buffer of student predictions that sets logconf's hardening threshold.
LOGCONF_BUFFER = 32
#: balance_batch's guard against log 0 in the labels' log-odds (the reference code's).
LOG_ODDS_EPS = 1e-7


def bernoulli_entropy_from_logits(z: torch.Tensor) -> torch.Tensor:
    """H(sigmoid(z)) in nats, stable for large |z|."""
    p = torch.sigmoid(z)
    return -(p * F.logsigmoid(z) + (1 - p) * F.logsigmoid(-z))


def bernoulli_entropy(y: torch.Tensor) -> torch.Tensor:
    """H(y) for probabilities y, with 0 log 0 = 0."""
    return -(torch.special.xlogy(y, y) + torch.special.xlogy(1 - y, 1 - y))


def label_log_odds(y: torch.Tensor) -> torch.Tensor:
    """``log(y + eps) - log(1 - y + eps)``: finite for labels of exactly 0 or 1."""
    return torch.log(y + LOG_ODDS_EPS) - torch.log(1 - y + LOG_ODDS_EPS)


def kl_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """KL(y || sigmoid(z)) per example: xent minus the labels' entropy."""
    xent = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return xent - bernoulli_entropy(targets)


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
        return kl_from_logits(logits, targets)


class LogConfLoss(Loss):
    """Cross-entropy against the weak labels mixed with the student's hardened predictions.

    The threshold is set once per optimizer batch (:meth:`begin_batch`) from the buffer after
    the whole batch's predictions joined it, and with the whole batch's prior, so it is the
    same for every micro-batch (the reference code recomputes it per micro-batch).  So is
    ``balance_batch``'s shift, the mean log-odds of the whole optimizer batch's labels.
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
        #: balance_batch: the mean label log-odds of the current optimizer batch.
        self.label_shift: float | None = None

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
        if self.balance_batch:  # float64: the same shift whatever order the rows come in
            self.label_shift = float(label_log_odds(targets.detach().double()).mean())

    def balanced(self, targets: torch.Tensor) -> torch.Tensor:
        """balance_batch's labels: their log-odds less the batch's mean log-odds."""
        if not self.balance_batch:
            return targets
        return torch.sigmoid(label_log_odds(targets) - self.label_shift)

    def per_example(self, logits, targets, step):
        if self.current_threshold is None or (self.balance_batch and self.label_shift is None):
            raise RuntimeError("logconf: begin_batch must see the batch before its terms")
        hard = (torch.sigmoid(logits.detach()) > self.current_threshold).float()
        alpha = ramp(step, self.weight, self.warmup)
        return F.binary_cross_entropy_with_logits(
            logits, (1 - alpha) * self.balanced(targets) + alpha * hard, reduction="none"
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
    """Cross-entropy on the examples the student is unconfident about: ``|p - 1/2| <= radius``.

    ``average="batch"`` (the reference code's ``confidence_window_loss``): the in-window sum over
    the batch size, so an example outside the window counts as a zero term and every example
    weighs ``1 / B`` however many are inside; ``average="inside"``: the in-window mean, where
    each in-window example weighs ``1 / (number inside)``.
    """

    name = "window"

    def __init__(self, radius: float, average: str = "batch"):
        self.radius = check_radius(radius)
        self.average = check_window_average(average)
        self.counts_every_example = self.average == "batch"

    def terms(self, logits, targets, step):
        """The in-window sum, and the batch's size or the number of in-window examples."""
        logits, targets = logits.float(), targets.float()
        inside = (torch.sigmoid(logits.detach()) - 0.5).abs() <= self.radius
        count = int(logits.numel()) if self.counts_every_example else int(inside.sum())
        if not inside.any():
            return logits.sum() * 0.0, count  # keeps the graph: nothing to learn here
        xent = F.binary_cross_entropy_with_logits(logits[inside], targets[inside], reduction="sum")
        return xent, count


class ProductLoss(Loss):
    """Cross-entropy against the student's prediction times the label, renormalised.

    The reference (openai/weak-to-strong ``product_loss_fn``, also in EleutherAI's fork) takes
    the target ``t_c ∝ p_c^beta y_c^alpha`` over the two classes, detached.  With one logit this
    is ``t = sigmoid(beta z + alpha logit(y))``, computed in log-odds: finite for every finite
    logit, and a label of exactly 0 or 1 with ``alpha > 0`` gives a target of exactly 0 or 1.
    The probability form's ``0 / 0`` (a saturated ``p`` of 1.0 against a label of 0) cannot
    occur, so no epsilon is needed; ``0^0`` is 1 as in ``torch.pow`` (``alpha = 0`` ignores the
    labels, ``beta = 0`` the prediction).  The reference's ``warmup_frac`` is unused there and
    has no counterpart here.
    """

    name = "product"

    def __init__(self, alpha: float = 1.0, beta: float = 1.0):
        self.alpha, self.beta = float(alpha), float(beta)

    def target(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The detached target ``sigmoid(beta z + alpha logit(y))``."""
        alpha = torch.tensor(self.alpha, dtype=targets.dtype, device=targets.device)
        label_odds = torch.special.xlogy(alpha, targets) - torch.special.xlogy(alpha, 1 - targets)
        return torch.sigmoid(self.beta * logits.detach() + label_odds)

    def per_example(self, logits, targets, step):
        return F.binary_cross_entropy_with_logits(
            logits, self.target(logits, targets), reduction="none"
        )


class AdaptiveLoss(Loss):
    """Adaptive confidence distillation: the teacher's soft label or the student's own hard one.

    Followed: the authors' code (ggjy/vision_weak_to_strong, ``AdaptConf`` in
    ``classification/distillers/adaptconf.py``), per example
    ``a = e^{CE(s, argmax s)/T} / (e^{CE(s, argmax s)/T} + e^{CE(s, argmax t)/T})``, detached,
    and ``(1 - a) KD(s, t) + a CE(s, argmax s)``.  Binary with soft weak labels ``y``: the hard
    labels are ``1[z > 0]`` (argmax; a tie goes to class 0, as ``argmax`` does) and
    ``1[y > 1/2]``, ``a = sigmoid((CE(z, h_s) - CE(z, h_w)) / T)``, and KD at the code's
    temperature 1 is its ``kl_div``: ``KL(y || p)``, the soft-label cross-entropy less ``H(y)``
    (the same gradient; ``a`` is detached).  The code's separate KD temperature (teacher logits
    over ``T_kd``) has no counterpart: the weak labels here are probabilities.  Its ground-truth
    term (``gt_loss_weight``) does not apply to a student of weak labels.  The paper's own
    statement (arXiv 2402.03749, section 3) could not be checked against the code here: only
    its abstract was at hand.

    ``a`` is 1/2 wherever the two hard labels agree and ``sigmoid(-|z| / T) < 1/2`` where they
    differ, so the student's own label never outweighs the teacher, least so where the student
    confidently disagrees.
    """

    name = "adaptive"

    def __init__(self, temperature: float = 1.0):
        self.temperature = float(temperature)

    def weight(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The detached per-example weight ``a`` of the student's own hard label."""
        z = logits.detach()
        own_ce = F.binary_cross_entropy_with_logits(z, (z > 0).to(z.dtype), reduction="none")
        teacher_ce = F.binary_cross_entropy_with_logits(
            z, (targets > 0.5).to(z.dtype), reduction="none"
        )
        return torch.sigmoid((own_ce - teacher_ce) / self.temperature)

    def per_example(self, logits, targets, step):
        a = self.weight(logits, targets)
        own = (logits.detach() > 0).to(logits.dtype)
        self_ce = F.binary_cross_entropy_with_logits(logits, own, reduction="none")
        return (1 - a) * kl_from_logits(logits, targets) + a * self_ce
