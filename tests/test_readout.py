"""nnsight read-out equals Hugging Face ``output_hidden_states``.

For every architecture and layer.
"""

from __future__ import annotations

import pytest
import torch
from conftest import ARCHS, DECODERS, WORDS, make_tokenizer

from w2sprobe.cache.readout import LayerReader, pool
from w2sprobe.models import ModelRef, describe, load_model, load_tokenizer

TEXTS = ["the good movie", "w1 w2 w3 w4 w5 w6 w7", "bad", "a very great film not awful w9 w10"]


def _load(folder):
    """The saved model, with a word-level tokenizer made here: transformers 5 maps a qwen2
    folder to Qwen2Tokenizer, which cannot read a synthetic word-level tokenizer.json."""
    ref = ModelRef(name="tiny", location=str(folder), revision="test")
    tokenizer = make_tokenizer(with_pad=True, cls_token=folder.name not in DECODERS)
    tokenizer.padding_side = "right"
    return load_model(ref, device=torch.device("cpu"), dtype=torch.float32), tokenizer


def _batch(tokenizer):
    enc = tokenizer(TEXTS, padding="longest", return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


@pytest.mark.parametrize("arch", ARCHS)
def test_every_layer_matches_hidden_states(tiny_models, arch):
    model, tokenizer = _load(tiny_models[arch])
    layout = describe(model)
    ids, mask = _batch(tokenizer)
    assert (mask[:, -1] == 0).any(), "the batch must contain padding for this test to mean anything"
    with torch.inference_mode():
        reference = model(
            input_ids=ids, attention_mask=mask, output_hidden_states=True
        ).hidden_states
    assert len(reference) == layout.num_layers + 1
    layers = list(range(layout.num_layers + 1))
    for pooling in ("last", "mean", "first"):
        got = LayerReader(model, layout, layers, pooling)(ids, mask)
        want = torch.stack([pool(h, mask, pooling) for h in reference])
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_subset_of_layers_and_early_stop(tiny_models, arch):
    """Asking for layer 1 alone stops the forward early and still returns hidden_states[1]."""
    model, tokenizer = _load(tiny_models[arch])
    ids, mask = _batch(tokenizer)
    with torch.inference_mode():
        reference = model(
            input_ids=ids, attention_mask=mask, output_hidden_states=True
        ).hidden_states
    got = LayerReader(model, describe(model), [1], "mean")(ids, mask)
    torch.testing.assert_close(got[0], pool(reference[1], mask, "mean"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(DECODERS))
def test_last_token_is_the_real_last_token_under_padding(tiny_models, arch):
    """Each example alone (no padding) gives the same last-token vector as inside a padded batch."""
    model, tokenizer = _load(tiny_models[arch])
    layout = describe(model)
    reader = LayerReader(model, layout, [layout.num_layers], "last")
    ids, mask = _batch(tokenizer)
    batched = reader(ids, mask)[0]
    for row, text in enumerate(TEXTS):
        alone = tokenizer([text], return_tensors="pt")
        single = reader(alone["input_ids"], alone["attention_mask"])[0, 0]
        torch.testing.assert_close(batched[row], single, rtol=1e-4, atol=1e-4)


def test_decoder_tokenizer_gets_a_pad_token_and_right_padding(tiny_models):
    tokenizer = load_tokenizer(
        ModelRef(name="tiny", location=str(tiny_models["llama"]), revision="test")
    )
    assert tokenizer.pad_token == tokenizer.eos_token
    assert tokenizer.padding_side == "right"


@pytest.mark.parametrize(
    "arch,final_norm",
    [
        ("gpt2", "ln_f"),
        ("llama", "norm"),
        ("qwen2", "norm"),
        ("mistral", "norm"),
        ("bert", None),
        ("mpnet", None),
    ],
)
def test_layout_from_module_tree(tiny_models, arch, final_norm):
    model, _ = _load(tiny_models[arch])
    layout = describe(model)
    assert layout.num_layers == 3 and layout.hidden_size == 16
    assert layout.final_norm_path == final_norm
    assert layout.is_decoder == (arch in DECODERS)
    assert layout.default_pooling == ("last" if arch in DECODERS else "mean")


def test_vocabulary_covers_test_texts():
    assert all(word in WORDS for text in TEXTS for word in text.split())
