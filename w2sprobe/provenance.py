"""Where a run was made: package versions, device, CPU model and a hashed host name.

Every run manifest records :func:`environment` (beside its ``command``; neither is part of the
key: they say how a result was made, not what it is), and a report's Setup lists the distinct
environments with how many runs each made -- hosts differ by up to 0.1 PGR on the same inputs,
so a reader must be able to see which host produced which run.  The host name itself is never
written: only the first 12 hex digits of its SHA-256 (``host``), enough to tell hosts apart
without publishing them.  Nothing heavy is imported here: versions come from the installed
packages' metadata, the GPU's name only from a torch the process has already loaded.
"""

from __future__ import annotations

import hashlib
import platform
import socket
import sys
from functools import lru_cache
from importlib import metadata

#: The packages whose versions change results.
PACKAGES = ("w2sprobe", "torch", "transformers", "nnsight", "peft")


def package_versions() -> dict[str, str | None]:
    """Installed version of each of :data:`PACKAGES` (None when absent)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def host_hash(name: str | None = None) -> str:
    """The first 12 hex digits of the SHA-256 of the host name (the name is never recorded)."""
    return hashlib.sha256((name or socket.gethostname()).encode()).hexdigest()[:12]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _device() -> tuple[str, str | None]:
    """(``cuda`` | ``cpu``, the GPU's name): from torch only if this process loaded it."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return "cuda", torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a broken driver is a CPU run, not a failed manifest
        pass
    return "cpu", None


@lru_cache(maxsize=1)
def _static() -> dict:
    return {
        "versions": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": cpu_model(),
        "host": host_hash(),
    }


def environment() -> dict:
    """What a manifest records of where it was made (see the module doc)."""
    device, name = _device()
    return {**_static(), "device": device, "device_name": name}
