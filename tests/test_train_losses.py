"""Every loss against values worked by hand, and the properties the issue asks for."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import run_cli

from w2sprobe.errors import UsageError
from w2sprobe.options import TrainOptions
from w2sprobe.train.loss_config import (
    AdaptiveConfig,
    LogconfConfig,
    ProductConfig,
    WindowConfig,
    loss_config,
    midweak_radius,
    parse_radius,
)
from w2sprobe.train.losses import (
    LOGCONF_BUFFER,
    AdaptiveLoss,
    EntropyLoss,
    KLLoss,
    LogConfLoss,
    ProductLoss,
    WindowLoss,
    XentLoss,
    label_log_odds,
    ramp,
)
from w2sprobe.vocabulary import LOSSES

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
    # |p - 1/2| = [0, 1/4]: radius 0.2 keeps row 1 only, 0.3 keeps both.
    # inside: the in-window mean; batch (default): the in-window sum over the 2 examples.
    assert float(WindowLoss(0.2, "inside")(Z, Y, 0)) == pytest.approx(LN2, abs=1e-6)
    assert float(WindowLoss(0.2)(Z, Y, 0)) == pytest.approx(LN2 / 2, abs=1e-6)
    for average in ("batch", "inside"):
        assert float(WindowLoss(0.3, average)(Z, Y, 0)) == pytest.approx(XENT, abs=1e-6)
        z = torch.tensor([4.0, -4.0], requires_grad=True)
        value = WindowLoss(0.1, average)(z, torch.tensor([0.0, 1.0]), 0)
        value.backward()
        assert float(value.detach()) == 0.0 and torch.equal(z.grad, torch.zeros(2))


# Four examples for window: p = [1/2, 3/4, 1/4, 9/10], confidence |p - 1/2| = [0, 1/4, 1/4, 2/5].
ZW = torch.tensor([0.0, math.log(3.0), -math.log(3.0), math.log(9.0)])
YW = torch.tensor([1.0, 0.25, 0.5, 0.0])
# radius 0.3 keeps rows 1-3; their cross-entropies:
#   row 1: -ln(1/2) = ln 2                                   = 0.693147
#   row 2: -(1/4 ln 3/4 + 3/4 ln 1/4)                        = 1.111641
#   row 3: -(1/2 ln 1/4 + 1/2 ln 3/4)                        = 0.836988
# (row 4, outside, would cost -ln(1/10) = 2.302585 and counts for nothing)
WINDOW_SUM = LN2 + -(0.25 * LN34 + 0.75 * LN14) + -(0.5 * LN14 + 0.5 * LN34)  # = 2.641776


def test_window_average_batch_is_the_reference_formula():
    """EleutherAI/w2s confidence_window_loss: the in-window sum / the whole batch size."""
    assert WINDOW_SUM == pytest.approx(2.641776, abs=1e-6)
    assert float(WindowLoss(0.3, "batch")(ZW, YW, 0)) == pytest.approx(WINDOW_SUM / 4, abs=1e-6)
    assert float(WindowLoss(0.3, "inside")(ZW, YW, 0)) == pytest.approx(WINDOW_SUM / 3, abs=1e-6)
    # the gradient: (p - y) / 4 inside the window, 0 outside (batch); (p - y) / 3 (inside)
    for average, count in (("batch", 4), ("inside", 3)):
        z = ZW.clone().requires_grad_()
        WindowLoss(0.3, average)(z, YW, 0).backward()
        expected = torch.tensor([0.5 - 1.0, 0.75 - 0.25, 0.25 - 0.5, 0.0]) / count
        assert torch.allclose(z.grad, expected, atol=1e-6), average
    # terms: the batch size is the count whatever is inside (so micro-batches simply add up)
    loss = WindowLoss(0.3, "batch")
    assert loss.counts_every_example and not WindowLoss(0.3, "inside").counts_every_example
    assert loss.terms(ZW[3:], YW[3:], 0)[1] == 1
    assert WindowLoss(0.3, "inside").terms(ZW[3:], YW[3:], 0)[1] == 0


def test_window_average_choice():
    assert loss_config("window").average == "batch"
    options = TrainOptions(window_average="inside", radius="0.2")
    assert loss_config("window", options) == WindowConfig(radius=0.2, average="inside")
    assert WindowConfig(radius=0.2, average="inside").build().average == "inside"
    with pytest.raises(UsageError, match="unknown window average 'mean'"):
        WindowConfig(radius=0.2, average="mean")


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


# --------------------------------------------------------------------------- logconf balance_batch

# Labels whose log-odds l = ln(y / (1 - y)) are [ln 3, ln 9, 0, -ln 3]: mean = ln 9 / 4 = ln 3 / 2.
# Re-centred: y' = sigmoid(l - ln 3 / 2) =
#   sigmoid( ln 3 / 2) = sqrt3 / (1 + sqrt3)   = 0.633975
#   sigmoid(3 ln 3 / 2) = 3 sqrt3 / (1 + 3 sqrt3) = 0.838610
#   sigmoid(-ln 3 / 2) = 1 / (1 + sqrt3)       = 0.366025
#   sigmoid(-3 ln 3 / 2) = 1 / (1 + 3 sqrt3)   = 0.161390
# (the reference's 1e-7 inside the logs moves these by < 3e-7).
YB = torch.tensor([0.75, 0.9, 0.5, 0.25])
SQ3 = math.sqrt(3.0)
YB_CENTRED = [SQ3 / (1 + SQ3), 3 * SQ3 / (1 + 3 * SQ3), 1 / (1 + SQ3), 1 / (1 + 3 * SQ3)]


def bce(p: float, t: float) -> float:
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def test_balance_batch_recentres_the_labels_in_log_odds():
    """EleutherAI/w2s log_confidence_loss: y' = sigmoid(l - mean l) over the batch, with the
    log-odds l = log(y + eps) - log(1 - y + eps)."""
    assert YB_CENTRED == pytest.approx([0.633975, 0.838610, 0.366025, 0.161390], abs=1e-6)
    loss = LogConfLoss(weight=0.5, warmup=0, balance_batch=True)
    loss.begin_batch(P4, YB)
    assert loss.label_shift == pytest.approx(math.log(3.0) / 2, abs=1e-6)
    assert loss.balanced(YB).tolist() == pytest.approx(YB_CENTRED, abs=1e-6)
    assert float(label_log_odds(loss.balanced(YB)).mean()) == pytest.approx(0.0, abs=1e-5)
    # eps: a label of exactly 1 has log-odds ln((1 + 1e-7) / 1e-7) = 16.118096, not infinity
    assert float(label_log_odds(torch.tensor([1.0], dtype=torch.float64))) == pytest.approx(
        16.118096, abs=1e-6
    )
    # without balance_batch the labels are used as they are
    plain = LogConfLoss(weight=0.5, warmup=0)
    plain.begin_batch(P4, YB)
    assert torch.equal(plain.balanced(YB), YB)


def test_balance_batch_loss_by_hand():
    """p = [0.1, 0.4, 0.6, 0.8]; buffer median 0.5 (prior 0.5) -> hardened [0, 0, 1, 1];
    a = 0.5 (no warmup): target = 0.5 y' + 0.5 hard =
    [0.316987, 0.419305, 0.683013, 0.580695]; loss = mean CE(p, target)."""
    target = [0.5 * c + 0.5 * h for c, h in zip(YB_CENTRED, [0, 0, 1, 1])]
    assert target == pytest.approx([0.316987, 0.419305, 0.683013, 0.580695], abs=1e-6)
    expected = sum(bce(p, t) for p, t in zip([0.1, 0.4, 0.6, 0.8], target)) / 4
    assert expected == pytest.approx(0.731617, abs=1e-6)
    value = float(LogConfLoss(0.5, 0, balance_batch=True)(torch.logit(P4), YB, 0))
    assert value == pytest.approx(expected, abs=1e-6)
    # the threshold alone (the first balance_batch) would mix the raw labels: another loss
    raw = sum(
        bce(p, 0.5 * y + 0.5 * h)
        for p, y, h in zip([0.1, 0.4, 0.6, 0.8], YB.tolist(), [0, 0, 1, 1])
    )
    assert abs(value - raw / 4) > 1e-2


def test_balance_batch_shift_is_the_whole_batch_s():
    """Micro-batches after one begin_batch add up to the whole batch's loss."""
    z = torch.logit(P4)
    whole = LogConfLoss(0.5, 0, balance_batch=True)
    value = float(whole(z, YB, 0))
    pieces = LogConfLoss(0.5, 0, balance_batch=True)
    pieces.begin_batch(P4, YB)
    parts = [pieces.terms(z[i : i + 2], YB[i : i + 2], 0) for i in (0, 2)]
    assert sum(float(t) for t, _ in parts) / sum(n for _, n in parts) == pytest.approx(value)
    with pytest.raises(RuntimeError, match="begin_batch"):
        LogConfLoss(balance_batch=True).terms(z, YB, 0)


