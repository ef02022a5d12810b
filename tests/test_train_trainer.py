"""The LoRA trainer on tiny random models: it learns, resumes, batches and selects checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from w2sprobe.errors import UsageError
from w2sprobe.hashing import short_hash
from w2sprobe.metrics import roc_auc
from w2sprobe.models import load_tokenizer, resolve_model
from w2sprobe.train import Examples, TrainConfig, Trainer, build_classifier, lora_target_modules
from w2sprobe.train.batching import epoch_batches, inference_batches, micro_batches
from w2sprobe.train.loss_config import LogconfConfig, WindowConfig, loss_config
from w2sprobe.train.losses import LogConfLoss
from w2sprobe.train.recipe import TrainingWarning

CPU = torch.device("cpu")
POSITIVE, NEGATIVE = "good great w1 w2 w3".split(), "bad awful w4 w5 w6".split()


def toy(n: int, seed: int) -> Examples:
    """A separable task: the words of a text come from one of two disjoint vocabularies."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    texts = [
        " ".join(rng.choice(POSITIVE if y else NEGATIVE, rng.integers(2, 9))) + " the movie"
        for y in labels
    ]
    return Examples(np.array([f"{seed}-{i}" for i in range(n)]), texts, labels.astype(np.float32))


def make_trainer(folder, config: TrainConfig, checkpoint=None, progress=None) -> Trainer:
    ref = resolve_model(str(folder))
    model = build_classifier(
        ref, device=CPU, dtype=torch.float32, pooling=None, lora=config.lora, seed=config.seed
    )
    return Trainer(
        model, load_tokenizer(ref), config, CPU, checkpoint=checkpoint, progress=progress
    )


FAST = dict(lr=3e-3, epochs=3, batch_size=32, minibatch=16, warmup_steps=2, eval_every=4)


@pytest.mark.parametrize("arch", ["bert", "llama", "gpt2"])
def test_learns_a_separable_task(tiny_models, arch):
    trainer = make_trainer(tiny_models[arch], TrainConfig(**FAST))
    result = trainer.fit(toy(256, 0), toy(64, 1))
    test = toy(128, 2)
    assert roc_auc(test.targets, trainer.predict(test.texts)) > 0.9
    assert result.steps == 3 * 8 and result.best_val_auc > 0.9
    assert [h["step"] for h in result.history] == [4, 8, 12, 16, 20, 24]


def test_lora_targets_every_block_projection(tiny_models):
    ref = resolve_model(str(tiny_models["llama"]))
    model = build_classifier(
        ref, device=CPU, dtype=torch.float32, pooling=None, lora=TrainConfig().lora, seed=0
    )
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert any(f"{proj}.lora_A" in name for name in trainable), proj
    assert {"head.weight", "head.bias"} <= trainable
    assert not any("embed" in name for name in trainable)
    assert model.head.weight.dtype == torch.float32


def test_no_lora_trains_every_weight(tiny_models):
    from w2sprobe.train import LoraSettings

    ref = resolve_model(str(tiny_models["bert"]))
    model = build_classifier(
        ref, device=CPU, dtype=torch.float32, pooling=None, lora=LoraSettings(enabled=False), seed=0
    )
    assert all(p.requires_grad for p in model.parameters())
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_gpt2_conv1d_and_bert_dense_are_targets(tiny_models):
    from w2sprobe.models import describe, load_model

    for arch, expected in (
        ("gpt2", {"c_attn", "c_proj", "c_fc"}),
        ("bert", {"query", "key", "value", "dense"}),
    ):
        ref = resolve_model(str(tiny_models[arch]))
        backbone = load_model(ref, device=CPU, dtype=torch.float32)
        names = lora_target_modules(backbone, describe(backbone).blocks_path)
        assert {n.rsplit(".", 1)[-1] for n in names} == expected
        assert not any("pooler" in n for n in names)


def test_resumes_after_a_kill(tiny_models, tmp_path):
    """Killed after step 6, the run restarts from its step-4 checkpoint.

    It ends where an unbroken run does.
    """
    config = TrainConfig(**FAST)
    train, val, test = toy(200, 0), toy(48, 1), toy(64, 2)
    unbroken = make_trainer(tiny_models["bert"], config)
    unbroken.fit(train, val)
    expected = unbroken.predict(test.texts)

    def kill_at_6(step, total, info):
        if step == 6:
            raise KeyboardInterrupt

    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        make_trainer(tiny_models["bert"], config, checkpoint, kill_at_6).fit(train, val)
    assert checkpoint.is_file()
    steps_seen = []
    resumed = make_trainer(
        tiny_models["bert"], config, checkpoint, lambda s, t, i: steps_seen.append(s)
    )
    result = resumed.fit(train, val)
    assert result.resumed_from == 4 and steps_seen[0] == 5
    np.testing.assert_allclose(resumed.predict(test.texts), expected, atol=1e-5)


