"""Metrics, computed on the model's output (probabilities where the output is a softmax/sigmoid).

Each record's reference is `metric(y, target, attrs) -> float` on numpy arrays, averaged over
the batch (a run's metric is the example-weighted mean over its batches).
"""

from __future__ import annotations

from ..ops.base import Attr
from .record import table

METRICS, metric = table("metric")


@metric(
    "accuracy",
    [Attr("threshold", "float", 0.5, "decision threshold of a single-column output")],
    doc="Fraction of examples classified right: the arg-max over the last axis against class "
    "indices or one-hot rows; a single-column output is class 1 where it is > threshold.",
    torch="(y.argmax(-1) == t).float().mean()",
    notes=["Use threshold 0 on a single-column output that is a logit, not a probability."],
)
def accuracy(y, t, a):
    import numpy as np

    if y.shape[-1] == 1:
        hit = (y > a["threshold"]) == (t.reshape(y.shape) > 0.5)
    else:
        labels = t.argmax(axis=-1) if t.shape == y.shape else t
        hit = y.argmax(axis=-1) == labels
    return float(np.mean(hit))


@metric("mae", [], doc="Mean absolute error.", torch="(y - t).abs().mean()")
def mae(y, t, a):
    import numpy as np

    return float(np.abs(y - t).mean())


@metric("mse", [], doc="Mean squared error.", torch="((y - t) ** 2).mean()")
def mse(y, t, a):
    return float(((y - t) ** 2).mean())
