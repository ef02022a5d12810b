"""Filter baselines at equal contamination: what a probe's filter must beat, and its bound.

* :class:`RandomFilter` (``filter --probe random``): drops ``round(N * contamination)`` rows
  drawn uniformly at random (seeded), so its precision is the mislabel rate in expectation --
  a probe filter below it finds mislabelled rows worse than chance.
* :class:`OracleFilter` (``filter --probe oracle``): drops the rows whose weak label is
  furthest from the ground truth, ``|label - truth|`` highest first.  It **uses ground truth**
  (an upper bound, not a method): its precision is 1.0 whenever the contamination is at most
  the mislabel rate.  Every output of it says so (its key's ``uses_ground_truth``, the
  command's line, the report's label).

Neither predicts anything: they filter only (train and val, each split on its own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UsageError
from .base import FilterResult, check_contamination, check_labels, filter_by_score


class _Baseline:
    """What the filter machinery asks of a probe, for a filter that predicts nothing."""

    name = ""
    #: Each split (train, val) is filtered on its own, never scored by a train-fit probe.
    filters_each_split = True
    uses_ground_truth = False

    def __init__(self, device: Any = "cpu", **params: Any):
        self.params = params

    def fit(self, acts, labels):
        raise UsageError(f"'{self.name}' is a filter baseline: it filters, it predicts nothing")

    predict = predict_fit_set = fit


class RandomFilter(_Baseline):
    """Uniform removal, seeded: the rows with the highest of ``N`` uniform draws go."""

    name = "random"

    def __init__(self, seed: int = 0, device: Any = "cpu"):
        self.seed = int(seed)

    def filter(self, acts, labels, contamination: float, truth=None) -> FilterResult:
        n = check_labels(labels, len(acts)).size
        draws = np.random.default_rng([self.seed, n]).random(n)
        return filter_by_score(draws.astype(np.float32), check_contamination(contamination))


class OracleFilter(_Baseline):
    """Drops the rows whose label is furthest from the ground truth (uses ground truth)."""

    name = "oracle"
    uses_ground_truth = True

    def filter(self, acts, labels, contamination: float, truth=None) -> FilterResult:
        soft = check_labels(labels, len(acts))
        if truth is None:
            raise UsageError("the oracle filter needs the ground truth of the rows it filters")
        distance = np.abs(soft - check_labels(truth, soft.size))
        return filter_by_score(distance, check_contamination(contamination))
