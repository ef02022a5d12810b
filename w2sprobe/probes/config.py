"""Each built-in probe's typed config: its parameters, checked, and the probe they build.

A config is made once from the options (:meth:`ProbeConfig.from_options`) and carried whole to
the probe: :meth:`ProbeConfig.build` is the only place a probe is constructed from settings.
Its :meth:`~ProbeConfig.params` are exactly what a probe run's key records next to the probe's
name and layer, so two configs that are equal give the same cached result.

Defaults are the options' (:mod:`w2sprobe.options`); a field whose option is spelled otherwise
names it (``backend`` is set by ``--knn-backend``).  Importing this module loads no torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import UsageError
from ..options import KnnBackend, Metric, ProbeOptions

_DEFAULT = ProbeOptions()
#: ``--k auto`` / ``--l2 auto``: chosen without ground truth at fit (:mod:`.auto`).
AUTO = "auto"
METRICS: tuple[str, ...] = typing.get_args(Metric)
BACKENDS: tuple[str, ...] = typing.get_args(KnnBackend)


def param(default: Any, *, option: str | None = None) -> Any:
    """A config field; ``option`` names the option that sets it where the names differ."""
    return field(default=default, metadata={"option": option} if option else {})


@dataclass(frozen=True)
class ProbeConfig:
    """A probe's parameters (base class): what its key records and how it is built."""

    #: The probe's name in :data:`w2sprobe.vocabulary.PROBES`.
    name: ClassVar[str]
    #: The probe it builds: the class, or its ``module:Class`` (imported on first use: torch).
    implementation: ClassVar[str | type]

    @classmethod
    def from_options(cls, options: ProbeOptions, **overrides: Any) -> ProbeConfig:
        """The config the options describe (``overrides`` win: a sweep's grid value)."""
        values = {  # a field no option sets keeps its default
            f.name: getattr(options, f.metadata.get("option", f.name), f.default)
            for f in fields_of(cls)
        }
        return cls(**{**values, **overrides})

    def params(self) -> dict[str, Any]:
        """The parameters, by the names the probe's constructor and the run's key use."""
        return {f.name: getattr(self, f.name) for f in fields_of(self)}

    def replace(self, **changes: Any) -> ProbeConfig:
        return dataclasses.replace(self, **changes)

    def build(self, device: str = "cpu"):
        """The unfitted probe (``device``: where its math runs; not part of its key)."""
        implementation = self.implementation
        if isinstance(implementation, str):
            module, _, name = implementation.partition(":")
            implementation = getattr(importlib.import_module(module), name)
        return implementation(**self.params(), device=device)

    @staticmethod
    def option_flag(config_field: dataclasses.Field) -> str:
        """``--k``, ``--knn-backend``: how a user sets a field (for error messages)."""
        return "--" + config_field.metadata.get("option", config_field.name).replace("_", "-")

    def _flag(self, name: str) -> str:
        return self.option_flag(next(f for f in fields_of(self) if f.name == name))

    def _positive_int(self, name: str) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{self._flag(name)} must be an integer >= 1, got {value!r}")

    def _choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in choices:
            known = ", ".join(choices)
            raise UsageError(f"{self._flag(name)} must be one of {known}, got {value!r}")


def fields_of(config: Any) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(config)


@dataclass(frozen=True)
class KnnConfig(ProbeConfig):
    """kNN: a point's soft label is the mean label of its ``k`` nearest training points."""

    name: ClassVar[str] = "knn"
    implementation: ClassVar[str] = "w2sprobe.probes.knn:KnnProbe"

    k: int = param(_DEFAULT.k)
    metric: Metric = param(_DEFAULT.metric)
    backend: KnnBackend = param(_DEFAULT.knn_backend, option="knn_backend")

    def __post_init__(self) -> None:
        if self.k != AUTO:
            self._positive_int("k")
        self._choice("metric", METRICS)
        self._choice("backend", BACKENDS)

    def build(self, device: str = "cpu"):
        return _auto(self, device) if self.k == AUTO else super().build(device)


def _auto(config: ProbeConfig, device: str):
    """The probe whose ``auto`` parameter is chosen at fit (:mod:`.auto`; loaded by its path,
    as every implementation is: it loads torch and the kNN search)."""
    return importlib.import_module("w2sprobe.probes.auto").AutoProbe(config, device)


