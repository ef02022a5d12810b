"""The workspace on disk: its artifact roots, a writable root, and folder names safe for any
model id or path.

Its root is the ``cache_dir`` option (``./cache``, ``--cache-dir``, ``W2SPROBE_CACHE``).  Each
kind of artifact lives under its own root (:func:`kind_root`), written and read by one module:

* ``acts/<model>/<dataset>/<key>.h5`` — :mod:`w2sprobe.cache` (writer, store);
* ``tokens/<model>/<dataset>/<key>.h5`` — :mod:`w2sprobe.cache.tokens` (token-level files);
* ``runs/<dataset>/<key>/`` — :mod:`w2sprobe.runs`;
* ``labels/<dataset>/<key>/`` — :mod:`w2sprobe.labels`;
* ``sweeps/<dataset>/<key>/`` — :mod:`w2sprobe.report.sweep_files`;
* ``probes/<dataset>/<key>/`` — :mod:`w2sprobe.probes.artifact` (fitted probes);
* ``reports/<key>/`` — :mod:`w2sprobe.report.files`.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from .errors import UsageError

#: Every kind of artifact, in the order ``cache ls`` shows them; each is a folder of the root.
KINDS = ("acts", "tokens", "runs", "labels", "probes", "sweeps", "reports")

#: The default workspace root when neither ``--cache-dir`` nor ``W2SPROBE_CACHE`` is given.
DEFAULT_CACHE_DIR = "cache"


def kind_root(cache_dir: Path, kind: str) -> Path:
    """``<cache_dir>/<kind>``: the top folder of one kind of artifact."""
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    return Path(cache_dir) / kind


#: How deep an artifact sits below its kind's root (``acts/<model>/<dataset>/<key>.h5``: 3).
_DEPTH = {"acts": 3, "tokens": 3, "runs": 2, "labels": 2, "probes": 2, "sweeps": 2, "reports": 1}


def cache_of(path: Path, kind: str) -> Path:
    """The workspace root the artifact of ``kind`` at ``path`` belongs to (``<cache>/labels/
    sst2/<key>`` -> ``<cache>``); for one outside a workspace, the folder that holds it."""
    path = Path(path)
    depth = _DEPTH[kind]
    if len(path.parents) > depth and path.parents[depth - 1].name == kind:
        return path.parents[depth]
    return path.parent


def rm_hint(cache_dir: Path, key: str) -> str:
    """The command that removes the artifact ``key``: ``w2sprobe cache rm <key>`` (with
    ``--cache-dir`` unless ``cache_dir`` is the one that command would use anyway)."""
    default = os.environ.get("W2SPROBE_CACHE") or DEFAULT_CACHE_DIR
    try:
        same = Path(cache_dir).resolve() == Path(default).resolve()
    except OSError:
        same = False
    where = "" if same else f" --cache-dir {shlex.quote(str(cache_dir))}"
    return f"w2sprobe cache rm {key}{where}"


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and prove we can write there, or raise UsageError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cache dir {path} is not writable: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"cache dir {path} is not writable")
    return path


def check_out_dir(path: Path, what: str) -> Path:
    """Fail early, in one line, when ``--out`` cannot become the folder of a ``what`` (report,
    view, sweep): a file in its place, or its nearest existing ancestor not a writable folder.
    Creates nothing, so a command checks before its work."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise UsageError(f"--out {path} is a file; give a folder for the {what}")
        return path
    ancestor = next(p for p in path.absolute().parents if p.exists())
    if not ancestor.is_dir():
        raise UsageError(f"cannot create {what} folder {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create {what} folder {path}: {ancestor} is not writable")
    return path


def make_out_dir(path: Path, what: str) -> Path:
    """Create ``path``, the ``--out`` folder of a ``what`` (report, view, sweep), or raise a
    one-line UsageError: a file in the way, or a place that cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} folder {path} is a file; give --out a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {what} folder {path}: {exc.strerror or exc}") from None
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
