"""Every option of w2sprobe, typed, documented and defaulted in one place.

Options are dataclass fields grouped by concern (workspace, data, models, extraction, probes,
training, the study plan, reports).  Each field's type, default and one-line doc are, at the
same time, the command-line option (``--n-train INTEGER``), the key of the config file
(``n_train = 1200``) and the row of ``w2sprobe config show``.

Config-file keys are the flag names without ``--`` (``weak``, ``strong``, ``pool``, ``n_train``;
``-`` and ``_`` are interchangeable); where the dataclass field has another name, that name is
accepted as an alias (``weak_model``, ``strong_model``, ``pooling``).  ``resolve`` accepts both
spellings too.  The report's ``--dataset`` keeps its field name ``report_datasets`` as its key,
since ``dataset`` is the data option's.

Precedence, highest first: command line > environment > config file > preset > defaults;
every value remembers where it came from.  The config file is ``--config FILE``, else the
nearest ``w2sprobe.toml`` in the working folder or its parents (as ruff and pytest find
theirs); relative paths in it are taken relative to its folder.  Values from files are
type-checked here, so ``k = "50"`` is an error naming the key, never a crash deep inside a probe.

This module imports nothing heavy: the CLI builds its help from it in milliseconds.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from .errors import UsageError
from .vocabulary import DEFAULT_MAX_TOKEN_BYTES, LOSSES, PROBES, STUDENT_KINDS

CONFIG_FILE_NAME = "w2sprobe.toml"

Device = Literal["auto", "cpu", "cuda"]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
Pooling = Literal["last", "mean", "first"]
#: How the cache stores activations (w2sprobe.cache.encoding): dtype and HDF5 compression.
StoreDtype = Literal["float16", "bfloat16", "float32"]
Compression = Literal["none", "gzip", "lzf"]
Metric = Literal["euclidean", "cosine"]
KnnBackend = Literal["auto", "torch", "faiss", "cuml"]
Loss = Literal[tuple(LOSSES)]
ReportFormat = Literal["html", "md", "json"]
StudentKind = Literal[tuple(STUDENT_KINDS)]
TrackerName = Literal["none", "mlflow", "wandb"]


def option(
    default: Any,
    doc: str,
    *,
    flag: str | None = None,
    env: str | None = None,
    relative_path: bool = False,
    metavar: str | None = None,
    shown: str | None = None,
    suggest: tuple[str, ...] = (),
    auto: bool = False,
) -> Any:
    """A documented option field.

    ``flag`` overrides the command-line name (default ``--`` + the field name with ``-``);
    ``env`` names an environment variable that sets it; ``relative_path`` resolves a value from
    a config file against that file's folder; ``shown`` is how help states a default that
    depends on something else (the model, the stage); ``suggest``: values shell completion
    offers for an option that takes others too (the built-in probes); ``auto``: the option also
    takes ``auto`` (a probe parameter chosen without ground truth, w2sprobe.probes.auto).
    """
    meta = {
        "doc": doc,
        "flag": flag,
        "env": env,
        "relative_path": relative_path,
        "metavar": metavar,
        "shown": shown,
        "suggest": suggest,
        "auto": auto,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- the option groups


@dataclass
class WorkspaceOptions:
    """Where artifacts live and what every command shares."""

    cache_dir: str = option(
        "cache",
        "Workspace root holding every cached artifact.",
        env="W2SPROBE_CACHE",
        relative_path=True,
        metavar="DIR",
    )
    seed: int = option(0, "Seed of the splits and of everything random.")
    device: Device = option("auto", "Where models and probes run (auto: cuda when available).")
    tracker: TrackerName = option(
        "none",
        "Log each built stage's config and metrics (and the report's figures) to MLflow or W&B "
        "(extras [mlflow] / [wandb]).",
        env="W2SPROBE_TRACKER",
    )


@dataclass
class DataOptions:
    """Which data, and how it is split."""

    dataset: list[str] = option(
        ["sst2"],
        "Registry name (w2sprobe data list), a [datasets.NAME] of the config, "
        "a .jsonl/.csv/.parquet file, a folder of train/validation/test "
        "files, or hub:org/name[:config]; repeat where a command takes "
        "several.",
        metavar="NAME",
    )
    data_dir: str | None = option(
        None,
        "Local dataset mirror: <name>/<split>.jsonl or a hub parquet export "
        "<name>/<config>/<split>/0000.parquet; a missing folder is an error.",
        env="W2SPROBE_DATA_DIR",
        relative_path=True,
        metavar="DIR",
        shown="none: the hub",
    )
    text_field: str = option("text", "Text column of a dataset file.")
    label_field: str = option(
        "label", "Label column of a dataset file (0/1, or see positive_label)."
    )
    positive_label: str | None = option(
        None,
        "Multi-class labels: this value is the positive class, every "
        "other the negative (one vs rest).",
        metavar="VALUE",
    )
    n_train: int = option(1_200, "Train pool size before halving into weak_train and strong_train.")
    n_val: int = option(100, "Validation split size.")
    n_test: int = option(400, "Test split size.")


@dataclass
class ModelOptions:
    """The weak and the strong model and how they are run."""

    weak_model: str = option(
        "minilm",
        "Weak supervisor: alias (minilm, mpnet, smollm2), HF folder or hub id.",
        flag="--weak",
        metavar="MODEL",
    )
    strong_model: str = option(
        "mpnet",
        "Strong student: alias (minilm, mpnet, smollm2), HF folder or hub id.",
        flag="--strong",
        metavar="MODEL",
    )
    dtype: Dtype = option(
        "auto", "Compute dtype (auto: bfloat16 on GPUs, float32 on CPU; stored as float16)."
    )
    device_map: str | None = option(
        None,
        "Spread one model too big for one device: auto | balanced | "
        "sequential | a device (from_pretrained's device_map).",
        shown="none: one device",
    )


@dataclass
class ExtractOptions:
    """What the activation cache stores and how it is computed."""

    layers: str = option(
        "all",
        "Layers to cache: comma list (4,8,16) or all (every layer of the model; "
        "HF hidden_states numbering, 0 = embeddings).",
        metavar="LAYERS",
    )
    pooling: Pooling | None = option(
        None,
        "Token pooling of the activations and the classifier head.",
        flag="--pool",
        shown="last for decoders, mean for encoders",
    )
    max_length: int = option(512, "Truncate texts to this many tokens.")
    extract_batch_size: int = option(32, "Examples per forward pass while extracting activations.")
    store_dtype: StoreDtype = option(
        "float16",
        "Dtype the cache stores activations in (bfloat16 and float32 are part of the key; "
        "float16 files keep theirs).",
    )
    compression: Compression = option(
        "none",
        "HDF5 compression of the stored activations (smaller files, slower reads; not in the key).",
    )
    tokens: str | None = option(
        None,
        "Also cache token-level activations (extract): last:K (the last K tokens of each "
        "example) or A:B (positions A..B-1), with their token ids, in a file of their own.",
        metavar="last:K|A:B",
        shown="none",
    )
    max_bytes: int = option(
        DEFAULT_MAX_TOKEN_BYTES,
        "Largest token-level file --tokens may make, in bytes (a request over it is refused "
        "with its size).",
        shown="2147483648 (2 GiB)",
    )


@dataclass
class ProbeOptions:
    """Probes on the cached activations and the label sets they make."""

    probe: str = option(
        "knn",
        "Probe to fit: a built-in, a name registered in the entry points w2sprobe.probes, "
        "package.module:Class (README: Write your own probe) or sklearn:<module>.<Class>.",
        metavar="[" + "|".join(PROBES) + "|module:Class]",
        suggest=tuple(PROBES),
    )
    probe_params: list[str] = option(
        [],
        "Parameters of a plug-in probe, typed from its class's signature; repeat, or a "
        "[probe_params] table in the config file.",
        flag="--probe-param",
        metavar="NAME=VALUE",
        shown="none",
    )
    layer: int | None = option(
        None,
        "Layer to probe; auto: chosen among the extracted layers by the probe's weak-label "
        "criterion on strong_train (as --k auto); for extract, the one layer to cache.",
        shown="(L+1)//2, the reference's probe layer",
        metavar="INTEGER|auto",
        auto=True,
    )
    labels: str = option(
        "weak", "Label set (name or key) to fit on or train on; gt = ground truth."
    )
    k: int = option(
        50,
        "kNN neighbours; auto: chosen by leave-one-out on strong_train against the fit labels.",
        metavar="INTEGER|auto",
        auto=True,
    )
    metric: Metric = option("euclidean", "Distance of kNN and TopoFilter.")
    knn_backend: KnnBackend = option("auto", "Exact kNN search backend.")
    l2: float = option(
        1e-2,
        "L2 penalty on the weights of the logistic (and MLP) probe; auto: chosen by 5-fold "
        "cross-validation on strong_train against the fit labels.",
        metavar="FLOAT|auto",
        auto=True,
    )
    standardize: bool = option(False, "Standardise features before the logistic probe.")
    mlp_hidden: int = option(64, "MLP probe: hidden ReLU units.")
    k_cc: int = option(50, "TopoFilter: neighbours of the graph whose components are kept.")
    k_zeta: int = option(50, "TopoFilter: neighbours that vote on each label.")
    contamination: float = option(0.1, "Fraction of train and val a filter drops.")


@dataclass
class TrainOptions:
    """The LoRA training recipe (the study's, except the strong learning rate)."""

    lr: float | None = option(
        None,
        "Learning rate of every stage (overrides weak_lr and strong_lr).",
        shown="weak_lr / strong_lr",
    )
    weak_lr: float = option(5e-4, "Learning rate of the weak model.")
    # 8e-5 suits Llama-3-8B (the blog preset) but leaves MPNet on 600 examples below its weak
    # supervisor (measured), so the demo trains the strong model at 5e-4.
    strong_lr: float = option(5e-4, "Learning rate of the strong model (ceiling and students).")
    epochs: int = option(3, "Training epochs.")
    batch_size: int = option(32, "Examples per optimizer step.")
    minibatch: int = option(
        32, "Examples per forward/backward pass (gradients accumulate to batch_size)."
    )
    beta2: float = option(0.95, "AdamW beta2.")
    warmup_steps: int = option(40, "Linear warmup steps before the cosine decay.")
    weight_decay: float = option(0.1, "AdamW weight decay.")
    eval_every: int = option(25, "Evaluate on val (and checkpoint) every N steps.")
    lora: bool = option(True, "Train LoRA adapters (off: every weight).")
    lora_rank: int = option(8, "LoRA rank.")
    lora_alpha: float = option(16.0, "LoRA alpha.")
    lora_dropout: float = option(0.0, "LoRA dropout.")
    lora_targets: list[str] = option(
        [],
        "Module names to adapt (comma list).",
        metavar="NAMES",
        shown="every linear projection in the blocks",
    )
    loss: Loss = option("xent", "Student loss.")
    logconf_weight: float = option(0.5, "Final weight of the logconf / entropy term.")
    logconf_warmup: int = option(100, "Steps over which that weight rises from 0.")
    logconf_threshold: Literal["quantile", "median"] = option(
        "quantile",
        "logconf hardening threshold over the last 32 predictions: quantile at 1 - mean(y) "
        "(the reference code) or median (the blog's wording).",
    )
    balance_batch: bool = option(
        False,
        "logconf: re-centre the batch's soft labels (subtract their mean log-odds) and harden "
        "at the median instead of the batch's weak prior (the reference code).",
    )
    radius: str = option(
        "midweak",
        "window loss: confidence radius in (0, 0.5], or midweak (the median "
        "|y - 1/2| of the training labels).",
        metavar="RADIUS",
    )
    window_average: Literal["batch", "inside"] = option(
        "batch",
        "window loss: divide the in-window cross-entropy by the batch size (batch, the reference "
        "code) or average it over the in-window examples (inside).",
    )
    product_alpha: float = option(
        1.0, "product loss: exponent of the soft labels in the target p^beta * y^alpha."
    )
    product_beta: float = option(
        1.0, "product loss: exponent of the student's prediction in that target."
    )
    adaptive_temperature: float = option(
        1.0, "adaptive loss: temperature of the per-example weight of the student's own hard label."
    )
    s2s_iters: int = option(
        2, "Strong-to-strong iterations (each a student on the previous one's labels)."
    )
    student: StudentKind = option(
        "lora",
        "Ceiling and students: lora (finetune the strong model) or head (a classifier on its "
        "cached activations: seconds instead of minutes; a screen, not the study's student).",
    )
    weak_kind: StudentKind = option(
        "lora",
        "Weak supervisor: lora (the study's) or head (a classifier on the weak model's cached "
        "activations).",
    )
    head_layer: int | None = option(
        None,
        "Layer of the strong model's activations a head student reads.",
        shown="the probe layer",
    )
    head_hidden: int = option(0, "Hidden ReLU units of a head (0: a linear head).")
    head_lr: float = option(3e-3, "Learning rate of a head (student, ceiling or weak).")


@dataclass
class RunOptions:
    """The study plan of ``w2sprobe run``."""

    experiments: list[str] = option(
        ["all"], "Experiments: all, the groups losses / s2s / probes, or names.", metavar="NAMES"
    )
    seeds: list[int] = option(
        [], "Seeds to run every stage with.", metavar="SEEDS", shown="the seed option"
    )
    shard: str | None = option(
        None, "i/n: run the i-th of n round-robin shares of the stages.", metavar="I/N"
    )


@dataclass
class ReportOptions:
    """What ``w2sprobe report`` reads and computes."""

    report_datasets: list[str] = option(
        [],
        "Datasets to include; repeat or comma-separate.",
        flag="--dataset",
        metavar="NAME",
        shown="every dataset with results",
    )
    baseline: str = option("xent", "Experiment the interventions are compared with.")
    n_boot: int = option(1000, "Bootstrap resamples for the 95% CIs (0: none).")
    saturation: float = option(
        0.999, "Exclude datasets whose weak, ceiling and student AUC all exceed this."
    )
    min_gap: float = option(
        0.02,
        "PGR rule: flag PGR as unstable (and leave it out of summaries) unless the 95% "
        "paired-bootstrap CI of ceiling - weak test AUC lies above this.",
    )
    format: ReportFormat = option("html", "html (self-contained) | md (+ image files) | json.")
    out: str | None = option(
        None,
        "Report folder.",
        relative_path=True,
        metavar="DIR",
        shown="<cache>/reports/<hash of the inputs>",
    )


GROUPS: dict[str, type] = {
    "workspace": WorkspaceOptions,
    "data": DataOptions,
    "model": ModelOptions,
    "extract": ExtractOptions,
    "probe": ProbeOptions,
    "train": TrainOptions,
    "run": RunOptions,
    "report": ReportOptions,
}

#: Named option sets, applied above the defaults and below config file, environment and command
#: line.
PRESETS: dict[str, dict[str, Any]] = {
    # The built-in defaults, by name (to override a config file that sets another preset).
    "demo": {},
    # EleutherAI's study: Qwen1.5-0.5B -> Llama-3-8B, layer-16 probes, the reference's sizes and
    # recipe.
    "blog": {
        "weak_model": "Qwen/Qwen1.5-0.5B",
        "strong_model": "meta-llama/Meta-Llama-3-8B",
        "n_train": 10_000,
        "n_val": 1_000,
        "n_test": 5_000,
        "layer": 16,
        "strong_lr": 8e-5,
        "minibatch": 8,
    },
}


@dataclass
class Options:
    """The resolved options of one command: one typed object per concern, plus provenance."""

    workspace: WorkspaceOptions = field(default_factory=WorkspaceOptions)
    data: DataOptions = field(default_factory=DataOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    extract: ExtractOptions = field(default_factory=ExtractOptions)
    probe: ProbeOptions = field(default_factory=ProbeOptions)
    train: TrainOptions = field(default_factory=TrainOptions)
    run: RunOptions = field(default_factory=RunOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
    sources: dict[str, str] = field(default_factory=dict)
    config_path: Path | None = None
    preset: str | None = None
    #: ``[datasets.NAME]`` tables of the config file: users' own datasets (see w2sprobe.data.user).
    dataset_tables: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_dir(self) -> Path:
        return Path(self.workspace.cache_dir)

    @property
    def dataset(self) -> str:
        """The one dataset of a single-dataset command."""
        names = self.data.dataset
        if len(names) != 1:
            raise UsageError(
                f"this command takes one --dataset, got {len(names)}: {', '.join(names)}"
            )
        return names[0]

    def value(self, name: str) -> Any:
        return getattr(getattr(self, SPECS[name].group), name)

    def replace(self, **values: Any) -> Options:
        """A copy with some fields changed (e.g. one dataset and seed of a study plan)."""
        groups = {
            g: dataclasses.replace(
                getattr(self, g), **{k: v for k, v in values.items() if SPECS[k].group == g}
            )
            for g in GROUPS
        }
        sources = {**self.sources, **{k: "plan" for k in values}}
        return Options(
            **groups,
            sources=sources,
            config_path=self.config_path,
            preset=self.preset,
            dataset_tables=self.dataset_tables,
        )

    def rows(self) -> list[tuple[str, str, Any, str]]:
        """(group, option, value, source) for every option, in declaration order."""
        return [
            (spec.group, spec.name, self.value(spec.name), self.sources.get(spec.name, "default"))
            for spec in SPECS.values()
        ]


# --------------------------------------------------------------------------- field specs


@dataclass(frozen=True)
class OptionSpec:
    """One option as the CLI, the config file and ``config show`` see it."""

    name: str
    group: str
    kind: str  # int | float | str | bool | choice | list_str | list_int
    optional: bool
    default: Any
    doc: str
    flag: str
    env: str | None
    relative_path: bool
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    shown: str | None = None
    #: Values shell completion offers where the option is no fixed choice.
    suggestions: tuple[str, ...] = ()
    #: Whether ``auto`` is a value too (``--k auto``, ``--l2 auto``).
    auto: bool = False
    #: The config-file key: the flag's name (``weak`` for ``--weak``), or the field name where
    #: two options share a flag (the report's ``--dataset`` is ``report_datasets``).
    key: str = ""

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other spellings a config file (or ``resolve``) accepts: the field name."""
        return (self.name,) if self.name != self.key else ()

    def default_text(self) -> str:
        """The default as help shows it: one format for every option."""
        if self.shown is not None:
            return self.shown
        value = self.default
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, list):
            return ",".join(map(str, value)) or "none"
        return str(value)


def _kind(annotation: Any) -> tuple[str, bool, tuple[str, ...]]:
    """(kind, optional, choices) of a field's resolved type."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional, annotation = True, args[0]
        origin = typing.get_origin(annotation)
    if origin is Literal:
        return "choice", optional, tuple(typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return ("list_int" if item is int else "list_str"), optional, ()
    names = {int: "int", float: "float", str: "str", bool: "bool"}
    return names[annotation], optional, ()


def _specs() -> dict[str, OptionSpec]:
    specs: dict[str, OptionSpec] = {}
    for group, cls in GROUPS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind, optional, choices = _kind(hints[f.name])
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            meta = f.metadata
            if f.name in specs:
                raise AssertionError(f"option {f.name} is defined twice")
            specs[f.name] = OptionSpec(
                f.name,
                group,
                kind,
                optional,
                default,
                meta["doc"],
                meta["flag"] or "--" + f.name.replace("_", "-"),
                meta["env"],
                meta["relative_path"],
                choices,
                meta["metavar"],
                meta["shown"],
                meta["suggest"],
                meta["auto"],
            )
    return _with_keys(specs)


def _with_keys(specs: dict[str, OptionSpec]) -> dict[str, OptionSpec]:
    """Give each spec its config key: the flag's name, unless another option owns that name."""
    keyed = {}
    for name, spec in specs.items():
        key = spec.flag.removeprefix("--").replace("-", "_")
        if key != name and key in specs:
            key = name  # --dataset of report: `dataset` is the data option's key
        keyed[name] = dataclasses.replace(spec, key=key)
    keys = [spec.key for spec in keyed.values()]
    if len(set(keys)) != len(keys):
        raise AssertionError("two options share a config key")
    return keyed


SPECS: dict[str, OptionSpec] = _specs()

#: Every accepted spelling of an option (its key and its field name, ``_`` for ``-``) -> field.
SPELLINGS: dict[str, str] = {
    spelling: name for name, spec in SPECS.items() for spelling in (spec.key, *spec.aliases)
}


def canonical_names(
    values: dict[str, Any], where: str, spelled: dict[str, str] | None = None
) -> dict[str, Any]:
    """``values`` keyed by field name, whichever accepted spelling each key uses.

    ``-`` may stand for ``_``; a key that is no option is kept as written (the caller reports
    it); two spellings of one option is an error naming both.  ``spelled`` (if given) receives
    field name -> the key as written.
    """
    named: dict[str, Any] = {}
    spelled = {} if spelled is None else spelled
    for raw, value in values.items():
        key = raw.replace("-", "_")
        name = SPELLINGS.get(key, key)
        if name in named:
            raise UsageError(
                f"{where}: '{spelled[name]}' and '{raw}' both set {SPECS[name].key}; keep one"
            )
        named[name], spelled[name] = value, raw
    return named


# --------------------------------------------------------------------------- parsing and checking


def coerce(spec: OptionSpec, value: Any, where: str, spelled: str | None = None) -> Any:
    """``value`` as the option's type, or a UsageError naming the option and where it came from
    (``spelled``: the key as a config file wrote it).

    Command-line and environment values arrive as text; config-file values must already have the
    right TOML type (a number for a number), except that a comma list may be written as text.
    """
    text_source = where in ("command line", "environment") or where.startswith("env ")
    if value is None:
        if spec.optional:
            return None
        raise UsageError(f"{_origin(spec, where, spelled)} cannot be empty")
    if isinstance(value, str) and text_source and spec.optional and value.strip().lower() == "none":
        return None
    try:
        return _coerce(spec, value, text_source)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{_origin(spec, where, spelled)}: {exc}") from None


def _coerce(spec: OptionSpec, value: Any, text: bool) -> Any:
    kind = spec.kind
    if spec.auto and isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if kind in ("list_str", "list_int"):
        if isinstance(value, dict):  # a table of the config file: [probe_params] C = 0.1
            value = [f"{k}={v!r}" for k, v in value.items()]
        items = value if isinstance(value, (list, tuple)) else [value]
        # "4,8" and ["4", "8"] alike: repeated flags, comma lists and TOML arrays all work
        items = [
            part
            for item in items
            for part in (item.split(",") if isinstance(item, str) else [item])
        ]
        if kind == "list_int":
            return [
                _int(item, text or isinstance(value, str)) for item in items if str(item).strip()
            ]
        return [_str(item) for item in items if str(item).strip()]
    if kind == "int":
        return _int(value, text)
    if kind == "float":
        if isinstance(value, bool):
            raise TypeError(f"expected a number, got {value!r}")
        if isinstance(value, str):
            if not text:
                raise TypeError(f"expected a number, got the string {value!r}")
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        if not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if (
            text
            and isinstance(value, str)
            and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off")
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise TypeError(f"expected true or false, got {value!r}")
    if kind == "choice":
        if value not in spec.choices:
            raise ValueError(f"'{value}' is not one of {', '.join(spec.choices)}")
        return value
    if kind == "str" and spec.name == "layers" and isinstance(value, (int, list)):
        value = ",".join(
            map(str, value if isinstance(value, list) else [value])
        )  # layers = [16] in a file
    return _str(value)


def _int(value: Any, text: bool) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, str):
        if not text:
            raise TypeError(f"expected an integer, got the string {value!r}")
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise TypeError(f"expected text, got {value!r}")
    return str(value)


def _origin(spec: OptionSpec, where: str, spelled: str | None = None) -> str:
    if where == "command line":
        return f"option {spec.flag}"
    if where.startswith("env "):
        return f"{where.removeprefix('env ')} (for {spec.key})"
    return f"{where}: key '{spelled or spec.key}'"


def find_config_file(
    explicit: str | os.PathLike | None, start: str | os.PathLike | None = None
) -> Path | None:
    """``--config FILE`` if given (must exist), else the nearest ``w2sprobe.toml`` in ``start``
    (default: the working folder) or its parents, else None.  The path is absolute."""
    if explicit is not None:
        path = Path(explicit).absolute()
        if not path.is_file():
            raise UsageError(f"config file {path} does not exist")
        return path
    folder = Path(start or Path.cwd()).absolute()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE_NAME
        if path.is_file():
            return path
    return None


def read_config_file(path: Path, spelled: dict[str, str] | None = None) -> dict[str, Any]:
    """A flat TOML file of option keys, by field name (any accepted spelling, see
    :data:`SPELLINGS`; ``spelled`` receives each key as written); unknown keys are an error."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    data = canonical_names(data, f"config file {path}", spelled)
    known = {*SPECS, "preset", "datasets"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(
            f"config file {path}: unknown option(s) {', '.join(unknown)}; "
            "w2sprobe config show lists the keys"
        )
    return data


def check_preset(name: str | None) -> dict[str, Any]:
    """The values a preset sets (``none``/None: nothing)."""
    if name in (None, "none"):
        return {}
    if name not in PRESETS:
        raise UsageError(f"unknown preset '{name}'; known: {', '.join(PRESETS)}, none")
    return PRESETS[name]


def resolve(
    cli_values: dict[str, Any] | None = None,
    config: str | os.PathLike | None = None,
    preset: str | None = None,
    *,
    environ: dict[str, str] | None = None,
) -> Options:
    """Merge command-line values (``None`` = not given) over environment, file, preset and
    defaults, in that order of precedence.

    ``cli_values`` may use field names or config keys (``weak_model`` or ``weak``).  Every value
    is checked against its option's type; relative paths from a config file are taken relative
    to that file's folder.
    """
    cli_values = canonical_names(
        {k: v for k, v in (cli_values or {}).items() if v is not None}, "options"
    )
    unknown = sorted(set(cli_values) - set(SPECS))
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)}")
    environ = os.environ if environ is None else environ
    path = find_config_file(config)
    spelled: dict[str, str] = {}
    file_values = read_config_file(path, spelled) if path else {}
    tables = file_values.pop("datasets", {})
    if not isinstance(tables, dict):
        raise UsageError(
            f"config file {path}: 'datasets' must be [datasets.NAME] tables (user datasets)"
        )
    preset_name = preset or file_values.pop("preset", None)
    file_values.pop("preset", None)
    if preset_name is not None and not isinstance(preset_name, str):
        raise UsageError(f"config file {path}: key 'preset' must be text, got {preset_name!r}")
    preset_values = check_preset(preset_name)
    values: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    sources: dict[str, str] = {}
    for name, spec in SPECS.items():
        value, source = spec.default, "default"
        if name in preset_values:
            value, source = preset_values[name], f"preset {preset_name}"
        if name in file_values:
            value, source = file_values[name], f"config {path}"
        if spec.env and environ.get(spec.env):
            value, source = environ[spec.env], f"env {spec.env}"
        if name in cli_values:
            value, source = cli_values[name], "command line"
        value = coerce(spec, value, source, spelled.get(name))
        if (
            spec.relative_path
            and value is not None
            and source.startswith("config ")
            and path is not None
        ):
            value = str((path.parent / value) if not Path(value).is_absolute() else Path(value))
        values[spec.group][name] = value
        sources[name] = source
    groups = {group: GROUPS[group](**vals) for group, vals in values.items()}
    return Options(
        **groups, sources=sources, config_path=path, preset=preset_name, dataset_tables=tables
    )


def defaults(**values: Any) -> Options:
    """The built-in defaults (no file, no environment) with ``values`` set.

    This is what a library user starts from.
    """
    options = Options(sources={name: "default" for name in SPECS})
    return options.replace(**values) if values else options
