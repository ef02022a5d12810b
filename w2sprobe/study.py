"""The artifact nodes of one dataset and seed: what each needs, its key, how it is built.

``Study`` is the one place where prerequisites are known.  Every command is a request for some
of its nodes (``train weak`` -> :meth:`Study.weak`, ``relabel`` -> :meth:`Study.derived`,
``run`` -> :meth:`Study.experiment` for each stage of its plan), and a node asks for its own
inputs, so a command on an empty cache builds what it needs (saying so) and ``--plan`` /
``--no-build`` work everywhere.  The :class:`~w2sprobe.graph.Graph` decides cache hit, build,
refuse or plan.  A command marks what it asked for with ``target=True``: the node names
itself (:mod:`w2sprobe.vocabulary` spells every name), so what the command asked for and what
the graph records can never disagree.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from .data import SplitSet, load_splits
from .data.splits import SplitSizes
from .errors import UsageError
from .graph import Blocked, Found, Graph, NodeDef
from .labels import (
    LabelSet,
    find_derived_set,
    find_label_set,
    labels_root,
    list_label_sets,
    load_label_set,
    save_label_set,
    sets_named,
)
from .layers import AUTO_LAYER, default_probe_layer, layer_range_message, parse_layer_spec
from .options import Options
from .runs import RunRecord, load_run, run_dir
from .vocabulary import (
    FILTER,
    GROUND_TRUTH,
    HEAD,
    WEAK,
    DerivedSet,
    extract_node,
    label_set_node,
    parse_derived_set,
    parse_experiment,
    pass_node,
    probe_experiment,
    s2s_experiment,
    student_experiment,
)

#: The model roles of a study: the strong model (students, probes) and the weak supervisor.
STRONG = "strong"


class StudyWarning(UserWarning):
    """The study used something other than what the options describe; it says what and why."""


def define_user_datasets(options: Options) -> None:
    """Register the config file's ``[datasets.NAME]`` tables (paths relative to that file)."""
    if options.dataset_tables:
        from .data import define_datasets

        base = options.config_path.parent if options.config_path else None
        define_datasets(options.dataset_tables, base_dir=base)


def check_datasets(options: Options) -> list[str]:
    """The options' datasets, each known (registry, user-defined, file, folder or hub:)."""
    from .data import check_data_dir, get_spec, is_user_data

    define_user_datasets(options)
    if options.data.data_dir is not None:
        check_data_dir(options.data.data_dir)
    for name in options.data.dataset:
        if not is_user_data(name):
            get_spec(name)
    return list(options.data.dataset)


def load_options_splits(options: Options, dataset: str) -> SplitSet:
    """The seeded, balanced splits of ``dataset`` that these options describe."""
    define_user_datasets(options)
    d = options.data
    sizes = SplitSizes(n_train=d.n_train, n_val=d.n_val, n_test=d.n_test)
    return load_splits(
        dataset,
        data_dir=d.data_dir,
        seed=options.workspace.seed,
        sizes=sizes,
        text_field=d.text_field,
        label_field=d.label_field,
        positive_label=d.positive_label,
    )