def test_without_val_labels_the_last_step_is_kept(tiny_models):
    empty = Examples(np.array([], dtype=str), [], np.array([], dtype=np.float32))
    trainer = make_trainer(tiny_models["bert"], TrainConfig(**FAST))
    with pytest.warns(TrainingWarning, match="no val examples"):
        result = trainer.fit(toy(64, 0), empty)
    assert (
        result.best_val_auc is None
        and result.best_step == result.steps == 6
        and result.history == []
    )
    assert [w["code"] for w in result.warnings] == ["no_val_labels"]


def test_val_labels_on_one_side_of_one_half_warn_and_are_recorded(tiny_models):
    """knn-relabel can give val labels all in (0.500, 0.508]: no val AUC, so no selection."""
    val = toy(24, 1)
    one_sided = Examples(val.ids, val.texts, np.linspace(0.5001, 0.508, 24).astype(np.float32))
    trainer = make_trainer(tiny_models["bert"], TrainConfig(**FAST))
    with pytest.warns(
        TrainingWarning,
        match=r"all 24 val labels lie on one side of 1/2 \(range \[0.500, 0.508\]\)",
    ):
        result = trainer.fit(toy(64, 0), one_sided)
    assert result.best_val_auc is None and result.best_step == result.steps
    assert [w["code"] for w in result.warnings] == ["val_auc_undefined"]
    assert "last step is kept" in result.warnings[0]["message"]


def test_a_schedule_shorter_than_its_warmup_warns(tiny_models):
    config = TrainConfig(**{**FAST, "warmup_steps": 40})  # 64 rows / 32 x 3 epochs = 6 steps
    with pytest.warns(TrainingWarning, match="6 optimizer steps but 40 warmup steps"):
        result = make_trainer(tiny_models["bert"], config).fit(toy(64, 0), toy(16, 1))
    assert [w["code"] for w in result.warnings] == ["warmup_longer_than_run"]


def test_a_clean_run_has_no_warnings(tiny_models, recwarn):
    result = make_trainer(tiny_models["bert"], TrainConfig(**FAST)).fit(toy(64, 0), toy(16, 1))
    assert result.warnings == [] and not [
        w for w in recwarn if issubclass(w.category, TrainingWarning)
    ]


# Keys of runs made before logconf_threshold existed (computed with the code of main at 4bbe1cd,
# whose TrainConfig defaulted to lr 8e-5 and minibatch 8): the new fields' defaults must leave
# them, and so every cached run, where they were.  The window loss's first definition (the
# in-window mean) is now ``--window-average inside``: its runs keep their keys under that name
# (the last two keys computed with main at 883b518).
OLD = (("lr", 8e-5), ("minibatch", 8))
INSIDE = ("average", "inside")
EARLIER_KEYS = {
    OLD: "6b9e9b63eb6dcd06",
    (*OLD, ("loss", "entropy")): "ac0e4b8d6281e1ac",
    (("lr", 8e-5), ("loss", "logconf"), ("minibatch", 32)): "4de43dd77b940889",
    (("lr", 8e-5), ("loss", "window"), ("radius", 0.2), INSIDE, ("minibatch", 32)): (
        "2638be00f62e141e"
    ),
    (("lr", 8e-5), ("loss", "window"), ("radius", 0.2), INSIDE, ("minibatch", 8)): (
        "d64cb41dac472a24"
    ),
    (("loss", "window"), ("radius", "midweak"), INSIDE): "39a77a1c4f180305",
}
# Keys of main at 883b518 for runs whose arithmetic has changed since: they must never be hit.
# window at its default (now the reference's in-window sum over the batch size), and logconf
# with balance_batch (now also re-centring the labels' log-odds).
CHANGED_KEYS = {
    (("lr", 8e-5), ("loss", "window"), ("radius", 0.2), ("minibatch", 32)): "2638be00f62e141e",
    (("loss", "window"), ("radius", "midweak")): "39a77a1c4f180305",
    (("loss", "logconf"), ("balance_batch", True)): "bc60d9cc9028e0f6",
    (("loss", "logconf"), ("balance_batch", True), ("minibatch", 8)): "3944870214be3eed",
}


def recipe(
    loss: str = "xent",
    radius: float | str | None = None,
    average: str = "batch",
    balance_batch: bool = False,
    **fields,
) -> TrainConfig:
    """A TrainConfig with the named loss at its defaults (window: ``radius``, ``average``)."""
    if loss == "window":
        config = WindowConfig(radius=radius, average=average)
    elif loss == "logconf":
        config = LogconfConfig(balance_batch=balance_batch)
    else:
        config = loss_config(loss)
    return TrainConfig(loss=config, **fields)


@pytest.mark.parametrize("fields", list(EARLIER_KEYS))
def test_describe_of_unchanged_recipes_keeps_the_earlier_key(fields):
    config = recipe(**dict(fields))
    assert short_hash(config.describe()) == EARLIER_KEYS[fields]
    assert "logconf_threshold" not in config.describe()
    assert "window_average" not in config.describe()


