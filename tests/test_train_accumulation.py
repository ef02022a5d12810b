"""Gradient accumulation: a batch's gradient must not depend on how it is split into micro-batches.

The reference for every loss is the plain gradient of the loss on the whole 32-example batch,
computed in one forward/backward pass outside the trainer.  The trainer's ``_step`` is then run
with micro-batches of 32 (one piece) and 8 (four pieces) and its accumulated gradient, read just
before the optimizer step, must equal the reference.  The model is a deterministic bag of
embeddings (no dropout), so any difference comes from the accumulation arithmetic alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from w2sprobe.train import TrainConfig, Trainer
from w2sprobe.train.batching import Encoded, collate
from w2sprobe.train.loss_config import (
    AdaptiveConfig,
    EntropyConfig,
    LogconfConfig,
    ProductConfig,
    WindowConfig,
    loss_config,
)

CPU = torch.device("cpu")
VOCAB, DIM, BATCH = 40, 6, 32
STEP = 60  # past the auxiliary warmup below: logconf and entropy run at full weight


class BagOfEmbeddings(nn.Module):
    """logit = w . mean(embeddings of the unpadded tokens) + b: exact under any padding."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Parameter(torch.randn(VOCAB, DIM, generator=g))
        self.head = nn.Parameter(torch.randn(DIM, generator=g))
        self.bias = nn.Parameter(torch.tensor(0.1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.float()
        pooled = (self.embed[input_ids] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return pooled @ self.head + self.bias


class GradientRecorder:
    """Stands in for the optimizer: remembers the gradients it was asked to apply."""

    def __init__(self, params):
        self.params, self.grads = list(params), None

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.grads = [p.grad.detach().clone() for p in self.params]


class NoSchedule:
    def step(self) -> None:
        pass


def toy_batch(seed: int = 0) -> tuple[Encoded, np.ndarray, torch.Tensor]:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(1, VOCAB, rng.integers(2, 12)).tolist() for _ in range(BATCH)]
    targets = torch.as_tensor(rng.uniform(0, 1, BATCH), dtype=torch.float32)
    return Encoded(ids, pad_id=0), rng.permutation(BATCH), targets


def window_radius(model: nn.Module, enc: Encoded, rows: np.ndarray) -> float:
    """A radius with about half the batch inside the window (and no point on its edge)."""
    with torch.no_grad():
        probs = torch.sigmoid(model(*collate(enc, rows, CPU))).numpy()
    confidence = np.sort(np.abs(probs - 0.5))
    radius = float(confidence[BATCH // 2 - 1] + confidence[BATCH // 2]) / 2
    assert 0 < (confidence <= radius).sum() < BATCH
    return radius


def config_for(loss: str, minibatch: int, radius: float) -> TrainConfig:
    configs = {
        "logconf": LogconfConfig(weight=0.5, warmup=10),
        # the labels' log-odds shift is the whole batch's, set before any micro-batch
        "logconf-balanced": LogconfConfig(weight=0.5, warmup=10, balance_batch=True),
        "entropy": EntropyConfig(weight=0.5, warmup=10),
        "window": WindowConfig(radius=radius),  # the in-window sum over the batch size
        "window-inside": WindowConfig(radius=radius, average="inside"),  # the in-window mean
        "product": ProductConfig(alpha=1.0, beta=1.0),
        "product-sharpened": ProductConfig(alpha=0.5, beta=2.0),
        "adaptive": AdaptiveConfig(temperature=2.0),
    }
    return TrainConfig(
        loss=configs.get(loss) or loss_config(loss), batch_size=BATCH, minibatch=minibatch
    )


def whole_batch_gradient(
    loss_name: str, config: TrainConfig, enc, rows, targets
) -> list[torch.Tensor]:
    """The reference: one forward and backward of the loss over all 32 examples."""
    model = BagOfEmbeddings()
    loss_fn = config.loss.build()
    loss_fn(model(*collate(enc, rows, CPU)), targets[torch.as_tensor(rows)], STEP - 1).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def trainer_gradient(loss_name: str, config: TrainConfig, enc, rows, targets) -> list[torch.Tensor]:
    model = BagOfEmbeddings()
    trainer = Trainer(model, None, config, CPU)
    loss_fn = config.loss.build()
    recorder = GradientRecorder(model.parameters())
    trainer._step(enc, enc.lengths, rows, targets, loss_fn, recorder, NoSchedule(), STEP)
    return recorder.grads


def max_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


LOSS_CASES = [
    "xent",
    "kl",
    "logconf",
    "logconf-balanced",
    "entropy",
    "window",
    "window-inside",
    "product",
    "product-sharpened",
    "adaptive",
]


@pytest.mark.parametrize("loss", LOSS_CASES)
def test_batch_gradient_does_not_depend_on_the_micro_batch_split(loss):
    enc, rows, targets = toy_batch()
    radius = window_radius(BagOfEmbeddings(), enc, rows)
    reference = whole_batch_gradient(loss, config_for(loss, BATCH, radius), enc, rows, targets)
    assert max(float(g.abs().max()) for g in reference) > 1e-3  # a gradient worth comparing
    for minibatch in (BATCH, 8):
        got = trainer_gradient(loss, config_for(loss, minibatch, radius), enc, rows, targets)
        assert max_difference(got, reference) < 1e-6, (
            loss,
            minibatch,
            max_difference(got, reference),
        )


@pytest.mark.parametrize("loss", ["window", "window-inside"])
def test_window_with_nothing_inside_gives_a_zero_gradient(loss):
    enc, rows, targets = toy_batch()
    config = config_for(loss, 8, 1e-9)
    grads = trainer_gradient(loss, config, enc, rows, targets)
    assert all(float(g.abs().max()) == 0.0 for g in grads)
