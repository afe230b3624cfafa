"""Source text that generated Keras modules contain besides the model: the small layer classes
for meanings Keras has no layer for, and the canonical-weights helpers.

Everything here is already formatted as `ruff format` writes it (line length 100); a generated
module includes a layer class only if the model uses it, and a weights branch only for the
kinds of weights it has.
"""

from __future__ import annotations

REGISTER = '@keras.saving.register_keras_serializable(package="netspec")'

LAYERS = {
    "HardSigmoid": '''
class HardSigmoid(keras.layers.Layer):
    """netspec's hard_sigmoid: clip(x / 6 + 1/2, 0, 1)."""

    def call(self, x):
        return keras.ops.clip(x / 6.0 + 0.5, 0.0, 1.0)
''',
    "LogSoftmax": '''
class LogSoftmax(keras.layers.Layer):
    """log(softmax(x)) along one axis (Keras' log_softmax activation takes only the last)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return keras.ops.log_softmax(x, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
''',
    "BroadcastAdd": '''
class BroadcastAdd(keras.layers.Layer):
    """The sum of inputs that broadcast against each other (axes equal or 1). Not keras.ops.add:
    on TensorFlow it turns `x1 + x2` into a bias_add when x2 has one axis larger than 1, which
    mixes up examples when that axis is the batch. x - (-y) is exactly x + y."""

    def call(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = keras.ops.subtract(out, keras.ops.negative(x))
        return out
''',
    "LayerNorm": '''
class LayerNorm(keras.layers.Layer):
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
''',
    "PaddedMaxPool": '''
class PaddedMaxPool(keras.layers.Layer):
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
''',
    "PaddedAvgPool": '''
class PaddedAvgPool(keras.layers.Layer):
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
''',
}

# Weight conversions, per kind of layer: (canonical -> Keras, Keras -> canonical). `w` holds one
# node's canonical arrays by parameter name; `a` is `layer.get_weights()`; `i` is the index of
# the Keras layer among the node's (stacked recurrent layers); `p` the parameter suffix `_l{i}`.
TO_KERAS = {
    "dense": """
    if kind == "dense":  # [out, in] -> [in, out]
        return [w["weight"].T, *_bias(w)]""",
    "conv": """
    if kind in ("conv", "conv_transpose"):
        # conv [out, in / groups, *kernel] -> [*kernel, in / groups, out];
        # conv_transpose [in, out, *kernel] -> [*kernel, out, in]: the same axis move
        k = w["weight"]
        return [k.transpose(*range(2, k.ndim), 1, 0), *_bias(w)]""",
    "depthwise": """
    if kind == "depthwise":  # [channels * multiplier, 1, *kernel] -> [*kernel, channels, mult]
        k = w["weight"]
        m = layer.depth_multiplier
        k = k.reshape(k.shape[0] // m, m, *k.shape[2:])
        return [k.transpose(*range(2, k.ndim), 0, 1), *_bias(w)]""",
    "batch_norm": """
    if kind == "batch_norm":
        return [w["weight"], w["bias"], w["running_mean"], w["running_var"]]""",
    "layer_norm": """
    if kind == "layer_norm":
        return [w["weight"], w["bias"]]""",
    "prelu": """
    if kind == "prelu":  # one slope per channel, on the channel axis of Keras' alpha
        return [w["weight"].reshape(layer.get_weights()[0].shape)]""",
    "embedding": """
    if kind == "embedding":
        return [w["weight"]]""",
    "recurrent": """
    if kind in ("lstm", "gru", "rnn"):  # forward, then backward (Bidirectional's order)
        out = []
        for d in ["", "_reverse"][: 2 if isinstance(layer, keras.layers.Bidirectional) else 1]:
            p = f"_l{i}{d}"
            w_ih, w_hh = w["weight_ih" + p], w["weight_hh" + p]
            b_ih, b_hh = w["bias_ih" + p], w["bias_hh" + p]
            if kind == "gru":  # gates (r, z, n) -> (z, r, h); reset_after=True keeps both biases
                g = _gru_gates
                out += [g(w_ih).T, g(w_hh).T, np.stack([g(b_ih), g(b_hh)])]
            else:  # LSTM gates (i, f, g, o) are Keras' (i, f, c, o); Keras keeps one bias
                out += [w_ih.T, w_hh.T, b_ih + b_hh]
        return out""",
}

