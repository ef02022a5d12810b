"""Fitted probes as cache entries: saved as they are fit, loaded by key, applied anywhere.

One fitted probe lives in ``<cache>/probes/<dataset>/<key>/``, filled in a staging folder and
renamed into place in one step (:func:`w2sprobe.atomic.staged_folder`):

* ``params.npz`` -- plain arrays, read with ``allow_pickle=False`` (nothing is unpickled):

  - ``logreg``: ``coef`` (D,) and ``intercept`` (), and with ``standardize`` the ``shift`` and
    ``scale`` (D,) it standardises by: ``sigmoid(((x - shift) / scale) . coef + intercept)``;
  - ``massmean``: ``direction`` (D,), ``midpoint`` (D,), ``bias`` ():
    ``sigmoid(x . direction + bias)``;
  - ``mlp``: ``w1`` (D, H), ``b1`` (H,), ``w2`` (H, 1), ``b2`` (1,) and ``shift``/``scale``;
  - kNN, TopoFilter and plug-ins (your class, any scikit-learn estimator) have no weights of
    their own to store: they are **refit on load** from what the entry references -- the
    activation file it was fit on (found by its manifest, as every probe finds one), the
    strong_train rows (``train_rows``) and the soft labels it was fit on (``train_labels``,
    stored here, so a label set that is not itself cached -- ground truth, a student's
    predictions -- still serves), and the parameters in ``probe.json``.  A kNN probe *is* its
    training points, so this is its exact state.  A plug-in is rebuilt from its import path
    and parameters, and only when the installed class is the one it was fit with (the
    distribution version, or the source file's hash, recorded in its key).  Every refit is
    checked against ``check_scores`` (the scores the probe gave the first test rows when it
    was fit): an estimator whose fit is not deterministic (say, no ``random_state``) is
    refused, never silently different.  No pickle, so loading a probe runs no code except the
    probe class it names.

* ``probe.json`` -- written last (its presence marks the entry complete): the key, the probe's
  config (:meth:`ProbeSpec.describe`) and layer, the label set's name and key, the activation
  file's manifest and key, the model, the seed, the hidden size, ``storage`` (``parameters``
  or ``refit``), the value ``--k auto`` / ``--l2 auto`` chose, and ``files``: the byte count
  and SHA-256 of ``params.npz`` with its arrays' shapes.  A reader checks them first and
  refuses a damaged entry with one line naming ``w2sprobe cache rm KEY``.

The key hashes what the probe is made of (dataset, probe config and layer, label-set key,
activation manifest without its layer list, seed): fitting the same probe again finds it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..atomic import file_record, record_problem, staged_folder, write_into
from ..errors import UsageError, first_line
from ..hashing import short_hash
from ..workspace import DEFAULT_CACHE_DIR, cache_of, kind_root, rm_hint, slug_dir
from .base import is_tensor

PROBE_JSON, PARAMS = "probe.json", "params.npz"
#: How a probe is stored: its fitted arrays, or what it is refit from on load.
PARAMETERS, REFIT = "parameters", "refit"
#: Test rows whose scores at fit time every refit must reproduce.
CHECK_ROWS = 32
#: Shortest key prefix :func:`find_probe` accepts (as ``cache rm``).
MIN_PREFIX = 4


def probes_root(cache_dir: Path, dataset: str) -> Path:
    return slug_dir(kind_root(cache_dir, "probes"), dataset)


def probe_folders(cache_dir: Path) -> list[Path]:
    """Every probe folder ``probes/<dataset>/<key>/`` (dot-named ones are writers' staging)."""
    root = kind_root(cache_dir, "probes")
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.glob("*/*")
        if p.is_dir() and not p.name.startswith(".") and not p.parent.name.startswith(".")
    )


def probe_key(dataset: str, described: dict, labels_key: str, activations: dict, seed) -> str:
    """The key of a fitted probe: a hash of everything it is made of."""
    return short_hash(
        {
            "artifact": "probe",
            "dataset": dataset,
            "probe": described,
            "labels": labels_key,
            "activations": _without_layers(activations),
            "seed": seed,
        }
    )


# --------------------------------------------------------------------------- saving


