"""Where cached artifacts live: ``./cache`` unless ``--cache-dir`` or ``W2SPROBE_CACHE`` say otherwise."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import UsageError

DEFAULT_CACHE_DIR = Path("cache")
CACHE_ENV = "W2SPROBE_CACHE"


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The workspace root: the argument, else ``$W2SPROBE_CACHE``, else ``./cache``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else DEFAULT_CACHE_DIR


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
    """A filesystem-safe name for a model id or path (``Qwen/Qwen1.5-0.5B`` -> ``Qwen--Qwen1.5-0.5B``)."""
    text = str(text).strip().rstrip("/")
    text = text.replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "model"
