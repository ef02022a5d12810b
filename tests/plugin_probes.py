"""User-defined probes for the plug-in tests: what a researcher writes in their own module."""

from __future__ import annotations

import numpy as np


class CentroidProbe:
    """Soft label = sigmoid(scale * projection on the difference of the label-weighted means)."""

    def __init__(self, scale: float = 1.0, center: bool = True):
        self.scale, self.center = scale, center

    def fit(self, acts, labels):
        w = np.asarray(labels, dtype=np.float64)
        pos = (acts * w[:, None]).sum(0) / w.sum()
        neg = (acts * (1 - w)[:, None]).sum(0) / (1 - w).sum()
        self.direction = pos - neg
        self.offset = (pos + neg) / 2 @ self.direction if self.center else 0.0
        return self

    def predict(self, acts):
        z = self.scale * (np.asarray(acts, dtype=np.float64) @ self.direction - self.offset)
        return 1 / (1 + np.exp(-z))


class NoPredict:
    """Lacks predict: not a probe."""

    def fit(self, acts, labels):
        return self


class FailsOnData(CentroidProbe):
    """Fits, then fails on the data it is given."""

    def fit(self, acts, labels):
        raise ValueError("singular matrix")


class OutOfRange(CentroidProbe):
    """Predicts outside [0, 1]: not soft labels."""

    def predict(self, acts):
        return super().predict(acts) + 2