class Study:
    """The nodes of one dataset and seed under one set of options."""

    def __init__(self, options: Options, dataset: str, graph: Graph):
        self.options, self.dataset, self.graph = options, dataset, graph
        self.seed = options.workspace.seed
        self.cache_dir = Path(options.workspace.cache_dir)
        #: What the study did other than the options say (a fallback), for the command's result.
        self.notes: list[str] = []
        #: Whether a probe run builds a missing ceiling for its PGR (``run``, ``probe --pgr``);
        #: off, a probe reads a cached ceiling or says what PGR needs (:meth:`probe_pgr`).
        self.build_ceiling = True
        self._peeking = False  # asking for a node only if it is cached: build no inputs of it
        self._layer_choices: dict[tuple[str, str], dict] = {}  # --layer auto, once per input

    # ------------------------------------------------------------------ basics

    @cached_property
    def splits(self) -> SplitSet:
        return load_options_splits(self.options, self.dataset)

    def _node(self, stage: str, define, target: bool = False):
        if target:
            self.graph.target(self.dataset, self.seed, stage)
        return self.graph.node(self.dataset, self.seed, stage, define)

    def _hint(self, command: str, *args: str, **own) -> str:
        """The command line that makes a node of this study, with every flag that makes it the
        same artifact (:mod:`w2sprobe.hints`)."""
        from .hints import command_line

        return command_line(self.options, command, *args, dataset=self.dataset, **own)

    def _train_hint(self, stage: str, **own) -> str:
        """``w2sprobe train <stage> ...``; a head reading the probe layer names it as
        ``--head-layer`` (train has no ``--layer``)."""
        layer = self.options.probe.layer
        if HEAD in (self.options.train.student, self.options.train.weak_kind):
            if self.options.train.head_layer is None and layer not in (None, AUTO_LAYER):
                own["head_layer"] = layer
        return self._hint("train", stage, **own)

    def _note(self, message: str) -> None:
        """Say on stderr (a warning) and in the command's result what the study chose."""
        self.notes.append(message)
        warnings.warn(message, StudyWarning, stacklevel=3)

    def _gather(self, *asks):
        """Ask for several inputs; in a plan, every one is asked (and listed) before giving up."""
        values, blocked = [], False
        for ask in asks:
            try:
                values.append(ask())
            except Blocked:
                values.append(None)
                blocked = True
        if blocked:
            raise Blocked("inputs")
        return values

    def _input_unless_stored(self, ask, stored, layer: int):
        """``ask()``'s label set and what ``stored`` finds for it (None: not cached); the
        activations of ``layer`` are asked for only when nothing is stored.

        A finished probe or label set is read without its activation file, which a workspace
        may have deleted (or never had: a restored record); a plan lists the extraction whenever
        the result has to be made.
        """
        try:
            labels = ask()
        except Blocked:  # in a plan: nothing can be stored yet, so list the extraction too
            self._gather(lambda: self.extraction(need=[layer]))
            raise
        found = stored(labels)
        if found is None:
            self.extraction(need=[layer])
        return labels, found

    def _activations_id(self, layer: int, role: str = STRONG) -> dict:
        """What the activation files that can serve ``layer`` share: their plan's manifest without
        its layer list (a file holding the layer serves, whatever else it stores)."""
        return _without_layers(self.extraction_plan(need=[layer], role=role).manifest)

    def _save(self, labels: LabelSet) -> LabelSet:
        """Store a label set derived from finished inputs (a plan writes nothing)."""
        if self.graph.mode != "plan":
            save_label_set(labels, self.cache_dir)
        return labels

    # ------------------------------------------------------------------ experiments by name

    def experiment(self, name: str, target: bool = False):
        """The node of an experiment name (:func:`w2sprobe.vocabulary.parse_experiment`)."""
        spec = parse_experiment(name)
        if spec.kind == WEAK:
            return self.weak(target=target)
        if spec.kind == "ceiling":
            return self.ceiling(target=target)
        if spec.kind == "student":
            return self.student(self.weak_labels(), spec.loss, target=target)
        if spec.kind == "s2s":
            return self.s2s(spec.iteration, spec.loss, target=target)
        if spec.kind == "probe":
            return self.probe_run(spec.probe, spec.labels, target=target)
        derived = self.derived(DerivedSet(spec.probe, spec.derive))
        return self.student(derived, spec.loss, experiment=name, target=target)

    # ------------------------------------------------------------------ trained runs

    def _trained(self, request, what: str, hint: str) -> NodeDef:
        from .train.plans import plan_stage

        plan = plan_stage(request, self.cache_dir)

        def find() -> Found:
            record = plan.cached
            return Found(plan.key, record, dict(record.metrics) if record else {})

        def build():
            from .train.stages import run_stage  # torch: only when something is trained

            record = run_stage(plan, self.graph.reporter.progress)
            return record, dict(record.metrics), not record.fresh

        return NodeDef(find, build, what, hint)

    def _head(self, stage: str, role: str, what: str, hint: str, **fields) -> NodeDef:
        """A head run on the role's cached activations (:mod:`w2sprobe.train.head_stage`); the
        activations are asked for only when the run is not cached."""
        from filelock import FileLock

        from .models import device_name
        from .train.inputs import head_config
        from .train.plans import HeadRequest, plan_head

        layer = self.head_layer(role)
        loss = fields.pop("loss", None)
        request = HeadRequest(
            stage,
            self._activations_id(layer, role),
            self._model(role),
            layer,
            head_config(self.options, stage, loss),
            **fields,
            device=device_name(self.options.workspace.device),
        )
        plan = plan_head(request, self.cache_dir)
        if plan.cached is None and not self._peeking:
            self.extraction(need=[layer], role=role)

        def find() -> Found:
            record = plan.cached
            return Found(plan.key, record, dict(record.metrics) if record else {})

        def build():
            from .train.head_stage import run_head  # torch: only when a head is trained

            plan.folder.mkdir(parents=True, exist_ok=True)
            with FileLock(str(plan.folder / ".lock")):
                record = plan.cached  # another worker may have made it while we waited
                if record is not None:
                    return record, dict(record.metrics), True
                with self.store(layer, role) as store:
                    record = run_head(plan, store, self.graph.reporter.progress)
            return record, dict(record.metrics)

        return NodeDef(find, build, what, hint)

    def head_layer(self, role: str = STRONG) -> int:
        """The layer a head reads: ``--head-layer`` (strong model), else the probe layer
        (``--layer``, default (L+1)//2) -- chosen over the last layer on weak-labelled val
        (BENCHMARKS.md, "Head students"); of the weak model, its own (L+1)//2."""
        if role != STRONG:
            return default_probe_layer(self._num_layers(role))
        layer = self.options.train.head_layer
        if layer is None:
            if self.options.probe.layer == AUTO_LAYER:
                raise UsageError(
                    "--layer auto chooses a probe's layer; a head reads a fixed one: set "
                    "--head-layer N (or --layer N)"
                )
            return self.probe_layer()
        if not 0 <= layer <= self.num_layers:
            raise UsageError(layer_range_message(layer, self.num_layers, self._model(role)))
        return layer

    def _weak_request(self):
        from .train.inputs import stage_request

        return stage_request(self.options, self.splits, WEAK)

    def _weak_plan(self):
        """The configured weak run's plan (key, folder, cached run), of either kind."""
        if self.options.train.weak_kind == HEAD:
            from .train.inputs import head_config
            from .train.plans import HeadRequest, plan_head

            layer = self.head_layer("weak")
            request = HeadRequest(
                WEAK,
                self._activations_id(layer, "weak"),
                self._model("weak"),
                layer,
                head_config(self.options, WEAK),
            )
            return plan_head(request, self.cache_dir)
        from .train.plans import plan_stage

        return plan_stage(self._weak_request(), self.cache_dir)

    def weak(self, target: bool = False) -> RunRecord:
        """The weak model trained on weak_train ground truth (its predictions: the weak labels):
        a LoRA finetune (the study's), or with ``--weak-kind head`` a head on its activations."""
        model = self.options.model.weak_model

        def define() -> NodeDef:
            what = f"weak labels: train weak {model} on {self.dataset}"
            hint = self._train_hint(WEAK)
            if self.options.train.weak_kind == HEAD:
                return self._head(WEAK, "weak", what + " (a head)", hint)
            return self._trained(self._weak_request(), what, hint)

        return self._node(WEAK, define, target)

    def ceiling(self, target: bool = False, only_cached: bool = False) -> RunRecord | None:
        """The strong model trained on strong_train ground truth (of the ``--student`` kind).

        ``only_cached``: the cached ceiling or None; nothing is built, in any mode.
        """
        if not only_cached:
            return self._node("ceiling", self._ceiling_def, target)
        self._peeking = True
        try:
            return self.graph.peek(self.dataset, self.seed, "ceiling", self._ceiling_def)
        finally:
            self._peeking = False

    def _ceiling_def(self) -> NodeDef:
        from .train.inputs import stage_request

        what = f"ceiling: train ceiling {self.options.model.strong_model} on {self.dataset}"
        hint = self._train_hint("ceiling")
        if self.options.train.student == HEAD:
            return self._head("ceiling", STRONG, what + " (a head)", hint)
        return self._trained(stage_request(self.options, self.splits, "ceiling"), what, hint)

    def weak_labels(self) -> LabelSet:
        """The ``weak`` label set: the configured weak run's strong_train, val and test
        predictions (the run is built when missing)."""
        from .train.run_labels import weak_label_set

        return self._save(weak_label_set(self.weak(), self.dataset))

    def _weak_or_stored(self) -> LabelSet:
        """``--labels weak``: the configured weak run's labels (built when missing).

        The one exception: when that run is not cached and one stored set named ``weak`` on
        these splits was made by *no* weak run of this workspace (weak labels from elsewhere),
        that set is used, and the study says so (:attr:`notes`, a warning).  A stored set made
        by another weak run (another recipe, model, length, pooling or dtype) is never taken
        for the configured one.
        """
        from .train.run_labels import check_labels_match

        plan = self._weak_plan()
        if plan.cached is not None:
            return self.weak_labels()
        stored = [
            m
            for m in list_label_sets(self.cache_dir, self.dataset)
            if m["name"] == WEAK and _fits(m.get("manifest", {}), self.splits)
        ]
        foreign = [m for m in stored if not m.get("manifest", {}).get("weak_run")]
        if len(foreign) > 1:
            keys = ", ".join(m["key"] for m in foreign)
            raise UsageError(
                f"several weak label sets from elsewhere fit {self.dataset} ({keys}) and the "
                f"configured weak run ({plan.key}) is not built; choose one with --labels KEY"
            )
        if foreign:
            labels = load_label_set(labels_root(self.cache_dir, self.dataset) / foreign[0]["key"])
            check_labels_match(labels, self.splits)
            self._note(
                f"using the stored weak label set {labels.key} (made by no weak run here) "
                f"instead of training the configured weak run {plan.key}"
            )
            return labels
        others = [m["manifest"]["weak_run"] for m in stored]
        if others and self.graph.mode == "no-build":
            raise UsageError(
                f"the configured weak run {plan.key} is not built (--no-build); the stored weak "
                f"labels of {self.dataset} come from other weak runs ({', '.join(others)}), made "
                f"with other settings; build this one with: {self._train_hint(WEAK)}"
            )
        return self.weak_labels()

    def student(
        self,
        labels: LabelSet,
        loss: str | None = None,
        experiment: str | None = None,
        target: bool = False,
    ) -> RunRecord:
        """The strong model on ``labels``; PGR against the weak run behind them and the ceiling."""
        from .labels import weak_run_of
        from .train.inputs import stage_request

        loss = loss or self.options.train.loss
        name = experiment or student_experiment(labels.name, loss)

        def define() -> NodeDef:
            weak = weak_run_of(labels, self.cache_dir)
            if weak is None:
                raise UsageError(
                    f"the weak run behind label set {labels.name} ({labels.key}) is missing; "
                    f"make it with: {self._train_hint(WEAK)}"
                )
            what = (
                f"student {name}: train {self.options.model.strong_model} on "
                f"label set {labels.name} with {loss}"
            )
            hint = self._train_hint("student", labels=labels.name, loss=loss)
            if self.options.train.student == HEAD:
                return self._head(
                    "student",
                    STRONG,
                    what + " (a head)",
                    hint,
                    labels=labels,
                    loss=loss,
                    experiment=name,
                    weak=weak,
                    ceiling=self.ceiling(),
                    min_gap=self.options.report.min_gap,
                )
            request = stage_request(
                self.options,
                self.splits,
                "student",
                labels=labels,
                loss=loss,
                experiment=name,
                weak=weak,
                ceiling=self.ceiling(),
                min_gap=self.options.report.min_gap,
            )
            return self._trained(request, what, hint)

        return self._node(name, define, target)

    def s2s(self, iteration: int, loss: str | None = None, target: bool = False) -> RunRecord:
        """Strong-to-strong iteration ``iteration``: a student on the previous student's labels.

        Iteration 1 trains on the ``loss`` student of the weak labels; every iteration uses
        ``loss``.
        """
        if iteration < 1:
            raise UsageError(f"s2s iterations are numbered from 1, got {iteration}")
        return self._s2s(iteration, loss or self.options.train.loss, target)[0]

    def _s2s(self, iteration: int, loss: str, target: bool = False) -> tuple[RunRecord, LabelSet]:
        """(student, the labels it trained on); iteration 0 is the student of the weak labels."""
        from .train.run_labels import student_label_set

        if iteration == 0:
            labels = self.weak_labels()
            return self.student(labels, loss, target=target), labels
        parent_run, parent_labels = self._s2s(iteration - 1, loss)
        name = s2s_experiment(iteration, loss)
        labels = self._save(student_label_set(parent_run, parent_labels, name))
        return self.student(labels, loss, experiment=name, target=target), labels

    # ------------------------------------------------------------------ activations

    def _model(self, role: str) -> str:
        """The model of a role: ``strong`` (students, probes) or ``weak`` (head supervisors)."""
        return self.options.model.strong_model if role == STRONG else self.options.model.weak_model

    @cached_property
    def num_layers(self) -> int:
        """The strong model's block count, read from its config alone (no weights, no torch)."""
        return self._num_layers(STRONG)

    def _num_layers(self, role: str) -> int:
        from .models import read_model_shape

        return read_model_shape(self._model(role)).num_blocks

    def probe_layer(self) -> int:
        """``--layer``, or the reference's (L+1)//2, checked against the strong model's layers
        (``--layer auto``: the layer :meth:`fit_layer` chooses for ``--probe`` on ``--labels``)."""
        layer, num_layers = self.options.probe.layer, self.num_layers
        if layer is None:
            return default_probe_layer(num_layers)
        if layer == AUTO_LAYER:
            return self.fit_layer(self.options.probe.probe, self.options.probe.labels)[0]
        if not 0 <= layer <= num_layers:
            raise UsageError(
                layer_range_message(layer, num_layers, self.options.model.strong_model)
            )
        return layer

    def fit_layer(self, probe: str, labels_name: str) -> tuple[int, dict | None]:
        """The layer ``probe`` is fit on against ``labels_name``, and (``--layer auto``) how it
        was chosen: among the extracted layers, the least weak-label criterion on strong_train
        (:mod:`w2sprobe.layers`), each layer's score recorded.  Computed once per study."""
        if self.options.probe.layer != AUTO_LAYER:
            return self.probe_layer(), None
        if (probe, labels_name) not in self._layer_choices:
            self._layer_choices[probe, labels_name] = self._choose_layer(probe, labels_name)
        choice = self._layer_choices[probe, labels_name]
        return choice["value"], choice

    def _choose_layer(self, probe: str, labels_name: str) -> dict:
        from .probes.auto import criteria
        from .probes.choice import smoother_first
        from .probes.experiment import training_data
        from .probes.inputs import probe_spec
        from .vocabulary import probe_kind

        if probe_kind(probe).baseline:
            raise UsageError(
                f"--layer auto needs a probe that predicts (its criterion is its fit to the "
                f"labels); {probe} is a filter baseline: set --layer N"
            )
        layers = self.extracted_layers()
        labels = self.label_set(labels_name)
        scores, name = {}, None
        for layer in layers:
            spec = probe_spec(self.options, probe, layer)
            with self.store(layer) as store:
                acts, soft, _ = training_data(store, labels, layer)
                (score,) = criteria([spec.config], acts, soft, spec.device)
            scores[layer], name = score["criterion"], score["criterion_name"]
        best = min(layers, key=lambda layer: smoother_first(scores[layer], None, layer))
        return {
            "param": "layer",
            "value": best,
            "criterion": f"{name}; least over the extracted layers, ties to the lower layer",
            "labels": labels.name,
            "scores": {str(layer): score for layer, score in scores.items()},
        }

    def _layers(self, spec, role: str = STRONG) -> list[int]:
        """A layer spec (``all``, ``4,8``, ``[16]``) of a model, checked against it."""
        num_layers = self._num_layers(role) if role != STRONG else self.num_layers
        return parse_layer_spec(spec, list(range(num_layers + 1)), num_layers, self._model(role))

    def extraction_plan(self, layers: str | list[int] | None = None, need=(), role: str = STRONG):
        """The keyed extraction of ``layers`` of the role's model (planned once).

        ``layers=None`` means ``--layers`` plus ``need`` (and, of the strong model, the probe
        layer).
        """
        from .cache import ExtractRequest, plan_extraction

        if layers is None:
            chosen = {*self._layers(self.options.extract.layers, role), *need}
            if role == STRONG and self.options.probe.layer != AUTO_LAYER:
                chosen.add(self.probe_layer())  # auto chooses among the layers extracted
            chosen = sorted(chosen)
        else:
            chosen = self._layers(layers, role)
        request = ExtractRequest.from_options(
            self.options, self.splits, layers=chosen, model=self._model(role)
        )
        return plan_extraction(request, self.cache_dir)

    def extraction(
        self,
        layers: str | list[int] | None = None,
        need: list[int] | None = None,
        target: bool = False,
        role: str = STRONG,
    ):
        """The activation file(s) of the role's model (default: the strong one); returns the
        extraction's plan.

        ``layers``: what to extract (None: ``--layers`` plus ``need``, and the probe layer);
        ``need``: the layers whose presence in any matching cached file makes this a hit
        (default: every layer of the plan).  Probes and heads pass ``need=[layer]``: a file
        holding their layer serves, whatever else it stores.
        """
        from .cache import cached_layers
        from .cache.lookup import find_cache_hit

        def define() -> NodeDef:
            plan = self.extraction_plan(layers, need or (), role)

            def find() -> Found:
                if need is None:  # this key's file, or one complete file holding every layer
                    hit = find_cache_hit(plan)
                    return Found(
                        plan.key, plan if hit else None, _extract_metrics(hit) if hit else {}
                    )
                have = cached_layers(plan)
                return Found(
                    plan.key,
                    plan if all(layer in have for layer in need) else None,
                    {"cached_layers": sorted(have)},
                )

            def build():
                from .cache import extract  # nnsight and transformers: only when extracting

                result = extract(plan, progress=self.graph.reporter.progress)
                return plan, _extract_metrics(result), result.cache_hit

            text = ",".join(map(str, plan.layers)) if len(plan.layers) <= 6 else "all"
            model = self._model(role) if role != STRONG else None
            return NodeDef(
                find,
                build,
                f"activations: extract {plan.ref.name} layers {text} on {self.dataset}",
                self._hint("extract", model=model, layers=",".join(map(str, plan.layers))),
            )

        spec = None if layers is None else ",".join(map(str, _as_list(layers)))
        return self._node(extract_node(spec, role), define, target)

    def extraction_pass(
        self, layers: str | list[int], poolings: list, tokens: str | None, max_bytes: int
    ) -> list:
        """Several files of the strong model from one forward pass (``extract --pool mean,last``,
        ``--tokens last:8``): a node per file (the file a single-pool extraction of that pooling
        makes; the token-level file), each cached or built on its own; the first one built
        computes every missing file, so the others find theirs.  Returns their results (pooled
        in ``poolings`` order, then the token file's).
        """
        import dataclasses

        from .cache import plan_extraction
        from .cache.lookup import find_cache_hit
        from .cache.onepass import extract_pass, token_hit
        from .cache.tokens import DEFAULT_MAX_BYTES, parse_token_spec, plan_tokens
        from .hints import command_line

        spec = tokens and parse_token_spec(tokens)  # bad input is refused before any planning
        request = self.extraction_plan(layers).request
        plans = [
            plan_extraction(dataclasses.replace(request, pooling=p), self.cache_dir)
            for p in poolings
        ]
        token_plan = spec and plan_tokens(plans[0], spec, self.cache_dir, max_bytes)
        made: dict = {}  # key -> result of this command's pass

        def file_node(plan, stage: str, lookup, hint: str):
            def define() -> NodeDef:
                def find() -> Found:
                    hit = made.get(plan.key) or lookup(plan)
                    return Found(plan.key, hit, _extract_metrics(hit) if hit else {})

                def build():
                    if plan.key not in made:
                        result = extract_pass(plans, token_plan, self.graph.reporter.progress)
                        made.update(zip([p.key for p in plans], result.pooled))
                        if token_plan:
                            made[token_plan.key] = result.tokens
                    hit = made[plan.key]
                    return hit, _extract_metrics(hit), hit.cache_hit

                what = f"activations: extract {request.model} {stage} on {self.dataset}"
                return NodeDef(find, build, what, hint)

            return lambda: self._node(stage, define, target=True)

        spec_text = None if layers is None else ",".join(map(str, _as_list(layers)))
        listed = ",".join(map(str, plans[0].layers))

        def hint(pooling, **own) -> str:
            options = self.options.replace(pooling=pooling)
            return command_line(options, "extract", dataset=self.dataset, layers=listed, **own)

        asks = [
            file_node(
                plan, pass_node(spec_text, pooling=plan.pooling), find_cache_hit, hint(plan.pooling)
            )
            for plan in plans
        ]
        if token_plan:
            limit = None if max_bytes == DEFAULT_MAX_BYTES else max_bytes
            stage = pass_node(spec_text, tokens=spec.text)
            own = hint(self.options.extract.pooling, tokens=spec.text, max_bytes=limit)
            asks.append(file_node(token_plan, stage, token_hit, own))
        return self._gather(*asks)

    def store(self, layer: int, role: str = STRONG):
        """The activation store holding ``layer`` of the role's model (extracted first when no
        cached file has it)."""
        from .cache import ActivationStore, find_cached_layer

        plan = self.extraction(need=[layer], role=role)
        return ActivationStore.open(find_cached_layer(plan, layer))

    def probe_layers(self, spec: str | None) -> list[int]:
        """Layers to probe: ``spec``'s numbers and, for ``all``, every *cached* layer (what is
        missing is extracted first); no spec: the probe layer."""
        from .cache import cached_layers

        if spec is None:
            return [self.probe_layer()]
        items = [item.strip().lower() for item in str(spec).split(",") if item.strip()]
        explicit = self._layers([i for i in items if i != "all"])
        plan = self.extraction(need=explicit) if explicit else self.extraction()
        every = sorted(cached_layers(plan)) if "all" in items else []
        return sorted({*explicit, *every})

    def _truth_layer(self) -> int:
        """A layer whose file holds the ground truth (any does): the probe layer, or under
        ``--layer auto`` the lowest extracted one (choosing a layer may need the truth first)."""
        if self.options.probe.layer != AUTO_LAYER:
            return self.probe_layer()
        return self.extracted_layers()[0]

    def extracted_layers(self) -> list[int]:
        """The strong model's layers already in the cache (made like the options say); none:
        the extraction ``--layers`` asks for is made first (``--layer auto``'s candidates)."""
        from .cache import cached_layers

        have = cached_layers(self.extraction_plan())
        return sorted(have or cached_layers(self.extraction()))

    # ------------------------------------------------------------------ label sets

    def label_set(self, name: str) -> LabelSet:
        """A label set by name or key.

        ``weak`` (built when missing), ``gt`` (the ground truth), a derived name such as
        ``knn-relabel`` or ``knn-filter@gt`` (built when missing), any stored set, or the key of
        a finished student run (its strong_train and val predictions).
        """
        from .train.run_labels import check_labels_match, student_label_set

        if name == WEAK:
            return self._weak_or_stored()
        if name == GROUND_TRUTH:
            from .probes.experiment import ground_truth_labels

            with self.store(self._truth_layer()) as store:
                return ground_truth_labels(store, self.dataset)
        run = load_run(run_dir(self.cache_dir, self.dataset, name))
        if run is not None and run.metrics.get("stage") == "student":
            parent = find_label_set(self.cache_dir, self.dataset, run.metrics["labels_key"])
            return self._save(student_label_set(run, parent, f"student-{run.key}"))
        recipe = parse_derived_set(name)
        if recipe is not None and not sets_named(
            list_label_sets(self.cache_dir, self.dataset), name
        ):
            return self.derived(recipe)
        labels = find_label_set(self.cache_dir, self.dataset, name)
        check_labels_match(labels, self.splits)
        return labels

    def derived(
        self, recipe: DerivedSet, name: str | None = None, target: bool = False
    ) -> LabelSet:
        """A filtered or relabeled set: ``recipe.probe`` fit on the parent's strong_train labels.

        ``name``: the set's own name (default: what it is made of, ``knn-relabel@weak``).
        """
        from .probes.artifact import probe_exists, save_probe
        from .probes.experiment import filter_label_set, relabel_label_set
        from .probes.inputs import check_probe, probe_spec
        from .vocabulary import check_derive

        name = recipe.name if name is None else name
        check_label_set_name(name)
        check_derive(recipe.probe, recipe.derive)
        check_probe(self.options, recipe.probe)
        contamination = self.options.probe.contamination
        if recipe.derive == FILTER and not 0 < contamination < 1:
            raise UsageError(f"--contamination must be in (0, 1), got {contamination}")

        def define() -> NodeDef:
            layer, layer_choice = self.fit_layer(recipe.probe, recipe.parent)
            spec = replace(probe_spec(self.options, recipe.probe, layer), layer_choice=layer_choice)
            activations = self._activations_id(layer)

            def stored_set(parent: LabelSet) -> dict | None:
                # A stored set made the same way is a hit; its manifest says how it was made
                # (nothing is added to it, so the keys of sets and of the students trained on
                # them stay as they were).
                made_by = {
                    "kind": recipe.derive,
                    "probe": spec.describe(),
                    "parent": parent.key,
                    **({"contamination": contamination} if recipe.derive == FILTER else {}),
                }
                meta = find_derived_set(self.cache_dir, self.dataset, name, made_by, activations)
                # A set whose saved probe was removed since is derived again, which saves the
                # probe again (the set itself, of the same key, stays as it is); a set from
                # before probes were saved (no probe_key) stays a hit.
                saved = (meta or {}).get("manifest", {}).get("probe_key")
                if saved and not probe_exists(self.cache_dir, self.dataset, saved):
                    return None
                return meta

            parent, meta = self._input_unless_stored(
                lambda: self.label_set(recipe.parent), stored_set, layer
            )

            def find() -> Found:
                if meta is None:
                    return Found(None)
                folder = labels_root(self.cache_dir, self.dataset) / meta["key"]
                return Found(meta["key"], load_label_set(folder), {"key": meta["key"]})

            def build():
                with self.store(layer) as store:

                    def save(outcome) -> str:  # the fitted probe, a cache entry of its own
                        return save_probe(
                            self.cache_dir,
                            store,
                            parent,
                            outcome,
                            model=self.options.model.strong_model,
                            seed=self.splits.report.get("seed"),
                        )

                    if recipe.derive == FILTER:
                        outcome = filter_label_set(store, parent, spec, contamination, name, save)
                        labels, extra = outcome.labels, {"report": outcome.report}
                    else:
                        labels, extra = relabel_label_set(store, parent, spec, name, save), {}
                save_label_set(labels, self.cache_dir)
                return labels, {
                    "key": labels.key,
                    "sizes": labels.sizes(),
                    "parent": parent.name,
                    **{k: labels.manifest[k] for k in ("probe_key",) if k in labels.manifest},
                    **extra,
                }

            return NodeDef(
                find,
                build,
                f"label set {name}: {recipe.derive} {parent.name} with {recipe.probe} "
                f"on layer {layer}",
                self._hint(
                    recipe.derive,
                    probe=recipe.probe,
                    labels=recipe.parent,
                    layer=AUTO_LAYER if layer_choice else layer,
                ),
            )

        return self._node(label_set_node(name), define, target)

    # ------------------------------------------------------------------ sweeps

    def sweep(self, probe: str, layers: str | None, grid: list, target: bool = False) -> list[dict]:
        """A probe evaluated on every (layer, grid value) against ``--labels``: the sweep's rows,
        its table and plot written under ``<cache>/sweeps/<dataset>/<key>/``.

        ``layers``: a layer spec (``all`` = every cached layer) or None for the probe layer;
        ``grid``: values of the probe's grid parameter (:data:`w2sprobe.vocabulary.PROBES`).
        """
        from .hashing import short_hash
        from .probes.choice import marked
        from .probes.inputs import check_probe, probe_spec
        from .probes.sweep import ROW_FORMAT, sweep_layer
        from .report.sweep_files import read_sweep, sweep_dir, write_sweep
        from .vocabulary import probe_kind, sweep_node

        param = probe_kind(probe).grid_param
        for value in grid:
            check_probe(self.options, probe, **({param: value} if param else {}))
        labels_name = self.options.probe.labels

        def define() -> NodeDef:
            labels = self.label_set(labels_name)
            chosen = self.probe_layers(layers)
            plan = self.extraction(need=chosen)

            def spec(layer: int, value):
                return probe_spec(self.options, probe, layer, **({param: value} if param else {}))

            base = spec(chosen[0], grid[0]).config.params()
            key = short_hash(
                {
                    "plan": plan.manifest,
                    "probe": probe,
                    "config": {k: v for k, v in base.items() if k != param},
                    "layers": chosen,
                    "param": param,
                    "grid": grid,
                    "labels": labels.key,
                    # rows with the weak-label criterion and the AUC's CI: made again
                    "rows": ROW_FORMAT,
                }
            )
            folder = sweep_dir(self.cache_dir, self.dataset, key)

            def find() -> Found:
                rows = read_sweep(folder)
                return Found(key, rows, {"key": key, "path": str(folder)} if rows else {})

            def build():
                rows = []
                for layer in chosen:
                    with self.store(layer) as store:
                        specs = [spec(layer, value) for value in grid]
                        rows += sweep_layer(store, labels, specs, param)
                rows = marked([{**row, "sweep_key": key} for row in rows], param)
                write_sweep(rows, folder, param or "layer")
                return rows, {"key": key, "path": str(folder)}

            return NodeDef(
                find,
                build,
                f"sweep of {probe} over {param or 'layers'} on layers "
                f"{','.join(map(str, chosen))} against {labels.name}",
                self._hint("sweep", probe=probe, labels=labels_name, layers=layers),
            )

        return self._node(sweep_node(probe, labels_name), define, target)

    # ------------------------------------------------------------------ probe runs

    def probe_run(
        self, probe: str, labels_name: str | None = None, target: bool = False
    ) -> RunRecord:
        """A probe's own val/test predictions as a run in ``cache/runs/``.

        It has a PGR, like a student's.
        """
        from .probes.inputs import check_probe
        from .vocabulary import check_predicts

        check_predicts(probe)
        check_probe(self.options, probe)
        labels_name = labels_name or self.options.probe.labels
        name = probe_experiment(probe, labels_name)
        return self._node(name, lambda: self._probe_node(probe, labels_name, name), target)

    def _probe_node(self, probe: str, labels_name: str, name: str) -> NodeDef:
        from .labels import weak_run_of
        from .pgr_rule import pgr_fields
        from .probes.inputs import probe_spec
        from .probes.run import find_probe_run, write_probe_run

        layer, layer_choice = self.fit_layer(probe, labels_name)
        spec = replace(probe_spec(self.options, probe, layer), layer_choice=layer_choice)
        activations = self._activations_id(layer)
        seed = self.splits.report.get("seed")
        labels, stored = self._input_unless_stored(
            lambda: self.label_set(labels_name),
            lambda labels: find_probe_run(
                self.cache_dir, self.dataset, spec, labels, activations, seed
            ),
            layer,
        )
        weak = weak_run_of(labels, self.cache_dir)
        ceiling = self._pgr_ceiling() if weak is not None else None

        def find() -> Found:
            if stored is None:
                return Found(None)
            return Found(stored.key, stored, dict(stored.metrics))

        def build():
            with self.store(layer) as store:
                record = write_probe_run(
                    self.cache_dir,
                    store,
                    labels,
                    spec,
                    experiment=name,
                    model=self.options.model.strong_model,
                    seed=seed,
                    pgr=lambda auc, scores: pgr_fields(
                        auc, scores, weak, ceiling, self.options.report.min_gap
                    ),
                    weak=weak,
                    ceiling=ceiling,
                )
            return record, dict(record.metrics)

        return NodeDef(
            find,
            build,
            f"probe {name}: fit {probe} on layer {layer} against {labels.name}",
            self._hint(
                "probe",
                probe=probe,
                labels=labels.name,
                layer=AUTO_LAYER if layer_choice else layer,
            ),
        )

    def transfer(self, saved) -> RunRecord:
        """The saved probe ``saved`` (:func:`w2sprobe.probes.load_probe`) scored on this
        dataset's test split: a ``transfer`` run.  It reads this dataset's activations of the
        probe's model and layer, made as the probe's were (pooling, max length, dtype); when
        none are cached, a UsageError gives the ``w2sprobe extract`` command that makes them."""
        from .cache import ActivationStore, cached_layers
        from .probes.transfer import transfer_run

        made = saved.meta["activations"]
        options = self.options.replace(
            strong_model=saved.meta["model"],
            pooling=made["pooling"],
            max_length=made["max_length"],
            dtype=made["compute_dtype"],
        )
        other = Study(options, self.dataset, self.graph)
        plan = other.extraction_plan([saved.layer])
        found = cached_layers(plan)
        if saved.layer not in found:
            raise UsageError(
                f"no cached activations of layer {saved.layer} of {saved.meta['model']} on "
                f"{self.dataset} made as probe {saved.key}'s were; make them with: "
                + other._hint("extract", layers=str(saved.layer))
            )
        with ActivationStore.open(found[saved.layer]) as store:  # --seed seeds the bootstrap too
            return transfer_run(
                self.cache_dir,
                saved,
                store,
                n_boot=self.options.report.n_boot,
                seed=self.options.workspace.seed,
            )

    def _pgr_ceiling(self) -> RunRecord | None:
        """The ceiling a probe's PGR is measured against: built when missing only where
        :attr:`build_ceiling` says so; else the cached one or None."""
        if self.build_ceiling:
            return self.ceiling()
        return self.ceiling(only_cached=True)

    def probe_pgr(self, run: RunRecord) -> dict:
        """A probe run's PGR fields as they stand now: the recorded PGR, else one measured
        against the weak run behind its labels and a ceiling cached since; when there is none,
        ``pgr_needs`` says what PGR needs and the exact command that builds it."""
        from .pgr_rule import pgr_fields
        from .runs import load_run

        metrics = run.metrics
        if metrics.get("pgr") is not None:
            return {"pgr": metrics["pgr"], "pgr_needs": None}
        weak_ref = metrics.get("weak") or {}
        weak = (
            load_run(run_dir(self.cache_dir, self.dataset, weak_ref["key"]))
            if weak_ref.get("key")
            else None
        )
        if weak is None:
            return {
                "pgr": None,
                "pgr_needs": f"the labels {metrics.get('labels')} come from no weak run of "
                "this workspace, so there is no PGR (it measures a probe of the weak labels: "
                f"--labels {WEAK})",
            }
        ceiling = self.ceiling(only_cached=True)
        if ceiling is not None and metrics.get("auc") is not None:
            scores = run.predictions()["test"].soft  # the rule flags a constant predictor
            fields = pgr_fields(metrics["auc"], scores, weak, ceiling, self.options.report.min_gap)
            return {**fields, "pgr_needs": None}
        hint = self._train_hint("ceiling")
        return {
            "pgr": None,
            "pgr_needs": "the ceiling, which is not built; build it with: "
            f"{hint} (or add --pgr to this command)",
        }


