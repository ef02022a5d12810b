"""A seeded 2-D projection of activations: randomized PCA, or UMAP when it is installed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..vocabulary import PROJECTIONS


@dataclass
class Projection:
    """Rows mapped to 2-D: ``coords`` (N, 2) float32, and for PCA the share of the variance
    each axis explains (``None`` for UMAP, whose axes have no such meaning)."""

    method: str
    coords: np.ndarray
    explained: tuple[float, float] | None

    def axis_labels(self) -> tuple[str, str]:
        if self.explained is None:
            return (f"{self.method.upper()} 1", f"{self.method.upper()} 2")
        return tuple(
            f"PC{i + 1} ({share:.1%} of variance)" for i, share in enumerate(self.explained)
        )


def check_projection(method: str) -> None:
    """A projection name that exists, and whose library is installed (one line otherwise)."""
    if method not in PROJECTIONS:
        raise UsageError(f"unknown projection '{method}'; choose one of {', '.join(PROJECTIONS)}")
    if method == "umap":
        try:
            import umap  # noqa: F401 - only its presence is checked here
        except ImportError:
            raise UsageError(
                "--projection umap needs the optional umap-learn package: "
                "pip install 'w2sprobe[umap]' (or use --projection pca)"
            ) from None


def project_2d(x: np.ndarray, method: str = "pca", seed: int = 0) -> Projection:
    """``x`` (N, D) projected to 2-D; the same ``x`` and ``seed`` give the same coordinates.

    PCA is scikit-learn's randomized solver (Halko et al.): on 10k x 768 it costs a fraction of
    a full SVD and its top two components agree with the exact ones to float precision. The
    sign of each component is fixed (largest-magnitude loading positive, as sklearn's
    ``svd_flip``), so a rerun never mirrors the picture.
    """
    check_projection(method)
    data = np.asarray(x, dtype=np.float32)
    if data.ndim != 2 or len(data) < 3:
        raise UsageError(f"a projection needs at least 3 rows of vectors, got shape {data.shape}")
    if method == "umap":
        import umap

        coords = umap.UMAP(n_components=2, random_state=seed).fit_transform(data)
        return Projection(method, np.asarray(coords, dtype=np.float32), None)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="randomized", random_state=seed)
    coords = pca.fit_transform(data)
    share = pca.explained_variance_ratio_
    return Projection(method, coords.astype(np.float32), (float(share[0]), float(share[1])))
