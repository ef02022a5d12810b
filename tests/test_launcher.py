"""``validate_launcher``: the one check of ``--launcher``/``--nproc`` that every command shares."""

from __future__ import annotations

import re

import pytest
import torch

from w2sprobe.distributed import LAUNCHERS, validate_launcher
from w2sprobe.errors import UsageError


@pytest.fixture(autouse=True)
def _not_a_worker(monkeypatch):
    """Each test decides itself whether it runs inside a torchrun worker."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)


@pytest.mark.parametrize("launcher", [None, "none"])
def test_no_launcher_runs_in_this_process(launcher):
    assert validate_launcher(launcher, None, "cpu") is False


@pytest.mark.parametrize("nproc", [1, 2])
def test_torchrun_with_nproc_launches(nproc):
    assert validate_launcher("torchrun", nproc, "cpu") is True


def test_the_accepted_launchers():
    assert LAUNCHERS == ("none", "torchrun")


@pytest.mark.parametrize(
    ("launcher", "nproc", "message"),
    [
        ("slurm", 2, "unknown --launcher 'slurm'; use none or torchrun"),
        ("Torchrun", 2, "unknown --launcher 'Torchrun'"),  # names are exact, as typer's choices
        ("", None, "unknown --launcher ''"),
        (None, 2, "--nproc needs --launcher torchrun"),
        ("none", 2, "--nproc needs --launcher torchrun"),
        ("torchrun", None, "--launcher torchrun needs --nproc N"),
        ("torchrun", 0, "--nproc must be >= 1, got 0"),
        ("torchrun", -3, "--nproc must be >= 1, got -3"),
    ],
)
def test_bad_combinations_are_usage_errors(launcher, nproc, message):
    with pytest.raises(UsageError, match="^" + re.escape(message)):
        validate_launcher(launcher, nproc, "cpu")


def test_unknown_launcher_is_reported_before_a_missing_nproc():
    with pytest.raises(UsageError, match="unknown --launcher"):
        validate_launcher("mpirun", None, "cpu")


def test_torchrun_inside_a_torchrun_worker_is_an_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UsageError, match="inside a torchrun worker"):
        validate_launcher("torchrun", 2, "cpu")


@pytest.mark.parametrize("launcher", [None, "none"])
def test_a_torchrun_worker_without_launcher_runs_normally(monkeypatch, launcher):
    # The workers' own command lines carry no --launcher/--nproc.
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert validate_launcher(launcher, None, "cpu") is False


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "auto"])
def test_nproc_is_checked_against_the_visible_gpus(one_gpu, device):
    assert validate_launcher("torchrun", 1, device) is True
    with pytest.raises(UsageError, match="--nproc 3 is more than the 1 visible GPU"):
        validate_launcher("torchrun", 3, device)


def test_cpu_processes_are_not_limited_by_gpus(one_gpu):
    assert validate_launcher("torchrun", 3, "cpu") is True
