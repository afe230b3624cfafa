"""Source text that generated Keras modules contain besides the model: the small layer classes
for meanings Keras has no layer for, and the loader of canonical weights.

Everything here is already formatted as `ruff format` writes it (line length 100); a generated
module includes a layer class only if the model uses it. The weight conversions themselves are
ordinary Python functions beside their emitters (`emitters.py`), copied into the module by
`inspect.getsource`; the loader here finds them in the module's `CONVERSIONS` table (Keras layer
class -> (canonical -> Keras, Keras -> canonical)).
"""

from __future__ import annotations

REGISTER = '@keras.saving.register_keras_serializable(package="netspec")'

LAYERS = {
    "HardSigmoid": '''
class HardSigmoid(layers.Layer):
    """netspec's hard_sigmoid: clip(x / 6 + 1/2, 0, 1)."""

    def call(self, x):
        return keras.ops.clip(x / 6.0 + 0.5, 0.0, 1.0)
''',
    "LogSoftmax": '''
class LogSoftmax(layers.Layer):
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
class BroadcastAdd(layers.Layer):
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
''',
    "PaddedMaxPool": '''
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
''',
    "PaddedAvgPool": '''
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
''',
}


LOAD = '''
def load_weights(model, weights):
    """Load netspec's canonical weights into `model`: a safetensors file netspec wrote, or a dict
    of such arrays (keys `<node path>.<param>`, PyTorch's layouts). A Keras layer with weights is
    named by its node path."""
    if not isinstance(weights, dict):
        from safetensors.numpy import load_file

        weights = load_file(str(weights))
    nodes = {}
    for key, array in weights.items():
        node, _, param = key.rpartition(".")
        nodes.setdefault(node, {})[param] = np.asarray(array, dtype=np.float32)
    for layer in model.layers:
'''

# each Keras array gets the shape of the layer's weight it sets (a depthwise kernel's channel
# axis splits into (channels, multiplier); PReLU's slopes take the shape of its alpha)
LOAD_LAYER = """
        if layer.weights:
            to_keras = CONVERSIONS[type(layer).__name__][0]
            arrays = to_keras(**nodes[layer.name])
            shapes = [v.shape for v in layer.weights]
            layer.set_weights([a.reshape(s) for a, s in zip(arrays, shapes, strict=True)])
"""

LOAD_PARTS = """
        for part, suffix in _parts(layer):
            to_keras = CONVERSIONS[type(part).__name__][0]
            node = nodes[layer.name.partition("-")[0]]
            params = {p.removesuffix(suffix): a for p, a in node.items() if p.endswith(suffix)}
            arrays = to_keras(**params)
            shapes = [v.shape for v in part.weights]
            part.set_weights([a.reshape(s) for a, s in zip(arrays, shapes, strict=True)])
"""

EXPORT = '''
def export_weights(model):
    """The model's weights as netspec's canonical arrays (keys `<node path>.<param>`)."""
    out = {}
    for layer in model.layers:
'''

EXPORT_LAYER = """
        if layer.weights:
            from_keras = CONVERSIONS[type(layer).__name__][1]
            arrays = [np.asarray(v, dtype=np.float32) for v in layer.get_weights()]
            for param, array in from_keras(*arrays).items():
                out[f"{layer.name}.{param}"] = np.ascontiguousarray(array)
    return out
"""

EXPORT_PARTS = """
        for part, suffix in _parts(layer):
            from_keras = CONVERSIONS[type(part).__name__][1]
            arrays = [np.asarray(v, dtype=np.float32) for v in part.get_weights()]
            node = layer.name.partition("-")[0]
            for param, array in from_keras(*arrays).items():
                out[f"{node}.{param}{suffix}"] = np.ascontiguousarray(array)
    return out
"""

PARTS = '''
def _parts(layer):
    """The parts of a Keras layer's weights, with the suffix of their canonical params: a
    recurrent layer `<node>-l<i>` (`<node>` when i = 0) holds the node's `*_l<i>` params, the
    backward layer of a Bidirectional one its `*_l<i>_reverse` params."""
    if not layer.weights:
        return []
    i = layer.name.partition("-l")[2] or "0"
    if isinstance(layer, layers.Bidirectional):
        return [(layer.forward_layer, f"_l{i}"), (layer.backward_layer, f"_l{i}_reverse")]
    if isinstance(layer, layers.RNN):
        return [(layer, f"_l{i}")]
    return [(layer, "")]
'''

SAVE = '''
def save_weights(model, path):
    """Write the model's weights to a canonical safetensors file."""
    from safetensors.numpy import save_file

    save_file(export_weights(model), str(path), metadata={"format": "netspec"})
'''


def weights_code(recurrent: bool, renamed: bool = False) -> str:
    """The module's loader, exporter and saver (`_parts` only when the model has recurrent
    layers, whose weights split by suffix). `renamed`: a layer with weights is named
    `<node>-logits` (a trained output's layer without its softmax/sigmoid): its node path is
    the name before the `-`."""
    parts = [PARTS] if recurrent else []
    load_layer, export_layer = LOAD_LAYER, EXPORT_LAYER
    if renamed:
        load_layer = load_layer.replace("nodes[layer.name]", 'nodes[layer.name.partition("-")[0]]')
        export_layer = export_layer.replace(
            "            for param",
            '            node = layer.name.partition("-")[0]\n            for param',
        ).replace('out[f"{layer.name}.{param}"]', 'out[f"{node}.{param}"]')
    load = LOAD.rstrip("\n") + (LOAD_PARTS if recurrent else load_layer)
    export = EXPORT.rstrip("\n") + (EXPORT_PARTS if recurrent else export_layer)
    return "\n\n".join(p.strip("\n") + "\n" for p in [*parts, load, export, SAVE])
