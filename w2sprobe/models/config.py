"""What a model is, read from its configuration alone: no weights, no forward pass, no torch.

:func:`read_model_shape` answers "how many blocks, how wide, which pooling and probe layer by
default" for any name the toolkit accepts (alias, local HF folder, hub id) by reading only its
``config.json`` — or, for the packaged SmolLM2 before it is converted, the header of its GGUF
file.  ``transformers`` is never imported here (its config classes pull in torch, seconds of
start-up); the encoder/decoder rule is read from transformers' own auto-model tables instead,
so it is the same rule :mod:`.layout` applies to a loaded model.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import UsageError
from ..hubnet import UNREACHABLE, is_unreachable_error, offline_unless_reachable
from ..layers import default_probe_layer
from ..pooling import default_pooling

#: config.json keys for the block count and width, in the order HF's attribute maps try them
#: (GPT-2 saves ``n_layer`` / ``n_embd``, T5-style configs ``num_layers`` / ``d_model``).
BLOCK_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
WIDTH_KEYS = ("hidden_size", "n_embd", "d_model")


@dataclass(frozen=True)
class ModelShape:
    """A model's layer structure as the toolkit numbers it (layer 0 = embeddings, i = block i)."""

    name: str
    source: str  # the file the shape was read from: a config.json, a GGUF file, or a hub id
    model_type: str
    num_blocks: int
    hidden_size: int
    is_decoder: bool

    @property
    def layers(self) -> list[int]:
        """Every layer an extraction can store: 0..L."""
        return list(range(self.num_blocks + 1))

    @property
    def default_pooling(self) -> str:
        return default_pooling(self.is_decoder)

    @property
    def default_probe_layer(self) -> int:
        return default_probe_layer(self.num_blocks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "source": self.source,
            "model_type": self.model_type,
            "kind": "decoder" if self.is_decoder else "encoder",
            "num_blocks": self.num_blocks,
            "num_layers": self.num_blocks + 1,
            "layers": f"0..{self.num_blocks}",
            "hidden_size": self.hidden_size,
            "default_pooling": self.default_pooling,
            "default_probe_layer": self.default_probe_layer,
        }


def read_model_shape(name: str) -> ModelShape:
    """The shape of the model ``name`` (alias, folder or hub id); UsageError when unreadable."""
    from .assets import ALIASES, alias_config_file

    if name in ALIASES:
        path = alias_config_file(name)
    elif Path(name).exists():
        path = Path(name) / "config.json"
        if not path.is_file():
            raise UsageError(f"model folder {name} is unreadable: it has no config.json")
    else:
        return shape_from_config(name, _hub_config(name), source=name)
    if path.suffix == ".gguf":
        return _gguf_shape(name, path)
    return shape_from_config(name, _read_json(path), source=str(path))


def shape_from_config(name: str, config: dict[str, Any], source: str) -> ModelShape:
    """A shape from a config.json's dict; multimodal configs are read through their text part."""
    text = config.get("text_config")
    part = text if isinstance(text, dict) else config
    model_type = str(part.get("model_type") or config.get("model_type") or "")
    if not model_type:
        raise UsageError(f"config of model {name} ({source}) has no model_type")
    return ModelShape(
        name=name,
        source=source,
        model_type=model_type,
        num_blocks=_first_int(part, BLOCK_KEYS, name, source),
        hidden_size=_first_int(part, WIDTH_KEYS, name, source),
        is_decoder=is_decoder_type(model_type),
    )


def _first_int(config: dict[str, Any], keys: tuple[str, ...], name: str, source: str) -> int:
    for key in keys:
        if isinstance(config.get(key), int):
            return config[key]
    raise UsageError(f"config of model {name} ({source}) has none of {', '.join(keys)}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a JSON object")
    return data


def _hub_config(name: str) -> dict[str, Any]:
    """A hub model's config.json (the only file fetched; HF's cache serves it offline)."""
    return _read_json(hub_config_file(name))


def hub_config_file(name: str) -> Path:
    """Fetch hub model ``name``'s config.json alone; its folder is named after the commit.

    The one place a model id reaches the hub before weights load; without a route to the hub
    it is read from the local hub cache at once. UsageError when neither has it.
    """
    from huggingface_hub import hf_hub_download

    from .assets import ALIASES

    try:
        with offline_unless_reachable():
            return Path(hf_hub_download(name, "config.json"))
    except Exception as exc:  # noqa: BLE001 - offline, unknown, gated: all "can't use this"
        why = UNREACHABLE if is_unreachable_error(exc) else type(exc).__name__
        raise UsageError(
            f"unknown model '{name}': not an alias ({', '.join(ALIASES)}), not a folder, "
            f"and no config.json from the hub ({why})"
        ) from None


# --------------------------------------------------------------------------- encoder or decoder


def is_decoder_type(model_type: str) -> bool:
    """Causal-LM-only architectures are decoders; those with a masked-LM head are encoders."""
    causal, masked = _auto_model_types()
    return model_type in causal and model_type not in masked


