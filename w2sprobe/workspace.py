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
    """A filesystem-safe name for a model id or path.

    ``Qwen/Qwen1.5-0.5B`` -> ``Qwen--Qwen1.5-0.5B``.
    """
    text = str(text).strip().rstrip("/")
    text = text.replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "model"
