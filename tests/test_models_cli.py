"""``w2sprobe models layers`` and ``w2sprobe --version``: config-only answers, no torch import."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
from conftest import ARCHS, DECODERS, modules_imported_by, run_cli

from w2sprobe.layers import default_probe_layer
from w2sprobe.models.config import (
    _parsed_auto_tables,
    read_gguf_metadata,
    read_model_shape,
    shape_from_config,
)


def layers_json(capsys, model: str) -> dict:
    code, out, err = run_cli(capsys, "models", "layers", model, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("arch", ARCHS)
def test_layers_match_the_saved_config(capsys, tiny_models, arch):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_models[arch])
    info = layers_json(capsys, str(tiny_models[arch]))
    blocks = config.num_hidden_layers
    assert (info["num_blocks"], info["hidden_size"]) == (blocks, config.hidden_size)
    assert info["layers"] == f"0..{blocks}" and info["num_layers"] == blocks + 1
    assert info["default_probe_layer"] == default_probe_layer(blocks)
    decoder = arch in DECODERS
    assert info["kind"] == ("decoder" if decoder else "encoder")
    assert info["default_pooling"] == ("last" if decoder else "mean")
    assert info["model_type"] == config.model_type and info["command"] == "models layers"


def test_text_output_names_blocks_width_pooling_and_probe_layer(capsys, tiny_models):
    code, out, err = run_cli(capsys, "models", "layers", str(tiny_models["llama"]))
    assert code == 0, err
    assert "llama decoder, 3 blocks, hidden size 16" in out
    assert "layers: 0..3" in out and "default pooling: last" in out
    assert "default probe layer: 2" in out


def test_encoder_decoder_rule_is_transformers_own():
    """The tables read from transformers' source are exactly the ones it exports."""
    from transformers.models.auto import modeling_auto

    causal, masked = _parsed_auto_tables()
    assert causal == set(modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    assert masked == set(modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def test_a_folder_without_config_is_exit_2(capsys, tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    code, out, err = run_cli(capsys, "models", "layers", str(tmp_path))
    assert code == 2 and out == ""
    assert err == f"error: model folder {tmp_path} is unreadable: it has no config.json\n"


def test_an_unknown_model_is_exit_2(capsys):
    code, _, err = run_cli(capsys, "models", "layers", "no-such-org/no-such-model")
    assert code == 2 and err.startswith("error: unknown model 'no-such-org/no-such-model'")
    assert len(err.splitlines()) == 1


def test_a_config_without_a_block_count_is_exit_2(capsys, tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama", "hidden_size": 8}')
    code, _, err = run_cli(capsys, "models", "layers", str(tmp_path))
    assert code == 2 and "has none of num_hidden_layers, n_layer, num_layers" in err


def test_a_multimodal_config_is_read_through_its_text_part():
    config = {
        "model_type": "llava",
        "text_config": {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096},
    }
    shape = shape_from_config("vlm", config, source="config.json")
    assert (shape.model_type, shape.num_blocks, shape.hidden_size) == ("llama", 32, 4096)
    assert shape.default_probe_layer == 16 and shape.default_pooling == "last"


def test_gguf_header_gives_blocks_and_width_past_its_arrays(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(5)
    writer.add_token_list(["a", "bb", "ccc"])  # arrays before the width: they must be skipped
    writer.add_token_scores([0.1, 0.2, 0.3])
    writer.add_embedding_length(24)
    writer.add_tensor("w", np.zeros((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    meta = read_gguf_metadata(path)
    assert (meta["llama.block_count"], meta["llama.embedding_length"]) == (5, 24)
    assert "tokenizer.ggml.tokens" not in meta


def test_packaged_smollm2_is_read_without_converting_it(capsys):
    """A Llama decoder with 30 blocks of width 576, from the GGUF header or converted config."""
    info = layers_json(capsys, "smollm2")
    assert (info["num_blocks"], info["hidden_size"], info["kind"]) == (30, 576, "decoder")
    assert info["default_probe_layer"] == 15 and info["default_pooling"] == "last"
    assert read_model_shape("minilm").num_blocks == 6


def test_version_is_the_installed_distributions(capsys):
    code, out, err = run_cli(capsys, "--version")
    assert code == 0, err
    assert out == f"w2sprobe {metadata.version('w2sprobe')}\n"


@pytest.mark.slow  # a fresh interpreter, so imports are measured, not inherited
def test_models_layers_and_version_import_no_heavy_library(tmp_path, tiny_models):
    commands = [["models", "layers", str(Path(tiny_models["bert"]))], ["--version"]]
    heavy = ("torch", "transformers", "nnsight", "datasets")
    assert modules_imported_by(commands, heavy, tmp_path) == []


def test_the_packaged_smollm2_says_it_is_a_dequantised_q4_1_gguf(capsys, tiny_models):
    info = layers_json(capsys, "smollm2")
    assert "GGUF Q4_1" in info["note"] and "de-quantised" in info["note"]
    assert layers_json(capsys, str(tiny_models["llama"]))["note"] is None  # only that model
    code, out, _ = run_cli(capsys, "models", "layers", "smollm2")
    assert code == 0 and "note: the packaged smollm2 is SmolLM2-135M-Instruct quantised" in out
