"""Activation and token files in ordinary formats: ``cache export`` and ``cache import``.

An export is a folder any tool reads without w2sprobe:

=================  ===========================================================================
``safetensors``    ``activations.safetensors``: ``<split>/layer_016`` (the stored dtype:
                   F16, BF16 or F32) and ``<split>/labels`` (F32); the ids in its metadata
                   (``ids``: JSON ``{split: [id, ...]}``) beside the file's attributes
``npz``            ``activations.npz``: ``<split>.layer_016`` (float16 or float32; bfloat16 is
                   widened to float32, exactly: NumPy has no bfloat16), ``<split>.ids`` (str),
                   ``<split>.labels`` (float32)
``hf``             a Hugging Face ``datasets`` folder (``DatasetDict.load_from_disk``): one
                   split per split, columns ``id``, ``label`` and one fixed-length list column
                   per layer (``layer_016``; bfloat16 widened to float32)
=================  ===========================================================================

A token-level file (``extract --tokens``, :mod:`.tokens`) exports the same way, its layers
(N, K, D) — a list of K lists of D in ``hf`` — with its per-row ``token_ids`` (N, K) int64,
``positions`` (N, K) int32 and ``lengths`` (N,) int32 beside them under the same names.

In every format, ``manifest.json`` holds the file's attributes (model, dataset, pooling or
token spec, layers, ``key`` and the ``manifest`` the key hashes) and, written last,
``w2sprobe_export.json``: the format and the bytes and SHA-256 of every other file.

``cache import`` checks those records and that the key is the hash of the manifest, then
rebuilds the file through the cache's own writer under that key and kind: a round trip gives
back the same values, ids, labels, token columns and key.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import file_record, record_problem, staged_folder, write_json
from ..errors import UsageError
from ..hashing import short_hash
from .encoding import DEFAULT_STORE_DTYPE, decode, encode
from .layout import activation_path, layer_name, lock_path
from .store import ActivationStore
from .writer import PartialActivationFile, SplitData

EXPORT_FORMATS = ("safetensors", "npz", "hf")
EXPORT_RECORD, MANIFEST = "w2sprobe_export.json", "manifest.json"
#: Root attributes of an activation file carried by an export (what the importer rewrites).
CARRIED_ATTRS = (
    "model",
    "model_revision",
    "dataset",
    "dataset_fingerprint",
    "pooling",
    "max_length",
    "num_layers",
    "hidden_size",
    "layers",
    "w2sprobe_version",
    "key",
    "manifest",
    "store_dtype",
    "compression",
)
#: A token file's: its kind and token spec in place of the pooling.
TOKEN_ATTRS = tuple(a for a in CARRIED_ATTRS if a != "pooling") + ("kind", "tokens")
#: The cache kinds an export holds (inventory kinds: pooled activation files, token files).
EXPORT_KINDS = ("acts", "tokens")


@dataclass
class Exported:
    """One activation or token file's contents, as both directions of the exchange see them."""

    attrs: dict
    ids: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    #: (split, layer) -> float activations (float16, float32 or bfloat16 widened to float32):
    #: (N, D) pooled, (N, K, D) token-level
    layers: dict[tuple[str, int], np.ndarray]
    #: (split, name) -> a token file's per-row columns (``token_ids``, ``positions``, ...)
    extras: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    @property
    def is_tokens(self) -> bool:
        return is_token_file(self.attrs)

    def columns(self, split: str) -> dict[str, np.ndarray]:
        """Every array of ``split`` under its stored name: ``layer_016``, then the extras."""
        out = {layer_name(x): self.layers[(split, x)] for x in self.attrs["layers"]}
        return out | {name: self.extras[(split, name)] for name in extra_names(self.attrs)}


def is_token_file(attrs: dict) -> bool:
    from .tokens import TOKENS_DIR

    return attrs.get("kind") == TOKENS_DIR


def extra_names(attrs: dict) -> tuple[str, ...]:
    """The per-row columns a file of these attributes holds beside its layers (none pooled)."""
    if not is_token_file(attrs):
        return ()
    from .tokens import extra_datasets, parse_token_spec

    return tuple(extra_datasets(parse_token_spec(str(attrs["tokens"]))))


def check_format(name: str) -> str:
    if name not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown export format '{name}'; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    return name


def check_target(out: Path, force: bool) -> None:
    """An export never overwrites what is there unless asked."""
    if (out.exists() or out.is_symlink()) and not force:
        raise UsageError(f"{out} already exists; choose another path or pass --force to replace it")


