"""Training behaviour of drop_path, spatial_dropout and dropblock in the generated PyTorch and
Keras models (the per-op tests in test_ops.py check them at inference, where they are the
identity). Statistical checks use fixed seeds and bounds far outside the sampling noise."""

from __future__ import annotations

import json

import numpy as np
import pytest

import netspec


def graph(layer: dict, shape: list) -> netspec.Graph:
    spec = {"netspec": 1, "name": "t", "inputs": {"x": {"shape": shape}}, "layers": [layer]}
    return netspec.loads(json.dumps(spec))


def torch_train(layer: dict, shape: list, batch: int = 64):
    torch = pytest.importorskip("torch")
    g = graph(layer, shape)
    module = netspec.compile(g, "torch", netspec.init_weights(g))
    torch.manual_seed(0)
    x = torch.ones(batch, *shape)
    module.train()
    with torch.no_grad():
        y = module(x).numpy()
    module.eval()
    with torch.no_grad():
        assert np.array_equal(module(x).numpy(), x.numpy())  # the identity at inference
    return y


def keras_train(layer: dict, shape: list, batch: int = 64):
    keras = pytest.importorskip("keras")
    g = graph(layer, shape)
    model = netspec.compile(g, "keras", netspec.init_weights(g))
    keras.utils.set_random_seed(0)
    last = (*shape[1:], shape[0]) if len(shape) >= 3 else tuple(shape)  # Keras: channels-last
    x = np.ones((batch, *last), "float32")
    assert np.array_equal(np.asarray(model(x, training=False)), x)
    return np.asarray(model(x, training=True))


def test_drop_path_drops_whole_examples():
    for y in (
        torch_train({"op": "drop_path", "rate": 0.5}, [3, 4]),
        keras_train({"op": "drop_path", "rate": 0.5}, [3, 4]),
    ):
        per_example = y.reshape(len(y), -1)
        kept = per_example[:, 0] != 0
        assert np.all(per_example[kept] == 2.0) and np.all(per_example[~kept] == 0.0)
        assert 10 < kept.sum() < 54


def test_spatial_dropout_drops_whole_channels():
    y = torch_train({"op": "spatial_dropout", "rate": 0.5}, [8, 4, 4])
    channels = y.reshape(y.shape[0], y.shape[1], -1)
    assert np.all((channels == 0).all(-1) | (channels == 2.0).all(-1))
    y = keras_train({"op": "spatial_dropout", "rate": 0.5}, [8, 4, 4])
    channels = np.moveaxis(y, -1, 1).reshape(y.shape[0], y.shape[-1], -1)
    assert np.all((channels == 0).all(-1) | (channels == 2.0).all(-1))


def test_dropblock_drops_blocks_and_keeps_the_mean():
    for y, axes in (
        (torch_train({"op": "dropblock", "rate": 0.2, "block_size": 3}, [4, 12, 12]), (2, 3)),
        (keras_train({"op": "dropblock", "rate": 0.2, "block_size": 3}, [4, 12, 12]), (1, 2)),
    ):
        dropped = (y == 0).mean()
        assert 0.1 < dropped < 0.3, dropped
        assert abs(y.mean() - 1.0) < 1e-4  # scaled by the kept fraction
        # every zero lies in a 3x3 square of zeros
        zero = np.moveaxis(y == 0, axes, (-2, -1))
        h, w = zero.shape[-2:]
        covered = np.zeros_like(zero)
        for i in range(h - 2):
            for j in range(w - 2):
                block = zero[..., i : i + 3, j : j + 3].all(axis=(-2, -1))
                covered[..., i : i + 3, j : j + 3] |= block[..., None, None]
        assert np.array_equal(covered, zero)