# --------------------------------------------------------------------------- product

# Three examples: z = [ln 3, -ln 3, 0], p = [3/4, 1/4, 1/2]; labels y = [1/2, 1/4, 4/5].
ZP = torch.tensor([math.log(3.0), -math.log(3.0), 0.0])
YL = [0.5, 0.25, 0.8]
YP = torch.tensor(YL)
PP = [0.75, 0.25, 0.5]


def product_target(p: float, y: float, alpha: float, beta: float) -> float:
    """The reference's two-class target, in probabilities: p^b y^a / (p^b y^a + q^b (1-y)^a)."""
    one = p**beta * y**alpha
    return one / (one + (1 - p) ** beta * (1 - y) ** alpha)


# Targets worked by hand (t = p^b y^a / (p^b y^a + (1-p)^b (1-y)^a)):
#   a=1, b=1: [ (3/8)/(3/8+1/8) = 3/4,  (1/16)/(1/16+9/16) = 1/10,  (2/5)/(2/5+1/10) = 4/5 ]
#   a=2, b=1: [ (3/16)/(3/16+1/16) = 3/4, (1/64)/(1/64+27/64) = 1/28, .32/(.32+.02) = 16/17 ]
#   a=1, b=2: [ (9/32)/(9/32+1/32) = 9/10, (1/64)/(1/64+27/64) = 1/28, (1/5)/(1/5+1/20) = 4/5 ]
#   a=0, b=1: t = p (self-training)        [3/4, 1/4, 1/2]
#   a=0, b=2: t = p^2 / (p^2 + (1-p)^2)    [9/10, 1/10, 1/2]
#   a=1, b=0: t = y (xent)                 [1/2, 1/4, 4/5]
#   a=0, b=0: t = 1/2                      [1/2, 1/2, 1/2]
PRODUCT_TARGETS = {
    (1.0, 1.0): [3 / 4, 1 / 10, 4 / 5],
    (2.0, 1.0): [3 / 4, 1 / 28, 16 / 17],
    (1.0, 2.0): [9 / 10, 1 / 28, 4 / 5],
    (0.0, 1.0): [3 / 4, 1 / 4, 1 / 2],
    (0.0, 2.0): [9 / 10, 1 / 10, 1 / 2],
    (1.0, 0.0): [1 / 2, 1 / 4, 4 / 5],
    (0.0, 0.0): [1 / 2, 1 / 2, 1 / 2],
    (0.5, 1.0): [product_target(p, y, 0.5, 1.0) for p, y in zip(PP, YL)],
}


