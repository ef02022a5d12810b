"""One view of one dataset and layer, computed from arrays (no study, no files)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .alignment import alignment_rows
from .directions import direction_cosine, mean_difference
from .disputed import disputed_order
from .projection import Projection, project_2d
from .separability import cv_auc


@dataclass
class AlignmentInputs:
    """The weak and strong models' activations of the same rows: layer -> (N, D) arrays of the
    rows CKA and the ridge maps are fit on (strong_train) and of held-out rows (test)."""

    weak_fit: dict[int, np.ndarray]
    strong_fit: dict[int, np.ndarray]
    weak_held: dict[int, np.ndarray]
    strong_held: dict[int, np.ndarray]
    weak_model: str = "weak"


@dataclass
class ViewInputs:
    """strong_train as the view sees it: every array aligned with ``ids``."""

    dataset: str
    layer: int
    ids: np.ndarray
    texts: list[str]
    truth: np.ndarray
    weak: np.ndarray
    probe: np.ndarray
    kept: np.ndarray
    #: layer -> its (N, D) activations (read when asked: memory-mapped files stay unread)
    activations: Callable[[int], np.ndarray]
    layers: list[int]
    #: names for the figures and tables: the weak label set, the probe's relabel and filter sets
    names: dict[str, str] = field(default_factory=dict)
    #: the weak model's activations beside these (``view --align``), else None
    alignment: AlignmentInputs | None = None


@dataclass
class View:
    """What ``w2sprobe view`` draws and lists."""

    inputs: ViewInputs
    projection: Projection
    layer_rows: list[dict]
    disputed: list[dict]
    #: CKA of every (weak layer, strong layer) and the ridge maps weak layer -> view layer
    cka_rows: list[dict] | None = None
    ridge_rows: list[dict] | None = None

    @property
    def wrong(self) -> np.ndarray:
        """Rows whose weak label is on the other side of 0.5 from the ground truth."""
        return (self.inputs.weak >= 0.5) != (self.inputs.truth >= 0.5)


def layer_profile(inputs: ViewInputs, folds: int = 5, seed: int = 0) -> list[dict]:
    """Per layer: the truth and weak-label difference-of-means directions' cosine, and the
    cross-validated logistic AUC of each labeling."""
    rows = []
    for layer in inputs.layers:
        x = np.asarray(inputs.activations(layer), dtype=np.float32)
        truth_dir, weak_dir = mean_difference(x, inputs.truth), mean_difference(x, inputs.weak)
        rows.append(
            {
                "layer": layer,
                "cosine": direction_cosine(truth_dir, weak_dir),
                "truth_norm": float(np.linalg.norm(truth_dir)),
                "weak_norm": float(np.linalg.norm(weak_dir)),
                "auc_truth": cv_auc(x, inputs.truth, folds=folds, seed=seed),
                "auc_weak": cv_auc(x, inputs.weak, folds=folds, seed=seed),
            }
        )
    return rows


def disputed_rows(inputs: ViewInputs, top: int) -> list[dict]:
    """The ``top`` rows where the probe's score and the weak label differ most."""
    order = disputed_order(inputs.probe, inputs.weak)[:top]
    return [
        {
            "rank": rank + 1,
            "id": str(inputs.ids[i]),
            "row": int(i),
            "weak_label": float(inputs.weak[i]),
            "probe_score": float(inputs.probe[i]),
            "gap": float(abs(inputs.probe[i] - inputs.weak[i])),
            "ground_truth": int(inputs.truth[i]),
            "kept_by_filter": bool(inputs.kept[i]),
            "text": inputs.texts[i],
        }
        for rank, i in enumerate(order)
    ]


def compute_view(
    inputs: ViewInputs, method: str = "pca", seed: int = 0, top: int = 20, folds: int = 5
) -> View:
    """The projection of the view's layer, the layer profile and the disputed rows."""
    projection = project_2d(inputs.activations(inputs.layer), method, seed)
    view = View(inputs, projection, layer_profile(inputs, folds, seed), disputed_rows(inputs, top))
    if inputs.alignment is not None:
        a = inputs.alignment
        view.cka_rows, view.ridge_rows = alignment_rows(
            a.weak_fit, a.strong_fit, a.weak_held, a.strong_held, inputs.layer
        )
    return view