# --------------------------------------------------------------------------- export


def _attrs(raw: dict, carried: tuple[str, ...]) -> dict:
    out = {}
    for name in carried:
        value = raw.get(name)
        if name == "layers":
            value = [int(x) for x in value]
        elif isinstance(value, np.generic):
            value = value.item()
        out[name] = value
    out["store_dtype"] = out["store_dtype"] or DEFAULT_STORE_DTYPE
    out["compression"] = out["compression"] or "none"
    return out


def read_file(path: Path, kind: str = "acts") -> Exported:
    """The whole complete file ``path`` of cache ``kind`` (``acts`` or ``tokens``)."""
    if kind == "tokens":
        from .tokens import TokenStore

        with TokenStore.open(path) as store:
            attrs = _attrs(store.attrs, TOKEN_ATTRS)
            return Exported(
                attrs,
                {s: list(store.ids(s)) for s in store.splits},
                {s: store.labels(s) for s in store.splits},
                {(s, x): store.get(s, x) for s in store.splits for x in store.layers},
                {(s, n): getattr(store, n)(s) for s in store.splits for n in extra_names(attrs)},
            )
    with ActivationStore.open(path) as store:
        return Exported(
            _attrs(store.attrs, CARRIED_ATTRS),
            {s: store.ids(s).tolist() for s in store.splits},
            {s: store.labels(s) for s in store.splits},
            {(s, x): np.asarray(store.get(s, x)) for s in store.splits for x in store.layers},
        )


def export_activations(
    path: Path, out: Path, fmt: str, force: bool = False, kind: str = "acts"
) -> dict:
    """Write the complete activation (or token, ``kind``) file ``path`` to the folder ``out``
    in ``fmt``; returns the export record. ``out`` is filled in a staging folder and renamed
    into place."""
    check_format(fmt)
    out = Path(out)
    check_target(out, force)
    exported = read_file(path, kind)
    try:
        return _write_export(exported, out, fmt, force)
    except OSError as exc:  # not writable (a full disk is DiskFull, said by the staging)
        raise UsageError(f"cannot write the export to {out}: {exc.strerror or exc}") from None


def _write_export(exported: Exported, out: Path, fmt: str, force: bool) -> dict:
    with staged_folder(out, "export") as staging:
        write_json(staging / MANIFEST, exported.attrs, indent=2)
        {"safetensors": _write_safetensors, "npz": _write_npz, "hf": _write_hf}[fmt](
            exported, staging
        )
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        record = {
            "format": fmt,
            "key": exported.attrs["key"],
            "files": {str(p.relative_to(staging)): file_record(p) for p in files},
        }
        write_json(staging / EXPORT_RECORD, record, indent=2)
        if force and (out.exists() or out.is_symlink()):  # replaced only once ours is whole
            shutil.rmtree(out) if out.is_dir() and not out.is_symlink() else out.unlink()
    return record


def _write_safetensors(exported: Exported, folder: Path) -> None:
    import torch
    from safetensors.torch import save_file

    def as_tensor(values: np.ndarray):
        with warnings.catch_warnings():
            # the store's arrays are read-only: torch warns that it shares their memory, but
            # safetensors only reads them (a copy would double the export's memory)
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.from_numpy(np.ascontiguousarray(values))

    bfloat16 = exported.attrs["store_dtype"] == "bfloat16"
    tensors = {}
    for split in exported.ids:
        tensors[f"{split}/labels"] = as_tensor(exported.labels[split])
        for name, values in exported.columns(split).items():
            tensor = as_tensor(values)
            if bfloat16 and name.startswith("layer_"):  # exact: the values are bfloat16's
                tensor = tensor.to(torch.bfloat16)
            tensors[f"{split}/{name}"] = tensor
    metadata = {"ids": json.dumps(exported.ids), "w2sprobe": json.dumps(exported.attrs)}
    save_file(tensors, str(folder / "activations.safetensors"), metadata=metadata)


def _write_npz(exported: Exported, folder: Path) -> None:
    arrays = {}
    for split, ids in exported.ids.items():
        arrays[f"{split}.ids"] = np.asarray(ids, dtype=str)
        arrays[f"{split}.labels"] = exported.labels[split]
        for name, values in exported.columns(split).items():
            arrays[f"{split}.{name}"] = values
    with open(folder / "activations.npz", "wb") as fh:
        np.savez(fh, **arrays)