def save_probe(cache_dir: Path, store, labels, outcome, *, model: str, seed) -> str:
    """Write the probe ``outcome.probe`` (fit by :func:`~.experiment.evaluate_probe` on
    ``store``'s strong_train rows ``outcome.train_rows`` against ``labels``) as a cache entry;
    returns its key.  An entry of the same key already there is kept as it is."""
    spec = outcome.spec
    described = spec.describe()
    key = probe_key(labels.dataset, described, labels.key, store.manifest, seed)
    target = probes_root(cache_dir, labels.dataset) / key
    if (target / PROBE_JSON).is_file():
        return key
    fitted = _unwrap(outcome.probe)
    weights = _weights(fitted)
    test = outcome.predictions["test"][:CHECK_ROWS]
    arrays = {"check_scores": np.asarray(test, dtype=np.float32)}
    if weights is None:  # refit on load: what it was fit on
        rows = np.asarray(outcome.train_rows, dtype=np.int64)
        arrays |= {
            "train_rows": rows,
            "train_labels": np.asarray(outcome.train_labels, dtype=np.float32),
        }
    else:
        arrays |= weights
    chosen = getattr(outcome.probe, "chosen_", None)
    with staged_folder(target, "probes") as staging:
        write_into(staging, PARAMS, _npz_bytes(arrays))
        meta = {
            "key": key,
            "dataset": labels.dataset,
            "model": model,
            "probe": described,
            "layer": spec.layer,
            "labels": {"name": labels.name, "key": labels.key},
            "activations": _without_layers(store.manifest),
            "activations_key": Path(store.path).name.removesuffix(".h5"),
            # acts/<model>/<dataset>/<key>.h5: where a refit looks for a file of this manifest
            "activations_file": "/".join(Path(store.path).parts[-4:]),
            "hidden_size": int(store.get("test", spec.layer, rows=slice(0, 1)).shape[1]),
            "seed": seed,
            "storage": REFIT if weights is None else PARAMETERS,
            **({"chosen": chosen} if chosen else {}),
            "train_n": int(len(outcome.train_rows)),
            "train_ids_sha256": _ids_digest(store.ids("strong_train")[outcome.train_rows]),
            "check": {"split": "test", "rows": int(len(test))},
            "created": time.time(),  # not part of the key
            "files": {
                PARAMS: {
                    **file_record(staging / PARAMS),
                    "arrays": {k: list(v.shape) for k, v in arrays.items()},
                }
            },
        }
        text = json.dumps(meta, indent=2, sort_keys=True, default=str)
        write_into(staging, PROBE_JSON, text.encode())
    return key


def _unwrap(probe):
    """The probe that did the work: for ``--k auto`` / ``--l2 auto``, the chosen one."""
    from .auto import AutoProbe

    return probe.probe if isinstance(probe, AutoProbe) else probe


def _weights(probe) -> dict[str, np.ndarray] | None:
    """The fitted arrays of a built-in parametric probe; None for a probe refit on load."""
    if _is_instance(probe, "logistic", "LogisticProbe"):
        arrays = {"coef": _np(probe._w), "intercept": _np(probe._b)}
        if probe.standardize:
            arrays |= {"shift": _np(probe._shift), "scale": _np(probe._scale)}
        return arrays
    if _is_instance(probe, "massmean", "MassMeanProbe"):
        return {
            "direction": probe.direction_,
            "midpoint": probe.midpoint_,
            "bias": np.asarray(probe.bias_, dtype=np.float64),
        }
    if _is_instance(probe, "mlp", "MlpProbe"):
        w1, b1, w2, b2 = (_np(p) for p in probe._params)
        return {
            "w1": w1,
            "b1": b1,
            "w2": w2,
            "b2": b2,
            "shift": _np(probe._shift),
            "scale": _np(probe._scale),
        }
    return None


def _is_instance(probe, module: str, cls: str) -> bool:
    """``isinstance(probe, w2sprobe.probes.<module>.<cls>)`` without importing the module (and
    torch with it): a probe of that class exists only once its module is imported."""
    loaded = sys.modules.get(f"w2sprobe.probes.{module}")
    return loaded is not None and isinstance(probe, getattr(loaded, cls))


def _np(values) -> np.ndarray:
    """A probe's fitted array (numpy, or a torch tensor where its math ran in torch) as numpy."""
    return values.detach().cpu().numpy() if is_tensor(values) else np.asarray(values)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _ids_digest(ids) -> str:
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


# --------------------------------------------------------------------------- loading


@dataclass
class SavedProbe:
    """A fitted probe read back from the cache (:func:`load_probe`).

    ``predict(acts)`` scores new activations (rows of the layer it was fit on, of a model of
    the same hidden size) as soft labels in [0, 1]; ``direction`` is its direction in the
    activations' own space where it has one; ``meta`` is its ``probe.json``.
    """

    key: str
    folder: Path
    meta: dict
    probe: Any

    @property
    def dataset(self) -> str:
        return self.meta["dataset"]

    @property
    def layer(self) -> int:
        return int(self.meta["layer"])

    @property
    def name(self) -> str:
        return str(self.meta["probe"]["probe"])

    @property
    def hidden_size(self) -> int:
        return int(self.meta["hidden_size"])

    def predict(self, acts) -> np.ndarray:
        """Soft labels (M,) float32 of the rows ``acts`` (M, D), D the hidden size it was fit on."""
        shape = getattr(acts, "shape", None) or np.shape(acts)
        if len(shape) != 2 or shape[1] != self.hidden_size:
            raise UsageError(
                f"probe {self.key} was fit on {self.hidden_size}-wide activations (layer "
                f"{self.layer} of {self.meta.get('model')}); got shape {tuple(shape)}"
            )
        return np.asarray(self.probe.predict(acts), dtype=np.float32)

    @property
    def direction(self) -> np.ndarray | None:
        """The probe's direction in activation space: logreg's weights (divided by the
        standardisation's scale, when it standardises), mass-mean's ``mu+ - mu-``; None for
        probes without one (kNN, TopoFilter, MLP, plug-ins)."""
        probe = self.probe
        if self.name == "logreg":
            coef = _np(probe._w).astype(np.float64)
            return coef / _np(probe._scale) if probe.standardize else coef
        if self.name == "massmean":
            return np.asarray(probe.direction_)
        return None


