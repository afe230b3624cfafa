"""Layer classes for meanings Keras has no exact layer for. A generated Keras module copies the
ones its model uses (their source is read from this file by `runtime.LAYERS` without importing
it: generating a model must not import keras), registered as serializable under "netspec".
Real code, so tests import and exercise each class directly.
"""

import keras
import numpy as np
from keras import layers


class HardSigmoid(layers.Layer):
    """netspec's hard_sigmoid: clip(x / 6 + 1/2, 0, 1)."""

    def call(self, x):
        return keras.ops.clip(x / 6.0 + 0.5, 0.0, 1.0)


class LogSoftmax(layers.Layer):
    """log(softmax(x)) along one axis (Keras' log_softmax activation takes only the last)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return keras.ops.log_softmax(x, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class BroadcastAdd(layers.Layer):
    """The sum of inputs that broadcast against each other (axes equal or 1). Not keras.ops.add:
    on TensorFlow it turns `x1 + x2` into a bias_add when x2 has one axis larger than 1, which
    mixes up examples when that axis is the batch. x - (-y) is exactly x + y."""

    def call(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = keras.ops.subtract(out, keras.ops.negative(x))
        return out


class LayerNorm(layers.Layer):
    """Layer normalization over one axis as PyTorch computes it: (x - mean) / sqrt(var + eps)
    * gamma + beta. (Keras' LayerNormalization computes x * inv + (beta - mean * inv), which
    loses digits when a row's mean is large against its spread.)"""

    def __init__(self, axis=-1, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def build(self, input_shape):
        size = (input_shape[self.axis],)
        self.gamma = self.add_weight(shape=size, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=size, initializer="zeros", name="beta")

    def call(self, x):
        shape = [1] * len(x.shape)
        shape[self.axis] = -1
        gamma = keras.ops.reshape(self.gamma, shape)
        beta = keras.ops.reshape(self.beta, shape)
        mean = keras.ops.mean(x, axis=self.axis, keepdims=True)
        centered = keras.ops.subtract(x, mean)
        var = keras.ops.mean(keras.ops.square(centered), axis=self.axis, keepdims=True)
        y = centered * (1.0 / keras.ops.sqrt(var + self.epsilon)) * gamma
        # y - (-beta) is exactly y + beta; keras.ops.add could take beta for a bias_add along
        # another axis of the same size
        return keras.ops.subtract(y, keras.ops.negative(beta))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


class PaddedMaxPool(layers.Layer):
    """Max pooling with explicit (before, after) padding per spatial axis; the padding is never
    the maximum. Channels-last input."""

    def __init__(self, pool_size, strides, padding, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(pool_size)
        self.strides = tuple(strides)
        self.padding = tuple(tuple(p) for p in padding)

    def call(self, x):
        pads = [(0, 0), *self.padding, (0, 0)]
        x = keras.ops.pad(x, pads, constant_values=float("-inf"))
        return keras.ops.max_pool(x, self.pool_size, self.strides, padding="valid")

    def get_config(self):
        config = {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}
        return {**super().get_config(), **config}


class PaddedAvgPool(layers.Layer):
    """Average pooling with explicit (before, after) padding per spatial axis that divides by
    the number of real (unpadded) elements in each window. Channels-last input."""

    def __init__(self, pool_size, strides, padding, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(pool_size)
        self.strides = tuple(strides)
        self.padding = tuple(tuple(p) for p in padding)

    def call(self, x):
        pads = [(0, 0), *self.padding, (0, 0)]
        total = keras.ops.average_pool(keras.ops.pad(x, pads), self.pool_size, self.strides)
        ones = keras.ops.pad(keras.ops.ones_like(x[..., :1]), pads)
        count = keras.ops.average_pool(ones, self.pool_size, self.strides)
        return total / count

    def get_config(self):
        config = {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}
        return {**super().get_config(), **config}


# Not keras.layers.Normalization: it computes the same function, but from a copy of its
# statistics taken when it is built, which set_weights does not update.
class Normalize(layers.Layer):
    """netspec's normalize: (x - mean) / max(sqrt(variance), 1e-7) with one mean and variance
    per entry of `axis` (None: one for every value); set from the training data, not trained."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def build(self, input_shape):
        size = (1,) if self.axis is None else (input_shape[self.axis],)
        self.mean = self.add_weight(shape=size, initializer="zeros", trainable=False, name="mean")
        self.variance = self.add_weight(
            shape=size, initializer="ones", trainable=False, name="variance"
        )

    def call(self, x):
        shape = [1] * len(x.shape)
        if self.axis is not None:
            shape[self.axis] = -1
        mean = keras.ops.reshape(self.mean, shape)
        std = keras.ops.sqrt(keras.ops.reshape(self.variance, shape))
        return (x - mean) / keras.ops.maximum(std, 1e-7)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# Not keras.layers.AdaptiveMaxPooling2D: on TensorFlow it stops the process with a floating
# point exception for output size 1 (Keras 3.15), and its bins are computed in float32.
class AdaptivePool(layers.Layer):
    """PyTorch's adaptive pooling, channels-last: bin j of a spatial axis of size L covers
    [floor(j L / o), ceil((j + 1) L / o)); `reduce` is "mean" or "max", one axis at a time (a
    bin is the product of one bin per axis). The spatial sizes are fixed."""

    def __init__(self, output_size, reduce="mean", **kwargs):
        super().__init__(**kwargs)
        self.output_size = tuple(output_size)
        self.reduce = reduce

    def call(self, x):
        fn = keras.ops.mean if self.reduce == "mean" else keras.ops.max
        for i, out in enumerate(self.output_size):
            axis = 1 + i
            size = x.shape[axis]
            parts = []
            for j in range(out):
                lo, hi = j * size // out, -(-(j + 1) * size // out)
                part = x[(slice(None),) * axis + (slice(lo, hi),)]
                parts.append(fn(part, axis=axis, keepdims=True))
            x = keras.ops.concatenate(parts, axis=axis) if out > 1 else parts[0]
        return x

    def get_config(self):
        config = {"output_size": self.output_size, "reduce": self.reduce}
        return {**super().get_config(), **config}


class LinearUpsample(layers.Layer):
    """PyTorch's linear / bilinear / trilinear interpolation by integer factors, one spatial
    axis at a time, channels-last, fixed spatial sizes: output j of an axis reads inputs
    floor(src) and the next, src = j (L - 1) / (out - 1) with align_corners, else
    max((j + 1/2) / scale - 1/2, 0)."""

    def __init__(self, scale, align_corners=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = tuple(scale)
        self.align_corners = align_corners

    def call(self, x):
        for i, scale in enumerate(self.scale):
            axis = 1 + i
            size = x.shape[axis]
            out = size * scale
            lo, hi, weight = [], [], []
            for j in range(out):
                if self.align_corners:
                    src = j * (size - 1) / (out - 1) if out > 1 else 0.0
                else:
                    src = max((j + 0.5) / scale - 0.5, 0.0)
                first = min(int(src), size - 1)
                lo.append(first)
                hi.append(min(first + 1, size - 1))
                weight.append(src - first)
            shape = [1] * len(x.shape)
            shape[axis] = out
            w = keras.ops.reshape(keras.ops.convert_to_tensor(weight, x.dtype), shape)
            a = keras.ops.take(x, lo, axis=axis)
            b = keras.ops.take(x, hi, axis=axis)
            x = a + (b - a) * w
        return x

    def get_config(self):
        config = {"scale": self.scale, "align_corners": self.align_corners}
        return {**super().get_config(), **config}


class Pad(layers.Layer):
    """PyTorch's F.pad of the spatial axes, channels-last: (before, after) per spatial axis;
    mode constant (`value`), reflect (mirrored without the edge) or replicate (the edge
    repeated)."""

    def __init__(self, padding, mode="constant", value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(p) for p in padding)
        self.mode = mode
        self.value = value

    def call(self, x):
        if self.mode != "replicate":
            pads = [(0, 0), *self.padding, (0, 0)]
            if self.mode == "reflect":
                return keras.ops.pad(x, pads, mode="reflect")
            return keras.ops.pad(x, pads, constant_values=self.value)
        for i, (before, after) in enumerate(self.padding):
            axis = 1 + i
            head = (slice(None),) * axis
            parts = [x]
            if before:
                parts.insert(0, keras.ops.repeat(x[head + (slice(0, 1),)], before, axis=axis))
            if after:
                parts.append(keras.ops.repeat(x[head + (slice(-1, None),)], after, axis=axis))
            if len(parts) > 1:
                x = keras.ops.concatenate(parts, axis=axis)
        return x

    def get_config(self):
        config = {"padding": self.padding, "mode": self.mode, "value": self.value}
        return {**super().get_config(), **config}


class Reduce(layers.Layer):
    """The mean, max or sum over Keras axes `axis` (batch = 0)."""

    def __init__(self, axis, keepdims=False, reduce="mean", **kwargs):
        super().__init__(**kwargs)
        self.axis = tuple(axis)
        self.keepdims = keepdims
        self.reduce = reduce

    def call(self, x):
        fn = {"mean": keras.ops.mean, "max": keras.ops.max, "sum": keras.ops.sum}[self.reduce]
        return fn(x, axis=self.axis, keepdims=self.keepdims)

    def get_config(self):
        config = {"axis": self.axis, "keepdims": self.keepdims, "reduce": self.reduce}
        return {**super().get_config(), **config}


class GroupNorm(layers.Layer):
    """PyTorch's GroupNorm (and InstanceNorm: one group per channel), channels-last: each
    example's group of channels normalized over its channels and the spatial axes, (x - mean)
    / sqrt(var + eps), then gamma and beta per channel when `affine`."""

    def __init__(self, groups, epsilon=1e-5, affine=True, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups
        self.epsilon = epsilon
        self.affine = affine

    def build(self, input_shape):
        if self.affine:
            size = (input_shape[-1],)
            self.gamma = self.add_weight(shape=size, initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=size, initializer="zeros", name="beta")

    def call(self, x):
        shape = keras.ops.shape(x)
        channels = x.shape[-1]
        grouped = keras.ops.reshape(x, (*shape[:-1], self.groups, channels // self.groups))
        axes = (*range(1, len(x.shape) - 1), len(x.shape))
        mean = keras.ops.mean(grouped, axis=axes, keepdims=True)
        centered = keras.ops.subtract(grouped, mean)
        var = keras.ops.mean(keras.ops.square(centered), axis=axes, keepdims=True)
        y = keras.ops.reshape(centered / keras.ops.sqrt(var + self.epsilon), shape)
        if not self.affine:
            return y
        return keras.ops.subtract(y * self.gamma, keras.ops.negative(self.beta))

    def get_config(self):
        config = {"groups": self.groups, "epsilon": self.epsilon, "affine": self.affine}
        return {**super().get_config(), **config}


class DropPath(layers.Layer):
    """Stochastic depth: in training, each example is zeroed with probability `rate` and the
    rest scaled by 1 / (1 - rate); the identity at inference."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype)
        return x * keras.ops.floor(keep + noise) / keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class DropBlock(layers.Layer):
    """DropBlock (Ghiasi et al. 2018), channels-last [N, H, W, C]: in training, block_size
    squares inside each channel are zeroed, seeded with the probability that drops about
    `rate` of the values, and the rest scaled by the inverse of the kept fraction; the
    identity at inference."""

    def __init__(self, rate, block_size, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.block_size = block_size
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        n, h, w, c = keras.ops.shape(x)
        k = self.block_size
        gamma = self.rate * h * w / (k * k * (h - k + 1) * (w - k + 1))
        shape = (n, h - k + 1, w - k + 1, c)
        seeds = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype) < gamma
        pads = [(0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)]
        seeds = keras.ops.pad(keras.ops.cast(seeds, x.dtype), pads)
        mask = keras.ops.max_pool(seeds, k, 1, padding="valid")
        keep = 1.0 - mask
        total = keras.ops.cast(keras.ops.size(keep), x.dtype)
        return x * keep * (total / keras.ops.maximum(keras.ops.sum(keep), 1.0))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "block_size": self.block_size}


class Learned(layers.Layer):
    """netspec's parameter: a learned tensor of a fixed shape, the same for every example,
    broadcast to the batch size of the input (which gives nothing else)."""

    def __init__(self, shape, initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.tensor_shape = tuple(shape)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.weight = self.add_weight(
            shape=self.tensor_shape, initializer=self.initializer, name="weight"
        )

    def call(self, x):
        batch = keras.ops.shape(x)[:1]
        return keras.ops.broadcast_to(self.weight, (*batch, *self.tensor_shape))

    def get_config(self):
        initializer = keras.initializers.serialize(self.initializer)
        return {**super().get_config(), "shape": self.tensor_shape, "initializer": initializer}


class Constant(layers.Layer):
    """netspec's constant: `value` everywhere (kept to the triangle of the last two axes from
    diagonal `triu` up / `tril` down, as torch.triu / tril), broadcast to the batch size."""

    def __init__(self, shape, value=0.0, triu=None, tril=None, **kwargs):
        super().__init__(**kwargs)
        self.tensor_shape = tuple(shape)
        self.value = value
        self.triu = triu
        self.tril = tril

    def call(self, x):
        c = np.full(self.tensor_shape, self.value, "float32")
        if self.triu is not None:
            c = np.triu(c, self.triu)
        if self.tril is not None:
            c = np.tril(c, self.tril)
        batch = keras.ops.shape(x)[:1]
        return keras.ops.broadcast_to(keras.ops.convert_to_tensor(c), (*batch, *self.tensor_shape))

    def get_config(self):
        config = {
            "shape": self.tensor_shape,
            "value": self.value,
            "triu": self.triu,
            "tril": self.tril,
        }
        return {**super().get_config(), **config}


class Slice(layers.Layer):
    """x[..., start:end:step, ...] along `axis` (Keras axis, batch = 0)."""

    def __init__(self, axis, start, end, step=1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.start = start
        self.end = end
        self.step = step

    def call(self, x):
        index = [slice(None)] * self.axis + [slice(self.start, self.end, self.step)]
        return x[tuple(index)]

    def get_config(self):
        config = {"axis": self.axis, "start": self.start, "end": self.end, "step": self.step}
        return {**super().get_config(), **config}


class Select(layers.Layer):
    """x[..., index, ...] along `axis` (Keras axis, batch = 0): the axis is removed."""

    def __init__(self, axis, index, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.index = index

    def call(self, x):
        return x[tuple([slice(None)] * self.axis + [self.index])]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "index": self.index}


class Gather(layers.Layer):
    """Constant `indices` taken along `axis` (Keras axis, batch = 0)."""

    def __init__(self, axis, indices, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.indices = tuple(indices)

    def call(self, x):
        return keras.ops.take(x, np.asarray(self.indices, "int32"), axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "indices": self.indices}


class Roll(layers.Layer):
    """torch.roll: each axis in `axes` (Keras axes, batch = 0) rolled by its shift."""

    def __init__(self, shifts, axes, **kwargs):
        super().__init__(**kwargs)
        self.shifts = tuple(shifts)
        self.axes = tuple(axes)

    def call(self, x):
        for shift, axis in zip(self.shifts, self.axes, strict=True):
            x = keras.ops.roll(x, shift, axis=axis)
        return x

    def get_config(self):
        return {**super().get_config(), "shifts": self.shifts, "axes": self.axes}


class MatMul(layers.Layer):
    """The matrix product of two tensors over their last two axes (leading axes broadcast)."""

    def call(self, inputs):
        return keras.ops.matmul(inputs[0], inputs[1])


class Attention(layers.Layer):
    """netspec's attention: keras.layers.MultiHeadAttention on inputs [query], [query, value]
    or [query, value, mask] (mask [N, S]: nonzero where a key is attended), with a causal mask
    when `causal` (query i attends to keys 0..i)."""

    def __init__(
        self,
        heads,
        head_dim,
        use_bias=True,
        causal=False,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.heads = heads
        self.head_dim = head_dim
        self.use_bias = use_bias
        self.causal = causal
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.attention = layers.MultiHeadAttention(
            heads,
            head_dim,
            use_bias=use_bias,
            dropout=dropout,
            kernel_initializer=self.kernel_initializer,
            name="attention",
        )

    def build(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        query = shapes[0]
        value = shapes[1] if len(shapes) > 1 else query
        self.attention.build(query, value)

    def call(self, inputs, training=None):
        inputs = inputs if isinstance(inputs, list) else [inputs]
        query = inputs[0]
        value = inputs[1] if len(inputs) > 1 else query
        mask = None
        if len(inputs) > 2:  # [N, S] -> [N, T, S]
            keys = keras.ops.not_equal(inputs[2], 0)[:, None, :]
            rows = keras.ops.ones_like(query[:, :, :1], dtype="bool")
            mask = keras.ops.logical_and(keys, rows)
        return self.attention(
            query,
            value,
            attention_mask=mask,
            use_causal_mask=self.causal,
            training=training,
        )

    def get_config(self):
        config = {
            "heads": self.heads,
            "head_dim": self.head_dim,
            "use_bias": self.use_bias,
            "causal": self.causal,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
        return {**super().get_config(), **config}
