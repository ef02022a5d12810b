"""Each student loss's typed config: its parameters, checked, and the loss they build.

A config is made once from the options (:meth:`LossConfig.from_options`) and carried whole in
the training recipe (:class:`w2sprobe.train.trainer.TrainConfig`) to the trainer, where
:meth:`LossConfig.build` makes the loss.  :meth:`LossConfig.key_fields` is what a run's key
records about its loss; those names are the ones the flat recipe used before losses had
configs (``aux_weight`` for logconf's weight ...), so every earlier run keeps its key.

Defaults are the options' (:mod:`w2sprobe.options`); a field whose option is spelled otherwise
names it (logconf's ``weight`` is set by ``--logconf-weight``).  Importing this module loads no
torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..errors import UsageError
from ..options import TrainOptions

_DEFAULT = TrainOptions()
#: How logconf turns its buffer of recent predictions into a threshold; the first is the default.
LOGCONF_THRESHOLDS = ("quantile", "median")
#: What the window loss divides its in-window cross-entropy by: the batch size (the reference
#: code's, the default) or the number of in-window examples (this project's first definition).
WINDOW_AVERAGES = ("batch", "inside")


def param(default: Any, *, option: str | None = None, key: str | None = None) -> Any:
    """A config field: ``option`` names the option that sets it, ``key`` its name in run keys."""
    meta = {name: value for name, value in (("option", option), ("key", key)) if value}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class LossConfig:
    """A loss's parameters (base class): what a run's key records and how the loss is built."""

    #: The loss's name in :data:`w2sprobe.vocabulary.LOSSES`.
    name: ClassVar[str]
    #: The loss it builds: the class, or its ``module:Class`` (imported on first use: torch).
    implementation: ClassVar[str | type]
    #: Whether one optimizer batch's gradient depends on the whole batch (a threshold or a
    #: window mean over it): runs that accumulate micro-batches record that in their key.
    whole_batch: ClassVar[bool] = False

    @classmethod
    def from_options(cls, options: TrainOptions) -> LossConfig:
        """The config the training options describe (a field that no option sets, as in a
        plug-in loss, keeps its default)."""
        return cls(
            **{
                f.name: getattr(options, f.metadata.get("option", f.name))
                for f in dataclasses.fields(cls)
                if hasattr(options, f.metadata.get("option", f.name))
            }
        )

    def params(self) -> dict[str, Any]:
        """The parameters by the names the loss's constructor takes."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def key_fields(self) -> dict[str, Any]:
        """The parameters as a run's key records them (see the module doc)."""
        return {
            f.metadata.get("key", f.name): getattr(self, f.name) for f in dataclasses.fields(self)
        }

    def build(self, train_labels: Any = None):
        """The loss, for a run on ``train_labels`` (window's ``midweak`` radius reads them)."""
        return _load(self.implementation)(**self.resolved(train_labels))

    def resolved(self, train_labels: Any = None) -> dict[str, Any]:
        """The constructor's arguments for one run (a per-run parameter resolved)."""
        return self.params()


@dataclass(frozen=True)
class XentConfig(LossConfig):
    """Cross-entropy against the soft labels."""

    name: ClassVar[str] = "xent"
    implementation: ClassVar[str] = "w2sprobe.train.losses:XentLoss"


@dataclass(frozen=True)
class KLConfig(LossConfig):
    """KL(labels || prediction): xent's gradient, 0 at a perfect fit."""

    name: ClassVar[str] = "kl"
    implementation: ClassVar[str] = "w2sprobe.train.losses:KLLoss"


