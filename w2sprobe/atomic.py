"""Crash-safe writing: every artifact file and folder appears whole or not at all.

* A file is written to ``.<name>.<host>-<pid>.tmp`` in its own folder, flushed to disk
  (``fsync``) and renamed over its final name (:func:`replacing`, :func:`write_bytes`,
  :func:`write_text`, :func:`write_json`): a kill at any point leaves the old file or the new
  one, never a torn one, and at worst a temporary file that ``cache gc`` removes once its
  process is gone.
* A folder artifact (a label set) is filled in ``.<kind>-<key>.staging-<host>-<pid>`` beside
  its final place and renamed into place in one step (:func:`staged_folder`).  A staging folder
  left by a dead process is removed by the next writer of the same key and by ``cache gc``;
  readers never look into dot-folders, so a leftover never blocks anything.

Files and folders get the modes the umask gives (``0666``/``0777`` masked), like every other
file the user creates: on a shared cache other users read them as they read the rest.

Running out of space (``ENOSPC``, ``EDQUOT``) while writing removes the temporary file or
staging folder and raises :class:`~w2sprobe.errors.DiskFull`, which the CLI prints as one line.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import DiskFull

#: errno values that mean "the disk (or the user's quota) is full".
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})

#: How libraries that do not keep errno (HDF5, torch's zip writer) still say it.
_NO_SPACE_TEXT = ("no space left on device", "disk quota exceeded", "errno = 28", "errno 28")

#: A write that failed with less than this left on its filesystem failed for want of space.
LOW_SPACE = 1 << 20

_STAGING = re.compile(
    r"^\.(?P<kind>[a-z]+)-(?P<key>.+)\.staging-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)$"
)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:(?P<host>[A-Za-z0-9]+)-)?(?P<pid>\d+)\.tmp$")


# --------------------------------------------------------------------------- who is writing


def host_name() -> str:
    """This machine's name, letters and digits only (it is part of temporary names)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"


def owner_token() -> str:
    """``<host>-<pid>``: who owns a temporary file or staging folder."""
    return f"{host_name()}-{os.getpid()}"


def owner_alive(host: str | None, pid: int) -> bool | None:
    """Whether the process ``pid`` on ``host`` still runs: True / False on this host, None
    (unknown) for another host's process (a shared cache seen from several machines).
    ``host`` None is a name from before hosts were recorded: taken as this host."""
    if host is not None and host != host_name():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


# --------------------------------------------------------------------------- files


def temp_path(path: Path) -> Path:
    """The temporary name :func:`replacing` writes ``path`` under, in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.{owner_token()}.tmp")


@contextmanager
def replacing(path: Path, size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success it is flushed to
    disk and renamed over ``path``; on any failure it is removed (``ENOSPC`` -> DiskFull).

    ``size`` (bytes about to be written) only goes into the DiskFull message.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        # Judged before the temporary file's space comes back.
        full = not isinstance(exc, DiskFull) and is_disk_full(exc, path.parent)
        error = disk_full(path, size) if full else None
        _unlink(tmp)
        if error is not None:
            raise error from None
        raise
    _fsync_dir(path.parent)


def write_bytes(path: Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically (temporary file, fsync, rename)."""
    with replacing(path, len(data)) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: Path, obj, **dumps) -> Path:
    """``obj`` as JSON (``dumps`` as for ``json.dumps``), atomically."""
    return write_text(path, json.dumps(obj, **dumps))


def file_record(path: Path) -> dict:
    """``{"bytes", "sha256"}`` of a file: what an artifact's manifest records of each file it
    wrote, and what readers and ``cache verify`` compare."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def record_problem(path: Path, record: dict | None) -> str | None:
    """Why ``path`` is not the file ``record`` describes (None: it is, or nothing recorded)."""
    if not isinstance(record, dict):
        return None
    try:
        found = file_record(path)
    except OSError as exc:
        return f"{Path(path).name} cannot be read ({exc.strerror or exc})"
    if isinstance(record.get("bytes"), int) and found["bytes"] != record["bytes"]:
        return f"{Path(path).name} has {found['bytes']} bytes, {record['bytes']} were written"
    if isinstance(record.get("sha256"), str) and found["sha256"] != record["sha256"]:
        return f"{Path(path).name} does not match the SHA-256 recorded when it was written"
    return None


# --------------------------------------------------------------------------- folders


@dataclass(frozen=True)
class Staging:
    """A staging folder's parsed name: which artifact it was becoming, and whose it is."""

    path: Path
    kind: str
    key: str
    host: str
    pid: int

    @property
    def alive(self) -> bool | None:
        """Its writer still runs (True), is gone (False), or runs on another host (None)."""
        return owner_alive(self.host, self.pid)


