"""README's "Extending" example, run as written: a loss registered from user code."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from w2sprobe import vocabulary
from w2sprobe.hashing import short_hash

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def brier(monkeypatch):
    """The README's block executed in a fresh namespace; the vocabulary restored afterwards."""
    monkeypatch.setattr(vocabulary, "LOSSES", dict(vocabulary.LOSSES))
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "register(LossKind(" in b]
    namespace: dict = {"__name__": "readme_example"}
    # as a user would run it: in its own module, without this file's __future__ imports
    exec(compile(block, "README.md", "exec", dont_inherit=True), namespace)  # noqa: S102
    return namespace


def test_the_registered_loss_has_a_name_a_config_and_the_right_value(brier):
    from w2sprobe.train import TrainConfig
    from w2sprobe.train.loss_config import loss_config

    config = brier["BrierConfig"](scale=2.0)
    assert loss_config("brier") == brier["BrierConfig"]()  # from the options: its default
    # by hand: p = sigmoid(0) = 1/2 against 1 and sigmoid(ln 3) = 3/4 against 1/4 -> 2 x mean
    z, y = torch.tensor([0.0, math.log(3.0)]), torch.tensor([1.0, 0.25])
    value = float(config.build()(z, y, step=0))
    assert value == pytest.approx(2.0 * (0.25 + 0.25) / 2)
    recipe = TrainConfig(loss=config).describe()
    assert recipe["loss"] == "brier" and recipe["scale"] == 2.0
    assert short_hash(recipe) != short_hash(TrainConfig(loss=brier["BrierConfig"]()).describe())


def test_the_registered_loss_speaks_the_grammar(brier):
    assert vocabulary.parse_experiment("brier").loss == "brier"
    assert vocabulary.parse_experiment("brier+s2s-1").loss == "brier"
    derived = vocabulary.parse_experiment("knn-relabel+brier")
    assert (derived.kind, derived.loss) == ("derived", "brier")
    with pytest.raises(Exception, match="already"):
        vocabulary.register(vocabulary.LossKind("brier", brier["BrierConfig"], "again"))


def test_the_registered_loss_trains_a_classifier(brier, tiny_models):
    from w2sprobe.models import load_tokenizer, resolve_model
    from w2sprobe.train import Examples, TrainConfig, Trainer, build_classifier

    ref = resolve_model(str(tiny_models["bert"]))
    cpu = torch.device("cpu")
    config = TrainConfig(loss=brier["BrierConfig"](), epochs=2, eval_every=2, warmup_steps=1)
    model = build_classifier(
        ref, device=cpu, dtype=torch.float32, pooling=None, lora=config.lora, seed=0
    )
    trainer = Trainer(model, load_tokenizer(ref), config, cpu)
    texts = [("good film" if i % 2 else "bad movie") + f" w{i}" for i in range(48)]
    targets = np.array([0.9 if i % 2 else 0.1 for i in range(48)], dtype=np.float32)
    data = Examples(np.array([str(i) for i in range(48)]), texts, targets)
    fit = trainer.fit(data, data)
    assert fit.steps == 4 and np.isfinite(trainer.predict(texts)).all()
