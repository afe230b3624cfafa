"""The Keras target's own layer classes are real code (netspec/targets/keras/custom_layers.py):
generated modules copy exactly that source, and each class survives Keras's serialization."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

from netspec.targets.keras import custom_layers, runtime  # noqa: E402

CLASSES = {
    name: cls
    for name, cls in vars(custom_layers).items()
    if inspect.isclass(cls) and cls.__module__ == custom_layers.__name__
}
ARGS = {  # constructor arguments and an input shape (channels-last) for each class
    "HardSigmoid": ({}, (2, 5)),
    "LogSoftmax": ({"axis": 1}, (2, 3, 4)),
    "BroadcastAdd": ({}, None),
    "LayerNorm": ({"axis": -1, "epsilon": 1e-5}, (2, 6)),
    "PaddedMaxPool": ({"pool_size": (2,), "strides": (1,), "padding": ((1, 0),)}, (2, 5, 3)),
    "PaddedAvgPool": ({"pool_size": (2,), "strides": (1,), "padding": ((0, 1),)}, (2, 5, 3)),
    "Normalize": ({"axis": -1}, (2, 4)),
    "AdaptivePool": ({"output_size": (3, 2), "reduce": "max"}, (2, 7, 5, 3)),
    "LinearUpsample": ({"scale": (2,), "align_corners": True}, (2, 4, 3)),
    "Pad": ({"padding": ((1, 2),), "mode": "replicate"}, (2, 4, 3)),
    "Reduce": ({"axis": (1, 2), "keepdims": True, "reduce": "sum"}, (2, 3, 4, 2)),
    "GroupNorm": ({"groups": 2, "epsilon": 1e-3, "affine": False}, (2, 3, 4)),
    "DropPath": ({"rate": 0.2}, (2, 4)),
    "DropBlock": ({"rate": 0.2, "block_size": 2}, (2, 4, 4, 3)),
    "Learned": ({"shape": (2, 3), "initializer": "ones"}, (2, 4)),
    "Constant": ({"shape": (3, 3), "value": -2.0, "triu": 1}, (2, 4)),
    "Slice": ({"axis": 1, "start": 1, "end": 4, "step": 2}, (2, 5, 3)),
    "Select": ({"axis": 2, "index": 1}, (2, 5, 3)),
    "Gather": ({"axis": 1, "indices": (4, 0, 0)}, (2, 5, 3)),
    "Roll": ({"shifts": (2, 1), "axes": (1, -1)}, (2, 5, 3)),
    "MatMul": ({}, None),
    "Attention": (
        {"heads": 2, "head_dim": 3, "causal": True, "kernel_initializer": "ones"},
        (2, 5, 6),
    ),
}


def test_generated_modules_copy_this_source():
    assert set(runtime.LAYERS) == set(CLASSES) == set(ARGS)
    for name, cls in CLASSES.items():
        assert runtime.LAYERS[name].strip("\n") == inspect.getsource(cls).strip("\n")


@pytest.mark.parametrize("name", sorted(ARGS))
def test_round_trips_through_its_config(name):
    kwargs, shape = ARGS[name]
    layer = CLASSES[name](**kwargs)
    again = CLASSES[name].from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    if name == "MatMul":
        a, b = np.ones((2, 3, 4), "float32"), np.full((2, 4, 2), 2.0, "float32")
        np.testing.assert_array_equal(np.asarray(layer([a, b])), np.full((2, 3, 2), 8.0))
        return
    if shape is None:  # several inputs
        x = [np.ones((2, 3), "float32"), np.full((1, 3), 2.0, "float32")]
        np.testing.assert_array_equal(np.asarray(layer(x)), np.full((2, 3), 3.0))
        return
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(again(x)))
