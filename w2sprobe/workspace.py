"""The workspace on disk: a writable root, and folder names safe for any model id or path.

Its root is the ``cache_dir`` option (``./cache``, ``--cache-dir``, ``W2SPROBE_CACHE``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import UsageError


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and prove we can write there, or raise UsageError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cache dir {path} is not writable: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"cache dir {path} is not writable")
    return path


def slug(text: str) -> str:
    """A visible, filesystem-safe folder name for a model id, dataset name or path.

    ``Qwen/Qwen1.5-0.5B`` -> ``Qwen--Qwen1.5-0.5B``; ``./my-minilm`` -> ``my-minilm``;
    ``/data/reviews.csv`` -> ``data--reviews.csv``.  Leading dots and dashes are dropped so a
    relative or absolute path never becomes a hidden folder; two paths with one name share a
    folder safely, because the keys inside hash the weights or the data themselves.
    """
    return legacy_slug(text).lstrip("._-") or "model"


def legacy_slug(text: str) -> str:
    """The folder name caches written before visible slugs used (``./x`` -> ``.--x``)."""
    text = str(text).strip().rstrip("/")
    text = text.replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "model"


def slug_dir(parent: Path, text: str) -> Path:
    """``parent / slug(text)``, or the legacy folder of an older cache when only that exists."""
    folder = Path(parent) / slug(text)
    if not folder.exists():
        legacy = Path(parent) / legacy_slug(text)
        if legacy != folder and legacy.is_dir():
            return legacy
    return folder
