"""Views of the activation cache: what the representations look like, layer by layer.

The math is on arrays (NumPy, scikit-learn), apart from the files and figures (:mod:`.build`,
:mod:`.figures`, :mod:`.files`), so every number a figure or table shows is tested on its own:

- :mod:`.projection`: a seeded 2-D projection (randomized PCA; UMAP with the optional extra);
- :mod:`.directions`: difference-of-means directions of two labelings and their cosine;
- :mod:`.separability`: cross-validated logistic AUC, how linearly a labeling is readable;
- :mod:`.disputed`: the examples where a probe and the weak labels disagree most;
- :mod:`.alignment`: linear CKA between two activation files in feature space (bounded memory)
  and a ridge map from one to the other with its held-out R².
"""

from .alignment import (
    CrossProducts,
    RidgeMap,
    alignment_rows,
    cka_grid,
    linear_cka,
    linear_cka_blocks,
    ridge_map,
)
from .directions import direction_cosine, mean_difference
from .disputed import disputed_order
from .projection import Projection, project_2d
from .separability import cv_auc

__all__ = [
    "CrossProducts",
    "Projection",
    "RidgeMap",
    "alignment_rows",
    "cka_grid",
    "cv_auc",
    "direction_cosine",
    "disputed_order",
    "linear_cka",
    "linear_cka_blocks",
    "mean_difference",
    "project_2d",
    "ridge_map",
]
