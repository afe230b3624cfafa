"""Keras layers whose training arithmetic is PyTorch's (netspec's meaning).

Plain keras code, so a generated training script can copy a class verbatim with
`inspect.getsource`.
"""

from __future__ import annotations

import keras
from keras import ops


class TorchBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization with torch.nn.BatchNorm's training statistics.

    In training it normalizes with the batch mean and biased variance (as both frameworks do)
    and updates the running variance with the *unbiased* one, var * n / (n - 1), as PyTorch
    does (Keras's layer uses the biased one). `momentum` keeps Keras's meaning, the weight of the
    old value: PyTorch's momentum 0.1 is 0.9 here. Inference is the parent's, unchanged.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        rank = len(inputs.shape)
        axis = self.axis % rank
        axes = [i for i in range(rank) if i != axis]
        mean, variance = ops.moments(inputs, axes)
        n = 1
        for i in axes:
            n = n * ops.cast(ops.shape(inputs)[i], inputs.dtype)
        unbiased = variance * (n / ops.maximum(n - 1, 1))
        keep = self.momentum
        self.moving_mean.assign(self.moving_mean * keep + mean * (1.0 - keep))
        self.moving_variance.assign(self.moving_variance * keep + unbiased * (1.0 - keep))
        return ops.batch_normalization(
            inputs,
            mean,
            variance,
            axis=axis,
            offset=self.beta if self.center else None,
            scale=self.gamma if self.scale else None,
            epsilon=self.epsilon,
        )
