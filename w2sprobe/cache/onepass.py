"""Several activation files from one forward pass: ``extract --pool mean,last`` and ``--tokens``.

Each pooling gets exactly the file a single-pool extraction of it writes — the same key, path,
attributes and values — so every reader, probe and cache hit works unchanged, and the
activation-file contract keeps its one ``pooling`` per file.  A token-level file
(:mod:`.tokens`) rides on the same pass.  Files already cached are read, and only the missing
ones are computed; each is written, resumed and completed on its own (committed-row counters,
``complete`` set last, atomic rename), under its own key lock.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from ..distributed import init_from_env
from ..errors import UsageError
from ..workspace import ensure_writable_dir
from .extraction import Sink, fill_sinks
from .layout import shard_files
from .lookup import find_cache_hit, key_lock
from .plan import ExtractPlan, ExtractResult, ProgressFn, file_attrs, ordered_splits
from .readout import pooler
from .tokens import TokenPlan, TokenStore, extra_datasets, token_extras, token_reducer
from .writer import PartialActivationFile, SplitData


@dataclass
class PassResult:
    """One result per pooled plan (in their order) and the token file's, if one was asked."""

    pooled: list[ExtractResult]
    tokens: ExtractResult | None = None


def extract_pass(
    plans: list[ExtractPlan],
    tokens: TokenPlan | None = None,
    progress: ProgressFn | None = None,
    lock_timeout: float = -1,
) -> PassResult:
    """Cache every plan's file (plans of one request that differ only in pooling) and the token
    file, computing the missing ones in one forward pass over the rows."""
    if not plans:
        raise UsageError("no pooling requested")
    if init_from_env(plans[0].device).enabled:
        raise UsageError("several poolings or --tokens are extracted in one process; drop torchrun")
    for path in {p.path.parent for p in plans} | ({tokens.path.parent} if tokens else set()):
        ensure_writable_dir(path)
    if _all_cached(plans, tokens):
        return _cached(plans, tokens)
    with ExitStack() as locks:
        targets = [*plans, *([tokens] if tokens else [])]
        for target in sorted(targets, key=lambda t: str(t.path)):  # one order: no deadlock
            locks.enter_context(key_lock(target, lock_timeout))
        return _run(plans, tokens, progress)


def token_hit(plan: TokenPlan) -> ExtractResult | None:
    """The complete token file of this key (checked against the plan's manifest), else None."""
    if not plan.path.exists():
        return None
    with TokenStore.open(plan.path) as store:
        if store.manifest != plan.manifest:
            raise UsageError(
                f"cached file {plan.path} was made for a different request (manifest mismatch); "
                "delete it to recompute"
            )
        rows = {split: len(store.lengths(split)) for split in store.splits}
    return ExtractResult(plan.key, plan.path, True, plan.base.layers, rows, manifest=plan.manifest)


def _all_cached(plans: list[ExtractPlan], tokens: TokenPlan | None) -> bool:
    return all(find_cache_hit(p) for p in plans) and (tokens is None or bool(token_hit(tokens)))


def _cached(plans: list[ExtractPlan], tokens: TokenPlan | None) -> PassResult:
    return PassResult([find_cache_hit(p) for p in plans], token_hit(tokens) if tokens else None)


def _run(
    plans: list[ExtractPlan], tokens: TokenPlan | None, progress: ProgressFn | None
) -> PassResult:
    """Under the locks: open a writer for each missing file, fill them all, finish each."""
    hits = {p.key: find_cache_hit(p) for p in plans}  # again: another process may have made some
    cached_tokens = token_hit(tokens) if tokens else None
    missing = [p for p in plans if hits[p.key] is None]
    base = missing[0] if missing else tokens.base
    request = base.request
    splits = ordered_splits(request)
    data = [SplitData(s.name, s.ids, s.labels) for s in splits]
    sinks: list[Sink] = []
    try:
        for plan in missing:
            partial = PartialActivationFile.open(
                plan.path, file_attrs(plan), data, plan.layers, plan.hidden_size
            )
            sinks.append(Sink(partial, pooler(plan.pooling), (plan.hidden_size,)))
        if tokens and cached_tokens is None:
            partial = PartialActivationFile.open(
                tokens.path,
                tokens.attrs(),
                data,
                base.layers,
                tokens.row_shape,
                extra_datasets(tokens.spec),
            )
            spec = tokens.spec
            sinks.append(Sink(partial, token_reducer(spec), tokens.row_shape, token_extras(spec)))
        resumed = [sum(sink.partial.committed(s.name) for s in splits) for sink in sinks]
        texts = {s.name: s.texts for s in splits}
        used, seconds = fill_sinks(sinks, texts, base, request, progress) if sinks else (0, 0.0)
    except BaseException:
        for sink in sinks:
            sink.partial.close()
        raise
    rows = {s.name: len(s.ids) for s in splits}
    made: dict[str, ExtractResult] = {}
    for sink, kept in zip(sinks, resumed):
        path = sink.partial.finish()
        for shard in shard_files(path):  # left by a killed data-parallel run of this key
            shard.unlink(missing_ok=True)
        key = path.name.removesuffix(".h5")
        made[key] = ExtractResult(key, path, False, base.layers, rows, used, seconds, kept)
    pooled = [hits[p.key] or _with_manifest(made[p.key], p.manifest) for p in plans]
    token_result = None
    if tokens:
        token_result = cached_tokens or _with_manifest(made[tokens.key], tokens.manifest)
    return PassResult(pooled, token_result)


def _with_manifest(result: ExtractResult, manifest: dict) -> ExtractResult:
    result.manifest = manifest
    return result
