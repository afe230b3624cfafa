"""Source text that generated Keras modules contain besides the model: the small layer classes
for meanings Keras has no layer for (real code in custom_layers.py, read here as text), and the
loader of canonical weights.

Everything here is already formatted as `ruff format` writes it (line length 100); a generated
module includes a layer class only if the model uses it. The weight conversions themselves are
ordinary Python functions beside their emitters (`emitters.py`), copied into the module by
`inspect.getsource`; the loader here finds them in the module's `CONVERSIONS` table (Keras layer
class -> (canonical -> Keras, Keras -> canonical)).
"""

from __future__ import annotations

from .classes import class_sources

REGISTER = '@keras.saving.register_keras_serializable(package="netspec")'


# class name -> source text (with a leading newline) of each class in custom_layers.py
LAYERS = {name: "\n" + text for name, text in class_sources("custom_layers.py").items()}


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
