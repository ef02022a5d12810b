"""Activation files in ordinary formats: ``cache export`` and ``cache import``.

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

and, in every format, ``manifest.json``: the activation file's attributes (model, dataset,
pooling, layers, ``key`` and the ``manifest`` the key hashes) and, written last,
``w2sprobe_export.json``: the format and the bytes and SHA-256 of every other file.

``cache import`` checks those records and that the key is the hash of the manifest, then
rebuilds the activation file through the cache's own writer under that key: a round trip
gives back the same values, ids, labels and key.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
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


@dataclass
class Exported:
    """One activation file's contents, as both directions of the exchange see them."""

    attrs: dict
    ids: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    #: (split, layer) -> float activations (float16, float32 or bfloat16 widened to float32)
    layers: dict[tuple[str, int], np.ndarray]


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


def _attrs(store: ActivationStore) -> dict:
    raw = store.attrs
    out = {}
    for name in CARRIED_ATTRS:
        value = raw.get(name)
        if name == "layers":
            value = [int(x) for x in value]
        elif isinstance(value, np.generic):
            value = value.item()
        out[name] = value
    out["store_dtype"] = out["store_dtype"] or DEFAULT_STORE_DTYPE
    out["compression"] = out["compression"] or "none"
    return out


def export_activations(path: Path, out: Path, fmt: str, force: bool = False) -> dict:
    """Write the complete activation file ``path`` to the folder ``out`` in ``fmt``; returns
    the export record. ``out`` is filled in a staging folder and renamed into place."""
    check_format(fmt)
    out = Path(out)
    check_target(out, force)
    with ActivationStore.open(path) as store:
        attrs = _attrs(store)
        with staged_folder(out, "export") as staging:
            write_json(staging / MANIFEST, attrs, indent=2)
            {"safetensors": _write_safetensors, "npz": _write_npz, "hf": _write_hf}[fmt](
                store, attrs, staging
            )
            files = sorted(p for p in staging.rglob("*") if p.is_file())
            record = {
                "format": fmt,
                "key": attrs["key"],
                "files": {str(p.relative_to(staging)): file_record(p) for p in files},
            }
            write_json(staging / EXPORT_RECORD, record, indent=2)
            if force and (out.exists() or out.is_symlink()):  # replaced only once ours is whole
                shutil.rmtree(out) if out.is_dir() and not out.is_symlink() else out.unlink()
    return record


def _write_safetensors(store: ActivationStore, attrs: dict, folder: Path) -> None:
    import torch
    from safetensors.torch import save_file

    tensors, ids = {}, {}
    for split in store.splits:
        ids[split] = store.ids(split).tolist()
        tensors[f"{split}/labels"] = torch.from_numpy(np.ascontiguousarray(store.labels(split)))
        for layer in store.layers:
            values = np.ascontiguousarray(store.get(split, layer))
            tensor = torch.from_numpy(values)
            if attrs["store_dtype"] == "bfloat16":  # exact: the values are bfloat16's
                tensor = tensor.to(torch.bfloat16)
            tensors[f"{split}/{layer_name(layer)}"] = tensor
    metadata = {"ids": json.dumps(ids), "w2sprobe": json.dumps(attrs)}
    save_file(tensors, str(folder / "activations.safetensors"), metadata=metadata)


def _write_npz(store: ActivationStore, attrs: dict, folder: Path) -> None:
    arrays = {}
    for split in store.splits:
        arrays[f"{split}.ids"] = store.ids(split).astype(str)
        arrays[f"{split}.labels"] = store.labels(split)
        for layer in store.layers:
            arrays[f"{split}.{layer_name(layer)}"] = np.asarray(store.get(split, layer))
    with open(folder / "activations.npz", "wb") as fh:
        np.savez(fh, **arrays)


def _write_hf(store: ActivationStore, attrs: dict, folder: Path) -> None:
    import pyarrow as pa
    from datasets import Dataset, DatasetDict

    splits = {}
    for split in store.splits:
        columns = {
            "id": pa.array(store.ids(split).tolist(), pa.string()),
            "label": pa.array(store.labels(split), pa.float32()),
        }
        for layer in store.layers:
            values = np.asarray(store.get(split, layer))
            flat = pa.array(values.reshape(-1))
            columns[layer_name(layer)] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        splits[split] = Dataset(pa.table(columns))
    DatasetDict(splits).save_to_disk(str(folder))


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
    manifest = json.loads(attrs["manifest"])
    if short_hash(manifest) != attrs["key"] or record.get("key") != attrs["key"]:
        raise UsageError(
            f"export {folder}: its key {attrs['key']} is not the hash of its manifest "
            f"({short_hash(manifest)}); it was changed after export"
        )
    reader = {"safetensors": _read_safetensors, "npz": _read_npz, "hf": _read_hf}[fmt]
    ids, labels, layers = reader(folder, attrs)
    return Exported(attrs, ids, labels, layers)


def _read_safetensors(folder: Path, attrs: dict):
    from safetensors import safe_open

    with safe_open(str(folder / "activations.safetensors"), framework="pt") as handle:
        ids = json.loads(handle.metadata()["ids"])
        labels = {s: handle.get_tensor(f"{s}/labels").numpy() for s in ids}
        layers = {
            (s, layer): _floats(handle.get_tensor(f"{s}/{layer_name(layer)}"))
            for s in ids
            for layer in attrs["layers"]
        }
    return ids, labels, layers


def _floats(tensor) -> np.ndarray:
    import torch

    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _read_npz(folder: Path, attrs: dict):
    with np.load(folder / "activations.npz", allow_pickle=False) as data:
        splits = [name.removesuffix(".ids") for name in data.files if name.endswith(".ids")]
        ids = {s: data[f"{s}.ids"].tolist() for s in splits}
        labels = {s: data[f"{s}.labels"] for s in splits}
        layers = {
            (s, layer): data[f"{s}.{layer_name(layer)}"]
            for s in splits
            for layer in attrs["layers"]
        }
    return ids, labels, layers


def _read_hf(folder: Path, attrs: dict):
    from datasets import load_from_disk

    splits = load_from_disk(str(folder))
    ids, labels, layers = {}, {}, {}
    for split, dataset in splits.items():
        table = dataset.data.table
        ids[split] = table.column("id").to_pylist()
        labels[split] = table.column("label").to_numpy().astype(np.float32)
        for layer in attrs["layers"]:
            column = table.column(layer_name(layer)).combine_chunks()
            layers[(split, layer)] = column.flatten().to_numpy().reshape(len(column), -1)
    return ids, labels, layers


def import_activations(folder: Path, cache_dir: Path) -> tuple[Path, bool]:
    """Rebuild the exported activation file in ``cache_dir`` under its key; returns (path,
    whether it was written: False when a complete file of that key is there already)."""
    exported = read_export(folder)
    attrs = exported.attrs
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
    target = PartialActivationFile.open(
        path, file_attrs, splits, list(attrs["layers"]), int(attrs["hidden_size"])
    )
    try:
        for split in splits:
            acts = np.stack([exported.layers[(split.name, layer)] for layer in attrs["layers"]])
            target.write_window(split.name, 0, _as_stored(acts, attrs["store_dtype"]))
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
