"""Predictions and labels are written as the shortest text of their float32 value: exact on
reading back, and no float64 expansion (half the bytes)."""

from __future__ import annotations

import numpy as np

from w2sprobe.labels import LabelSet, load_label_set, save_label_set
from w2sprobe.runs import SplitPredictions, float32_texts, read_predictions, write_predictions


def test_float32_texts_read_back_exactly():
    values = np.random.default_rng(0).random(50_000).astype(np.float32)
    texts = float32_texts(values)
    assert np.array_equal(np.array([float(t) for t in texts], dtype=np.float32), values)
    assert max(len(t) for t in texts) <= 15  # a float64 expansion would be 18-20 characters
    assert float32_texts([0.0, 1.0, 0.5]) == ["0.0", "1.0", "0.5"]


def test_predictions_and_label_sets_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    ids = np.array([f"id{i}" for i in range(300)])
    soft = rng.random(300).astype(np.float32)
    truth = (rng.random(300) > 0.5).astype(np.float32)
    (tmp_path / "run").mkdir()
    write_predictions(tmp_path / "run", {"test": SplitPredictions(ids, soft, truth)})
    read = read_predictions(tmp_path / "run" / "predictions.csv")["test"]
    assert np.array_equal(read.soft.astype(np.float32), soft)
    assert np.array_equal(read.labels.astype(np.float32), truth)
    labels = LabelSet("weak", "toy", {"strong_train": ids}, {"strong_train": soft}, {"made": 1})
    folder = save_label_set(labels, tmp_path / "cache")
    again = load_label_set(folder)
    assert np.array_equal(again.soft["strong_train"], soft) and again.key == labels.key
