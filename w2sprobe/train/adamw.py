"""The recipe's AdamW and warmup-cosine schedule for head students, without torch.optim's start-up.

Constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo`` (3.3 s of a head stage's
5.5 s on this project's 2 cores: BENCHMARKS.md, "Head students"), while the head itself trains
in under a second.  :class:`ScheduledAdamW` runs torch's own AdamW kernel -- the functional
``torch.optim.adamw.adamw`` behind ``torch.optim.AdamW``, on its single-tensor path (the one
``torch.optim.AdamW`` takes on the CPU) -- with the same per-parameter state, and sets the
learning rate after every step exactly as ``LambdaLR`` with :func:`.recipe.warmup_cosine` does.
tests/test_train_head.py checks that the parameters equal ``torch.optim.AdamW`` + ``LambdaLR``'s
bit for bit, step by step.  LoRA students keep ``torch.optim`` (their checkpoints store its
state dict, and an import is nothing against their hours).
"""

from __future__ import annotations

import torch
from torch.optim.adamw import adamw

from .recipe import Schedule, warmup_cosine

#: torch.optim.AdamW's default epsilon.
EPS = 1e-8


class ScheduledAdamW:
    """AdamW (beta1 0.9, the recipe's beta2 and weight decay) whose learning rate follows the
    recipe's warmup-cosine factor of the steps taken, as ``LambdaLR`` would set it."""

    def __init__(self, params: list[torch.nn.Parameter], recipe: Schedule, total_steps: int):
        self.params = list(params)
        self.base_lr, self.beta2, self.weight_decay = recipe.lr, recipe.beta2, recipe.weight_decay
        self.factor = warmup_cosine(min(recipe.warmup_steps, total_steps), total_steps)
        self.steps = 0
        self.lr = self.base_lr * self.factor(0)
        # the state torch.optim.AdamW keeps per parameter (its step counter a float32 scalar)
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self.state_steps = [torch.tensor(0.0, dtype=torch.float32) for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW update of every parameter that has a gradient, then the next step's rate."""
        used = [i for i, p in enumerate(self.params) if p.grad is not None]
        adamw(
            [self.params[i] for i in used],
            [self.params[i].grad for i in used],
            [self.exp_avg[i] for i in used],
            [self.exp_avg_sq[i] for i in used],
            [],
            [self.state_steps[i] for i in used],
            foreach=False,
            amsgrad=False,
            beta1=0.9,
            beta2=self.beta2,
            lr=self.lr,
            weight_decay=self.weight_decay,
            eps=EPS,
            maximize=False,
        )
        self.steps += 1
        self.lr = self.base_lr * self.factor(self.steps)
