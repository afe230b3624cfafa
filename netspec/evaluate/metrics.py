"""The metrics of one trained output, computed by scikit-learn (`sklearn.metrics`), never by
formulas of our own.

- classification (categorical or binary cross-entropy): accuracy, per-class precision / recall /
  F1 and support, their macro and weighted means, the confusion matrix (rows: true class,
  columns: predicted class);
- regression (mse, mae, huber): MAE, MSE and R^2.

`decide` turns a model's output and the target data into the class labels (or values) the
metrics compare; the functions here take those and return JSON-ready dicts (None where a value
is undefined, e.g. R^2 of a single example).
"""

from __future__ import annotations

import math

import numpy as np

TASKS = {"classes": "classification", "binary": "classification", "regression": "regression"}


def _number(v) -> float | None:
    """A JSON number, or None for NaN / Inf."""
    v = float(v)
    return v if math.isfinite(v) else None


def decide(kind: str, reads: str, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted), flat, for an output trained as `kind` (a data.TargetSpec kind).

    classes: the arg-max over the class axis (the last) against the labels, or against the
    arg-max of one-hot / probability rows; every position of a sequence output counts.
    binary: class 1 where the output is above 0.5 (0 where the output is a logit, `reads ==
    "logits"`), against targets above 0.5. regression: the values themselves, one column per
    value of an example."""
    n = len(y)
    if kind == "classes":
        pred = y.argmax(axis=-1)
        true = t.argmax(axis=-1) if t.shape == y.shape else t
        return true.reshape(-1).astype(np.int64), pred.reshape(-1).astype(np.int64)
    if kind == "binary":
        threshold = 0.0 if reads == "logits" else 0.5
        pred = (y > threshold).astype(np.int64)
        true = (t.reshape(y.shape) > 0.5).astype(np.int64)
        return true.reshape(-1), pred.reshape(-1)
    return t.reshape(n, -1).astype(np.float64), y.reshape(n, -1).astype(np.float64)


def classification(true: np.ndarray, pred: np.ndarray, classes: int) -> dict:
    """Accuracy, per-class precision / recall / F1 / support, their means, the confusion
    matrix; over the classes 0..classes-1 (a class absent from the data scores 0, not NaN)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(classes))
    p, r, f, s = precision_recall_fscore_support(
        true, pred, labels=labels, average=None, zero_division=0
    )
    out = {
        "task": "classification",
        "examples": len(true),
        "accuracy": _number(accuracy_score(true, pred)),
        "correct": int(np.sum(true == pred)),
        "classes": labels,
        "per_class": {
            "precision": [_number(v) for v in p],
            "recall": [_number(v) for v in r],
            "f1": [_number(v) for v in f],
            "support": [int(v) for v in s],
        },
    }
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            true, pred, labels=labels, average=average, zero_division=0
        )
        out[average] = {"precision": _number(p), "recall": _number(r), "f1": _number(f)}
    out["confusion_matrix"] = confusion_matrix(true, pred, labels=labels).tolist()
    return out


def regression(true: np.ndarray, pred: np.ndarray) -> dict:
    """MAE, MSE and R^2 over every value (several values per example are averaged uniformly);
    R^2 is None with fewer than two examples or targets without variance."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    r2 = None
    if len(true) >= 2 and np.ptp(true, axis=0).min() > 0:
        r2 = _number(r2_score(true, pred))
    return {
        "task": "regression",
        "examples": len(true),
        "mae": _number(mean_absolute_error(true, pred)),
        "mse": _number(mean_squared_error(true, pred)),
        "r2": r2,
    }