def staging_path(target: Path, kind: str) -> Path:
    """``<parent>/.<kind>-<key>.staging-<host>-<pid>`` for the artifact folder ``target``."""
    return Path(target).with_name(f".{kind}-{Path(target).name}.staging-{owner_token()}")


def parse_staging(path: Path) -> Staging | None:
    """The staging folder ``path`` parsed, or None if its name is not one."""
    match = _STAGING.match(Path(path).name)
    if match is None:
        return None
    return Staging(Path(path), match["kind"], match["key"], match["host"], int(match["pid"]))


def parse_temp(path: Path) -> tuple[str | None, int] | None:
    """``(host, pid)`` of a temporary file of :func:`replacing` (or of the older
    ``.<name>.<pid>.tmp`` form, host None), else None."""
    match = _TEMP.match(Path(path).name)
    return None if match is None else (match["host"], int(match["pid"]))


def remove_dead_staging(target: Path, kind: str) -> list[Path]:
    """Remove the staging folders of ``target``'s key whose writer on this host is gone."""
    removed = []
    parent = Path(target).parent
    if not parent.is_dir():
        return removed
    for path in parent.glob(f".{kind}-{Path(target).name}.staging-*"):
        staging = parse_staging(path)
        if staging and staging.key == Path(target).name and staging.alive is False:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextmanager
def staged_folder(target: Path, kind: str) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; fill it (its completeness marker last)
    and on success it is flushed and renamed to ``target`` in one step.

    If ``target`` appeared meanwhile (another writer of the same key won), ours is dropped:
    a key names one content.  On failure the staging folder is removed (``ENOSPC`` ->
    DiskFull naming the final path).  Dead writers' staging folders of this key go first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_staging(target, kind)
    staging = staging_path(target, kind)
    shutil.rmtree(staging, ignore_errors=True)  # our own pid's, from a recycled pid
    staging.mkdir()  # mode 0777 & ~umask, unlike mkdtemp's 0700
    try:
        yield staging
        for child in staging.iterdir():
            _fsync_file(child)
        _fsync_dir(staging)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # an identical artifact won the race
    except BaseException as exc:
        full = not isinstance(exc, DiskFull) and is_disk_full(exc, target.parent)
        error = disk_full(target) if full else None
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, DiskFull):
            raise DiskFull(_renamed(exc.path, staging, target), exc.needed, exc.free) from None
        if error is not None:
            raise error from None
        raise
    _fsync_dir(target.parent)


def write_into(folder: Path, name: str, data: bytes) -> Path:
    """Write a file inside a private staging folder (no rename needed; ENOSPC -> DiskFull)."""
    path = Path(folder) / name
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        if is_disk_full(exc, path.parent):
            raise disk_full(path, len(data)) from None
        raise
    return path


# --------------------------------------------------------------------------- disk full


def is_disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """Whether ``exc`` (or an exception it wraps) means the disk or quota is full.

    Libraries that write through their own C code (HDF5, torch's zip writer) do not always
    keep errno; their message, or a filesystem with (almost) nothing left, tells it.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return True
        text = str(exc).lower()
        if any(marker in text for marker in _NO_SPACE_TEXT):
            return True
        if folder is not None and isinstance(exc, (OSError, RuntimeError)):
            free = free_bytes(folder)  # torch's zip writer says only "unexpected pos 832 vs 726"
            if free is not None and free < LOW_SPACE:
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full(path: Path, needed: int | None = None) -> DiskFull:
    """The DiskFull error for ``path``, with the space left where it was written."""
    return DiskFull(path, needed, free_bytes(Path(path).parent))


def free_bytes(folder: Path) -> int | None:
    """Bytes free for this user on the filesystem holding ``folder`` (its nearest existing
    ancestor), or None when unknown."""
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


# --------------------------------------------------------------------------- internals


def _renamed(path, staging: Path, target: Path):
    """``path`` inside the staging folder, named as it would have been in ``target``."""
    try:
        return target / Path(path).relative_to(staging)
    except ValueError:
        return path


def _fsync_file(path: Path) -> None:
    """Flush a file's data to disk before it is renamed into place (a crash of the machine
    must not leave a complete name on empty data)."""
    if Path(path).is_dir():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename itself); some filesystems refuse: best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