@pytest.mark.parametrize("alpha,beta", list(PRODUCT_TARGETS))
def test_product_by_hand(alpha, beta):
    targets = PRODUCT_TARGETS[(alpha, beta)]
    assert targets == pytest.approx(
        [product_target(p, y, alpha, beta) for p, y in zip(PP, YL)], abs=1e-12
    )
    loss = ProductLoss(alpha=alpha, beta=beta)
    assert loss.target(ZP, YP).tolist() == pytest.approx(targets, abs=1e-6)
    expected = sum(bce(p, t) for p, t in zip(PP, targets)) / 3
    z = ZP.clone().requires_grad_()
    value = loss(z, YP, 0)
    assert float(value.detach()) == pytest.approx(expected, abs=1e-6)
    value.backward()  # the target is detached: d/dz = (p - t) / 3
    assert z.grad.tolist() == pytest.approx([(p - t) / 3 for p, t in zip(PP, targets)], abs=1e-6)


def test_product_limits():
    # a = b = 1 on the two-example set: row 1 (y = 1) -> t = 1; row 2: logit t = ln 3 - ln 3 = 0
    # -> t = 1/2: (ln 2 + -(1/2 ln 3/4 + 1/2 ln 1/4)) / 2 = (0.693147 + 0.836988) / 2
    assert float(ProductLoss()(Z, Y, 0)) == pytest.approx(0.765068, abs=1e-6)
    # b = 0 is xent; a = 0, b = 1 has the student's own prediction as target: H(p), no gradient
    assert float(ProductLoss(1.0, 0.0)(Z, Y, 0)) == pytest.approx(XENT, abs=1e-6)
    z = Z.clone().requires_grad_()
    value = ProductLoss(0.0, 1.0)(z, Y, 0)
    value.backward()
    assert float(value.detach()) == pytest.approx(H_PREDS, abs=1e-6)
    assert torch.allclose(z.grad, torch.zeros(2), atol=1e-7)


