"""How two models' representations of the same examples relate: linear CKA and a ridge map.

Linear CKA (Kornblith et al. 2019) of row-aligned X (N, p) and Y (N, q), both centred::

    CKA = ||Xc^T Yc||_F^2 / (||Xc^T Xc||_F * ||Yc^T Yc||_F)

equals the HSIC form on the N x N Gram matrices, but only needs p x q, p x p and q x q
products. They are accumulated over blocks of rows in float64 (centring applied at the end:
Xc^T Yc = X^T Y - n mx my^T), so memory is bounded by the feature sizes, never by N.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

#: Rows read per block: 4096 x 768 float64 is 25 MB.
BLOCK_ROWS = 4096
#: Ridge strengths RidgeCV chooses from (leave-one-out, closed form).
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))


@dataclass
class CrossProducts:
    """Running X^T Y, X^T X, Y^T Y and column sums of row-aligned blocks (float64)."""

    n: int = 0
    sx: np.ndarray | None = None
    sy: np.ndarray | None = None
    xty: np.ndarray | None = None
    xtx: np.ndarray | None = None
    yty: np.ndarray | None = None

    def update(self, x: np.ndarray, y: np.ndarray) -> None:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if len(x) != len(y):
            raise UsageError(f"blocks of {len(x)} and {len(y)} rows are not aligned")
        if self.xty is None:
            self.sx, self.sy = np.zeros(x.shape[1]), np.zeros(y.shape[1])
            self.xty = np.zeros((x.shape[1], y.shape[1]))
            self.xtx = np.zeros((x.shape[1],) * 2)
            self.yty = np.zeros((y.shape[1],) * 2)
        self.n += len(x)
        self.sx += x.sum(0)
        self.sy += y.sum(0)
        self.xty += x.T @ y
        self.xtx += x.T @ x
        self.yty += y.T @ y

    def cka(self) -> float:
        """Linear CKA of everything seen so far."""
        if self.n < 2:
            raise UsageError("linear CKA needs at least 2 rows")
        mx, my = self.sx / self.n, self.sy / self.n
        cross = self.xty - self.n * np.outer(mx, my)
        gx = self.xtx - self.n * np.outer(mx, mx)
        gy = self.yty - self.n * np.outer(my, my)
        denominator = np.linalg.norm(gx) * np.linalg.norm(gy)
        return float(np.sum(cross**2) / denominator) if denominator > 0 else float("nan")


def linear_cka_blocks(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Linear CKA over row-aligned ``(x_block, y_block)`` pairs (a stream: bounded memory)."""
    products = CrossProducts()
    for x, y in pairs:
        products.update(x, y)
    return products.cka()


def linear_cka(x: np.ndarray, y: np.ndarray, block: int = BLOCK_ROWS) -> float:
    """Linear CKA of two row-aligned arrays (memory-mapped ones are read ``block`` rows at a
    time)."""
    if len(x) != len(y):
        raise UsageError(f"CKA needs the same rows: {len(x)} vs {len(y)}")
    return linear_cka_blocks(
        (x[start : start + block], y[start : start + block]) for start in range(0, len(x), block)
    )


def cka_grid(
    sources: dict[int, np.ndarray], targets: dict[int, np.ndarray], block: int = BLOCK_ROWS
) -> dict[tuple[int, int], float]:
    """Linear CKA of every (source layer, target layer) pair of row-aligned arrays.

    Each layer's own centred Gram norm is computed once; a pair then only costs its cross
    product, so a 7 x 13 grid of layers does not redo 91 p x p products.
    """
    rows = {len(a) for a in [*sources.values(), *targets.values()]}
    if len(rows) != 1:
        raise UsageError(f"CKA needs the same rows in every layer, got {sorted(rows)}")
    norms = {("s", k): _gram_norm(a, block) for k, a in sources.items()}
    norms.update({("t", k): _gram_norm(a, block) for k, a in targets.items()})
    out = {}
    for i, x in sources.items():
        for j, y in targets.items():
            denominator = norms[("s", i)] * norms[("t", j)]
            out[(i, j)] = _cross_sq(x, y, block) / denominator if denominator > 0 else float("nan")
    return out


