"""torch.distributed plumbing shared by data-parallel extraction and training.

w2sprobe does not schedule processes itself: ``torchrun`` (or ``w2sprobe ... --launcher torchrun
--nproc N``, which :func:`validate_launcher` checks and then execs it) starts one process per
device and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address;
:func:`init_from_env` joins that group with NCCL on GPUs and gloo on CPU.  Without those
variables everything runs as a single process (rank 0 of 1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import UsageError


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in its group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: ``cuda:<local_rank>`` on GPUs, the CPU otherwise."""
        if device.type == "cuda" and self.enabled:
            return torch.device("cuda", self.local_rank)
        return device


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: torch.device) -> DistEnv:
    """Join the process group torchrun describes (once per process); single process: a no-op."""
    world = env_world_size()
    if world <= 1:
        return DistEnv()
    env = DistEnv(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group(backend=backend)
    if device.type == "cpu":
        # Ranks share the machine's cores: oversubscribed threads make every rank slower.
        if hasattr(os, "sched_getaffinity"):
            cores = len(os.sched_getaffinity(0))
        else:
            cores = os.cpu_count() or 1
        local_world = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
        torch.set_num_threads(max(1, cores // local_world))
    return env


def current() -> DistEnv:
    """The group this process already joined (or single process)."""
    if dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank)
    return DistEnv()


def shutdown() -> None:
    """Leave the process group before the process exits.

    Without it the gloo worker threads are torn down by static destructors at exit, which under
    load can abort a rank ("terminate called without an active exception").  The ranks first
    meet at a barrier: a rank that closes its connections while a peer's gloo threads still
    read them can abort that peer (a rank-0 SIGABRT seen once in CI on 2 loaded cores).
    """
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except RuntimeError:
            pass  # a peer has already failed: nobody to wait for, and torchrun reports it
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def check_nproc(nproc: int, device: str) -> None:
    """``--nproc`` must be >= 1, and on GPUs at most the number of visible devices."""
    if nproc < 1:
        raise UsageError(f"--nproc must be >= 1, got {nproc}")
    wants_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if wants_gpu:
        count = torch.cuda.device_count()
        if nproc > count:
            raise UsageError(
                f"--nproc {nproc} is more than the {count} visible GPU(s); "
                "use --nproc <= the device count or --device cpu"
            )


#: What ``--launcher`` accepts: ``none`` (the same as leaving it out) runs in this process,
#: ``torchrun`` starts ``--nproc`` workers on this machine.
LAUNCHERS = ("none", "torchrun")


def validate_launcher(launcher: str | None, nproc: int | None, device: str) -> bool:
    """Check a command's ``--launcher``/``--nproc``; True when it should exec torchrun.

    ``launcher`` ``None`` or ``"none"`` runs in this process (False); ``--nproc`` then has
    nothing to size and is an error.  ``"torchrun"`` needs ``--nproc``, is refused inside a
    process torchrun already started (the workers would each launch a group of their own), and
    checks ``nproc`` against ``device`` (:func:`check_nproc`).  Every problem is a UsageError,
    raised before anything is launched, so bad input fails once and not once per worker.
    """
    if launcher is not None and launcher not in LAUNCHERS:
        raise UsageError(f"unknown --launcher '{launcher}'; use {' or '.join(LAUNCHERS)}")
    if launcher != "torchrun":
        if nproc is not None:
            raise UsageError(
                "--nproc needs --launcher torchrun (or start the command under torchrun yourself)"
            )
        return False
    if nproc is None:
        raise UsageError("--launcher torchrun needs --nproc N")
    if env_world_size() > 1:
        raise UsageError("--launcher torchrun inside a torchrun worker; drop --launcher/--nproc")
    check_nproc(nproc, device)
    return True


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """Run ``w2sprobe <argv>`` as ``nproc`` torchrun workers on this machine; their exit code."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "w2sprobe",
        *argv,
    ]
    return subprocess.call(command)
