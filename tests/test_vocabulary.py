"""The one vocabulary: every name the study uses parses back to what made it."""

from __future__ import annotations

import dataclasses

import pytest

from w2sprobe.errors import UsageError
from w2sprobe.options import SPECS
from w2sprobe.probes.config import KnnConfig, probe_config
from w2sprobe.train.loss_config import LossConfig, loss_config
from w2sprobe.vocabulary import (
    LOSSES,
    PROBES,
    RUN_EXPERIMENTS,
    RUN_GROUPS,
    DerivedSet,
    derived_set_name,
    display_group,
    parse_derived_set,
    parse_experiment,
    probe_experiment,
    s2s_experiment,
    student_experiment,
)


@pytest.mark.parametrize(
    "name,kind,fields",
    [
        ("weak", "weak", {}),
        ("ceiling", "ceiling", {}),
        ("logconf", "student", {"loss": "logconf"}),
        ("s2s-2", "s2s", {"iteration": 2, "loss": "xent"}),
        ("logconf+s2s-3", "s2s", {"iteration": 3, "loss": "logconf"}),
        ("knn-probe", "probe", {"probe": "knn", "labels": "weak"}),
        ("logreg-probe@gt", "probe", {"probe": "logreg", "labels": "gt"}),
        ("topo-filter", "derived", {"probe": "topo", "derive": "filter", "loss": "xent"}),
        ("knn-relabel+window", "derived", {"probe": "knn", "derive": "relabel", "loss": "window"}),
    ],
)
def test_experiment_grammar(name, kind, fields):
    parsed = parse_experiment(name)
    assert parsed.kind == kind and parsed.name == name
    assert {k: getattr(parsed, k) for k in fields} == fields


@pytest.mark.parametrize(
    "name", ["telepathy", "topo-relabel", "s2s-0", "s2s-x", "hinge+s2s-1", "knn-filter+hinge", ""]
)
def test_names_outside_the_grammar_are_refused(name):
    with pytest.raises(UsageError, match="unknown experiment"):
        parse_experiment(name)


def test_names_are_built_by_the_same_rules_they_are_parsed_by():
    for iteration, loss in ((1, "xent"), (2, "entropy")):
        parsed = parse_experiment(s2s_experiment(iteration, loss))
        assert (parsed.iteration, parsed.loss) == (iteration, loss)
    assert parse_experiment(probe_experiment("knn", "gt")).labels == "gt"
    for probe, kind in PROBES.items():
        for derive in kind.derives:
            name = student_experiment(derived_set_name(probe, derive), "logconf")
            parsed = parse_experiment(name)
            assert (parsed.probe, parsed.derive, parsed.loss) == (probe, derive, "logconf")
            assert parse_derived_set(derived_set_name(probe, derive, "gt")) == DerivedSet(
                probe, derive, "gt"
            )
    assert student_experiment("weak", "kl") == "kl"
    assert student_experiment("my-set", "xent") == "my-set"


def test_every_run_experiment_parses_and_groups_expand_to_known_names():
    for name in RUN_EXPERIMENTS:
        if name != "s2s":
            parse_experiment(name)
    # the blog's five losses; product and adaptive are asked for by name
    assert RUN_GROUPS["losses"] == ("xent", "kl", "logconf", "entropy", "window")
    assert set(RUN_GROUPS["losses"]) == {name for name, kind in LOSSES.items() if kind.in_run}
    assert {"product", "adaptive"} <= set(LOSSES) and "product" not in RUN_EXPERIMENTS
    assert parse_experiment("product").loss == "product"
    assert parse_experiment("knn-relabel+adaptive").loss == "adaptive"
    assert "topo-relabel" not in RUN_GROUPS["probes"]  # TopoFilter filters but cannot relabel
    assert "topo-probe" not in RUN_GROUPS["probes"]


def test_display_groups_follow_the_grammar():
    assert [
        display_group(e)
        for e in ("weak", "entropy", "logconf+s2s-1", "knn-probe@gt", "knn-filter+kl", "x")
    ] == ["reference", "losses", "s2s", "probe predictions", "filter", "other"]


def test_every_name_has_a_typed_config_with_the_options_defaults():
    for name, kind in PROBES.items():
        config = probe_config(name)
        assert type(config) is kind.config_class() and config.name == name
        for field in dataclasses.fields(config):
            option = field.metadata.get("option", field.name)
            # a field no option sets (the random baseline's seed) keeps its own default
            default = SPECS[option].default if option in SPECS else field.default
            assert getattr(config, field.name) == default
    for name in LOSSES:
        config = loss_config(name)
        assert isinstance(config, LossConfig) and config.name == name
    # --probe also takes plug-ins (module:Class, sklearn:..., entry points): the built-ins are
    # what shell completion offers, not a fixed choice.
    assert SPECS["probe"].suggestions == tuple(PROBES) and SPECS["loss"].choices == tuple(LOSSES)


def test_a_config_is_checked_with_the_flag_that_sets_it():
    with pytest.raises(UsageError, match="--knn-backend must be one of"):
        KnnConfig(backend="gpu")
    with pytest.raises(UsageError, match="--k must be an integer >= 1"):
        KnnConfig(k=0)
