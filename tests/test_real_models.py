"""The packaged offline models load by alias and read out exactly HF's hidden states."""

from __future__ import annotations

import pytest
import torch

from w2sprobe.cache.readout import LayerReader, pool
from w2sprobe.models import describe, load_model, load_tokenizer, resolve_model, weights_fingerprint

SENTENCES = [
    "it 's a charming and often affecting journey . ",
    "unflinchingly bleak and desperate ",
    "the acting , costumes , music , cinematography and sound are all astounding .",
]


@pytest.mark.parametrize(
    "alias,model_type,num_layers,hidden,layers",
    [
        ("minilm", "bert", 6, 384, [0, 3, 6]),
        ("mpnet", "mpnet", 12, 768, [0, 6, 12]),
        ("smollm2", "llama", 30, 576, [0, 16, 30]),
    ],
)
def test_alias_loads_and_reads_out_hidden_states(alias, model_type, num_layers, hidden, layers):
    ref = resolve_model(alias)
    assert ref.is_local and len(ref.revision) == 16
    model = load_model(ref, device=torch.device("cpu"), dtype=torch.float32)
    tokenizer = load_tokenizer(ref)
    layout = describe(model)
    assert (layout.model_type, layout.num_layers, layout.hidden_size) == (
        model_type,
        num_layers,
        hidden,
    )
    enc = tokenizer(SENTENCES, padding="longest", return_tensors="pt")
    assert (enc["attention_mask"] == 0).any()
    with torch.inference_mode():
        reference = model(**enc, output_hidden_states=True).hidden_states
    got = LayerReader(model, layout, layers, layout.default_pooling)(
        enc["input_ids"], enc["attention_mask"]
    )
    for index, layer in enumerate(layers):
        want = pool(reference[layer], enc["attention_mask"], layout.default_pooling)
        torch.testing.assert_close(got[index], want, rtol=1e-4, atol=1e-4)


def test_fingerprint_is_stable_and_tracks_weights(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"a" * 100)
    first = weights_fingerprint(folder)
    assert weights_fingerprint(folder) == first
    (folder / "model.safetensors").write_bytes(b"b" * 100)
    assert weights_fingerprint(folder) != first
