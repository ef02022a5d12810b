"""Every loss against values worked by hand, and the properties the issue asks for."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from w2sprobe.errors import UsageError
from w2sprobe.options import TrainOptions
from w2sprobe.train.loss_config import (
    LogconfConfig,
    WindowConfig,
    loss_config,
    midweak_radius,
    parse_radius,
)
from w2sprobe.train.losses import (
    LOGCONF_BUFFER,
    EntropyLoss,
    KLLoss,
    LogConfLoss,
    WindowLoss,
    XentLoss,
    ramp,
)

# Two examples: logits 0 and ln 3, i.e. p = 1/2 and p = 3/4; soft targets 1 and 1/4.
Z = torch.tensor([0.0, math.log(3.0)])
Y = torch.tensor([1.0, 0.25])
LN2, LN34, LN14 = math.log(2), math.log(0.75), math.log(0.25)
# xent: row 1 = -ln(1/2) = ln 2; row 2 = -(1/4 ln 3/4 + 3/4 ln 1/4)
XENT = (LN2 + -(0.25 * LN34 + 0.75 * LN14)) / 2  # = 0.902394
# H(1) = 0, H(1/4) = -(1/4 ln 1/4 + 3/4 ln 3/4)
H_TARGETS = (0 + -(0.25 * LN14 + 0.75 * LN34)) / 2  # = 0.281168
# H(p): H(1/2) = ln 2, H(3/4) = H(1/4)
H_PREDS = (LN2 + -(0.25 * LN14 + 0.75 * LN34)) / 2  # = 0.627741


def test_xent_by_hand():
    assert float(XentLoss()(Z, Y, 0)) == pytest.approx(0.902394, abs=1e-6)
    assert float(XentLoss()(Z, Y, 0)) == pytest.approx(XENT, abs=1e-6)


def test_kl_is_xent_minus_target_entropy():
    assert float(KLLoss()(Z, Y, 0)) == pytest.approx(XENT - H_TARGETS, abs=1e-6)
    assert float(KLLoss()(Z, Y, 0)) == pytest.approx(0.621226, abs=1e-6)
    perfect = torch.logit(torch.tensor([0.3, 0.9]))
    assert float(KLLoss()(perfect, torch.tensor([0.3, 0.9]), 0)) == pytest.approx(0.0, abs=1e-6)


def test_entropy_by_hand():
    # step 50 of a 100-step warmup to 0.5: alpha = 0.25
    loss = EntropyLoss(weight=0.5, warmup=100)(Z, Y, 50)
    assert float(loss) == pytest.approx(0.75 * XENT + 0.25 * H_PREDS, abs=1e-6)
    assert float(loss) == pytest.approx(0.833731, abs=1e-6)


def test_entropy_gradient_is_not_scaled_xent():
    """At targets equal to the predictions xent has zero gradient; a real entropy term does not.

    The reference code's ``CE(f, (1-a) y + a f.detach())`` has gradient ``(1-a)(p - y)`` there:
    zero.
    """
    p = torch.tensor([0.2, 0.7, 0.9])
    z_xent, z_ent = torch.logit(p).requires_grad_(), torch.logit(p).requires_grad_()
    XentLoss()(z_xent, p, 200).backward()
    EntropyLoss(weight=0.5, warmup=100)(z_ent, p, 200).backward()
    assert torch.allclose(z_xent.grad, torch.zeros(3), atol=1e-7)
    # d/dz [0.5 * mean H(sigmoid z)] = 0.5 * (-z p (1-p)) / 3
    expected = 0.5 * (-torch.logit(p) * p * (1 - p)) / 3
    assert torch.allclose(z_ent.grad, expected, atol=1e-6)
    assert (z_ent.grad.abs() > 1e-3).all()


def test_logconf_by_hand():
    loss = LogConfLoss(weight=0.5, warmup=100)
    # buffer = [1/2, 3/4]; prior = mean(y) = 0.625 -> threshold = quantile at 0.375 = 0.59375
    # hardened = [0, 1]; alpha = 0.25; target = 0.75 * [1, 1/4] + 0.25 * [0, 1] = [0.75, 0.4375]
    value = float(loss(Z, Y, 50))
    row1 = -(0.75 * math.log(0.5) + 0.25 * math.log(0.5))
    row2 = -(0.4375 * LN34 + 0.5625 * LN14)
    assert value == pytest.approx((row1 + row2) / 2, abs=1e-6)
    assert value == pytest.approx(0.799400, abs=1e-6)
    assert list(loss.buffer) == pytest.approx([0.5, 0.75])


def test_logconf_balanced_hardens_at_the_median():
    loss = LogConfLoss(weight=1.0, warmup=0, balance_batch=True)
    z = torch.logit(torch.tensor([0.1, 0.4, 0.6, 0.8]))
    y = torch.tensor([1.0, 1.0, 1.0, 0.0])  # a prior of 0.75 is ignored with balance_batch
    # alpha = 1: the target is the hardened prediction alone, 1[p > median 0.5] = [0, 0, 1, 1]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.tensor([0.0, 0.0, 1.0, 1.0])
    )
    assert float(loss(z, y, 0)) == pytest.approx(float(expected), abs=1e-6)


# Four predictions p = [0.1, 0.4, 0.6, 0.8] with a weak-label prior of 0.75 (three 1s, one 0).
P4 = torch.tensor([0.1, 0.4, 0.6, 0.8])
Y4 = torch.tensor([1.0, 1.0, 1.0, 0.0])


def test_logconf_quantile_threshold_by_hand():
    """Reference code: quantile at 1 - 0.75 = 0.25 of the buffer. numpy's linear rule: position
    0.25 * 3 = 0.75 between 0.1 and 0.4 -> 0.1 + 0.75 * 0.3 = 0.325; hardened = [0, 1, 1, 1]."""
    loss = LogConfLoss(weight=1.0, warmup=0, threshold="quantile")
    assert loss.threshold(P4, Y4) == pytest.approx(0.325, abs=1e-7)
    hard = torch.tensor([0.0, 1.0, 1.0, 1.0])  # alpha = 1: the hardened predictions are the target
    expected = float(torch.nn.functional.binary_cross_entropy_with_logits(torch.logit(P4), hard))
    assert float(
        LogConfLoss(1.0, 0, threshold="quantile")(torch.logit(P4), Y4, 0)
    ) == pytest.approx(expected, abs=1e-6)
    # by hand: -(ln 0.9 + ln 0.4 + ln 0.6 + ln 0.8) / 4
    assert expected == pytest.approx(
        -(math.log(0.9) + math.log(0.4) + math.log(0.6) + math.log(0.8)) / 4, abs=1e-6
    )


def test_logconf_median_threshold_by_hand():
    """The blog: the median of the buffer, (0.4 + 0.6) / 2 = 0.5, whatever the prior.

    Hardened: [0, 0, 1, 1].
    """
    loss = LogConfLoss(weight=1.0, warmup=0, threshold="median")
    assert loss.threshold(P4, Y4) == pytest.approx(0.5, abs=1e-7)
    value = float(LogConfLoss(1.0, 0, threshold="median")(torch.logit(P4), Y4, 0))
    # by hand: -(ln 0.9 + ln 0.6 + ln 0.6 + ln 0.8) / 4
    assert value == pytest.approx(
        -(math.log(0.9) + 2 * math.log(0.6) + math.log(0.8)) / 4, abs=1e-6
    )


def test_logconf_threshold_choice():
    assert LogconfConfig(threshold="median").build().threshold_rule == "median"
    assert loss_config("logconf").build().threshold_rule == "quantile"
    options = TrainOptions(logconf_threshold="median", logconf_weight=0.25)
    assert loss_config("logconf", options) == LogconfConfig(weight=0.25, threshold="median")
    with pytest.raises(UsageError, match="unknown logconf threshold"):
        LogConfLoss(threshold="mean")


def test_logconf_buffer_is_bounded_and_resumable():
    loss = LogConfLoss()
    for step in range(40):
        loss(torch.randn(3), torch.rand(3), step)
    assert len(loss.buffer) == LOGCONF_BUFFER
    clone = LogConfLoss()
    clone.load_state_dict(loss.state_dict())
    assert list(clone.buffer) == list(loss.buffer)


def test_logconf_warmup_ramp():
    assert ramp(0, 0.5, 100) == 0.0
    assert ramp(50, 0.5, 100) == 0.25
    assert ramp(500, 0.5, 100) == 0.5
    assert ramp(3, 0.5, 0) == 0.5


def test_window_trains_only_inside_the_radius():
    # |p - 1/2| = [0, 1/4]: radius 0.2 keeps row 1 only, 0.3 keeps both
    assert float(WindowLoss(0.2)(Z, Y, 0)) == pytest.approx(LN2, abs=1e-6)
    assert float(WindowLoss(0.3)(Z, Y, 0)) == pytest.approx(XENT, abs=1e-6)
    z = torch.tensor([4.0, -4.0], requires_grad=True)
    value = WindowLoss(0.1)(z, torch.tensor([0.0, 1.0]), 0)
    value.backward()
    assert float(value.detach()) == 0.0 and torch.equal(z.grad, torch.zeros(2))


def test_midweak_radius_is_the_median_confidence():
    assert midweak_radius(np.array([0.5, 0.6, 0.9, 0.05, 0.3])) == pytest.approx(
        0.2
    )  # |.|: 0, .1, .4, .45, .2
    assert midweak_radius(np.array([0.0, 1.0, 1.0])) == 0.5


@pytest.mark.parametrize("radius", ["0", "0.7", "-0.1", "nan", "wide"])
def test_bad_radius(radius):
    with pytest.raises(UsageError, match="radius"):
        parse_radius(radius)


def test_radius_parsing():
    assert parse_radius("midweak") == "midweak"
    assert parse_radius("0.5") == 0.5


def test_unknown_loss():
    with pytest.raises(UsageError, match="unknown loss 'hinge'"):
        loss_config("hinge")


def test_window_config_resolves_midweak_from_the_run_labels():
    labels = np.array([0.5, 0.6, 0.9, 0.05, 0.3])
    assert WindowConfig(radius="midweak").build(labels).radius == pytest.approx(0.2)
    assert WindowConfig(radius=0.3).build(labels).radius == 0.3
    with pytest.raises(UsageError, match="radius"):
        WindowConfig(radius=0.7)