def default_pooling_for(model_type: str) -> str:
    """The default pooling of an architecture named by its config's ``model_type``.

    For deciding before any weights load (an extraction's cache key); :attr:`.layout.
    ModelLayout.default_pooling` gives the same answer for a loaded model.
    """
    return default_pooling(is_decoder_type(model_type))


_TABLES = ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_MASKED_LM_MAPPING_NAMES")


@functools.lru_cache(maxsize=1)
def _auto_model_types() -> tuple[frozenset[str], frozenset[str]]:
    """The model types of transformers' causal-LM and masked-LM auto tables.

    Read from the source of ``transformers.models.auto.modeling_auto`` (literal tables of
    strings) because importing it imports torch; imported after all if the source ever stops
    holding them as literals.
    """
    try:
        return _parsed_auto_tables()
    except (OSError, SyntaxError, ValueError, LookupError):
        from transformers.models.auto import modeling_auto

        causal, masked = (frozenset(getattr(modeling_auto, table)) for table in _TABLES)
        return causal, masked


def _parsed_auto_tables() -> tuple[frozenset[str], frozenset[str]]:
    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        raise LookupError("transformers is not installed")
    source = Path(spec.origin).parent / "models" / "auto" / "modeling_auto.py"
    found: dict[str, frozenset[str]] = {}
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in _TABLES
            and isinstance(node.value, ast.Call)
            and len(node.value.args) == 1
        ):
            pairs = ast.literal_eval(node.value.args[0])  # [("llama", "LlamaForCausalLM"), ...]
            found[node.targets[0].id] = frozenset(model_type for model_type, _ in pairs)
    return found[_TABLES[0]], found[_TABLES[1]]


# --------------------------------------------------------------------------- GGUF header

#: GGUF metadata value types -> struct format of one scalar (8 = string, 9 = array).
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?"}
_GGUF_SCALARS.update({10: "Q", 11: "q", 12: "d"})
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _gguf_shape(name: str, path: Path) -> ModelShape:
    """The shape from a GGUF file's header (``<arch>.block_count`` / ``<arch>.embedding_length``).

    GGUF architecture names are HF model types for the Llama family this covers (SmolLM2).
    """
    meta = read_gguf_metadata(path, stop_when=_has_shape_keys)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not _has_shape_keys(meta):
        raise UsageError(f"GGUF file {path} has no block count / embedding length for {arch}")
    return ModelShape(
        name=name,
        source=str(path),
        model_type=arch,
        num_blocks=int(meta[f"{arch}.block_count"]),
        hidden_size=int(meta[f"{arch}.embedding_length"]),
        is_decoder=is_decoder_type(arch),
    )


def _has_shape_keys(meta: dict[str, Any]) -> bool:
    arch = meta.get("general.architecture")
    return f"{arch}.block_count" in meta and f"{arch}.embedding_length" in meta


def read_gguf_metadata(path: Path, stop_when=None) -> dict[str, Any]:
    """The scalar and string key/values of a GGUF header (arrays are skipped, not decoded).

    Reads only the header, stopping early once ``stop_when(meta)`` holds: gguf's own reader
    parses the whole vocabulary and every tensor record first, seconds for a small model.
    """
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise UsageError(f"{path} is not a GGUF file")
        (version,) = _unpack(fh, "I")
        if version < 2:
            raise UsageError(f"{path}: GGUF version {version} is not supported (2 or later)")
        _tensor_count, kv_count = _unpack(fh, "QQ")
        meta: dict[str, Any] = {}
        for _ in range(kv_count):
            key = _gguf_string(fh)
            (kind,) = _unpack(fh, "I")
            value = _gguf_value(fh, kind)
            if value is not _SKIPPED:
                meta[key] = value
            if stop_when is not None and stop_when(meta):
                break
    return meta


_SKIPPED = object()


def _unpack(fh: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize("<" + fmt)
    data = fh.read(size)
    if len(data) != size:
        raise UsageError(f"{getattr(fh, 'name', 'GGUF file')} ends inside its header")
    return struct.unpack("<" + fmt, data)


def _gguf_string(fh: BinaryIO) -> str:
    (length,) = _unpack(fh, "Q")
    return fh.read(length).decode("utf-8", errors="replace")


def _gguf_value(fh: BinaryIO, kind: int) -> Any:
    if kind in _GGUF_SCALARS:
        return _unpack(fh, _GGUF_SCALARS[kind])[0]
    if kind == _GGUF_STRING:
        return _gguf_string(fh)
    if kind == _GGUF_ARRAY:
        item_kind, count = _unpack(fh, "IQ")
        if item_kind in _GGUF_SCALARS:  # fixed-size items: jump over them
            fh.seek(count * struct.calcsize("<" + _GGUF_SCALARS[item_kind]), 1)
        else:
            for _ in range(count):
                _gguf_value(fh, item_kind)  # skipped: the vocabulary, merges, ...
        return _SKIPPED
    raise UsageError(f"{getattr(fh, 'name', 'GGUF file')}: unknown GGUF value type {kind}")
