"""The artifact graph's runner: cache hits, building prerequisites, plans, failures, shards.

Every artifact (splits, a weak run and its labels, a ceiling, an activation file, a probe run,
a filtered or relabeled label set, a student, an s2s iteration) is a *node*: a key, the nodes it
needs, and a function that builds it.  :class:`w2sprobe.study.Study` declares the nodes of one
dataset; this module decides what happens when a node is asked for:

* cached                      -> read it (status ``cached``);
* missing, mode ``build``     -> build it, saying so on stderr when it is a prerequisite of
                                 what the command asked for (status ``ran``);
* missing, mode ``no-build``  -> a prerequisite is refused with the command that makes it
                                 (the requested target itself is still built);
* missing, mode ``plan``      -> recorded as ``to run``; whatever needs it is ``to run`` too.

Locks live with each artifact's writer (run folders, activation keys), so two workers asking
for one node take turns and the second reads the first's result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import UsageError, first_line

Mode = Literal["build", "plan", "no-build"]


@dataclass
class NodeOutcome:
    """What happened to one node of one dataset and seed."""

    dataset: str
    stage: str
    status: str  # cached | ran | to run | failed
    key: str | None = None
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)
    shard: int = 0  # the worker that owns it (``--shard i/n``); others only wait for it
    seed: int = 0


class Reporter:
    """Progress hooks; the CLI subclasses it, the library stays silent."""

    def stage(
        self, dataset: str, stage: str, place: tuple[int, int], step: tuple[int, int]
    ) -> None:
        """A plan is about to ask for stage ``step`` (1-based, of a total) of the ``place``-th of
        its dataset x seed units."""

    def building(self, dataset: str, stage: str, what: str, prerequisite: bool) -> None:
        """A node is about to be built (``what`` says how, e.g. ``train weak minilm on sst2``)."""

    def progress(self, done: int, total: int, info: dict | None = None) -> None:
        """Rows extracted or steps trained inside the node being built."""

    def done(self, outcome: NodeOutcome) -> None:
        """A node was read, built, planned or failed."""


class NotBuilt(UsageError):
    """``--no-build``: a prerequisite is missing; the message names the command that makes it."""


class Blocked(Exception):
    """Plan mode: a node's inputs are not built yet, so it cannot even be keyed."""


_BLOCKED = object()  # memo entry of a node a plan could not reach


@dataclass
class Found:
    """A node's identity before it is built: its key and, when cached, its value."""

    key: str | None
    value: Any = None
    metrics: dict = field(default_factory=dict)

    @property
    def cached(self) -> bool:
        return self.value is not None


@dataclass
class NodeDef:
    """One node once its inputs are known.

    ``find`` keys it and reads it if cached; ``build`` makes it and returns ``(value, metrics)``,
    or ``(value, metrics, True)`` when, under the artifact's lock, another worker had made it
    (a node whose key depends on its content finds no key and puts it in ``metrics["key"]``);
    ``what`` says what building it means (``weak labels: train weak minilm on sst2``); ``hint`` is
    the command that builds it on its own, for ``--no-build`` refusals.
    """

    find: Callable[[], Found]
    build: Callable[[], tuple[Any, dict]]
    what: str
    hint: str


class Graph:
    """Evaluates nodes in one mode, memoising each (dataset, seed, node) once per command."""

    def __init__(self, mode: Mode = "build", reporter: Reporter | None = None):
        self.mode, self.reporter = mode, reporter or Reporter()
        self.outcomes: list[NodeOutcome] = []
        self.targets: set[tuple[str, int, str]] = set()  # what the command asked for
        self.shards: dict[tuple[str, int, str], int] = {}
        self._memo: dict[tuple[str, int, str], Any] = {}

    def node(self, dataset: str, seed: int, stage: str, define: Callable[[], NodeDef]) -> Any:
        """The value of one node: cached, built, refused (``no-build``) or planned.

        ``define`` asks for the node's inputs (which may raise :class:`Blocked` in a plan) and
        returns its :class:`NodeDef`; it runs once per command, like the node itself.
        """
        ident = (dataset, seed, stage)
        if ident in self._memo:
            if self._memo[ident] is _BLOCKED:
                raise Blocked(stage)
            return self._memo[ident]
        started = time.perf_counter()
        try:
            node = define()
            found = node.find()
        except Blocked:
            self._record(ident, "to run", None, started, {})
            self._memo[ident] = _BLOCKED
            raise
        if found.cached:
            self._record(ident, "cached", found.key, started, found.metrics)
            return self._remember(ident, found.value)
        if self.mode == "plan":
            self._record(ident, "to run", found.key, started, {})
            self._memo[ident] = _BLOCKED
            raise Blocked(stage)
        prerequisite = ident not in self.targets
        if self.mode == "no-build" and prerequisite:
            raise NotBuilt(f"{node.what} is not built yet (--no-build); make it with: {node.hint}")
        self.reporter.building(dataset, stage, node.what, prerequisite)
        try:
            value, metrics, *late_hit = node.build()
        except Exception as exc:
            self._record(ident, "failed", found.key, started, {"error": first_line(exc)})
            raise
        # A build may find the artifact made by another worker while it waited for the lock.
        # A content-addressed node (a derived label set) has no key until it is built.
        status = "cached" if late_hit and late_hit[0] else "ran"
        self._record(ident, status, found.key or metrics.get("key"), started, metrics)
        return self._remember(ident, value)

    def peek(self, dataset: str, seed: int, stage: str, define: Callable[[], NodeDef]) -> Any:
        """The node's value when it is cached (or already made by this command), else None:
        never builds, never refuses, in any mode (an optional input such as PGR's ceiling)."""
        ident = (dataset, seed, stage)
        if ident in self._memo:
            value = self._memo[ident]
            return None if value is _BLOCKED else value
        started = time.perf_counter()
        try:
            found = define().find()
        except Blocked:
            return None
        if not found.cached:
            return None
        self._record(ident, "cached", found.key, started, found.metrics)
        return self._remember(ident, found.value)

    def unreachable(self, dataset: str, seed: int, stage: str) -> None:
        """Plan mode: ``stage`` was never asked for because an input of it is unbuilt; list it."""
        ident = (dataset, seed, stage)
        if ident not in self._memo:
            self._record(ident, "to run", None, time.perf_counter(), {})
            self._memo[ident] = _BLOCKED

    def target(self, dataset: str, seed: int, stage: str) -> None:
        """Mark a node as asked for by the command.

        It is not a prerequisite: ``--no-build`` builds it.
        """
        self.targets.add((dataset, seed, stage))

    def _remember(self, ident: tuple[str, int, str], value: Any) -> Any:
        self._memo[ident] = value
        return value

    def _record(
        self,
        ident: tuple[str, int, str],
        status: str,
        key: str | None,
        started: float,
        metrics: dict,
    ) -> None:
        dataset, seed, stage = ident
        outcome = NodeOutcome(
            dataset,
            stage,
            status,
            key,
            time.perf_counter() - started,
            dict(metrics),
            self.shards.get(ident, 0),
            seed,
        )
        self.outcomes.append(outcome)
        self.reporter.done(outcome)


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if spec is None:
        return 0, 1
    try:
        index, count = (int(part) for part in str(spec).split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise UsageError(f"--shard must be i/n with 0 <= i < n (e.g. 0/4), got '{spec}'")
    return index, count


def deal(
    units: list[tuple[str, int, str]], shard: tuple[int, int]
) -> dict[tuple[str, int, str], int]:
    """Round-robin owner of each unit (datasets x seeds x stages, in plan order)."""
    return {unit: position % shard[1] for position, unit in enumerate(units)}
