"""Which device a ``--device`` name means, answered without importing torch where it can be.

Importing torch costs 1-2 s of a short command's start (a probe on cached activations does its
work in a fraction of that), and ``--device auto`` needs torch only to ask whether a CUDA GPU is
there.  Where the host shows that none can be, the answer is ``cpu`` without the import; where
one might be, torch is asked, as before.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

from ..errors import UsageError

#: Files that exist wherever a CUDA GPU is usable on Linux: the NVIDIA kernel driver's /proc
#: entry and device nodes (also inside containers given a GPU), and WSL2's GPU bridge.
_LINUX_GPU_FILES = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")


def device_name(device: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA GPU is available, else ``cpu``; ``cpu``, ``cuda`` and
    ``cuda:i`` as given. ``cuda`` without a GPU, or an unknown name, is a UsageError."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"unknown device '{device}'; use auto, cpu or cuda")
    if device == "cpu":
        return device
    available = cuda_available()
    if device == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise UsageError("device cuda requested but no CUDA GPU is available")
    return device


#: ``--dtype`` names and aliases -> torch's dtype names.
_DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def dtype_name(dtype: str, device: str) -> str:
    """torch's name of the compute dtype ``dtype`` means on ``device`` (a :func:`device_name`):
    ``auto`` -> float32 on CPU, bfloat16 on GPUs that support it, else float16."""
    if dtype == "auto":
        if not device.startswith("cuda"):
            return "float32"
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if dtype not in _DTYPE_NAMES:
        raise UsageError(f"unknown dtype '{dtype}'; use auto, float32, float16 or bfloat16")
    return _DTYPE_NAMES[dtype]


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, without importing torch when no CUDA GPU can exist."""
    if cuda_impossible():
        return False
    import torch

    return torch.cuda.is_available()


def cuda_impossible() -> bool:
    """True when this host certainly has no usable CUDA GPU, judged from files alone: macOS,
    a Linux host without NVIDIA's driver, or a CPU-only build of torch (version ``+cpu``)."""
    if sys.platform == "darwin":
        return True
    if sys.platform.startswith("linux") and not any(Path(p).exists() for p in _LINUX_GPU_FILES):
        return True
    try:
        return importlib.metadata.version("torch").endswith("+cpu")
    except importlib.metadata.PackageNotFoundError:
        return False


def set_cpu_threads() -> int:
    """One torch thread per core this process may use: oversubscription slows small CPUs badly.

    Returns the core count.  Before torch is imported this sets ``OMP_NUM_THREADS``, which torch
    reads when it loads (numpy's BLAS is loaded already and keeps its own setting), so a command
    that ends up not needing torch does not import it just to set its threads.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores))
    else:
        torch.set_num_threads(max(1, cores))
    return cores