def _check_aux(weight: Any, warmup: Any) -> None:
    if not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise UsageError(f"--logconf-weight must be in [0, 1], got {weight}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise UsageError(f"--logconf-warmup must be an integer >= 0, got {warmup}")


@dataclass(frozen=True)
class LogconfConfig(LossConfig):
    """Burns et al.'s auxiliary confidence loss (see :class:`w2sprobe.train.losses.LogConfLoss`)."""

    name: ClassVar[str] = "logconf"
    implementation: ClassVar[str] = "w2sprobe.train.losses:LogConfLoss"
    whole_batch: ClassVar[bool] = True

    weight: float = param(_DEFAULT.logconf_weight, option="logconf_weight", key="aux_weight")
    warmup: int = param(_DEFAULT.logconf_warmup, option="logconf_warmup", key="aux_warmup")
    balance_batch: bool = param(_DEFAULT.balance_batch)
    threshold: Literal["quantile", "median"] = param(
        _DEFAULT.logconf_threshold, option="logconf_threshold", key="logconf_threshold"
    )

    def __post_init__(self) -> None:
        _check_aux(self.weight, self.warmup)
        check_logconf_threshold(self.threshold)

    def key_fields(self) -> dict[str, Any]:
        fields = super().key_fields()
        if self.threshold == LOGCONF_THRESHOLDS[0]:
            del fields["logconf_threshold"]  # the default: keys from before the choice existed
        if self.balance_batch:
            # balance_batch first only moved the threshold; it now also re-centres the labels
            # (the reference code): a run of the old arithmetic is never reused for it.
            fields["balance_recentred"] = True
        return fields


@dataclass(frozen=True)
class EntropyConfig(LossConfig):
    """``(1 - a) CE(p, y) + a H(p)``: an entropy penalty on the student's predictions."""

    name: ClassVar[str] = "entropy"
    implementation: ClassVar[str] = "w2sprobe.train.losses:EntropyLoss"

    weight: float = param(_DEFAULT.logconf_weight, option="logconf_weight", key="aux_weight")
    warmup: int = param(_DEFAULT.logconf_warmup, option="logconf_warmup", key="aux_warmup")

    def __post_init__(self) -> None:
        _check_aux(self.weight, self.warmup)


@dataclass(frozen=True)
class WindowConfig(LossConfig):
    """xent on the examples whose confidence ``|p - 1/2|`` is within ``radius``."""

    name: ClassVar[str] = "window"
    implementation: ClassVar[str] = "w2sprobe.train.losses:WindowLoss"

    #: In (0, 0.5], or ``midweak``: the median ``|y - 1/2|`` of the run's training labels.
    radius: float | str = param(_DEFAULT.radius)
    #: ``batch``: the in-window cross-entropy sum over the batch size (the reference code);
    #: ``inside``: its mean over the in-window examples.
    average: Literal["batch", "inside"] = param(
        _DEFAULT.window_average, option="window_average", key="window_average"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "radius", parse_radius(self.radius))
        check_window_average(self.average)

    @property
    def whole_batch(self) -> bool:  # type: ignore[override]
        """Only ``inside`` divides by a count the whole batch decides (its in-window examples)."""
        return self.average == "inside"

    def key_fields(self) -> dict[str, Any]:
        fields = super().key_fields()
        if self.average == "inside":
            del fields["window_average"]  # the first definition: the keys it had before
        return fields

    def resolved(self, train_labels: Any = None) -> dict[str, Any]:
        if self.radius != "midweak":
            return {"radius": self.radius, "average": self.average}
        if train_labels is None:
            raise UsageError("the window loss's midweak radius needs the run's training labels")
        return {"radius": midweak_radius(train_labels), "average": self.average}


def _check_number(value: Any, flag: str, *, positive: bool = False) -> None:
    """A finite number >= 0 (> 0 with ``positive``), checked with the flag that sets it."""
    bound = "> 0" if positive else ">= 0"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (0 <= value < math.inf) or (positive and value == 0):
        raise UsageError(f"{flag} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True)
class ProductConfig(LossConfig):
    """xent against the normalised product ``p^beta * y^alpha`` (see
    :class:`w2sprobe.train.losses.ProductLoss`)."""

    name: ClassVar[str] = "product"
    implementation: ClassVar[str] = "w2sprobe.train.losses:ProductLoss"

    #: Exponent of the soft labels (0: self-training on the student's own predictions).
    alpha: float = param(_DEFAULT.product_alpha, option="product_alpha", key="product_alpha")
    #: Exponent of the student's prediction (0: xent against the labels).
    beta: float = param(_DEFAULT.product_beta, option="product_beta", key="product_beta")

    def __post_init__(self) -> None:
        _check_number(self.alpha, "--product-alpha")
        _check_number(self.beta, "--product-beta")
        for name in ("alpha", "beta"):  # 1 and 1.0 are one run, with one key
            object.__setattr__(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class AdaptiveConfig(LossConfig):
    """Adaptive confidence distillation (see :class:`w2sprobe.train.losses.AdaptiveLoss`)."""

    name: ClassVar[str] = "adaptive"
    implementation: ClassVar[str] = "w2sprobe.train.losses:AdaptiveLoss"

    #: Temperature of the per-example weight (the reference code's ``superalignment_threshold``).
    temperature: float = param(
        _DEFAULT.adaptive_temperature, option="adaptive_temperature", key="adaptive_temperature"
    )

    def __post_init__(self) -> None:
        _check_number(self.temperature, "--adaptive-temperature", positive=True)
        object.__setattr__(self, "temperature", float(self.temperature))


def _load(implementation: str | type) -> type:
    if not isinstance(implementation, str):
        return implementation
    module, _, name = implementation.partition(":")
    return getattr(importlib.import_module(module), name)


def check_radius(radius: float) -> float:
    radius = float(radius)
    if not (0 < radius <= 0.5) or math.isnan(radius):
        raise UsageError(f"--radius must be in (0, 0.5] or 'midweak', got {radius}")
    return radius


def parse_radius(radius: str | float) -> str | float:
    """``midweak`` stays symbolic (resolved per run); a number is checked."""
    if isinstance(radius, str) and radius.strip().lower() == "midweak":
        return "midweak"
    try:
        return check_radius(float(radius))
    except ValueError:
        raise UsageError(
            f"--radius must be a number in (0, 0.5] or 'midweak', got '{radius}'"
        ) from None


def midweak_radius(train_labels: Any) -> float:
    """The blog's window: the median confidence ``|y - 1/2|`` of this run's training labels."""
    import numpy as np

    radius = float(np.median(np.abs(np.asarray(train_labels, dtype=np.float64) - 0.5)))
    # Hard labels give 0.5 (everything inside); all-1/2 labels would give 0: keep it usable.
    return min(0.5, max(radius, 1e-6))


def check_logconf_threshold(rule: str) -> str:
    if rule not in LOGCONF_THRESHOLDS:
        raise UsageError(
            f"unknown logconf threshold '{rule}'; use one of {', '.join(LOGCONF_THRESHOLDS)}"
        )
    return rule


def check_window_average(average: str) -> str:
    if average not in WINDOW_AVERAGES:
        raise UsageError(
            f"unknown window average '{average}'; use one of {', '.join(WINDOW_AVERAGES)}"
        )
    return average


def loss_config(name: str, options: TrainOptions | None = None) -> LossConfig:
    """The config of the loss ``name`` from the training options (default: the defaults)."""
    from ..vocabulary import loss_kind

    return loss_kind(name).config_class().from_options(options or _DEFAULT)