def _write_hf(exported: Exported, folder: Path) -> None:
    import pyarrow as pa

    from ..data.sources import datasets_quietly

    splits = {}
    for split, ids in exported.ids.items():
        columns = {
            "id": pa.array(list(ids), pa.string()),
            "label": pa.array(exported.labels[split], pa.float32()),
        }
        for name, values in exported.columns(split).items():
            columns[name] = _fixed_lists(pa, values)
        splits[split] = pa.table(columns)
    with datasets_quietly() as datasets:  # our progress and messages only, also under --quiet
        datasets.DatasetDict({s: datasets.Dataset(t) for s, t in splits.items()}).save_to_disk(
            str(folder)
        )


def _fixed_lists(pa, values: np.ndarray):
    """An arrow column of ``values`` (N, ...): fixed-size lists nested once per trailing axis."""
    column = pa.array(values.reshape(-1))
    for width in reversed(values.shape[1:]):
        column = pa.FixedSizeListArray.from_arrays(column, width)
    return column


# --------------------------------------------------------------------------- import


def read_export(folder: Path) -> Exported:
    """An export folder's contents, every file checked against its record and the key
    against its manifest."""
    folder = Path(folder)
    record_path = folder / EXPORT_RECORD
    if not record_path.is_file():
        raise UsageError(f"{folder} is not a w2sprobe export (no {EXPORT_RECORD})")
    try:
        record = json.loads(record_path.read_text())
        attrs = json.loads((folder / MANIFEST).read_text())
        fmt = check_format(record["format"])
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"export {folder} is unreadable: {exc}") from None
    for name, recorded in record.get("files", {}).items():
        problem = record_problem(folder / name, recorded)
        if problem:
            raise UsageError(f"export {folder} is damaged: {name} {problem}")
    _check_attrs(folder, attrs, record)
    reader = {"safetensors": _read_safetensors, "npz": _read_npz, "hf": _read_hf}[fmt]
    names = [layer_name(x) for x in attrs["layers"]] + list(extra_names(attrs))
    try:
        ids, labels, arrays = reader(folder, names)
    except (KeyError, ValueError) as exc:  # the record matched, so the writer made it so
        raise UsageError(f"export {folder} lacks what its manifest lists: {exc}") from None
    shapes = _row_shapes(attrs)
    for (split, name), values in arrays.items():
        expected = (len(ids[split]), *shapes[name])
        if values.shape != expected or labels[split].shape != expected[:1]:
            raise UsageError(
                f"export {folder} is damaged: {split}/{name} has shape {values.shape}, "
                f"its manifest says {expected}"
            )
    layers = {(s, x): arrays[(s, layer_name(x))] for s in ids for x in attrs["layers"]}
    extras = {(s, n): arrays[(s, n)] for s in ids for n in extra_names(attrs)}
    return Exported(attrs, ids, labels, layers, extras)


def _check_attrs(folder: Path, attrs: dict, record: dict) -> None:
    """The attributes an import writes must be the ones the key hashes: the key is the hash
    of the manifest, and every attribute the manifest also states agrees with it."""
    carried = TOKEN_ATTRS if is_token_file(attrs) else CARRIED_ATTRS
    missing = [name for name in carried if name not in attrs]
    if missing:
        raise UsageError(f"export {folder} is unreadable: {MANIFEST} lacks {', '.join(missing)}")
    try:
        manifest = json.loads(attrs["manifest"])
    except (TypeError, ValueError) as exc:
        raise UsageError(f"export {folder} is unreadable: its manifest: {exc}") from None
    key = attrs["key"]
    extra_names(attrs)  # a token spec that does not parse is refused here
    if short_hash(manifest) != key or record.get("key") != key:
        raise UsageError(
            f"export {folder}: its key {key} is not the hash of its manifest "
            f"({short_hash(manifest)}); it was changed after export"
        )
    for name, value in attrs.items():
        if name in manifest and manifest[name] != value:
            raise UsageError(
                f"export {folder}: its {name} {value!r} is not its manifest's "
                f"{manifest[name]!r}; it was changed after export"
            )


def _row_shapes(attrs: dict) -> dict[str, tuple[int, ...]]:
    """Stored name -> the shape of one row: ``(D,)`` or ``(K, D)`` per layer, and a token
    file's columns."""
    hidden = int(attrs["hidden_size"])
    if not is_token_file(attrs):
        return {layer_name(x): (hidden,) for x in attrs["layers"]}
    from .tokens import extra_datasets, parse_token_spec

    spec = parse_token_spec(str(attrs["tokens"]))
    shapes = {layer_name(x): (spec.slots, hidden) for x in attrs["layers"]}
    return shapes | {name: shape for name, (_, shape) in extra_datasets(spec).items()}