def _blocks(a: np.ndarray, block: int):
    for start in range(0, len(a), block):
        yield np.asarray(a[start : start + block], np.float64)


def _gram_norm(a: np.ndarray, block: int) -> float:
    """||Ac^T Ac||_F, accumulated over row blocks."""
    gram, total = np.zeros((a.shape[1],) * 2), np.zeros(a.shape[1])
    for part in _blocks(a, block):
        gram += part.T @ part
        total += part.sum(0)
    mean = total / len(a)
    return float(np.linalg.norm(gram - len(a) * np.outer(mean, mean)))


def _cross_sq(x: np.ndarray, y: np.ndarray, block: int) -> float:
    """||Xc^T Yc||_F^2, accumulated over row blocks."""
    cross, sx, sy = np.zeros((x.shape[1], y.shape[1])), np.zeros(x.shape[1]), np.zeros(y.shape[1])
    for start in range(0, len(x), block):
        a = np.asarray(x[start : start + block], np.float64)
        b = np.asarray(y[start : start + block], np.float64)
        cross += a.T @ b
        sx += a.sum(0)
        sy += b.sum(0)
    n = len(x)
    return float(np.sum((cross - np.outer(sx, sy) / n) ** 2))


@dataclass
class RidgeMap:
    """A ridge regression from one representation to another, judged on held-out rows."""

    alpha: float
    #: 1 - SSE / SST over every output feature together (the share of the target's total
    #: held-out variance the map explains; sklearn's ``variance_weighted`` R²).
    r2: float
    n_train: int
    n_test: int


def ridge_map(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    alphas: tuple[float, ...] = RIDGE_ALPHAS,
) -> RidgeMap:
    """Fit ``y ~ x`` by RidgeCV (strength by leave-one-out on the training rows) and score
    it on the test rows: how much of the target representation the source one explains."""
    from sklearn.linear_model import RidgeCV

    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise UsageError("the ridge map needs row-aligned source and target activations")
    model = RidgeCV(alphas=alphas).fit(
        np.asarray(x_train, np.float64), np.asarray(y_train, np.float64)
    )
    target = np.asarray(y_test, np.float64)
    residual = target - model.predict(np.asarray(x_test, np.float64))
    total = target - target.mean(0)
    r2 = 1.0 - float(np.sum(residual**2) / np.sum(total**2))
    return RidgeMap(float(model.alpha_), r2, len(x_train), len(x_test))


def alignment_rows(
    weak_fit: dict[int, np.ndarray],
    strong_fit: dict[int, np.ndarray],
    weak_held: dict[int, np.ndarray],
    strong_held: dict[int, np.ndarray],
    target_layer: int,
) -> tuple[list[dict], list[dict]]:
    """The two models' representations of the same rows, compared.

    ``*_fit``: layer -> activations of the rows the CKA and the ridge maps are computed on;
    ``*_held``: the held-out rows each map is scored on. Returns (CKA of every weak x strong
    layer pair, and per weak layer the ridge map onto the strong ``target_layer`` with its
    held-out R²).
    """
    grid = cka_grid(weak_fit, strong_fit)
    cka_rows = [{"weak_layer": i, "strong_layer": j, "cka": v} for (i, j), v in grid.items()]
    ridge_rows = []
    for layer, x in weak_fit.items():
        fit = ridge_map(x, strong_fit[target_layer], weak_held[layer], strong_held[target_layer])
        ridge_rows.append(
            {
                "weak_layer": layer,
                "strong_layer": target_layer,
                "r2": fit.r2,
                "alpha": fit.alpha,
                "n_train": fit.n_train,
                "n_test": fit.n_test,
            }
        )
    return cka_rows, ridge_rows