def test_product_is_finite_on_hard_labels_against_saturated_predictions():
    """p = sigmoid(+-20) is 1.0 / ~2e-9 in float32: the probability form's target is 0/0 there;
    the log-odds form gives exactly the label."""
    z = torch.tensor([20.0, -20.0, 20.0])
    y = torch.tensor([0.0, 1.0, 1.0])
    loss = ProductLoss()
    assert loss.target(z, y).tolist() == [0.0, 1.0, 1.0]
    # CE against t = [0, 1, 1]: softplus(20), softplus(20), softplus(-20)
    expected = (2 * math.log1p(math.exp(20.0)) + math.log1p(math.exp(-20.0))) / 3
    assert float(loss(z, y, 0)) == pytest.approx(expected, rel=1e-6)
    # with a = 0 the labels are ignored even at 0 and 1 (0^0 = 1): t = sigmoid(z)
    assert ProductLoss(0.0, 1.0).target(z, y).tolist() == pytest.approx(torch.sigmoid(z).tolist())


def test_product_options():
    assert loss_config("product") == ProductConfig(alpha=1.0, beta=1.0)
    options = TrainOptions(product_alpha=0.5, product_beta=2.0)
    config = loss_config("product", options)
    assert (config.build().alpha, config.build().beta) == (0.5, 2.0)
    assert config.key_fields() == {"product_alpha": 0.5, "product_beta": 2.0}
    # an integer exponent is the same run as its float (one key)
    assert repr(ProductConfig(alpha=2, beta=1).key_fields()) == repr(
        ProductConfig(alpha=2.0, beta=1.0).key_fields()
    )
    assert repr(AdaptiveConfig(temperature=2).key_fields()) == repr(
        AdaptiveConfig(temperature=2.0).key_fields()
    )
    for bad in (-1.0, float("inf"), float("nan"), "1"):
        with pytest.raises(UsageError, match="--product-alpha must be a finite number >= 0"):
            ProductConfig(alpha=bad)


# --------------------------------------------------------------------------- adaptive

# Four examples: z = [ln 3, ln 3, -ln 3, 0], p = [3/4, 3/4, 1/4, 1/2]; labels y = [.9, .2, .4, .7].
#   student's hard label 1[z > 0] = [1, 1, 0, 0]  (z = 0: argmax's tie goes to class 0)
#   teacher's hard label 1[y > 1/2] = [1, 0, 0, 1]
#   row 1 agree:    CE_self = CE_teacher = -ln 3/4                       -> a = 1/2
#   row 2 disagree: CE_self = -ln 3/4, CE_teacher = -ln 1/4:
#                   a = e^{CE_self} / (e^{CE_self} + e^{CE_teacher}) = (4/3) / (4/3 + 4) = 1/4
#                   (T = 2: sqrt(4/3) / (sqrt(4/3) + 2) = 1 / (1 + sqrt3) = 0.366025)
#   row 3 agree:    a = 1/2
#   row 4 disagree at p = 1/2: CE_self = CE_teacher = ln 2                -> a = 1/2
# loss_i = (1 - a) KL(y || p) + a CE(p, own hard label):
#   KL = [.9 ln(.9/.75) + .1 ln(.1/.25), .2 ln(.2/.75) + .8 ln(.8/.25),
#         .4 ln(.4/.25) + .6 ln(.6/.75), .7 ln(.7/.5) + .3 ln(.3/.5)]
#      = [0.072460, 0.666169, 0.054115, 0.082283]
#   CE(own) = [-ln 3/4, -ln 3/4, -ln 3/4, ln 2] = [0.287682, 0.287682, 0.287682, 0.693147]
ZA = torch.tensor([math.log(3.0), math.log(3.0), -math.log(3.0), 0.0])
YA = torch.tensor([0.9, 0.2, 0.4, 0.7])
KL_A = [
    0.9 * math.log(0.9 / 0.75) + 0.1 * math.log(0.1 / 0.25),
    0.2 * math.log(0.2 / 0.75) + 0.8 * math.log(0.8 / 0.25),
    0.4 * math.log(0.4 / 0.25) + 0.6 * math.log(0.6 / 0.75),
    0.7 * math.log(0.7 / 0.5) + 0.3 * math.log(0.3 / 0.5),
]
OWN_A = [-LN34, -LN34, -LN34, LN2]