def check_label_set_name(name: str) -> None:
    """A label-set name becomes part of no path, but must be safe to show and to type."""
    if not name or "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise UsageError(f"label set name '{name}' must not contain a path separator or '..'")


def _without_layers(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "layers"}


def _as_list(layers: str | list[int]) -> list:
    return layers if isinstance(layers, list) else [layers]


def _fits(manifest: dict, splits: SplitSet) -> bool:
    """Was a label set made on these splits? (A set without lineage fields is taken on trust;
    its ids are checked against the splits when it is used.)"""
    from .train.plans import split_sizes

    lineage = {
        "dataset_fingerprint": splits.fingerprint,
        "split_sizes": split_sizes(splits),
        "seed": splits.report.get("seed"),
    }
    return all(manifest.get(k, v) == v for k, v in lineage.items())


def _extract_metrics(result) -> dict:
    """What an extraction (or its cache hit) reports: its file, layers, rows and speed."""
    return {
        "key": result.key,
        "path": str(result.path),
        "cache_hit": result.cache_hit,
        "layers": result.layers,
        "rows": result.rows,
        "tokens": result.tokens,
        "seconds": round(result.seconds, 3),
        "tokens_per_second": round(result.tokens_per_second, 1),
        "resumed_rows": result.resumed_rows,
        "world_size": result.world_size,
    }
