"""Losses: PyTorch's formulas, reduced by the mean.

Each record's reference is `loss(y, target, attrs, from_logits) -> (value, dvalue/dy)` on float64
numpy arrays; `y` is what the loss reads (see `loss_input`), the gradient has `y`'s shape.
Regression losses average over every element; cross-entropies over every position but the
class axis (the last).

Cross-entropy reads logits, never clipped probabilities: when a model's output node is the
loss's own probability op (a softmax on the last axis under categorical cross-entropy, a sigmoid
under binary), the loss reads that node's *input* with `from_logits=True`, a stable
log-sum-exp / softplus form that is the same on every framework, and the model's output (and
its ONNX export) still gives probabilities. `loss_input` is that rule, applied by the caller,
which knows the graph.
"""

from __future__ import annotations

from ..ops.base import Attr
from .record import table

LOSSES, loss = table("loss")

# The probability op whose input a cross-entropy reads as logits.
PROBABILITY_OP = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax"}
LOG_CLAMP = -100.0  # torch.nn.BCELoss clamps each log term to >= -100


def loss_input(loss_name: str, output_op: str) -> str:
    """Which tensor `loss_name` reads, given the op (or final activation) of the output node.

    - "input_logits": the output is the loss's own probability op; read its input as logits
      (`from_logits=True`).
    - "logits": a cross-entropy over an output that is no probability op: the output is the
      logits (as torch.nn.CrossEntropyLoss / BCEWithLogitsLoss read it).
    - "probabilities": a cross-entropy over the *other* probability op (a softmax under binary
      cross-entropy, a sigmoid under categorical): read probabilities (`from_logits=False`).
    - "output": a regression loss reads the output as it is.
    """
    own = PROBABILITY_OP.get(loss_name)
    if own is None:
        return "output"
    if output_op == own:
        return "input_logits"
    if output_op in PROBABILITY_OP.values():
        return "probabilities"
    return "logits"


@loss("mse", [], doc="Mean squared error.", torch="torch.nn.MSELoss()")
def mse(y, t, a, from_logits=False):
    d = y - t
    return float((d * d).mean()), 2 * d / d.size


@loss("mae", [], doc="Mean absolute error.", torch="torch.nn.L1Loss()")
def mae(y, t, a, from_logits=False):
    import numpy as np

    d = y - t
    return float(np.abs(d).mean()), np.sign(d) / d.size


@loss(
    "huber",
    [Attr("delta", "float", 1.0, "where the square turns linear", minimum=0, exclusive_min=True)],
    doc="Huber: 0.5 * d^2 where |d| < delta, else delta * (|d| - 0.5 * delta).",
    torch="torch.nn.HuberLoss(delta=delta)",
)
def huber(y, t, a, from_logits=False):
    import numpy as np

    d, delta = y - t, a["delta"]
    small = np.abs(d) < delta
    v = np.where(small, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))
    return float(v.mean()), np.clip(d, -delta, delta) / d.size


@loss(
    "binary_crossentropy",
    [],
    doc="Binary cross-entropy against targets in [0, 1], from logits (stable) or probabilities.",
    torch="torch.nn.BCEWithLogitsLoss() / torch.nn.BCELoss()",
    notes=[
        "From logits, BCEWithLogitsLoss; on probabilities, BCELoss: each log term clamped "
        "to >= -100.",
    ],
)
def binary_crossentropy(y, t, a, from_logits=True):
    import numpy as np

    if from_logits:  # max(z, 0) - z * t + log(1 + exp(-|z|))
        v = np.maximum(y, 0) - y * t + np.log1p(np.exp(-np.abs(y)))
        sigmoid = np.exp(-np.logaddexp(0.0, -y))
        return float(v.mean()), (sigmoid - t) / y.size
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(y), LOG_CLAMP)
        log_q = np.maximum(np.log1p(-y), LOG_CLAMP)
    v = -(t * log_p + (1 - t) * log_q)
    grad = (y - t) / np.maximum((1 - y) * y, 1e-12)  # torch's BCELoss backward
    return float(v.mean()), grad / y.size


@loss(
    "categorical_crossentropy",
    [],
    doc="Categorical cross-entropy over the last axis; targets are class indices (integers, "
    "one axis fewer) or one-hot / probability rows (same shape).",
    torch="torch.nn.CrossEntropyLoss() / torch.nn.NLLLoss()",
    notes=["From logits, CrossEntropyLoss; on probabilities, NLLLoss of log(p), unclipped."],
)
def categorical_crossentropy(y, t, a, from_logits=True):
    import numpy as np

    rows = y.size // y.shape[-1]
    if t.shape != y.shape:  # class indices -> one-hot
        t = np.eye(y.shape[-1], dtype=y.dtype)[t.astype(np.int64)]
    if from_logits:
        z = y - y.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return float(-(t * log_p).sum() / rows), (np.exp(log_p) - t) / rows
    with np.errstate(divide="ignore", invalid="ignore"):
        v = -np.where(t != 0, t * np.log(y), 0.0).sum() / rows
        grad = -np.where(t != 0, t / y, 0.0) / rows
    return float(v), grad
