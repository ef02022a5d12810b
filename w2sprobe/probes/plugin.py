"""Plug-in probes: your own class, any scikit-learn classifier, or a registered entry point.

The probe protocol (public API; README "Write your own probe") -- a class with::

    def __init__(self, **params): ...                  # parameters: --probe-param name=value
    def fit(self, acts, labels): ...                   # acts (N, D) float32, labels (N,) in [0, 1]
    def predict(self, acts) -> array (M,) in [0, 1]    # soft labels of new rows

and optionally::

    def filter(self, acts, labels, contamination) -> bool array (N,) or FilterResult
    def relabel(self, acts, labels) -> array (N,) in [0, 1]   # new soft labels of the fit rows

Without ``filter``, a plug-in filters as the logistic probe does: fit, then drop the
``round(N * contamination)`` rows whose label is furthest from its (in-sample) prediction;
without ``relabel``, the new labels are its in-sample predictions of the fit rows.

It is named on the command line in one of three ways:

* ``--probe package.module:Class``: any importable class that implements the protocol;
* ``--probe sklearn:sklearn.svm.LinearSVC``: any scikit-learn-style classifier (cuML's too,
  ``sklearn:cuml.svm.LinearSVC``), through :class:`SklearnProbe`;
* ``--probe NAME``: a class an installed package registers in the entry-point group
  ``w2sprobe.probes`` (``[project.entry-points."w2sprobe.probes"] myprobe = "pkg.mod:Class"``).

Parameters come from ``--probe-param name=value`` (repeatable) or a ``[probe_params]`` table of
``w2sprobe.toml``, each typed from the class's signature (its annotation, else the type of its
default) and checked before any work starts.  A plug-in's key (:meth:`PluginConfig.params`)
holds its import path, the installed distribution and version that provide it (for a module of
no distribution: a hash of its source file) and its parameters, so a new version, an edited
class or another parameter is another cached result.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import os
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import UsageError
from .config import ProbeConfig

#: ``--probe sklearn:<dotted.path.Class>``: a scikit-learn-style estimator.
SKLEARN_PREFIX = "sklearn:"
#: Entry-point group of probes that installed packages register by name.
ENTRY_POINT_GROUP = "w2sprobe.probes"
#: How soft weak labels reach an estimator (recorded in its key and every manifest).
#: ``duplicate``: each row twice, as (x, 1) with sample weight y and (x, 0) with weight 1 - y --
#: the logistic probe's own reduction, exact for any loss that is a sum over weighted rows;
#: ``threshold``: the hard label y > 0.5, for estimators whose fit takes no sample_weight.
SOFT_LABEL_RULES = ("duplicate", "threshold")


# --------------------------------------------------------------------------- naming a plug-in


def is_plugin_name(name: str) -> bool:
    """``module:Class`` or ``sklearn:dotted.Class`` (entry-point names are looked up instead)."""
    return ":" in name


def resolve_target(name: str) -> tuple[str, str]:
    """(kind, ``module:Class``) of a plug-in probe name: kind ``sklearn`` or ``class``; an
    entry-point name gives its registered target."""
    if name.startswith(SKLEARN_PREFIX):
        dotted = name.removeprefix(SKLEARN_PREFIX)
        module, _, cls = dotted.rpartition(".")
        if not module or not cls:
            raise UsageError(
                f"probe '{name}': write sklearn:<module>.<Class> "
                "(e.g. sklearn:sklearn.svm.LinearSVC)"
            )
        return "sklearn", f"{module}:{cls}"
    if ":" in name:
        module, _, cls = name.partition(":")
        if not module or not cls or ":" in cls:
            raise UsageError(f"probe '{name}': write package.module:Class")
        return "class", name
    target = entry_point_target(name)
    if target is None:
        raise UsageError(f"probe '{name}' is registered in no entry point {ENTRY_POINT_GROUP}")
    return "class", target


def entry_point_names() -> dict[str, str]:
    """Name -> ``module:Class`` of every probe installed packages register."""
    from importlib import metadata

    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def entry_point_target(name: str) -> str | None:
    return entry_point_names().get(name)


def load_class(name: str, target: str) -> type:
    """The class ``target`` (``module:Class``) names; a UsageError when it does not import."""
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path:  # a module beside the user, as python -m finds it
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's module's
        raise UsageError(
            f"probe '{name}': cannot import module {module_name} ({type(exc).__name__}: {exc})"
        ) from None
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UsageError(f"probe '{name}': module {module_name} has no {attr}")
    if not inspect.isclass(obj):
        raise UsageError(f"probe '{name}': {target} is not a class")
    return obj


def provenance(cls: type) -> dict[str, Any]:
    """Which installed distribution (and version) provides ``cls``; for a module of none (a file
    of the working folder, the test folder), a hash of its source, so an edit is a new key."""
    from importlib import metadata

    module = inspect.getmodule(cls)
    top = cls.__module__.split(".")[0]
    names = metadata.packages_distributions().get(top, [])
    if names:
        return {"distribution": names[0], "version": metadata.version(names[0])}
    path = getattr(module, "__file__", None)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if path else None
    return {"distribution": None, "version": None, "source_sha256": digest}


# --------------------------------------------------------------------------- parameters


def parse_params(name: str, cls: type, pairs: list[str]) -> dict[str, Any]:
    """``["C=0.1", "max_iter=200"]`` -> ``{"C": 0.1, "max_iter": 200}``, each typed from
    ``cls``'s signature; an unknown name or a value of the wrong type is a UsageError."""
    signature = inspect.signature(cls.__init__)
    accepted = {
        p.name: p
        for p in list(signature.parameters.values())[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    open_ended = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - unresolvable annotations: type from the defaults
        hints = {}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, eq, text = str(pair).partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f"--probe-param must be name=value, got {pair!r}")
        if key not in accepted and not open_ended:
            known = ", ".join(k for k in accepted if k != "device") or "none"
            raise UsageError(f"probe '{name}' takes no parameter {key!r}; it takes: {known}")
        parameter = accepted.get(key)
        values[key] = _typed(name, key, text.strip(), hints.get(key), parameter)
    return values


def _typed(name: str, key: str, text: str, hint: Any, parameter: inspect.Parameter | None):
    """``text`` as the parameter's type: its annotation if it has one, else its default's."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word: a string (penalty=l1)
    if text.lower() in ("true", "false"):
        value = text.lower() == "true"
    if text.lower() == "none":
        value = None
    default = parameter.default if parameter is not None else inspect.Parameter.empty
    expected = _expected_type(hint, default)
    if expected is None or value is None and (default is None or _optional(hint)):
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is bool and not isinstance(value, bool):
        raise UsageError(f"probe '{name}' parameter {key}: expected true or false, got {text!r}")
    if expected in (int, float) and (isinstance(value, bool) or not isinstance(value, expected)):
        kind = "an integer" if expected is int else "a number"
        raise UsageError(f"probe '{name}' parameter {key}: expected {kind}, got {text!r}")
    if expected is str and not isinstance(value, str):
        return text  # the default is text; the estimator may take other types too (dual=auto)
    return value


def _expected_type(hint: Any, default: Any) -> type | None:
    for candidate in (_plain(hint), _plain(type(default)) if default is not None else None):
        if candidate in (bool, int, float, str):
            return candidate
    return None


def _plain(hint: Any) -> Any:
    if hint is None or hint is inspect.Parameter.empty:
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, type(int | None)) and args else hint


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


# --------------------------------------------------------------------------- the config


@dataclass(frozen=True)
class PluginConfig(ProbeConfig):
    """A plug-in probe: which class (``probe``: the name as typed), its typed parameters, and
    where it comes from.  Built by :func:`plugin_config`, which checks everything first."""

    implementation: ClassVar[str] = "w2sprobe.probes.plugin:PluginProbe"

    probe: str = ""
    target: str = ""
    kind: str = "class"  # class | sklearn
    values: tuple[tuple[str, Any], ...] = ()
    origin: tuple[tuple[str, Any], ...] = ()
    soft_labels: str | None = None  # sklearn: duplicate | threshold
    scores: str | None = None  # sklearn: predict_proba | sigmoid(decision_function)

    @classmethod
    def for_probe(cls, name: str, pairs: list[str]) -> PluginConfig:
        """:func:`plugin_config`: how :func:`~w2sprobe.probes.config.probe_config` makes one."""
        return plugin_config(name, pairs)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.probe

    def params(self) -> dict[str, Any]:
        """What the key records: import path, distribution and version, parameters, and for an
        estimator how soft labels and scores were handled."""
        described = {
            "plugin": self.target,
            **dict(self.origin),
            "params": dict(self.values),
        }
        if self.kind == "sklearn":
            described |= {"soft_labels": self.soft_labels, "scores": self.scores}
        return described

    def build(self, device: str = "cpu"):
        cls = load_class(self.probe, self.target)
        wrapper = SklearnProbe if self.kind == "sklearn" else PluginProbe
        return wrapper(self, cls, dict(self.values))


def plugin_config(name: str, pairs: list[str]) -> PluginConfig:
    """The checked config of the plug-in probe ``name`` with ``--probe-param`` ``pairs``: the
    class imports, implements the protocol, takes these parameters and is built with them."""
    kind, target = resolve_target(name)
    cls = load_class(name, target)
    values = parse_params(name, cls, pairs)
    extra: dict[str, Any] = {}
    if kind == "sklearn":
        if not callable(getattr(cls, "fit", None)):
            raise UsageError(f"probe '{name}': {target} has no fit method; it is no estimator")
        takes_weights = "sample_weight" in inspect.signature(cls.fit).parameters
        extra["soft_labels"] = "duplicate" if takes_weights else "threshold"
    else:
        missing = [m for m in ("fit", "predict") if not callable(getattr(cls, m, None))]
        if missing:
            raise UsageError(
                f"probe '{name}': class {target} lacks {' and '.join(missing)}; a probe needs "
                "fit(acts, labels) and predict(acts) (README: Write your own probe)"
            )
    try:
        instance = cls(**values)
    except Exception as exc:  # noqa: BLE001 - the user's constructor refused the parameters
        raise UsageError(
            f"probe '{name}' cannot be built with {values}: {type(exc).__name__}: {exc}"
        ) from None
    if kind == "sklearn":
        if hasattr(instance, "predict_proba"):
            extra["scores"] = "predict_proba"
        elif hasattr(instance, "decision_function"):
            extra["scores"] = "sigmoid(decision_function)"
        else:
            raise UsageError(
                f"probe '{name}': {target} has neither predict_proba nor decision_function"
            )
    return PluginConfig(
        probe=name,
        target=target,
        kind=kind,
        values=tuple(sorted(values.items())),
        origin=tuple(provenance(cls).items()),
        **extra,
    )


# --------------------------------------------------------------------------- the wrappers


class PluginProbe:
    """A user's probe class behind the toolkit's full probe interface: inputs as float32
    numpy, outputs checked, and any failure of the class one UsageError naming the probe."""

    def __init__(self, config: PluginConfig, cls: type, values: dict[str, Any]):
        self.config, self.name = config, config.probe
        self.model = self._call("build", lambda: cls(**values))
        self._acts: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def _call(self, what: str, work):
        try:
            return work()
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - the plug-in's failure, said in one line
            raise UsageError(
                f"probe '{self.name}' failed to {what} on the data: {type(exc).__name__}: {exc}"
            ) from None

    def fit(self, acts, labels) -> PluginProbe:
        from .base import check_acts, check_labels

        acts = np.asarray(check_acts(acts), dtype=np.float32)
        labels = check_labels(labels, acts.shape[0])
        self._acts, self._labels = acts, labels
        self._call("fit", lambda: self._fit(acts, labels))
        return self

    def _fit(self, acts: np.ndarray, labels: np.ndarray) -> None:
        self.model.fit(acts, labels)

    def predict(self, acts) -> np.ndarray:
        from .base import check_acts

        acts = np.asarray(check_acts(acts), dtype=np.float32)
        return self._checked(self._call("predict", lambda: self._predict(acts)), len(acts))

    def _predict(self, acts: np.ndarray) -> np.ndarray:
        return self.model.predict(acts)

    def _checked(self, scores: Any, n: int, what: str = "predict") -> np.ndarray:
        array = np.asarray(scores, dtype=np.float64).reshape(-1)
        if array.shape != (n,):
            raise UsageError(
                f"probe '{self.name}': {what} returned {array.size} values for {n} rows"
            )
        if not np.all((array >= 0) & (array <= 1)):
            raise UsageError(
                f"probe '{self.name}': {what} must return soft labels in [0, 1] (NaN is none)"
            )
        return array.astype(np.float32)

    def predict_fit_set(self) -> np.ndarray:
        """New labels of the fit rows: the class's ``relabel`` if it has one, else its
        in-sample predictions."""
        if self._acts is None:
            raise UsageError(f"probe '{self.name}' is not fitted yet")
        relabel = getattr(self.model, "relabel", None)
        if callable(relabel):
            out = self._call("relabel", lambda: relabel(self._acts, self._labels))
            return self._checked(out, len(self._acts), "relabel")
        return self.predict(self._acts)

    def filter(self, acts, labels, contamination: float):
        """The class's ``filter`` if it has one, else fit and drop the largest disagreements."""
        from .base import FilterResult, check_contamination, filter_by_score

        check_contamination(contamination)
        own = getattr(self.model, "filter", None)
        if callable(own):
            from .base import check_acts, check_labels

            acts = np.asarray(check_acts(acts), dtype=np.float32)
            labels = check_labels(labels, acts.shape[0])
            result = self._call("filter", lambda: own(acts, labels, contamination))
            if isinstance(result, FilterResult):
                return result
            keep = np.asarray(result).reshape(-1)
            if keep.dtype != bool or keep.shape != (len(acts),):
                raise UsageError(
                    f"probe '{self.name}': filter must return a bool array (one per row) or a "
                    "FilterResult"
                )
            removed = int((~keep).sum())
            return FilterResult(
                keep=keep,
                scores=(~keep).astype(np.float32),
                requested=round(len(keep) * contamination),
                removed_by_components=0,
                removed_by_score=removed,
            )
        self.fit(acts, labels)
        return filter_by_score(np.abs(self._labels - self.predict(self._acts)), contamination)


class SklearnProbe(PluginProbe):
    """A scikit-learn-style classifier as a probe.

    Soft weak labels reach it by the rule its key records (:data:`SOFT_LABEL_RULES`):
    ``duplicate`` (fit takes ``sample_weight``) or ``threshold`` (y > 0.5).  Scores are
    ``predict_proba``'s positive column, else ``sigmoid(decision_function)``, so they are soft
    labels in [0, 1] and rank as the estimator does.
    """

    def _fit(self, acts: np.ndarray, labels: np.ndarray) -> None:
        if self.config.soft_labels == "duplicate":
            x = np.concatenate([acts, acts])
            y = np.concatenate([np.ones(len(acts)), np.zeros(len(acts))]).astype(int)
            w = np.concatenate([labels, 1 - labels]).astype(np.float64)
            keep = w > 0  # a hard label needs only its own copy
            self.model.fit(x[keep], y[keep], sample_weight=w[keep])
        else:
            self.model.fit(acts, (labels > 0.5).astype(int))

    def _predict(self, acts: np.ndarray) -> np.ndarray:
        classes = list(getattr(self.model, "classes_", [0, 1]))
        if self.config.scores == "predict_proba":
            proba = np.asarray(self.model.predict_proba(acts))
            if 1 not in classes:  # one class seen in training
                return np.zeros(len(acts))
            return proba[:, classes.index(1)]
        margin = np.asarray(self.model.decision_function(acts), dtype=np.float64).reshape(-1)
        return 1.0 / (1.0 + np.exp(-np.clip(margin, -500, 500)))