def _read_safetensors(folder: Path, names: list[str]):
    from safetensors import safe_open

    with safe_open(str(folder / "activations.safetensors"), framework="pt") as handle:
        ids = json.loads(handle.metadata()["ids"])
        labels = {s: handle.get_tensor(f"{s}/labels").numpy() for s in ids}
        arrays = {(s, n): _floats(handle.get_tensor(f"{s}/{n}")) for s in ids for n in names}
    return ids, labels, arrays


def _floats(tensor) -> np.ndarray:
    import torch

    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _read_npz(folder: Path, names: list[str]):
    with np.load(folder / "activations.npz", allow_pickle=False) as data:
        splits = [name.removesuffix(".ids") for name in data.files if name.endswith(".ids")]
        ids = {s: data[f"{s}.ids"].tolist() for s in splits}
        labels = {s: data[f"{s}.labels"] for s in splits}
        arrays = {(s, n): data[f"{s}.{n}"] for s in splits for n in names}
    return ids, labels, arrays


def _read_hf(folder: Path, names: list[str]):
    from ..data.sources import datasets_quietly

    with datasets_quietly() as datasets:
        splits = datasets.load_from_disk(str(folder))
    ids, labels, arrays = {}, {}, {}
    for split, dataset in splits.items():
        table = dataset.data.table
        ids[split] = table.column("id").to_pylist()
        labels[split] = table.column("label").to_numpy().astype(np.float32)
        for name in names:
            arrays[(split, name)] = _from_fixed_lists(table.column(name).combine_chunks())
    return ids, labels, arrays


def _from_fixed_lists(column) -> np.ndarray:
    """The (N, ...) array of an arrow column of nested fixed-size lists (:func:`_fixed_lists`)."""
    rows, shape = len(column), []
    while hasattr(column.type, "list_size"):
        shape.append(column.type.list_size)
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False).reshape(rows, *shape)


def import_activations(folder: Path, cache_dir: Path) -> tuple[Path, bool]:
    """Rebuild the exported file in ``cache_dir`` under its key and kind; returns (path,
    whether it was written: False when a complete file of that key is there already)."""
    exported = read_export(folder)
    attrs = exported.attrs
    if exported.is_tokens:
        from .tokens import token_path

        path = token_path(cache_dir, attrs["model"], attrs["dataset"], attrs["key"])
    else:
        path = activation_path(cache_dir, attrs["model"], attrs["dataset"], attrs["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(lock_path(path))):  # the lock every writer of this key takes
        if path.is_file():
            return path, False
        _write_file(path, exported)
    return path, True


def _write_file(path: Path, exported: Exported) -> None:
    attrs = exported.attrs
    file_attrs = {**attrs, "layers": np.array(attrs["layers"], dtype=np.int64)}
    splits = [
        SplitData(s, list(exported.ids[s]), np.asarray(exported.labels[s], np.float32))
        for s in exported.ids
    ]
    row_shape, extras = int(attrs["hidden_size"]), None
    if exported.is_tokens:
        from .tokens import extra_datasets, parse_token_spec

        spec = parse_token_spec(str(attrs["tokens"]))
        row_shape, extras = (spec.slots, int(attrs["hidden_size"])), extra_datasets(spec)
    target = PartialActivationFile.open(
        path, file_attrs, splits, list(attrs["layers"]), row_shape, extras
    )
    try:
        for split in splits:
            acts = np.stack([exported.layers[(split.name, layer)] for layer in attrs["layers"]])
            columns = {n: exported.extras[(split.name, n)] for n in extras or {}}
            target.write_window(
                split.name, 0, _as_stored(acts, attrs["store_dtype"]), columns or None
            )
    except BaseException:
        target.close()
        raise
    target.finish()


def _as_stored(acts: np.ndarray, store_dtype: str) -> np.ndarray:
    """Floats ready for the writer; a bfloat16 file's values must be bfloat16 already (an
    edited export is refused rather than silently rounded)."""
    if store_dtype == "bfloat16":
        widened = decode(encode(acts, "bfloat16"), "bfloat16")
        if not np.array_equal(widened, acts.astype(np.float32)):
            raise UsageError("export holds values a bfloat16 file cannot: it was edited")
    return acts
