"""The study's vocabulary: every probe, loss, experiment and graph-node name, in one place.

A name is what a user types (``--probe knn``, ``--experiments knn-relabel``), what a run records
as its ``experiment`` and what the artifact graph calls a node, so all three read it here.

Experiment names (a run's ``experiment``, a stage of ``run``):

==========================  =========================================================
``weak``, ``ceiling``       the reference runs
``<loss>``                  a student of the weak labels with that loss (``xent``, ``logconf``)
``s2s-<i>``                 strong-to-strong iteration i of the xent chain
``<loss>+s2s-<i>``          iteration i of another loss's chain (``logconf+s2s-2``)
``<probe>-probe``           a probe's own predictions, fit on the weak labels
``<probe>-probe@<set>``     ... fit on another label set (``logreg-probe@gt``)
``<probe>-<derive>``        an xent student of the weak labels filtered / relabeled by the probe
``<set>+<loss>``            a student of a derived set with another loss (``knn-filter+logconf``)
==========================  =========================================================

Label-set names: ``weak``, ``gt`` (ground truth) and ``<probe>-<derive>@<parent>`` for a set a
probe derived from its parent set (``knn-relabel@weak``, ``logreg-filter@knn-relabel@weak``).

Graph nodes besides the experiments: ``extract`` (the configured layers) and
``extract:<layers>``, ``labels:<set>`` for a derived label set, ``sweep:<probe>`` for a sweep;
an extraction pass writing several files names each: ``extract@<pooling>``,
``tokens@<spec>`` (``--tokens last:8``).

Adding a probe or a loss: write its typed config (``w2sprobe/probes/config.py``,
``w2sprobe/train/loss_config.py``) and its implementation, then add one entry to
:data:`PROBES` or :data:`LOSSES` here.  This module imports nothing heavy (configs are named by
import path and loaded on first use), so options, CLI help and the report read it for free.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from .errors import UsageError

WEAK, CEILING = "weak", "ceiling"
GROUND_TRUTH = "gt"
FILTER, RELABEL = "filter", "relabel"
Derive = Literal["filter", "relabel"]
#: What a probe run is called after its probe: ``knn-probe``.
PROBE_SUFFIX = "probe"
S2S = "s2s"
#: 2-D projections of ``w2sprobe view`` (umap needs the optional umap-learn extra).
PROJECTIONS = ("pca", "umap")


# --------------------------------------------------------------------------- probes and losses


@dataclass(frozen=True)
class ProbeKind:
    """One built-in probe: its name, typed config, and what the study does with it."""

    name: str
    #: Its typed config (a :class:`w2sprobe.probes.config.ProbeConfig`), or its ``module:Class``.
    config: str | type
    doc: str
    #: The label sets it can derive (``filter``: drop the rows it disagrees with most;
    #: ``relabel``: its own soft predictions as labels).
    derives: tuple[Derive, ...] = (FILTER, RELABEL)
    #: Whether its own test predictions are one of ``run``'s experiments.
    predicts_in_run: bool = True
    #: The parameter ``sweep`` varies (None: only layers).
    grid_param: str | None = None
    #: Whether ``run``'s probes group (``--experiments all``) has its experiments at all;
    #: the others run where asked for by name (``run --experiments massmean-relabel``).
    in_run: bool = True
    #: A filter baseline (random, oracle): it filters and predicts nothing.
    baseline: bool = False

    def config_class(self) -> type:
        return _load(self.config)


@dataclass(frozen=True)
class LossKind:
    """One student loss: its name and typed config."""

    name: str
    #: Its typed config (a :class:`w2sprobe.train.loss_config.LossConfig`), or its ``module:Class``.
    config: str | type
    doc: str
    #: Whether ``run`` (and its ``losses`` group) trains its student; the others run by name.
    in_run: bool = True

    def config_class(self) -> type:
        return _load(self.config)


_PROBE_CONFIGS = "w2sprobe.probes.config"
_LOSS_CONFIGS = "w2sprobe.train.loss_config"

PROBES: dict[str, ProbeKind] = {
    kind.name: kind
    for kind in (
        ProbeKind(
            "knn", f"{_PROBE_CONFIGS}:KnnConfig", "k nearest neighbours' mean label", grid_param="k"
        ),
        ProbeKind(
            "logreg",
            f"{_PROBE_CONFIGS}:LogregConfig",
            "L2-penalised logistic regression",
            grid_param="l2",
        ),
        ProbeKind(
            "topo",
            f"{_PROBE_CONFIGS}:TopoConfig",
            "TopoFilter: kNN-graph components, then a kNN vote",
            derives=(FILTER,),
            predicts_in_run=False,
            grid_param="k_zeta",
        ),
        # Beyond the blog's three: asked for by name (probe --probe massmean, run
        # --experiments mlp-relabel).
        ProbeKind(
            "massmean",
            f"{_PROBE_CONFIGS}:MassMeanConfig",
            "difference of the class means (Marks & Tegmark's mass-mean probe)",
            in_run=False,
        ),
        ProbeKind(
            "mlp",
            f"{_PROBE_CONFIGS}:MlpConfig",
            "one hidden ReLU layer, soft-label cross-entropy, L2",
            grid_param="l2",
            in_run=False,
        ),
        # Filter baselines at equal contamination (run --experiments random-filter,oracle-filter).
        ProbeKind(
            "random",
            f"{_PROBE_CONFIGS}:RandomConfig",
            "filter baseline: uniform removal, seeded",
            derives=(FILTER,),
            predicts_in_run=False,
            in_run=False,
            baseline=True,
        ),
        ProbeKind(
            "oracle",
            f"{_PROBE_CONFIGS}:OracleConfig",
            "filter bound that uses ground truth: drops the labels furthest from it",
            derives=(FILTER,),
            predicts_in_run=False,
            in_run=False,
            baseline=True,
        ),
    )
}

LOSSES: dict[str, LossKind] = {
    kind.name: kind
    for kind in (
        LossKind("xent", f"{_LOSS_CONFIGS}:XentConfig", "cross-entropy against the soft labels"),
        LossKind(
            "kl", f"{_LOSS_CONFIGS}:KLConfig", "KL(labels || prediction): xent minus H(labels)"
        ),
        LossKind(
            "logconf",
            f"{_LOSS_CONFIGS}:LogconfConfig",
            "xent mixed with the student's hardened predictions",
        ),
        LossKind(
            "entropy", f"{_LOSS_CONFIGS}:EntropyConfig", "xent plus a prediction-entropy penalty"
        ),
        LossKind(
            "window",
            f"{_LOSS_CONFIGS}:WindowConfig",
            "xent on the examples inside a confidence window",
        ),
        # Beyond the blog's five: asked for by name (run --experiments product,adaptive).
        LossKind(
            "product",
            f"{_LOSS_CONFIGS}:ProductConfig",
            "xent against the normalised product of prediction and label (soft bootstrapping)",
            in_run=False,
        ),
        LossKind(
            "adaptive",
            f"{_LOSS_CONFIGS}:AdaptiveConfig",
            "teacher's soft label or the student's own hard one, weighted per example",
            in_run=False,
        ),
    )
}

DEFAULT_LOSS = "xent"

#: What a ceiling, student or weak supervisor is: a LoRA finetune of the model (the study's), or
#: a head trained on the model's cached activations (:mod:`w2sprobe.train.head`).
LORA, HEAD = "lora", "head"
STUDENT_KINDS = (LORA, HEAD)


def register(kind: ProbeKind | LossKind) -> None:
    """Add a probe or a loss to the vocabulary (a plug-in's; built-ins are listed above).

    Its name must be new and must not contain the grammar's separators (``-``, ``@``, ``+``).
    """
    table = PROBES if isinstance(kind, ProbeKind) else LOSSES
    if kind.name in table:
        raise UsageError(f"'{kind.name}' is already a {type(kind).__name__} of the vocabulary")
    if not kind.name or any(sep in kind.name for sep in "-@+:"):
        raise UsageError(
            f"a name of the vocabulary cannot be empty or contain - @ + :, got {kind.name!r}"
        )
    table[kind.name] = kind


#: A plug-in probe (``module:Class``, ``sklearn:dotted.Class`` or an entry point's name):
#: :mod:`w2sprobe.probes.plugin` builds it; it filters and relabels, and ``run`` uses it only
#: where asked for by name (``run --experiments sklearn:sklearn.svm.LinearSVC-relabel``).
PLUGIN_CONFIG = "w2sprobe.probes.plugin:PluginConfig"


def plugin_kind(name: str) -> ProbeKind:
    """The kind of a plug-in probe called ``name``."""
    return ProbeKind(name, PLUGIN_CONFIG, "a plug-in probe", predicts_in_run=False, in_run=False)


def is_plugin(name: str) -> bool:
    """Is ``name`` a plug-in probe: ``module:Class``, ``sklearn:...`` or a registered entry
    point (group ``w2sprobe.probes``) that is no built-in's name?"""
    if name in PROBES:
        return False
    return ":" in name or name in _entry_point_names()


def is_probe(name: str) -> bool:
    """A built-in or a plug-in probe's name."""
    return bool(name) and (name in PROBES or is_plugin(name))


def _entry_point_names() -> set[str]:
    from importlib import metadata

    return {ep.name for ep in metadata.entry_points(group="w2sprobe.probes")}


def probe_kind(name: str) -> ProbeKind:
    """The probe called ``name`` (a built-in or a plug-in); a UsageError listing the known
    ones otherwise."""
    if name in PROBES:
        return PROBES[name]
    if is_plugin(name):
        return plugin_kind(name)
    registered = sorted(_entry_point_names())
    raise UsageError(
        f"unknown probe '{name}'; known: {', '.join(PROBES)}"
        + (f", {', '.join(registered)}" if registered else "")
        + ", or a plug-in: package.module:Class or sklearn:<module>.<Class>"
    )


def loss_kind(name: str) -> LossKind:
    """The loss called ``name``; a UsageError listing the known ones otherwise."""
    if name not in LOSSES:
        raise UsageError(f"unknown loss '{name}'; known: {', '.join(LOSSES)}")
    return LOSSES[name]


def check_predicts(probe: str) -> None:
    """A probe that predicts (probe, sweep); a filter baseline (random, oracle) does not."""
    if probe_kind(probe).baseline:
        raise UsageError(
            f"'{probe}' is a filter baseline: it filters and predicts nothing; use it with "
            f"filter (w2sprobe filter --probe {probe})"
        )


def check_derive(probe: str, derive: Derive) -> None:
    """A probe can make this kind of label set (TopoFilter filters but cannot relabel)."""
    if derive not in probe_kind(probe).derives:
        raise UsageError(
            f"probe '{probe}' cannot {derive} a label set; "
            f"it can: {', '.join(probe_kind(probe).derives)}"
        )


# --------------------------------------------------------------------------- names and grammar


def probe_experiment(probe: str, labels: str = WEAK) -> str:
    """``knn-probe`` (fit on the weak labels) or ``knn-probe@gt``."""
    name = f"{probe}-{PROBE_SUFFIX}"
    return name if labels == WEAK else f"{name}@{labels}"


def derived_set_name(probe: str, derive: Derive, parent: str = WEAK) -> str:
    """The default name of a derived label set: ``knn-relabel@weak``."""
    return f"{probe}-{derive}@{parent}"


def s2s_experiment(iteration: int, loss: str = DEFAULT_LOSS) -> str:
    """``s2s-2`` for the xent chain, ``logconf+s2s-2`` for another loss's."""
    name = f"{S2S}-{iteration}"
    return name if loss == DEFAULT_LOSS else f"{loss}+{name}"


def student_experiment(labels: str, loss: str = DEFAULT_LOSS) -> str:
    """A student's experiment name from its label set's name and its loss.

    Of the weak labels: the loss (``logconf``); of a set derived from the weak labels: the set's
    name without ``@weak`` (``knn-relabel``), plus ``+<loss>`` for a loss other than xent.
    """
    if labels == WEAK:
        return loss
    name = labels.removesuffix(f"@{WEAK}")
    return name if loss == DEFAULT_LOSS else f"{name}+{loss}"


def label_set_node(name: str) -> str:
    """The graph node of a derived label set: ``labels:knn-relabel@weak``."""
    return f"labels:{name}"


def extract_node(layers: str | None, model_role: str = "strong") -> str:
    """``extract`` for the strong model's configured layers, ``extract:4,8`` for explicit ones;
    ``extract-weak`` (``extract-weak:6``) for the weak model's (head weak supervisors)."""
    name = "extract" if model_role == "strong" else f"extract-{model_role}"
    return name if layers is None else f"{name}:{layers}"


#: Bytes a token-level activation file (``extract --tokens``) may take without ``--max-bytes``.
DEFAULT_MAX_TOKEN_BYTES = 2 << 30  # 2 GiB


def pass_node(layers: str | None, pooling: str | None = None, tokens: str | None = None) -> str:
    """One file of an extraction pass that writes several (``extract --pool mean,last
    --tokens last:8``): ``extract@mean`` (``extract:4,8@mean``) per pooling, ``tokens@last:8``
    (``tokens:4,8@last:8``) for the token-level file."""
    if tokens is not None:
        return f"tokens@{tokens}" if layers is None else f"tokens:{layers}@{tokens}"
    return f"{extract_node(layers)}@{pooling}"


def sweep_node(probe: str, labels: str = WEAK) -> str:
    """The graph node of a probe sweep: ``sweep:knn`` (``sweep:knn@gt`` on another set)."""
    return f"sweep:{probe}" if labels == WEAK else f"sweep:{probe}@{labels}"


@dataclass(frozen=True)
class DerivedSet:
    """A parsed derived label-set name: ``knn-relabel@weak`` -> knn, relabel, weak."""

    probe: str
    derive: Derive
    parent: str = WEAK

    @property
    def name(self) -> str:
        return derived_set_name(self.probe, self.derive, self.parent)


def parse_derived_set(name: str) -> DerivedSet | None:
    """``knn-filter`` (of the weak labels) or ``knn-relabel@gt`` (of any parent, even another
    derived name such as ``knn-relabel@knn-filter@weak``) -> what makes it; None: not one."""
    made, _, parent = name.partition("@")
    probe, _, derive = made.rpartition("-")
    if derive in (FILTER, RELABEL) and is_probe(probe) and derive in probe_kind(probe).derives:
        return DerivedSet(probe, derive, parent or WEAK)
    return None


ExperimentKind = Literal["weak", "ceiling", "student", "s2s", "probe", "derived"]


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment name (see the module doc for the grammar)."""

    name: str
    kind: ExperimentKind
    loss: str = DEFAULT_LOSS
    iteration: int = 0
    probe: str | None = None
    derive: Derive | None = None
    labels: str = WEAK


def parse_experiment(name: str) -> Experiment:
    """What the experiment called ``name`` is; a UsageError naming the grammar otherwise."""
    name = name.strip()
    if name in (WEAK, CEILING):
        return Experiment(name, name)
    if name in LOSSES:
        return Experiment(name, "student", loss=name)
    base, plus, loss = name.rpartition("+")
    if plus and loss in LOSSES:  # knn-filter+logconf
        inner = parse_experiment(base)
        if inner.kind == "derived" and inner.loss == DEFAULT_LOSS:
            return Experiment(name, "derived", loss, probe=inner.probe, derive=inner.derive)
    s2s = _parse_s2s(name)
    if s2s is not None:
        return Experiment(name, "s2s", loss=s2s[1], iteration=s2s[0])
    made, _, labels = name.partition("@")
    probe, _, suffix = made.rpartition("-")
    if suffix == PROBE_SUFFIX and is_probe(probe):
        return Experiment(name, "probe", probe=probe, labels=labels or WEAK)
    derived = parse_derived_set(name)
    if derived is not None and derived.parent == WEAK and "@" not in name:
        return Experiment(name, "derived", probe=derived.probe, derive=derived.derive)
    raise UsageError(
        f"unknown experiment '{name}'; experiments are weak, ceiling, a loss "
        f"({', '.join(LOSSES)}), s2s-N or <loss>+s2s-N, <probe>-probe[@<labels>], "
        f"<probe>-filter / <probe>-relabel[+<loss>] (probes: {', '.join(PROBES)}), "
        f"or a group: {', '.join(RUN_GROUPS)}"
    )


def _parse_s2s(name: str) -> tuple[int, str] | None:
    """``s2s-2`` -> (2, xent); ``logconf+s2s-2`` -> (2, logconf); None otherwise."""
    loss, plus, rest = name.rpartition("+")
    if plus and loss not in LOSSES:
        return None
    head, _, number = rest.partition("-")
    if head != S2S or not number.isdigit() or int(number) < 1:
        return None
    return int(number), (loss if plus else DEFAULT_LOSS)


# --------------------------------------------------------------------------- groups


def _run_probe_experiments() -> tuple[str, ...]:
    """``run``'s probe experiments: own predictions, then filters, then relabels."""
    own = [
        probe_experiment(p) for p, kind in PROBES.items() if kind.predicts_in_run and kind.in_run
    ]
    made = [
        student_experiment(derived_set_name(p, derive))
        for derive in (FILTER, RELABEL)
        for p, kind in PROBES.items()
        if derive in kind.derives and kind.in_run
    ]
    return (*own, *made)


#: ``run --experiments`` groups: a name there stands for these experiments.
RUN_GROUPS: dict[str, tuple[str, ...]] = {
    "losses": tuple(name for name, kind in LOSSES.items() if kind.in_run),
    "s2s": (S2S,),
    "probes": _run_probe_experiments(),
}
#: Every experiment of ``run --experiments all``, in plan order (``s2s`` = the xent chain).
RUN_EXPERIMENTS: tuple[str, ...] = (
    WEAK,
    CEILING,
    *RUN_GROUPS["losses"],
    S2S,
    *RUN_GROUPS["probes"],
)

DisplayGroup = Literal[
    "reference", "losses", "s2s", "probe predictions", "filter", "relabel", "other"
]
#: The report's sections (the blog's), in display order, with their titles.
DISPLAY_GROUPS: dict[str, str] = {
    "reference": "Weak and ceiling",
    "losses": "Loss functions",
    "s2s": "Strong-to-strong",
    "probe predictions": "Probe predictions",
    "filter": "Probe filtering",
    "relabel": "Probe relabeling",
    "other": "Other experiments",
}


def display_group(experiment: str) -> DisplayGroup:
    """The report section of an experiment name (``other`` when the grammar does not know it)."""
    try:
        parsed = parse_experiment(experiment)
    except UsageError:
        return "other"
    if parsed.kind in (WEAK, CEILING):
        return "reference"
    if parsed.kind == "student":
        return "losses"
    if parsed.kind == "s2s":
        return "s2s"
    if parsed.kind == "probe":
        return "probe predictions"
    return parsed.derive  # filter | relabel


def display_order(experiment: str) -> tuple[int, int, str]:
    """Sort key: by section, then the study's order within it, then by name."""
    group = display_group(experiment)
    members = [e for e in _display_members() if display_group(e) == group]
    rank = members.index(experiment) if experiment in members else len(members)
    return list(DISPLAY_GROUPS).index(group), rank, experiment


def _display_members() -> list[str]:
    """The study's experiments in their display order (every probe's, even those run skips)."""
    probes = [probe_experiment(p) for p in PROBES]
    derived = [
        student_experiment(derived_set_name(p, derive))
        for derive in (FILTER, RELABEL)
        for p in PROBES
        if derive in PROBES[p].derives
    ]
    return [WEAK, CEILING, *LOSSES, s2s_experiment(1), s2s_experiment(2), *probes, *derived]


def _load(path: str | type) -> Any:
    if not isinstance(path, str):
        return path
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)