def adaptive_by_hand(weights: list[float]) -> float:
    return sum((1 - a) * kl + a * own for a, kl, own in zip(weights, KL_A, OWN_A)) / 4


@pytest.mark.parametrize(
    "temperature,weights",
    [
        (1.0, [0.5, 0.25, 0.5, 0.5]),
        (2.0, [0.5, 1 / (1 + math.sqrt(3.0)), 0.5, 0.5]),
        (0.5, [0.5, 0.1, 0.5, 0.5]),  # (4/3)^2 / ((4/3)^2 + 16) = (16/9) / (160/9) = 1/10
    ],
)
def test_adaptive_by_hand(temperature, weights):
    assert KL_A == pytest.approx([0.072460, 0.666169, 0.054115, 0.082283], abs=1e-6)
    loss = AdaptiveLoss(temperature)
    assert loss.weight(ZA, YA).tolist() == pytest.approx(weights, abs=1e-6)
    z = ZA.clone().requires_grad_()
    value = loss(z, YA, 0)
    assert float(value.detach()) == pytest.approx(adaptive_by_hand(weights), abs=1e-6)
    # a is detached: d/dz = ((1 - a)(p - y) + a (p - own)) / 4
    p, own = [0.75, 0.75, 0.25, 0.5], [1, 1, 0, 0]
    value.backward()
    grad = [
        ((1 - a) * (pi - y) + a * (pi - h)) / 4 for a, pi, y, h in zip(weights, p, YA.tolist(), own)
    ]
    assert z.grad.tolist() == pytest.approx(grad, abs=1e-6)


def test_adaptive_value_at_temperature_one():
    # (0.5 (0.072460 + 0.287682) + (0.75 0.666169 + 0.25 0.287682)
    #  + 0.5 (0.054115 + 0.287682) + 0.5 (0.082283 + 0.693147)) / 4
    assert float(AdaptiveLoss()(ZA, YA, 0)) == pytest.approx(0.327558, abs=1e-6)


def test_adaptive_weight_is_half_where_the_hard_labels_agree():
    """Closed form: 1/2 on agreement, sigmoid(-|z| / T) on disagreement."""
    z = torch.tensor([3.0, -2.0, 1.5, -0.5])
    y = torch.tensor([0.8, 0.1, 0.3, 0.6])  # agree, agree, disagree, disagree
    got = AdaptiveLoss(1.5).weight(z, y)
    expected = [0.5, 0.5, 1 / (1 + math.exp(1.5 / 1.5)), 1 / (1 + math.exp(0.5 / 1.5))]
    assert got.tolist() == pytest.approx(expected, abs=1e-6)


def test_adaptive_options():
    assert loss_config("adaptive") == AdaptiveConfig(temperature=1.0)
    config = loss_config("adaptive", TrainOptions(adaptive_temperature=4.0))
    assert config.build().temperature == 4.0
    assert config.key_fields() == {"adaptive_temperature": 4.0}
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(UsageError, match="--adaptive-temperature must be a finite number > 0"):
            AdaptiveConfig(temperature=bad)


