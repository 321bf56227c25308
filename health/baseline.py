"""What a constant prediction scores on the validation rows: the bar a trial must clear to have
learned anything (the majority class's accuracy, the training mean's squared error...)."""

from __future__ import annotations

import numpy as np


def constant_baseline(
    objective: str, classification: bool, y_train: np.ndarray, y_val: np.ndarray, loss: str = "mse"
) -> float | None:
    """The objective of the best constant prediction learned from the training rows, on the
    validation rows; None for an objective with no such baseline here."""
    if len(y_train) == 0 or len(y_val) == 0:
        return None
    name = objective.removeprefix("val_")
    if classification:
        labels = np.asarray(y_train).astype(int).reshape(-1)
        truth = np.asarray(y_val).astype(int).reshape(-1)
        counts = np.bincount(labels, minlength=int(max(labels.max(), truth.max())) + 1)
        if name == "accuracy":
            return float(np.mean(truth == int(np.argmax(counts))))
        if name == "loss":
            frequencies = np.clip(counts / counts.sum(), 1e-7, 1.0)
            return float(-np.mean(np.log(frequencies[truth])))
        if name == "auc":
            return 0.5
        return None
    train = np.asarray(y_train, dtype=np.float64)
    truth = np.asarray(y_val, dtype=np.float64)
    if name == "mse" or (name == "loss" and loss == "mse"):
        return float(np.mean((truth - train.mean(axis=0)) ** 2))
    if name == "mae" or (name == "loss" and loss == "mae"):
        return float(np.mean(np.abs(truth - np.median(train, axis=0))))
    return None


def comparable(objective: str, regularizer: str | None) -> bool:
    """Whether ``objective`` can be compared with the baseline: not a loss that includes a
    weight penalty (the constant prediction pays none)."""
    penalized = (regularizer or "none") != "none"
    return not (penalized and objective.removeprefix("val_") == "loss")
