"""The command lines that make an artifact: every ``--no-build`` hint and "make it with" line.

A hint is only useful when, run as printed, it makes the very artifact that was asked for: the
same key.  So a hint carries, besides the dataset and seed, every option that is not at its
default among the ones the named command takes and that can change the artifact (models, sizes,
data, pooling, learning rates, LoRA settings, probe parameters).  Values from a preset or a
config file are spelled out too: the printed line then means the same thing in any folder.

The field lists below are the shared flags of the commands a hint names; the CLI gives those
commands (at least) these options, and ``tests/test_hints.py`` checks both that each listed
option is accepted and that a printed hint, run, makes the artifact.
"""

from __future__ import annotations

import shlex
from typing import Any

from .options import SPECS, Options

#: How the data are chosen and split (the dataset and seed are spelled out by every hint).
DATA = tuple(n for n, s in SPECS.items() if s.group == "data" and n != "dataset")
#: What the activations are made of (the extraction's identity, besides the model and layers).
ACTIVATIONS = ("pooling", "max_length", "dtype")
#: The training recipe of every LoRA or head stage.
TRAINING = tuple(n for n, s in SPECS.items() if s.group == "train")
#: The probe's parameters (its name, layer and labels are spelled out by the hint).
PROBE = tuple(
    n
    for n, s in SPECS.items()
    if s.group == "probe" and n not in ("probe", "layer", "labels", "contamination")
)

#: The options each command named by a hint takes and that can change what it makes.
COMMAND_FIELDS: dict[str, tuple[str, ...]] = {
    "train": DATA + ("weak_model", "strong_model", *ACTIVATIONS) + TRAINING,
    "extract": DATA + ("strong_model", *ACTIVATIONS),
    # probe, filter, relabel: the activations' model and their own parameters, plus the shared
    # training flags, which make the weak labels (and, with --pgr, the ceiling) they may need.
    "probe": DATA + ("weak_model", "strong_model", *ACTIVATIONS) + PROBE + TRAINING,
}
COMMAND_FIELDS["filter"] = COMMAND_FIELDS["probe"] + ("contamination",)
COMMAND_FIELDS["relabel"] = COMMAND_FIELDS["probe"]
#: sweep takes k, l2, k_zeta and the layers as grids of its own: its key records them.
COMMAND_FIELDS["sweep"] = tuple(
    f for f in COMMAND_FIELDS["probe"] if f not in ("k", "l2", "k_zeta")
)


def flag_text(name: str, value: Any) -> list[str]:
    """One option as command-line words: ``--strong-lr 8e-05``, ``--no-lora``, ``--pool none``."""
    spec = SPECS[name]
    if spec.kind == "bool":
        stem = spec.flag.removeprefix("--")
        return [f"--{stem}" if value else f"--no-{stem}"]
    if value is None:
        return [spec.flag, "none"]
    if isinstance(value, list):
        return [spec.flag, ",".join(map(str, value))] if value else []
    return [spec.flag, repr(value) if isinstance(value, float) else str(value)]


def shared_flags(options: Options, command: str, *, dataset: str | None = None) -> list[str]:
    """The words after ``w2sprobe <command> ...`` that make the same artifact: ``--dataset``,
    ``--seed`` and ``--cache-dir`` where not the default, then every option of
    :data:`COMMAND_FIELDS` ``[command]`` whose value is not its default."""
    words = ["--dataset", dataset or options.data.dataset[0]]
    for name in ("seed", "cache_dir"):
        value = options.value(name)
        if value != SPECS[name].default:
            words += flag_text(name, value)
    for name in COMMAND_FIELDS[command]:
        value = options.value(name)
        if value != SPECS[name].default:
            words += flag_text(name, value)
    return words


def command_line(
    options: Options, command: str, *args: str, dataset: str | None = None, **own: Any
) -> str:
    """``w2sprobe <command> <args> <own flags> <shared flags>``, quoted for a POSIX shell.

    ``args``: words right after the command (``weak``, ``ceiling``); ``own``: flags the hint
    sets itself (``labels="weak"`` -> ``--labels weak``; ``model`` -> ``--model``).
    """
    words = ["w2sprobe", command, *args]
    for key, value in own.items():
        if value is not None:
            words += ["--" + key.replace("_", "-"), str(value)]
    words += shared_flags(options, command, dataset=dataset)
    return shlex.join(words)