# --------------------------------------------------------------------------- any student


def test_every_loss_on_whole_batches_is_its_terms_mean():
    """A head student calls ``loss(logits, targets, step)`` on a whole batch; the LoRA trainer
    calls ``begin_batch`` once, then ``terms`` per micro-batch: the same number."""
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(12, generator=g), torch.rand(12, generator=g)
    probs = torch.sigmoid(z)
    for name in LOSSES:
        whole = loss_config(name).build(y.numpy())
        value = float(whole(z, y, 150))
        pieces = loss_config(name).build(y.numpy())
        pieces.begin_batch(probs, y)
        parts = [pieces.terms(z[i : i + 4], y[i : i + 4], 150) for i in range(0, 12, 4)]
        count = sum(n for _, n in parts)
        assert sum(float(t) for t, _ in parts) / max(count, 1) == pytest.approx(value, abs=1e-6)


def test_every_loss_trains_a_head_on_fixed_features():
    """A linear classifier on fixed features (what a head student trains on cached activations),
    trained with ``loss(logits, targets, step)`` on whole batches, learns the labels' direction."""
    from w2sprobe.metrics import roc_auc

    g = torch.Generator().manual_seed(1)
    features = torch.randn(256, 8, generator=g)
    truth = features @ torch.randn(8, generator=g)
    labels = torch.sigmoid(truth)  # soft labels of a linear rule
    for name in LOSSES:
        head = torch.nn.Linear(8, 1)
        torch.nn.init.zeros_(head.weight)
        loss_fn = loss_config(name).build(labels.numpy())
        optimizer = torch.optim.SGD(head.parameters(), lr=0.5)
        for step in range(60):
            rows = torch.randperm(256, generator=g)[:64]
            optimizer.zero_grad()
            loss = loss_fn(head(features[rows]).squeeze(-1), labels[rows], step)
            assert torch.isfinite(loss), name
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            scores = head(features).squeeze(-1).numpy()
        assert roc_auc((truth > 0).float().numpy(), scores) > 0.9, name


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def tiny_workspace(tmp_path, monkeypatch, tiny_models, shared_data):
    """A workspace of the tiny test models on a small sst2 (as tests/test_train_cli.py's)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w2sprobe.toml").write_text(
        f'weak_model = "{tiny_models["bert"]}"\nstrong_model = "{tiny_models["llama"]}"\n'
        f'data_dir = "{shared_data}"\ncache_dir = "{tmp_path / "c"}"\n'
        "n_train = 120\nn_val = 30\nn_test = 40\n"
        "epochs = 2\neval_every = 3\nwarmup_steps = 2\nstrong_lr = 3e-3\n"
    )
    return tmp_path


def test_train_student_with_the_new_losses(tiny_workspace, capsys):
    for args, recorded in (
        (("--loss", "product", "--product-alpha", "0.5"), {"product_alpha": 0.5}),
        (("--loss", "adaptive", "--adaptive-temperature", "2"), {"adaptive_temperature": 2.0}),
    ):
        code, out, err = run_cli(capsys, "train", "student", *args, "--json")
        assert code == 0, err
        run = json.loads(out)["runs"][0]
        assert run["experiment"] == args[1] and run["pgr"] is not None
        manifest = json.loads(
            next((tiny_workspace / "c" / "runs").rglob(f"{run['key']}/manifest.json")).read_text()
        )
        assert manifest["config"]["loss"] == args[1]
        for name, value in recorded.items():
            assert manifest["config"][name] == value


def test_an_unknown_loss_is_one_error_line_and_writes_nothing(tiny_workspace, capsys):
    before = sorted(tiny_workspace.rglob("*"))
    code, out, err = run_cli(capsys, "train", "student", "--loss", "hinge")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "'hinge'" in err
    assert "product" in err and "adaptive" in err  # it lists the known ones
    assert sorted(tiny_workspace.rglob("*")) == before
    for bad in (("--product-alpha", "-1"), ("--adaptive-temperature", "0")):
        code, _, err = run_cli(capsys, "train", "student", "--loss", bad[0][2:].split("-")[0], *bad)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert bad[0] in err
    assert sorted(tiny_workspace.rglob("*")) == before
