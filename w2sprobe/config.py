"""Effective options: command line > config file > environment > built-in demo defaults.

A config file is flat TOML (``w2sprobe.toml`` in the working directory, or ``--config FILE``)
whose keys are option names with ``-`` written as ``_``, e.g.::

    strong_model = "smollm2"
    dataset = "sst2"
    layers = [16]
    data_dir = "../shared/data"

Every resolved value remembers where it came from, so ``w2sprobe config show`` can say.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

CONFIG_FILE_NAME = "w2sprobe.toml"

#: Built-in defaults: the offline demo (weak MiniLM -> strong MPNet on SST-2) at the study's sizes.
DEFAULTS: dict[str, Any] = {
    "weak_model": "minilm",
    "strong_model": "mpnet",
    "dataset": "sst2",
    "data_dir": None,
    "cache_dir": "cache",
    "seed": 0,
    "device": "auto",
    "n_train": 10_000,
    "n_val": 1_000,
    "n_test": 5_000,
    "layers": "all",
    "pooling": None,
    "max_length": 512,
    "batch_size": 32,
    "dtype": "auto",
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


def resolve(cli_values: dict[str, Any], config: str | os.PathLike | None = None) -> Settings:
    """Merge command-line values (``None`` = not given) over the config file, env and defaults."""
    path = find_config_file(config)
    file_values = read_config_file(path) if path else {}
    settings = Settings(config_path=path)
    for name, default in DEFAULTS.items():
        value, source = default, "default"
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
