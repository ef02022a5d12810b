"""Head students: the trainer against a hand-written reference, and its recipe's semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from w2sprobe.errors import UsageError
from w2sprobe.metrics import roc_auc
from w2sprobe.train.head import HeadConfig, fit_head, predict_head
from w2sprobe.train.loss_config import LogconfConfig

N, D = 96, 6


def toy(seed: int, n: int = N):
    """Two Gaussian blobs in D dimensions with soft labels (90 % / 10 % confidence)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    x = (rng.normal(size=(n, D)) + truth[:, None] * 1.5).astype(np.float32)
    x[:, 0] *= 7.0  # one badly scaled feature: standardisation must take care of it
    soft = np.where(truth == 1, 0.9, 0.1).astype(np.float32)
    return torch.from_numpy(x), soft, truth


def reference_fit(x, y, vx, vy, config: HeadConfig):
    """The recipe written out by hand: standardise with the train rows' mean and std, a linear
    map initialised as nn.Linear is under the seed, seeded permutations per epoch, AdamW, a
    linear warmup then cosine decay (the formula, not a library schedule), xent on soft labels,
    val AUC every eval_every steps and the best weights kept."""
    torch.manual_seed(config.seed)
    mean = x.double().mean(0).float()
    std = x.double().std(0, unbiased=False).clamp_min(1e-6).float()
    linear = torch.nn.Linear(D, 1)
    optimizer = torch.optim.AdamW(
        linear.parameters(),
        lr=config.lr,
        betas=(0.9, config.beta2),
        weight_decay=config.weight_decay,
    )
    per_epoch = math.ceil(len(y) / config.batch_size)
    total, warmup = config.epochs * per_epoch, min(config.warmup_steps, config.epochs * per_epoch)

    def lr_factor(step: int) -> float:  # step = optimizer steps taken so far
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    def forward(inputs):
        return linear((inputs - mean) / std).squeeze(-1)

    targets = torch.as_tensor(y)
    order = torch.Generator().manual_seed(config.seed)
    best_auc, best = -math.inf, None
    step = 0
    for _ in range(config.epochs):
        permutation = torch.randperm(len(y), generator=order)
        for i in range(per_epoch):
            rows = permutation[i * config.batch_size : (i + 1) * config.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(step)
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                forward(x[rows]), targets[rows]
            )
            loss.backward()
            optimizer.step()
            step += 1
            if step % config.eval_every == 0 or step == total:
                with torch.no_grad():
                    auc = roc_auc(vy, torch.sigmoid(forward(vx)).numpy())
                if auc > best_auc:
                    best_auc = auc
                    best = {k: v.clone() for k, v in linear.state_dict().items()}
    linear.load_state_dict(best)
    return lambda inputs: torch.sigmoid(forward(inputs)).detach().numpy(), best_auc


def test_a_linear_head_equals_the_hand_written_reference():
    (x, y, _), (vx, vy, _), (tx, _, _) = toy(0), toy(1, 40), toy(2, 50)
    config = HeadConfig(lr=5e-2, epochs=3, batch_size=16, warmup_steps=4, eval_every=5, seed=3)
    fit = fit_head(x, y, vx, vy, config)
    reference, reference_auc = reference_fit(x, y, vx, vy, config)
    np.testing.assert_allclose(predict_head(fit.model, tx), reference(tx), rtol=1e-5, atol=1e-6)
    assert fit.best_val_auc == pytest.approx(reference_auc)
    assert fit.steps == 3 * math.ceil(N / 16)


def test_same_seed_same_head_other_seed_other_head():
    (x, y, _), (vx, vy, _) = toy(0), toy(1, 40)
    config = HeadConfig(lr=1e-2, epochs=2, batch_size=16, eval_every=4, hidden=8, seed=1)
    first = predict_head(fit_head(x, y, vx, vy, config).model, x)
    again = predict_head(fit_head(x, y, vx, vy, config).model, x)
    other = predict_head(fit_head(x, y, vx, vy, HeadConfig(**{**vars(config), "seed": 2})).model, x)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_every_loss_trains_a_head_and_it_learns_the_task():
    (x, y, _), (vx, vy, _), (tx, _, truth) = toy(0, 400), toy(1, 80), toy(2, 200)
    for loss in (LogconfConfig(), None):
        config = HeadConfig(lr=1e-2, epochs=5, batch_size=32, warmup_steps=5, eval_every=10)
        if loss is not None:
            config = HeadConfig(**{**vars(config), "loss": loss})
        fit = fit_head(x, y, vx, vy, config)
        assert roc_auc(truth, predict_head(fit.model, tx)) > 0.9


def test_the_best_val_checkpoint_is_kept():
    (x, y, _), (vx, vy, _) = toy(0), toy(1, 40)
    fit = fit_head(x, y, vx, vy, HeadConfig(lr=1e-2, epochs=4, batch_size=16, eval_every=3))
    aucs = [h["val_auc"] for h in fit.history]
    assert fit.best_val_auc == max(aucs)
    assert fit.best_step == fit.history[aucs.index(max(aucs))]["step"]


@pytest.mark.parametrize(
    "fields,message",
    [({"hidden": -1}, "--head-hidden"), ({"lr": 0.0}, "--head-lr"), ({"epochs": 0}, "--epochs")],
)
def test_bad_head_settings(fields, message):
    with pytest.raises(UsageError, match=message):
        HeadConfig(**fields)


def test_the_key_records_shape_recipe_and_loss():
    linear, mlp = HeadConfig().describe(), HeadConfig(hidden=16).describe()
    assert linear["hidden"] == 0 and mlp["hidden"] == 16 and linear["loss"] == "xent"
    assert HeadConfig(loss=LogconfConfig()).describe()["aux_weight"] == 0.5


@pytest.mark.parametrize("warmup,total", [(40, 471), (0, 10), (5, 5), (40, 15)])
def test_the_schedule_equals_transformers_cosine_with_warmup(warmup, total):
    from transformers import get_cosine_schedule_with_warmup

    from w2sprobe.train.recipe import warmup_cosine

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    reference = get_cosine_schedule_with_warmup(optimizer, min(warmup, total), total)
    ours = warmup_cosine(min(warmup, total), total)
    for step in range(total + 1):
        assert ours(step) == pytest.approx(reference.lr_lambdas[0](step), abs=1e-12)


def test_scheduled_adamw_equals_torch_adamw_with_lambdalr_bit_for_bit():
    """The head's optimizer (torch's functional AdamW kernel, no torch.optim import cost)
    against torch.optim.AdamW + LambdaLR of the same schedule: identical parameters after
    every step, including steps where one parameter gets no gradient."""
    from w2sprobe.train.adamw import ScheduledAdamW
    from w2sprobe.train.recipe import optimizer_and_schedule

    config = HeadConfig(lr=3e-2, warmup_steps=5, weight_decay=0.1, beta2=0.95)
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    optimizer = ScheduledAdamW(ours, config, total_steps=20)
    reference, schedule = optimizer_and_schedule(theirs, config, total_steps=20)
    for step in range(20):
        grads = [torch.randn(4, 3), None if step % 7 == 3 else torch.randn(3)]
        optimizer.zero_grad()
        reference.zero_grad()
        for mine, ref, grad in zip(ours, theirs, grads):
            mine.grad = None if grad is None else grad.clone()
            ref.grad = None if grad is None else grad.clone()
        optimizer.step()
        reference.step()
        schedule.step()
        assert optimizer.lr == reference.param_groups[0]["lr"]
        for mine, ref in zip(ours, theirs):
            assert torch.equal(mine, ref)