FROM_KERAS = {
    "dense": """
    if kind == "dense":
        return {"weight": a[0].T, **_bias_of(a)}""",
    "conv": """
    if kind in ("conv", "conv_transpose"):
        k = a[0]
        n = k.ndim
        return {"weight": k.transpose(n - 1, n - 2, *range(n - 2)), **_bias_of(a)}""",
    "depthwise": """
    if kind == "depthwise":
        k = a[0]
        n = k.ndim
        k = k.transpose(n - 2, n - 1, *range(n - 2))
        k = k.reshape(k.shape[0] * k.shape[1], 1, *k.shape[2:])
        return {"weight": k, **_bias_of(a)}""",
    "batch_norm": """
    if kind == "batch_norm":
        return dict(zip(["weight", "bias", "running_mean", "running_var"], a, strict=True))""",
    "layer_norm": """
    if kind == "layer_norm":
        return {"weight": a[0], "bias": a[1]}""",
    "prelu": """
    if kind == "prelu":
        return {"weight": a[0].reshape(-1)}""",
    "embedding": """
    if kind == "embedding":
        return {"weight": a[0]}""",
    "recurrent": """
    if kind in ("lstm", "gru", "rnn"):
        out = {}
        for j, d in enumerate(["", "_reverse"][: len(a) // 3]):
            p = f"_l{i}{d}"
            kernel, recurrent, bias = a[3 * j : 3 * j + 3]
            if kind == "gru":
                g = _gru_gates
                out.update({"weight_ih" + p: g(kernel.T), "weight_hh" + p: g(recurrent.T)})
                out.update({"bias_ih" + p: g(bias[0]), "bias_hh" + p: g(bias[1])})
            else:  # the one Keras bias goes back as bias_ih, bias_hh is zero
                out.update({"weight_ih" + p: kernel.T, "weight_hh" + p: recurrent.T})
                out.update({"bias_ih" + p: bias, "bias_hh" + p: np.zeros_like(bias)})
        return out""",
}

BIAS = """
def _bias(w):
    return [w["bias"]] if "bias" in w else []


def _bias_of(a):
    return {"bias": a[1]} if len(a) > 1 else {}
"""

GRU_GATES = '''
def _gru_gates(a):
    """Swaps the first two thirds of axis 0: PyTorch's GRU gates (r, z, n) <-> Keras' (z, r, h)."""
    h = a.shape[0] // 3
    return np.concatenate([a[h : 2 * h], a[:h], a[2 * h :]])
'''

HELPERS = '''
def _to_keras(kind, w, i, layer):
    """One node's canonical arrays (by parameter name) -> the Keras layer's weight list."""{to}
    raise ValueError(kind)


def _from_keras(kind, a, i, layer):
    """A Keras layer's weight list -> canonical arrays (by parameter name)."""{frm}
    raise ValueError(kind)


def _layers(model, node, count):
    if count == 1:
        return [model.get_layer(node)]
    return [model.get_layer(f"{{node}}-l{{i}}") for i in range(count)]


def load_weights(model, weights):
    """Load canonical weights: a safetensors file written by netspec (keys "<node path>.<param>",
    PyTorch's layouts), or a dict of such arrays."""
    if not isinstance(weights, dict):
        from safetensors.numpy import load_file

        weights = load_file(str(weights))
    nodes = {{}}
    for key, array in weights.items():
        node, _, param = key.rpartition(".")
        nodes.setdefault(node, {{}})[param] = np.asarray(array, dtype=np.float32)
    missing = sorted(set(WEIGHTS) - set(nodes))
    if missing:
        raise KeyError(f"no weights for {{', '.join(missing)}}")
    for node, (kind, count) in WEIGHTS.items():
        for i, layer in enumerate(_layers(model, node, count)):
            layer.set_weights(_to_keras(kind, nodes[node], i, layer))


def export_weights(model):
    """The model's weights as canonical arrays (keys "<node path>.<param>")."""
    out = {{}}
    for node, (kind, count) in WEIGHTS.items():
        for i, layer in enumerate(_layers(model, node, count)):
            a = [np.asarray(v, dtype=np.float32) for v in layer.get_weights()]
            for param, array in _from_keras(kind, a, i, layer).items():
                out[f"{{node}}.{{param}}"] = np.ascontiguousarray(array)
    return out


def save_weights(model, path):
    """Write the model's weights to a canonical safetensors file."""
    from safetensors.numpy import save_file

    save_file(export_weights(model), str(path), metadata={{"format": "netspec"}})
'''
