"""Linear separability: how well a logistic regression reads a labeling from one layer."""

from __future__ import annotations

import numpy as np

from ..errors import UsageError


def cv_auc(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, c: float = 1.0) -> float:
    """Cross-validated ROC AUC of a logistic regression predicting ``y >= 0.5`` from ``x``.

    Standardised features, L2 strength ``c`` (sklearn's C), stratified ``folds`` shuffled by
    ``seed``; the AUC is that of all out-of-fold scores together against the same hard labels,
    so it measures how linearly the labeling is readable, not whether it is true.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    hard = (np.asarray(y) >= 0.5).astype(int)
    smaller = min(hard.sum(), len(hard) - hard.sum())
    if smaller < folds:
        raise UsageError(
            f"{folds}-fold separability needs {folds} rows of each class, got {smaller}"
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(
        model, np.asarray(x, dtype=np.float32), hard, cv=splitter, method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(hard, scores))
