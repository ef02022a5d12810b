"""The artifact graph's runner on fake nodes.

Cache hits, builds, --no-build, plans, shards, order.
"""

from __future__ import annotations

import pytest

from w2sprobe.graph import Blocked, Found, Graph, NodeDef, NotBuilt, Reporter, deal, parse_shard
from w2sprobe.pipeline import parse_experiments, stage_names
from w2sprobe.vocabulary import RUN_GROUPS as GROUPS


class Store:
    """A fake cache: node name -> value, plus a log of what was built and said."""

    def __init__(self, cached=(), needs=None):
        self.values = {name: f"{name}-v" for name in cached}
        self.needs = needs or {}
        self.built: list[str] = []

    def node(self, graph: Graph, name: str):
        def define() -> NodeDef:
            inputs = [self.node(graph, need) for need in self.needs.get(name, ())]

            def build():
                self.built.append(name)
                self.values[name] = f"{name}-v"
                return self.values[name], {"inputs": inputs}

            return NodeDef(
                lambda: Found(f"key-{name}", self.values.get(name)),
                build,
                f"the {name}",
                f"make {name}",
            )

        return graph.node("ds", 0, name, define)


class Said(Reporter):
    def __init__(self):
        self.lines = []

    def building(self, dataset, stage, what, prerequisite):
        self.lines.append((stage, prerequisite))


def test_build_makes_missing_prerequisites_once_and_says_so():
    store, said = Store(cached={"a"}, needs={"d": ("b", "c"), "c": ("a", "b")}), Said()
    graph = Graph("build", said)
    graph.target("ds", 0, "d")
    assert store.node(graph, "d") == "d-v"
    assert store.node(graph, "c") == "c-v"  # memoised: asked again, built once
    assert store.built == ["b", "c", "d"]
    assert said.lines == [("b", True), ("c", True), ("d", False)]
    statuses = [(o.stage, o.status) for o in graph.outcomes]
    assert statuses == [("b", "ran"), ("a", "cached"), ("c", "ran"), ("d", "ran")]


def test_no_build_refuses_a_missing_prerequisite_with_its_command():
    store = Store(cached={"a"}, needs={"d": ("a", "b")})
    graph = Graph("no-build")
    graph.target("ds", 0, "d")
    with pytest.raises(NotBuilt, match="the b is not built yet .--no-build.; make it with: make b"):
        store.node(graph, "d")
    assert store.built == []


def test_no_build_still_builds_the_target_when_its_inputs_exist():
    store = Store(cached={"a", "b"}, needs={"d": ("a", "b")})
    graph = Graph("no-build")
    graph.target("ds", 0, "d")
    assert store.node(graph, "d") == "d-v"
    assert store.built == ["d"]


def test_plan_builds_nothing_and_marks_dependents_to_run():
    store = Store(cached={"a"}, needs={"d": ("a", "b"), "e": ("b",)})
    graph = Graph("plan")
    with pytest.raises(Blocked):
        store.node(graph, "d")
    with pytest.raises(Blocked):
        store.node(graph, "e")  # b is remembered as unbuilt, not listed twice
    assert store.built == []
    assert [(o.stage, o.status, o.key) for o in graph.outcomes] == [
        ("a", "cached", "key-a"),
        ("b", "to run", "key-b"),
        ("d", "to run", None),
        ("e", "to run", None),
    ]


def test_a_failing_build_is_recorded_and_raised():
    graph = Graph("build")

    def boom():
        raise RuntimeError("disk full\nmore detail")

    with pytest.raises(RuntimeError):
        graph.node("ds", 0, "x", lambda: NodeDef(lambda: Found("k"), boom, "x", "make x"))
    assert (graph.outcomes[-1].status, graph.outcomes[-1].metrics) == (
        "failed",
        {"error": "disk full"},
    )


def test_stage_order_respects_every_dependency():
    names = stage_names(parse_experiments(["all"]), s2s_iters=2)
    assert names[:2] == ["weak", "ceiling"]
    assert names.index("xent") < names.index("s2s-1") < names.index("s2s-2")
    # the activations are a prerequisite the probe stages ask for (only when their result is
    # not cached), not a stage of their own
    assert "extract" not in names
    assert names[-len(GROUPS["probes"]) :] == list(GROUPS["probes"])
    assert stage_names(parse_experiments(["s2s"]), 1) == ["weak", "ceiling", "xent", "s2s-1"]


def test_shards_deal_every_unit_to_exactly_one_worker():
    units = [(d, s, n) for d in ("a", "b") for s in (0, 1) for n in ("weak", "ceiling", "xent")]
    owners = [deal(units, (i, 3)) for i in range(3)]
    assert all(o == owners[0] for o in owners)
    assert sorted(owners[0].values()) == sorted([i % 3 for i in range(len(units))])
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) == (0, 1)
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(Exception, match="--shard must be i/n"):
            parse_shard(bad)


def test_a_node_keyed_by_its_content_reports_the_key_its_build_made():
    graph = Graph("build")
    graph.target("ds", 0, "labels:x")

    def define() -> NodeDef:
        return NodeDef(lambda: Found(None), lambda: ("x-v", {"key": "k-x"}), "x", "make x")

    assert graph.node("ds", 0, "labels:x", define) == "x-v"
    assert [(o.stage, o.status, o.key) for o in graph.outcomes] == [("labels:x", "ran", "k-x")]