@dataclass(frozen=True)
class LogregConfig(ProbeConfig):
    """Soft-label logistic regression with an L2 penalty on the weights."""

    name: ClassVar[str] = "logreg"
    implementation: ClassVar[str] = "w2sprobe.probes.logistic:LogisticProbe"

    l2: float = param(_DEFAULT.l2)
    standardize: bool = param(_DEFAULT.standardize)

    def build(self, device: str = "cpu"):
        return _auto(self, device) if self.l2 == AUTO else super().build(device)

    def __post_init__(self) -> None:
        l2 = self.l2
        if l2 == AUTO:
            return
        if (
            isinstance(l2, bool)
            or not isinstance(l2, (int, float))
            or not math.isfinite(l2)
            or l2 < 0
        ):
            raise UsageError(f"--l2 must be a finite number >= 0, got {l2!r}")


@dataclass(frozen=True)
class TopoConfig(ProbeConfig):
    """TopoFilter: keep the largest kNN-graph components, then drop kNN-vote outliers."""

    name: ClassVar[str] = "topo"
    implementation: ClassVar[str] = "w2sprobe.probes.topo:TopoFilterProbe"

    k_cc: int = param(_DEFAULT.k_cc)
    k_zeta: int = param(_DEFAULT.k_zeta)
    metric: Metric = param(_DEFAULT.metric)
    backend: KnnBackend = param(_DEFAULT.knn_backend, option="knn_backend")

    def __post_init__(self) -> None:
        self._positive_int("k_cc")
        self._positive_int("k_zeta")
        self._choice("metric", METRICS)
        self._choice("backend", BACKENDS)


@dataclass(frozen=True)
class MassMeanConfig(ProbeConfig):
    """Difference of means: the direction between the label-weighted class means."""

    name: ClassVar[str] = "massmean"
    implementation: ClassVar[str] = "w2sprobe.probes.massmean:MassMeanProbe"


@dataclass(frozen=True)
class MlpConfig(ProbeConfig):
    """One hidden ReLU layer of ``hidden`` units, soft-label cross-entropy plus ``l2``."""

    name: ClassVar[str] = "mlp"
    implementation: ClassVar[str] = "w2sprobe.probes.mlp:MlpProbe"

    hidden: int = param(_DEFAULT.mlp_hidden, option="mlp_hidden")
    l2: float = param(_DEFAULT.l2)

    def __post_init__(self) -> None:
        self._positive_int("hidden")
        LogregConfig.__post_init__(self)  # the same check of l2

    def build(self, device: str = "cpu"):
        return _auto(self, device) if self.l2 == AUTO else super().build(device)


@dataclass(frozen=True)
class RandomConfig(ProbeConfig):
    """Filter baseline: uniform removal, seeded (:mod:`.baselines`)."""

    name: ClassVar[str] = "random"
    implementation: ClassVar[str] = "w2sprobe.probes.baselines:RandomFilter"

    seed: int = param(0)


@dataclass(frozen=True)
class OracleConfig(ProbeConfig):
    """Filter baseline that uses ground truth: drops the labels furthest from it."""

    name: ClassVar[str] = "oracle"
    implementation: ClassVar[str] = "w2sprobe.probes.baselines:OracleFilter"

    #: Said in its key, hence in every manifest and output that shows the probe.
    uses_ground_truth: bool = param(True)


def probe_config(name: str, options: ProbeOptions | None = None, **overrides: Any) -> ProbeConfig:
    """The config of the probe ``name`` (a built-in or a plug-in, :mod:`.plugin`), from
    ``options`` (default: the defaults)."""
    from ..vocabulary import is_plugin, probe_kind

    options = options or _DEFAULT
    cls = probe_kind(name).config_class()
    if is_plugin(name):  # PluginConfig (.plugin), loaded by its path: no import circle
        return cls.for_probe(name, list(options.probe_params))
    if options.probe_params:
        raise UsageError(
            f"--probe-param is for plug-in probes; {name} takes its own options "
            f"({', '.join(ProbeConfig.option_flag(f) for f in fields_of(cls))})"
        )
    return cls.from_options(options, **overrides)