@pytest.mark.parametrize("fields", list(CHANGED_KEYS))
def test_describe_of_changed_arithmetic_gets_a_new_key(fields):
    described = recipe(**dict(fields)).describe()
    assert short_hash(described) != CHANGED_KEYS[fields]
    if dict(fields)["loss"] == "window":
        assert described["window_average"] == "batch"
    else:
        assert described["balance_recentred"] is True


def test_describe_names_what_changes_the_result():
    median = LogconfConfig(threshold="median")
    assert TrainConfig(loss=median).describe()["logconf_threshold"] == "median"
    assert "logconf_threshold" not in recipe("xent").describe()
    # Accumulated window/logconf runs changed arithmetic (one batch mean / one threshold per batch).
    inside = recipe("window", radius=0.2, average="inside", minibatch=8).describe()
    assert inside["accumulation"] == "whole-batch"
    assert recipe("logconf", minibatch=8).describe()["accumulation"] == "whole-batch"
    assert "accumulation" not in recipe("xent", minibatch=8).describe()
    # the reference's window (a sum over the batch size) does not depend on the split at all
    assert "accumulation" not in recipe("window", radius=0.2, minibatch=8).describe()
    # the new losses record their parameters, and no run of another loss names them
    assert recipe("product").describe()["product_alpha"] == 1.0
    assert recipe("adaptive").describe()["adaptive_temperature"] == 1.0
    assert not {"product_alpha", "adaptive_temperature", "balance_recentred"} & set(
        recipe("logconf").describe()
    )
    with pytest.raises(UsageError, match="unknown logconf threshold"):
        LogconfConfig(threshold="mean")


def test_checkpoint_of_another_config_is_ignored(tiny_models, tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    make_trainer(tiny_models["bert"], TrainConfig(**FAST), checkpoint).fit(toy(64, 0), toy(16, 1))
    other = TrainConfig(**{**FAST, "lr": 1e-3})
    assert (
        make_trainer(tiny_models["bert"], other, checkpoint)
        .fit(toy(64, 0), toy(16, 1))
        .resumed_from
        is None
    )


def test_keeps_the_best_val_checkpoint(tiny_models):
    """Val labels are the flipped truth: the best val AUC is an early, barely trained model."""
    train, val = toy(200, 0), toy(48, 1)
    flipped = Examples(val.ids, val.texts, 1 - val.targets)
    trainer = make_trainer(tiny_models["bert"], TrainConfig(**FAST))
    result = trainer.fit(train, flipped)
    best = max(result.history, key=lambda h: h["val_auc"])
    assert result.best_step == best["step"] and result.best_val_auc == best["val_auc"]
    assert roc_auc(flipped.targets, trainer.predict(flipped.texts)) == pytest.approx(
        best["val_auc"], abs=1e-6
    )


def test_logconf_buffer_is_fed_by_training_steps_only(tiny_models, monkeypatch):
    calls = []
    original = LogConfLoss.threshold
    monkeypatch.setattr(
        LogConfLoss, "threshold", lambda self, p, y: calls.append(len(p)) or original(self, p, y)
    )
    config = TrainConfig(**{**FAST, "loss": LogconfConfig(), "minibatch": 8})
    trainer = make_trainer(tiny_models["bert"], config)
    trainer.fit(
        toy(96, 0), toy(40, 1)
    )  # 3 epochs x 3 batches (of 4 micro-batches); 3 evaluations of 40 rows
    trainer.predict(toy(30, 2).texts)
    # Once per optimizer batch, with all 32 of its predictions (not once per micro-batch).
    assert calls == [32] * 9


def test_epoch_batches_cover_every_row_once_and_are_reproducible():
    lengths = np.random.default_rng(0).integers(1, 60, 1000)
    batches = epoch_batches(lengths, 32, seed=3, epoch=1)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    assert all(len(b) <= 32 for b in batches)
    again = epoch_batches(lengths, 32, seed=3, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not all(
        np.array_equal(a, b) for a, b in zip(batches, epoch_batches(lengths, 32, seed=3, epoch=2))
    )
    # bucketing: padding within batches is far below a random batching's
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random = sum(
        len(b) * lengths[b].max()
        for b in np.array_split(np.random.default_rng(1).permutation(1000), 32)
    )
    assert padded < 0.75 * random


def test_micro_and_inference_batches():
    lengths = np.array([5, 1, 9, 3, 7, 2])
    micro = micro_batches(np.arange(6), lengths, 4)
    assert [m.tolist() for m in micro] == [[1, 5, 3, 0], [4, 2]]
    batches = inference_batches(lengths, max_tokens=12, max_rows=3)
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))
    assert all(len(b) * lengths[b].max() <= 12 or len(b) == 1 for b in batches)


@pytest.mark.parametrize(
    "field,value", [("lr", 0.0), ("lr", -1e-4), ("epochs", 0), ("minibatch", 0)]
)
def test_bad_config(field, value):
    with pytest.raises(UsageError):
        TrainConfig(**{field: value})
