"""Effective options: command line > config file > environment > built-in demo defaults.

A config file is flat TOML (``w2sprobe.toml`` in the working directory, or ``--config FILE``)
whose keys are option names with ``-`` written as ``_``, e.g.::

    strong_model = "smollm2"
    dataset = "sst2"
    layers = [16]
    data_dir = "../shared/data"

A preset (``--preset demo|blog`` or ``preset = "blog"`` in the file) fills in a bundle of
values below the file and the command line.  Every resolved value remembers where it came from, so ``w2sprobe config show`` can say.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

CONFIG_FILE_NAME = "w2sprobe.toml"

#: Built-in defaults: the offline demo (weak MiniLM -> strong MPNet on SST-2), sized so that
#: ``w2sprobe run`` does every experiment of the study in about 20 minutes on 2 CPU cores;
#: ``--preset blog`` restores the study's models and sizes.
DEFAULTS: dict[str, Any] = {
    "weak_model": "minilm",
    "strong_model": "mpnet",
    "dataset": "sst2",
    "data_dir": None,
    "cache_dir": "cache",
    "seed": 0,
    "device": "auto",
    "n_train": 1_200,
    "n_val": 100,
    "n_test": 400,
    "layers": "all",
    "pooling": None,
    "max_length": 512,
    "batch_size": 32,
    "dtype": "auto",
    "device_map": None,  # train: from_pretrained's device_map (one model over several devices)
    "text_field": "text",
    "label_field": "label",
    # probes: the blog's settings
    "probe": "knn",
    "layer": None,  # None = the reference's probe layer, (L + 1) // 2
    "labels": "weak",
    "k": 50,
    "metric": "euclidean",
    "knn_backend": "auto",
    "l2": 1e-2,
    "standardize": False,
    "k_cc": 50,
    "k_zeta": 50,
    "contamination": 0.1,
    # training: the reference study's recipe, except the strong learning rate: 8e-5 suits
    # Llama-3-8B, but leaves MPNet on 600 examples below its weak supervisor (measured).
    "lr": None,  # overrides both below
    "weak_lr": 5e-4,
    "strong_lr": 5e-4,
    "epochs": 3,
    "minibatch": 32,
    "beta2": 0.95,
    "warmup_steps": 40,
    "weight_decay": 0.1,
    "eval_every": 25,
    "lora": True,
    "lora_rank": 8,
    "lora_alpha": 16.0,
    "lora_dropout": 0.0,
    "lora_targets": None,
    "loss": "xent",
    "logconf_weight": 0.5,
    "logconf_warmup": 100,
    "balance_batch": False,
    "radius": "midweak",
    "s2s_iters": 2,
    # the pipeline
    "experiments": "all",
    "datasets": None,
    "preset": None,
}

#: Named bundles of options, applied below the config file and the command line.
PRESETS: dict[str, dict[str, Any]] = {
    # The built-in defaults, by name (to override a config file that sets another preset).
    "demo": {"weak_model": "minilm", "strong_model": "mpnet", "dataset": "sst2",
             "n_train": 1_200, "n_val": 100, "n_test": 400, "minibatch": 32},
    # EleutherAI's study: Qwen1.5-0.5B -> Llama-3-8B, layer 16 probes, the reference's sizes.
    "blog": {"weak_model": "Qwen/Qwen1.5-0.5B", "strong_model": "meta-llama/Meta-Llama-3-8B",
             "n_train": 10_000, "n_val": 1_000, "n_test": 5_000, "layer": 16, "k": 50, "l2": 1e-2,
             "k_cc": 50, "k_zeta": 50, "contamination": 0.1, "s2s_iters": 2, "weak_lr": 5e-4, "strong_lr": 8e-5, "epochs": 3, "batch_size": 32,
             "minibatch": 8, "beta2": 0.95, "warmup_steps": 40, "weight_decay": 0.1, "eval_every": 25,
             "lora_rank": 8, "loss": "xent", "logconf_weight": 0.5, "logconf_warmup": 100,
             "radius": "midweak", "max_length": 512},
}

#: Environment variables that stand in for an option (below the config file).
ENV_VARS = {"cache_dir": "W2SPROBE_CACHE", "data_dir": "W2SPROBE_DATA_DIR"}


@dataclass
class Settings:
    """Resolved option values plus the source of each (``default``, ``env ...``, a file, ``command line``)."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    config_path: Path | None = None

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def rows(self) -> list[tuple[str, Any, str]]:
        """(option, value, source) for every known option, sorted by name."""
        return [(k, self.values[k], self.sources[k]) for k in sorted(self.values)]


def find_config_file(explicit: str | os.PathLike | None) -> Path | None:
    """``--config FILE`` if given (must exist), else ``./w2sprobe.toml`` if present."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise UsageError(f"config file {path} does not exist")
        return path
    path = Path.cwd() / CONFIG_FILE_NAME
    return path if path.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a flat TOML config; unknown keys are an error (a typo must not pass silently)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    data = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise UsageError(
            f"config file {path}: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(DEFAULTS))}"
        )
    return data


def preset_options(preset: str | None) -> dict[str, Any]:
    """The options a preset sets (``none``/None: nothing)."""
    if preset in (None, "none"):
        return {}
    if preset not in PRESETS:
        raise UsageError(f"unknown preset '{preset}'; known: {', '.join(PRESETS)}, none")
    return PRESETS[preset]


def resolve(cli_values: dict[str, Any], config: str | os.PathLike | None = None) -> Settings:
    """Merge command-line values (``None`` = not given) over the config file, env, preset and defaults."""
    path = find_config_file(config)
    file_values = read_config_file(path) if path else {}
    preset = cli_values.get("preset") or file_values.get("preset")
    preset_values = preset_options(preset)
    settings = Settings(config_path=path)
    for name, default in DEFAULTS.items():
        value, source = default, "default"
        if name in preset_values:
            value, source = preset_values[name], f"preset {preset}"
        env = ENV_VARS.get(name)
        if env and os.environ.get(env):
            value, source = os.environ[env], f"env {env}"
        if name in file_values:
            value, source = file_values[name], f"config {path}"
        if cli_values.get(name) is not None:
            value, source = cli_values[name], "command line"
        settings.values[name] = value
        settings.sources[name] = source
    return settings
