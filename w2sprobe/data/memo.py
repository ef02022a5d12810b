"""A memo of built splits, so a command on a cached workspace does not re-read its dataset.

Building a registry dataset's splits reads and shuffles its whole mirror (SST-2: 67k rows, and
the ``datasets`` import: seconds) although a probe on cached activations only needs the
splits' identity for the extraction's key.  The memo keeps each built :class:`SplitSet` as one
JSON file in ``~/.cache/w2sprobe/splits/`` (``$W2SPROBE_SPLITS_MEMO`` to move it), named by a
hash of everything the build depends on:

* the arguments: dataset, seed, requested sizes;
* the mirror folder's files, each by relative path, size, mtime, ctime and inode — the rule of
  the model-weight memo (:func:`w2sprobe.models.loading.weights_fingerprint`): an edit moves
  the ctime, which no user call can set back, and a replaced file has a new inode;
* the source code that builds splits (every module of :mod:`w2sprobe.data`), so a changed
  formatter or split rule never reads an old memo.

Only registry datasets read from a local mirror (``--data-dir``) are memoised: hub loads have
no local files to stamp, and user datasets are small.  The memo only saves time; an unreadable
or unwritable one is ignored, and a damaged file is rebuilt.  It keeps the
:data:`MAX_FILES` most recently used builds (a read counts as a use): every new seed, size or
mirror edit adds a file (up to a few MB at the blog's sizes), and a memo must not grow without
bound.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..hashing import short_hash

MEMO_ENV = "W2SPROBE_SPLITS_MEMO"
#: Builds kept; the least recently used beyond this are deleted when a new one is stored.
MAX_FILES = 64
#: Bumped when the file's layout changes.
_VERSION = 1

T = TypeVar("T")


def memo_dir() -> Path:
    """``$W2SPROBE_SPLITS_MEMO``, else ``$XDG_CACHE_HOME/w2sprobe/splits``."""
    env = os.environ.get(MEMO_ENV)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "w2sprobe" / "splits"


def memoised(
    build: Callable[[], T],
    *,
    name: str,
    folder: Path,
    params: dict[str, Any],
    encode: Callable[[T], dict],
    decode: Callable[[dict], T],
) -> T:
    """The memo's value for ``name`` built from ``folder`` with ``params``, else ``build()``'s
    (then stored); ``encode``/``decode`` turn the value into JSON and back."""
    try:
        path = memo_dir() / f"{name}-{_inputs_hash(name, folder, params)}.json"
    except OSError:  # the mirror changed under us: nothing to compare against
        return build()
    try:
        value = decode(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or damaged: build it again
    else:
        _touch(path)
        return value
    value = build()
    _write(path, encode(value))
    _prune(path.parent)
    return value


def _inputs_hash(name: str, folder: Path, params: dict[str, Any]) -> str:
    return short_hash(
        {
            "version": _VERSION,
            "name": name,
            "params": params,
            "folder": str(folder.resolve()),
            "files": _stamps(folder),
            "code": _code_hash(),
        }
    )


def _stamps(folder: Path) -> list:
    return [
        [str(p.relative_to(folder)), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (st := p.stat())
    ]


@functools.lru_cache(maxsize=1)
def _code_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _touch(path: Path) -> None:
    """Mark a memo file as just used (its mtime orders the pruning)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _prune(folder: Path, keep: int | None = None) -> None:
    """Delete the least recently used memo files beyond ``keep`` (default :data:`MAX_FILES`)."""
    keep = MAX_FILES if keep is None else keep
    try:
        files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # another process pruned first, or a read-only memo: it only saves time


def _write(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)  # whole or absent: a reader never sees half a memo
    except (OSError, TypeError, ValueError):
        pass  # the memo only saves time; a read-only home must not break loading
