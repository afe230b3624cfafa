"""Keras losses with PyTorch's arithmetic (netspec/train/losses.py is the meaning).

From logits, and for mse, mae and huber, Keras's built-ins compute PyTorch's values and
gradients (measured equal to ~1e-16 in float64), so `loss()` returns them. Cross-entropy on
probabilities (the rare case of an output that is the other probability op, see
`netspec.train.losses.loss_input`) differs: Keras clips probabilities to [1e-7, 1 - 1e-7] and
renormalizes rows, PyTorch does neither. The two classes here are PyTorch's formulas, in plain
keras code that a generated training script can copy with `inspect.getsource`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


class TorchBinaryCrossentropy(keras.losses.Loss):
    """torch.nn.BCELoss on probabilities: -(t * log(p) + (1 - t) * log(1 - p)), each log
    clamped to >= -100 (Keras's clips p to [1e-7, 1 - 1e-7] instead); mean over elements."""

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        log_p = ops.maximum(ops.log(y_pred), -100.0)
        log_q = ops.maximum(ops.log1p(-y_pred), -100.0)
        return ops.mean(-(y_true * log_p + (1 - y_true) * log_q), axis=-1)


class TorchCategoricalCrossentropy(keras.losses.Loss):
    """torch.nn.NLLLoss of log(p) on probabilities: -sum(t * log(p)) over the last axis, with
    class indices (sparse=True) or one-hot rows; no clipping, no renormalization of p."""

    def __init__(self, sparse=False, **kw):
        super().__init__(**kw)
        self.sparse = sparse

    def call(self, y_true, y_pred):
        if self.sparse:
            y_true = ops.one_hot(ops.cast(y_true, "int64"), ops.shape(y_pred)[-1])
        y_true = ops.cast(y_true, y_pred.dtype)
        return -ops.sum(y_true * ops.log(y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "sparse": self.sparse}


def loss(name: str, attrs: dict, reads: str, sparse: bool = False) -> keras.losses.Loss:
    """The Keras loss for a netspec loss record's resolved attributes.

    `reads` is `netspec.train.losses.loss_input`'s answer for the model's output; `sparse`:
    categorical targets are class indices rather than one-hot rows.
    """
    L = keras.losses
    if name == "mse":
        return L.MeanSquaredError()
    if name == "mae":
        return L.MeanAbsoluteError()
    if name == "huber":
        return L.Huber(delta=np.float64(attrs["delta"]))
    logits = reads != "probabilities"
    if name == "binary_crossentropy":
        return L.BinaryCrossentropy(from_logits=True) if logits else TorchBinaryCrossentropy()
    if not logits:
        return TorchCategoricalCrossentropy(sparse=sparse)
    if sparse:
        return L.SparseCategoricalCrossentropy(from_logits=True)
    return L.CategoricalCrossentropy(from_logits=True)