def default_cache_dir() -> Path:
    """``$W2SPROBE_CACHE``, else ``./cache`` (as the commands choose it)."""
    return Path(os.environ.get("W2SPROBE_CACHE") or DEFAULT_CACHE_DIR)


def load_probe(key: str, cache_dir: Path | str | None = None, device: str = "cpu") -> SavedProbe:
    """The fitted probe ``key`` (or a unique prefix of 4+ characters) of the cache, ready to
    ``predict``: its arrays, or (kNN, TopoFilter, plug-ins) refit from the activations and
    labels it references.  An unknown key or a damaged entry is a UsageError."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = find_probe(cache_dir, key)
    problems = verify_probe(folder)
    if problems:
        _damaged(folder, problems[0])
    meta = read_probe_meta(folder)
    with np.load(folder / PARAMS, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    config = _config(meta)
    probe = config.build(device)
    if meta["storage"] == PARAMETERS:
        _restore(meta["probe"]["probe"], probe, arrays)
    else:
        _refit(cache_dir, folder, meta, probe, arrays)
    return SavedProbe(folder.name, folder, meta, probe)


def probe_exists(cache_dir: Path, dataset: str, key: str | None) -> bool:
    """Whether the probe entry ``key`` of ``dataset`` is in the cache (complete)."""
    return bool(key) and (probes_root(cache_dir, dataset) / key / PROBE_JSON).is_file()


def find_probe(cache_dir: Path, key: str) -> Path:
    """The folder of the probe whose key is ``key`` or starts with it (4+ characters)."""
    folders = probe_folders(cache_dir)
    matches = [f for f in folders if f.name == key] or (
        [f for f in folders if f.name.startswith(key)] if len(key) >= MIN_PREFIX else []
    )
    if len(matches) == 1:
        return matches[0]
    root = kind_root(Path(cache_dir), "probes").absolute()
    if not matches:
        return _no_probe(key, root)
    listed = ", ".join(f.name for f in matches[:6])
    raise UsageError(f"probe key '{key}' is ambiguous: {listed}; give the whole key")


def _no_probe(key: str, root: Path) -> NoReturn:
    raise UsageError(
        f"no fitted probe under {root} has key '{key}'; w2sprobe cache ls probes lists them"
    )


def read_probe_meta(folder: Path) -> dict | None:
    """``probe.json`` of a probe folder, or None when missing or unreadable (cheap)."""
    try:
        meta = json.loads((Path(folder) / PROBE_JSON).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def verify_probe(folder: Path) -> list[str]:
    """Problems of one probe entry (empty: intact): its ``probe.json`` names what a probe
    needs, and ``params.npz`` is what it recorded writing (bytes, SHA-256, arrays)."""
    folder = Path(folder)
    meta = read_probe_meta(folder)
    if meta is None:
        return [f"{PROBE_JSON} is missing or unreadable"]
    for name in ("key", "dataset", "probe", "layer", "hidden_size", "storage", "files"):
        if name not in meta:
            return [f"{PROBE_JSON} has no '{name}'"]
    if meta["storage"] not in (PARAMETERS, REFIT):
        return [f"{PROBE_JSON}: unknown storage {meta['storage']!r}"]
    record = (meta.get("files") or {}).get(PARAMS)
    if not isinstance(record, dict):
        return [f"{PROBE_JSON} records no {PARAMS}"]
    problem = record_problem(folder / PARAMS, record)
    if problem:
        return [problem]
    try:
        with np.load(folder / PARAMS, allow_pickle=False) as npz:
            shapes = {name: list(npz[name].shape) for name in npz.files}
    except (OSError, ValueError, KeyError) as exc:
        return [f"{PARAMS} is unreadable ({first_line(exc)})"]
    if shapes != record.get("arrays"):
        return [f"{PARAMS} holds {shapes}, its {PROBE_JSON} says {record.get('arrays')}"]
    return []


def _damaged(folder: Path, problem: str) -> NoReturn:
    hint = rm_hint(cache_of(folder, "probes"), folder.name)
    raise UsageError(f"probe {folder.name} is damaged: {problem}; remove it with: {hint}")


def _config(meta: dict):
    """The probe's config from its recorded description (an ``auto`` value: the one chosen).
    A plug-in must still be the class it was fit with."""
    from ..vocabulary import is_plugin, probe_kind

    described = dict(meta["probe"])
    name = described.pop("probe")
    described.pop("layer", None)
    described.pop("layer_from", None)  # how the layer was chosen (--layer auto), not a parameter
    if is_plugin(name):
        from .plugin import plugin_config

        pairs = [f"{k}={v!r}" for k, v in (described.get("params") or {}).items()]
        config = plugin_config(name, pairs)
        now = json.loads(json.dumps(config.params(), default=str))
        if now != described:
            differ = sorted(k for k in set(now) | set(described) if now.get(k) != described.get(k))
            raise UsageError(
                f"probe {meta['key']} was fit with another {name} than the one installed "
                f"(differs in {', '.join(differ)}): it cannot be refit as it was"
            )
        return config
    chosen = meta.get("chosen")
    if chosen:
        described[chosen["param"]] = chosen["value"]
    return probe_kind(name).config_class()(**described)


def _restore(name: str, probe, arrays: dict[str, np.ndarray]) -> None:
    """Put the stored arrays into a fresh built-in probe: it predicts exactly as when fit."""

    def tensor(name: str):
        import torch

        return torch.from_numpy(np.array(arrays[name])).to(probe.device)

    if name == "logreg":  # numpy on the CPU, torch on a GPU: where the probe's math runs
        probe._w, probe._b = probe._array(arrays["coef"]), probe._array(arrays["intercept"])
        probe.coef_, probe.intercept_ = arrays["coef"], float(arrays["intercept"])
        if probe.standardize:
            probe._shift, probe._scale = (
                probe._array(arrays["shift"]),
                probe._array(arrays["scale"]),
            )
    elif name == "massmean":
        probe.direction_, probe.midpoint_ = arrays["direction"], arrays["midpoint"]
        probe.bias_ = float(arrays["bias"])
    elif name == "mlp":
        probe._params = [tensor(n) for n in ("w1", "b1", "w2", "b2")]
        probe._shift, probe._scale = tensor("shift"), tensor("scale")
    else:  # pragma: no cover - storage says parameters only for the three above
        raise UsageError(f"probe kind {name} stores no parameters")


def _refit(cache_dir: Path, folder: Path, meta: dict, probe, arrays: dict) -> None:
    """Fit ``probe`` again on the rows and labels it was fit on, and check it scores the first
    test rows as it did then."""
    from ..cache import ActivationStore

    path = _activation_file(cache_dir, meta)
    layer, rows = int(meta["layer"]), arrays["train_rows"]
    with ActivationStore.open(path) as store:
        if _ids_digest(store.ids("strong_train")[rows]) != meta.get("train_ids_sha256"):
            raise UsageError(
                f"probe {meta['key']}: the strong_train rows of {path.name} are not the ones it "
                "was fit on"
            )
        train = np.asarray(store.get("strong_train", layer))[rows]
        check = arrays["check_scores"]
        test = np.asarray(store.get("test", layer, rows=slice(0, len(check))))
    probe.fit(train, arrays["train_labels"])
    again = np.asarray(probe.predict(test), dtype=np.float32)
    if again.shape != check.shape or not np.allclose(again, check, rtol=0, atol=1e-5):
        raise UsageError(
            f"probe {meta['key']} refit does not reproduce the scores it gave when it was fit "
            "(is its fit deterministic? give an estimator a random_state); "
            f"remove it with: {rm_hint(cache_of(folder, 'probes'), folder.name)}"
        )


def _activation_file(cache_dir: Path, meta: dict) -> Path:
    """A complete activation file made as the probe's (its manifest, any layer set) that holds
    its layer; the one :func:`w2sprobe.cache.lookup.cached_layers` would pick."""
    from ..cache import ActivationStore
    from ..cache.store import serving_order

    layer = int(meta["layer"])
    folder = (Path(cache_dir) / meta["activations_file"]).parent
    holders = []
    for path in sorted(folder.glob("*.h5")) if folder.is_dir() else []:
        try:
            with ActivationStore.open(path) as store:
                if _without_layers(store.manifest) == meta["activations"] and layer in store.layers:
                    holders.append((path, store.layers))
        except UsageError:
            continue
    if not holders:
        raise UsageError(
            f"probe {meta['key']} is refit from the activations it was fit on (layer {layer} "
            f"of {meta.get('model')} on {meta['dataset']}), and no cached file holds them any "
            f"more (looked in {folder}); extract them again with the flags it was fit with"
        )
    return sorted(holders, key=serving_order)[0][0]


def _without_layers(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "layers"}
