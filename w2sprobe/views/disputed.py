"""The most-disputed examples: where a probe's score and the weak label disagree most."""

from __future__ import annotations

import numpy as np


def disputed_order(probe_score: np.ndarray, weak_label: np.ndarray) -> np.ndarray:
    """Row indices by ``|probe_score - weak_label|``, largest first; ties keep row order (a
    stable sort), so the listing is the same on every run."""
    gap = np.abs(np.asarray(probe_score, np.float64) - np.asarray(weak_label, np.float64))
    return np.argsort(-gap, kind="stable")
