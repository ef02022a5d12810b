"""Resolving a model name to exact weights, and loading the model and its tokenizer.

A model is named by an alias (``minilm``, ``mpnet``, ``smollm2``: the packaged offline models of
:mod:`.assets`), a local Hugging Face folder, or a hub id.  :func:`resolve_model` turns the name
into a :class:`ModelRef` pinned to its weights (a hub commit or a hash of the local weight
files) *without loading weights*, so a cache hit costs no model load; :func:`load_model` and
:func:`load_tokenizer` do the loading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError, first_line
from .assets import ALIASES, alias_folder, assets_dir
from .busy import busy
from .config import hub_config_file

if TYPE_CHECKING:  # resolving a name to its weights (a cache hit) needs no torch import
    import torch
    from torch import nn

log = logging.getLogger(__name__)


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


def resolve_model(name: str) -> ModelRef:
    """Turn an alias, folder or hub id into a :class:`ModelRef`; UsageError when none fits."""
    if name in ALIASES:
        folder = alias_folder(name)
    elif Path(name).exists():
        folder = Path(name)
        if not (folder / "config.json").is_file():
            raise UsageError(f"model folder {name} is unreadable: it has no config.json")
    else:
        return _resolve_hub_model(name)
    return ModelRef(name=name, location=str(folder.resolve()), revision=weights_fingerprint(folder))


def _resolve_hub_model(name: str) -> ModelRef:
    """Pin a hub id to its commit (only config.json is fetched, so no weights load here)."""
    snapshot = hub_config_file(name).parent  # .../snapshots/<commit>/config.json
    return ModelRef(name=name, location=name, revision=snapshot.name)


#: Files of a model folder that change nothing the model computes: documentation and VCS files.
#: Every other top-level file is fingerprinted (weights, config.json, tokenizer files,
#: special-token, generation and chat-template config, adapters): a swapped vocabulary id changes
#: every activation as surely as a changed weight.
_NOT_FINGERPRINTED = ("readme", "license", "licence", "notice", "citation", ".git")


def fingerprinted_files(folder: Path) -> list[Path]:
    """The files of ``folder`` whose bytes are in its fingerprint (top level, sorted)."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and not p.name.lower().startswith(_NOT_FINGERPRINTED)
        and p.suffix.lower() not in (".md", ".lock")
    )


def weights_fingerprint(folder: Path) -> str:
    """SHA-256 (16 hex) over every file that can change the model's outputs.

    Those are :func:`fingerprinted_files`.

    Hashing gigabytes takes seconds, so the hash is memoised per folder in
    ``~/.cache/w2sprobe/models/weight-hashes.json``.  The memo trusts a file unchanged only
    while its name, size, mtime, ctime and inode all are: ``touch -r`` can restore an mtime
    after an in-place edit, but any write or attribute change moves the ctime, which no user
    call can set back, and a replaced file has a new inode.  Anything else is re-hashed.
    """
    files = fingerprinted_files(folder)
    stamp = [_stamp(p) for p in files]
    memo_path = assets_dir() / "weight-hashes.json"
    memo = _read_json(memo_path)
    entry = memo.get(str(folder.resolve()))
    if entry and entry.get("version") == _MEMO_VERSION and entry["stamp"] == stamp:
        return entry["sha256"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            while chunk := fh.read(16 << 20):
                digest.update(chunk)
    value = digest.hexdigest()[:16]
    memo[str(folder.resolve())] = {"version": _MEMO_VERSION, "stamp": stamp, "sha256": value}
    _write_json(memo_path, memo)
    return value


#: Bumped when what the fingerprint covers changes, so no memo of the older rule is trusted.
_MEMO_VERSION = 2


def _stamp(path: Path) -> list:
    """What the memo compares: name, size, mtime, ctime (which ``touch`` cannot restore), inode."""
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


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


def load_model(
    ref: ModelRef, *, device: torch.device, dtype: torch.dtype, device_map: str | None = None
) -> nn.Module:
    """The bare transformer (no task head), in eval mode, on ``device`` — or, with ``device_map``,
    placed by ``from_pretrained`` (accelerate) across devices, for a model too big for one."""
    from transformers import AutoModel

    from .runtime import check_device_map

    with busy(log, f"loading model {ref.name}"):  # the CLI shows a spinner meanwhile
        if device_map:
            placed = check_device_map(device_map)
            return _load(AutoModel, ref, dtype=dtype, device_map=placed).eval()
        model = _load(AutoModel, ref, dtype=dtype)
        return model.to(device).eval()


def _load(auto_class, ref: ModelRef, **kwargs):
    from transformers.utils import logging as hf_logging

    # Our own progress bars own stderr; transformers' per-load bar would interleave with them.
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return auto_class.from_pretrained(ref.location, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(
            f"cannot load model {ref.name} from {ref.location}: {first_line(exc)}"
        ) from None
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
