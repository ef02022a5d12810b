"""The artifact nodes of one dataset and seed: what each needs, its key, how it is built.

``Study`` is the one place where prerequisites are known.  Every command is a request for some
of its nodes (``train weak`` -> :meth:`Study.weak`, ``relabel`` -> :meth:`Study.relabeled`,
``run`` -> a plan's students), and a node asks for its own inputs, so a command on an empty
cache builds what it needs (saying so) and ``--plan`` / ``--no-build`` work everywhere.  The
:class:`~w2sprobe.graph.Graph` decides cache hit, build, refuse or plan.

Node names (the ``stage`` of each outcome): ``weak``, ``ceiling``, a loss (``xent`` ...) or a
label set name for a student, ``s2s-N`` (``<base>+s2s-N`` for a non-xent base), ``extract``,
``<probe>-probe`` for a probe's own predictions, and ``labels:<name>`` for derived label sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .data import SplitSet, load_splits
from .data.splits import SplitSizes
from .errors import UsageError
from .graph import Blocked, Found, Graph, NodeDef
from .hashing import short_hash
from .labels import (
    LabelSet,
    find_label_set,
    labels_root,
    list_label_sets,
    load_label_set,
    save_label_set,
    sets_named,
)
from .layers import default_probe_layer, extraction_request, layer_range_message, parse_layer_spec
from .options import Options
from .runs import (
    RunRecord,
    SplitPredictions,
    find_runs,
    load_run,
    run_dir,
    write_manifest,
    write_metrics,
    write_predictions,
)

FILTER, RELABEL = "filter", "relabel"


@dataclass
class LabelRecipe:
    """How a derived label set is made.

    A probe on the activations, filtering or relabeling a parent.
    """

    kind: str  # filter | relabel
    probe: str
    parent: str = "weak"  # name or key of the parent set
    name: str | None = None

    @property
    def default_name(self) -> str:
        """What it is made of: ``knn-relabel@weak``, ``knn-filter@gt``."""
        return f"{self.legacy_name}@{self.parent}"

    @property
    def legacy_name(self) -> str:
        """The default name before it named its parent (``knn-relabel``); older caches have it."""
        return f"{self.probe}-{self.kind}"


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

    # ------------------------------------------------------------------ basics

    @cached_property
    def splits(self) -> SplitSet:
        return load_options_splits(self.options, self.dataset)

    def _node(self, stage: str, define) -> object:
        return self.graph.node(self.dataset, self.seed, stage, define)

    def _flags(self) -> str:
        return f"--dataset {self.dataset}" + (f" --seed {self.seed}" if self.seed else "")

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

    def _activations_id(self, layer: int) -> dict:
        """What the activation files that can serve ``layer`` share: their plan's manifest without
        its layer list (a file holding the layer serves, whatever else it stores)."""
        return _without_layers(self.extraction_plan(need=[layer])[1].manifest)

    def _save(self, labels: LabelSet) -> LabelSet:
        """Store a label set derived from finished inputs (a plan writes nothing)."""
        if self.graph.mode != "plan":
            save_label_set(labels, self.cache_dir)
        return labels

    # ------------------------------------------------------------------ trained runs

    def _trained(self, request, what: str, hint: str) -> NodeDef:
        from .train.stages import plan_stage, run_stage

        plan = plan_stage(request, self.cache_dir)

        def find() -> Found:
            record = plan.cached
            return Found(plan.key, record, dict(record.metrics) if record else {})

        def build():
            record = run_stage(plan, self.graph.reporter.progress)
            return record, dict(record.metrics), not record.fresh

        return NodeDef(find, build, what, hint)

    def weak(self) -> RunRecord:
        """The weak model trained on weak_train ground truth (its predictions: the weak labels)."""
        from .train.inputs import stage_request

        def define() -> NodeDef:
            return self._trained(
                stage_request(self.options, self.splits, "weak"),
                f"weak labels: train weak {self.options.model.weak_model} on {self.dataset}",
                f"w2sprobe train weak {self._flags()}",
            )

        return self._node("weak", define)

    def ceiling(self) -> RunRecord:
        """The strong model trained on strong_train ground truth."""
        from .train.inputs import stage_request

        def define() -> NodeDef:
            return self._trained(
                stage_request(self.options, self.splits, "ceiling"),
                f"ceiling: train ceiling {self.options.model.strong_model} on {self.dataset}",
                f"w2sprobe train ceiling {self._flags()}",
            )

        return self._node("ceiling", define)

    def weak_labels(self) -> LabelSet:
        """The ``weak`` label set: the weak run's strong_train, val and test predictions."""
        from .train.stages import weak_label_set

        return self._save(weak_label_set(self.weak(), self.dataset))

    def _weak_or_stored(self) -> LabelSet:
        """``--labels weak``: the configured weak run's labels when cached.

        Else the one stored set named ``weak`` made on these splits (weak labels from elsewhere);
        else the weak run, built.
        """
        from .train.inputs import stage_request
        from .train.stages import check_labels_match, plan_stage

        if (
            plan_stage(stage_request(self.options, self.splits, "weak"), self.cache_dir).cached
            is None
        ):
            stored = [
                m
                for m in list_label_sets(self.cache_dir, self.dataset)
                if m["name"] == "weak" and _fits(m.get("manifest", {}), self.splits)
            ]
            if len(stored) > 1:
                keys = ", ".join(m["key"] for m in stored)
                raise UsageError(
                    f"several weak label sets fit {self.dataset} ({keys}) "
                    "and none is the configured "
                    f"weak model's; choose one with --labels KEY"
                )
            if stored:
                labels = load_label_set(
                    labels_root(self.cache_dir, self.dataset) / stored[0]["key"]
                )
                check_labels_match(labels, self.splits)
                return labels
        return self.weak_labels()

    def student(
        self, labels: LabelSet, loss: str | None = None, experiment: str | None = None
    ) -> RunRecord:
        """The strong model on ``labels``; PGR against the weak run behind them and the ceiling."""
        from .train.inputs import stage_request, weak_run_of
        from .train.stages import default_experiment

        loss = loss or self.options.train.loss
        name = experiment or default_experiment("student", labels, loss)

        def define() -> NodeDef:
            weak = weak_run_of(labels, self.cache_dir)
            if weak is None:
                raise UsageError(
                    f"the weak run behind label set {labels.name} ({labels.key}) is missing; "
                    f"make it with: w2sprobe train weak {self._flags()}"
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
            )
            return self._trained(
                request,
                f"student {name}: train {self.options.model.strong_model} on "
                f"label set {labels.name} with {loss}",
                f"w2sprobe train student --labels {labels.name} --loss {loss} {self._flags()}",
            )

        return self._node(name, define)

    def s2s(self, iteration: int, loss: str | None = None) -> RunRecord:
        """Strong-to-strong iteration ``iteration``: a student on the previous student's labels.

        Iteration 1 trains on the ``loss`` student of the weak labels; every iteration uses
        ``loss``.
        """
        if iteration < 1:
            raise UsageError(f"s2s iterations are numbered from 1, got {iteration}")
        return self._s2s(iteration, loss or self.options.train.loss)[0]

    def _s2s(self, iteration: int, loss: str) -> tuple[RunRecord, LabelSet]:
        """(student, the labels it trained on); iteration 0 is the student of the weak labels."""
        from .train.stages import student_label_set

        if iteration == 0:
            labels = self.weak_labels()
            return self.student(labels, loss), labels
        parent_run, parent_labels = self._s2s(iteration - 1, loss)
        name = s2s_name(iteration, loss)
        labels = self._save(student_label_set(parent_run, parent_labels, name))
        return self.student(labels, loss, experiment=name), labels

    # ------------------------------------------------------------------ activations

    @cached_property
    def _model_layers(self) -> int:
        from .cache import plan_extraction

        request = extraction_request(self.options, self.splits, layers=[0])
        return plan_extraction(request, self.cache_dir).num_layers

    def probe_layer(self) -> int:
        """``--layer``, or the reference's (L+1)//2, checked against the strong model's layers."""
        layer, num_layers = self.options.probe.layer, self._model_layers
        if layer is None:
            return default_probe_layer(num_layers)
        if not 0 <= layer <= num_layers:
            raise UsageError(
                layer_range_message(layer, num_layers, self.options.model.strong_model)
            )
        return layer

    def extraction_plan(self, layers: str | list[int] | None = None, need: list[int] = ()):
        """The keyed extraction of ``layers``.

        ``layers=None`` means ``--layers`` plus the probe layer and ``need``.
        """
        from .cache import plan_extraction

        if layers is not None:  # checked here for the message that says what to set
            model = self.options.model.strong_model
            layers = parse_layer_spec(
                layers, list(range(self._model_layers + 1)), self._model_layers, model
            )
        request = extraction_request(self.options, self.splits, layers=layers)
        plan = plan_extraction(request, self.cache_dir)
        extra = {self.probe_layer(), *need} if layers is None else set()
        if not extra <= set(plan.layers):
            request.layers = sorted({*plan.layers, *extra})
            plan = plan_extraction(request, self.cache_dir)
        return request, plan

    def extraction(self, layers: str | list[int] | None = None, need: list[int] | None = None):
        """The activation file(s) of the strong model; returns the extraction's plan.

        ``layers``: what to extract (None: ``--layers`` plus the probe layer and ``need``);
        ``need``: the layers whose presence in any matching cached file makes this a hit
        (default: every layer of the plan).  Probes pass ``need=[layer]``: a file holding their
        layer serves, whatever else it stores.
        """
        from .cache import cached_layers, extract
        from .cache.lookup import find_cache_hit

        def define() -> NodeDef:
            request, plan = self.extraction_plan(layers, need or ())

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
                result = extract(request, self.cache_dir, progress=self.graph.reporter.progress)
                return plan, _extract_metrics(result), result.cache_hit

            text = ",".join(map(str, plan.layers)) if len(plan.layers) <= 6 else "all"
            return NodeDef(
                find,
                build,
                f"activations: extract {plan.ref.name} layers {text} on {self.dataset}",
                f"w2sprobe extract --layers {text} {self._flags()}",
            )

        stage = "extract" if layers is None else "extract:" + ",".join(map(str, _as_list(layers)))
        return self._node(stage, define)

    def store(self, layer: int):
        """The activation store holding ``layer`` (extracted first when no cached file has it)."""
        from .cache import ActivationStore, find_cached_layer

        return ActivationStore.open(find_cached_layer(self.extraction(need=[layer]), layer))

    def probe_layers(self, spec: str | None) -> list[int]:
        """Layers to probe: ``spec``'s numbers and, for ``all``, every *cached* layer (what is
        missing is extracted first); no spec: the probe layer."""
        from .cache import cached_layers

        if spec is None:
            return [self.probe_layer()]
        items = [item.strip().lower() for item in str(spec).split(",") if item.strip()]
        explicit = parse_layer_spec(
            [i for i in items if i != "all"],
            [],
            self._model_layers,
            self.options.model.strong_model,
        )
        plan = self.extraction(need=explicit) if explicit else self.extraction()
        every = sorted(cached_layers(plan)) if "all" in items else []
        return sorted({*explicit, *every})

    # ------------------------------------------------------------------ label sets

    def label_set(self, name: str) -> LabelSet:
        """A label set by name or key.

        ``weak`` (built when missing), ``gt`` (the ground truth), ``<probe>-filter`` /
        ``<probe>-relabel`` of the weak labels (built when missing), any stored set, or the key
        of a finished student run (its strong_train and val predictions).
        """
        from .train.stages import check_labels_match, student_label_set

        if name == "weak":
            return self._weak_or_stored()
        if name == "gt":
            from .probes.experiment import ground_truth_labels

            with self.store(self.probe_layer()) as store:
                return ground_truth_labels(store, self.dataset)
        run = load_run(run_dir(self.cache_dir, self.dataset, name))
        if run is not None and run.metrics.get("stage") == "student":
            parent = find_label_set(self.cache_dir, self.dataset, run.metrics["labels_key"])
            return self._save(student_label_set(run, parent, f"student-{run.key}"))
        recipe = _recipe_of(name)
        if recipe is not None and not sets_named(
            list_label_sets(self.cache_dir, self.dataset), name
        ):
            return self.derived(recipe)
        labels = find_label_set(self.cache_dir, self.dataset, name)
        check_labels_match(labels, self.splits)
        return labels

    def derived(self, recipe: LabelRecipe) -> LabelSet:
        """A filtered or relabeled set: ``recipe.probe`` fit on the parent's strong_train labels."""
        from .probes.experiment import filter_label_set, relabel_label_set
        from .probes.inputs import check_probe, probe_spec

        name = recipe.name or recipe.default_name
        check_label_set_name(name)
        check_probe(self.options, recipe.probe)
        contamination = self.options.probe.contamination
        if recipe.kind == FILTER and not 0 < contamination < 1:
            raise UsageError(f"--contamination must be in (0, 1), got {contamination}")

        def define() -> NodeDef:
            layer = self.probe_layer()
            spec = probe_spec(self.options, recipe.probe, layer)
            activations = self._activations_id(layer)
            # A default-named set of an older cache carries the name without its parent.
            names = {name, recipe.legacy_name} if recipe.name is None else {name}

            def stored_set(parent: LabelSet) -> dict | None:
                # A stored set made the same way is a hit; its manifest says how it was made
                # (nothing is added to it, so the keys of sets and of the students trained on
                # them stay as they were).
                wanted = {
                    "kind": recipe.kind,
                    "probe": spec.describe(),
                    "parent": parent.key,
                    **({"contamination": contamination} if recipe.kind == FILTER else {}),
                }
                for meta in list_label_sets(self.cache_dir, self.dataset):
                    manifest = meta.get("manifest", {})
                    if (
                        meta.get("name") in names
                        and all(manifest.get(k) == v for k, v in wanted.items())
                        and _without_layers(manifest.get("activations", {})) == activations
                    ):
                        return meta
                return None

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
                    if recipe.kind == FILTER:
                        outcome = filter_label_set(store, parent, spec, contamination, name)
                        labels, extra = outcome.labels, {"report": outcome.report}
                    else:
                        labels, extra = relabel_label_set(store, parent, spec, name), {}
                save_label_set(labels, self.cache_dir)
                return labels, {
                    "key": labels.key,
                    "sizes": labels.sizes(),
                    "parent": parent.name,
                    **extra,
                }

            verb = "filter" if recipe.kind == FILTER else "relabel"
            return NodeDef(
                find,
                build,
                f"label set {name}: {verb} {parent.name} with {recipe.probe} on layer {layer}",
                f"w2sprobe {verb} --probe {recipe.probe} --labels {recipe.parent} {self._flags()}",
            )

        return self._node(f"labels:{name}", define)

    # ------------------------------------------------------------------ probe runs

    def probe_run(self, probe: str, labels_name: str | None = None) -> RunRecord:
        """A probe's own val/test predictions as a run in ``cache/runs/``.

        It has a PGR, like a student's.
        """
        from .probes.inputs import check_probe

        check_probe(self.options, probe)
        labels_name = labels_name or self.options.probe.labels
        name = f"{probe}-probe" if labels_name == "weak" else f"{probe}-probe@{labels_name}"
        return self._node(name, lambda: self._probe_node(probe, labels_name, name))

    def _probe_node(self, probe: str, labels_name: str, name: str) -> NodeDef:
        from .metrics import accuracy, roc_auc
        from .probes.experiment import evaluate_probe
        from .probes.inputs import probe_spec
        from .train.inputs import weak_run_of
        from .train.stages import pgr_fields

        layer = self.probe_layer()
        spec = probe_spec(self.options, probe, layer)
        activations = self._activations_id(layer)

        def stored_run(labels: LabelSet) -> RunRecord | None:
            # The key names the activation file that served the probe; any file of this
            # extraction holding the layer gives the same probe, so that part is matched
            # without its layer list.
            for record in find_runs(
                self.cache_dir,
                self.dataset,
                stage="probe",
                probe=spec.describe(),
                labels_key=labels.key,
                seed=self.splits.report.get("seed"),
            ):
                if _without_layers(record.metrics.get("activations", {})) == activations:
                    return record
            return None

        labels, stored = self._input_unless_stored(
            lambda: self.label_set(labels_name), stored_run, layer
        )
        weak = weak_run_of(labels, self.cache_dir)
        ceiling = self.ceiling() if weak is not None else None

        def find() -> Found:
            if stored is None:
                return Found(None)
            return Found(stored.key, stored, dict(stored.metrics))

        def build():
            with self.store(layer) as store:
                manifest = {
                    "stage": "probe",
                    "experiment": name,
                    "dataset": self.dataset,
                    "probe": spec.describe(),
                    "labels": {"name": labels.name, "key": labels.key},
                    "activations": store.manifest,
                    "seed": self.splits.report.get("seed"),
                }
                key = short_hash({k: v for k, v in manifest.items() if k != "experiment"})
                folder = run_dir(self.cache_dir, self.dataset, key)
                outcome = evaluate_probe(store, labels, spec)
                truth = {split: store.labels(split) for split in outcome.predictions}
            write_manifest(folder, {"key": key, **manifest})
            write_predictions(
                folder,
                {
                    split: SplitPredictions(
                        outcome.ids[split], outcome.predictions[split], truth[split]
                    )
                    for split in outcome.predictions
                },
            )
            test = outcome.predictions["test"]
            auc = roc_auc(truth["test"], test)
            metrics = {
                "key": key,
                **manifest,
                "model": self.options.model.strong_model,
                "auc": auc,
                "accuracy": accuracy(truth["test"], test),
                "n": len(test),
                "labels": labels.name,
                "labels_key": labels.key,
                "config": spec.describe(),
                **{
                    k: outcome.metrics.get(k)
                    for k in ("train_n", "labels_auc", "auc_minus_labels_auc")
                },
                **pgr_fields(auc, weak, ceiling),
            }
            record = write_metrics(folder, metrics)
            return record, dict(record.metrics)

        return NodeDef(
            find,
            build,
            f"probe {name}: fit {probe} on layer {layer} against {labels.name}",
            f"w2sprobe probe --probe {probe} --labels {labels.name} {self._flags()}",
        )


def s2s_name(iteration: int, loss: str) -> str:
    """``s2s-2`` for the xent chain, ``logconf+s2s-2`` for another loss's."""
    return f"s2s-{iteration}" if loss == "xent" else f"{loss}+s2s-{iteration}"


def _recipe_of(name: str) -> LabelRecipe | None:
    """``knn-filter`` (of the weak labels) or ``knn-relabel@gt`` (of any parent, even another
    derived name such as ``knn-relabel@knn-filter@weak``) -> the recipe that makes it.

    None: not a derived name.
    """
    made, _, parent = name.partition("@")
    probe, _, kind = made.partition("-")
    if (
        kind in (FILTER, RELABEL)
        and probe in ("knn", "logreg", "topo")
        and not (kind == RELABEL and probe == "topo")
    ):
        return LabelRecipe(kind, probe, parent=parent or "weak")
    return None


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
    from .train.stages import split_sizes

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
