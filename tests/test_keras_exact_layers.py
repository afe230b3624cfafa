"""Keras' own layers where they are exact, instead of netspec's helper layers (Keras tests).

- Max pooling with explicit padding is `ZeroPadding` + `MaxPooling` (as keras.applications'
  ResNet writes it) when the input is never negative (after relu, relu6, sigmoid, softmax...):
  every window keeps a real element, whose maximum is at least the zeros'. Otherwise the padding
  must never win, and the generated `PaddedMaxPool` pads with -inf.
- A transposed convolution is `Conv2DTranspose(padding="same")` when Keras' 'same' crops what
  PyTorch's padding crops: start max(kernel - stride, 0) // 2 == padding and
  kernel - 2 * padding + output_padding == stride on every axis; else 'valid' with an explicit
  output_padding and a Cropping layer.

Each case checks which layers the source uses and that the model agrees with the float64
reference and ONNX Runtime (`test_keras_target.check_parity`).
"""

from __future__ import annotations

import pytest
from conftest import ROOT, spec
from test_keras_target import check_parity

import netspec


@pytest.fixture(scope="module")
def K(keras):
    from netspec.targets import keras as target

    return target


POOLS = {
    # input, layers, whether ZeroPadding + MaxPooling is exact
    "relu_even": (
        "x: {shape: [3, 8, 8]}",
        "- relu\n- {op: max_pool2d, size: 3, stride: 2, padding: 1}",
        True,
    ),
    "relu6_asym": (
        "x: {shape: [3, 7, 8]}",
        "- relu6\n- {op: max_pool2d, size: [2, 3], stride: [1, 2], padding: [[1, 0], [0, 1]]}",
        True,
    ),
    "conv_relu_1d": (
        "x: {shape: [3, 10]}",
        "- {op: conv1d, filters: 4, kernel: 3, activation: relu}\n"
        "- {op: max_pool1d, size: 3, stride: 2, padding: 1}",
        True,
    ),
    "sigmoid_dropout": (
        "x: {shape: [3, 8, 8]}",
        "- sigmoid\n- {op: dropout, rate: 0.5}\n- {op: max_pool2d, size: 2, padding: 1}",
        True,
    ),
    "may_be_negative": (
        "x: {shape: [3, 8, 8]}",
        "- {op: conv2d, filters: 4, kernel: 1}\n- {op: max_pool2d, size: 3, stride: 2, padding: 1}",
        False,
    ),
    "tanh": (
        "x: {shape: [3, 8, 8]}",
        "- tanh\n- {op: max_pool2d, size: 3, stride: 2, padding: 1}",
        False,
    ),
}


@pytest.mark.parametrize("case", list(POOLS))
def test_max_pool_zero_padding_only_when_exact(K, case):
    inputs, layers, zeros = POOLS[case]
    graph = spec(inputs, layers, name=case)
    src = K.generate(graph)
    assert ("ZeroPadding" in src and "PaddedMaxPool" not in src) == zeros, src
    assert ("PaddedMaxPool" in src) == (not zeros)
    check_parity(K, graph)


# kernel, stride, padding, output_padding -> Keras' 'same' is exact
TRANSPOSED = [
    (4, 2, 1, 0, True),  # DCGAN's upsampling
    (3, 2, 1, 1, False),  # Keras' 'same' would crop (0, 1), PyTorch crops (1, 0)
    (2, 3, 0, 1, True),  # kernel < stride
    (3, 1, 1, 0, True),
    (2, 2, 0, 0, True),
    (5, 2, 2, 1, False),
    (3, 2, 0, 0, False),  # 'valid', Keras' default output size: no output_padding
    (2, 3, 0, 0, False),  # 'valid' with kernel < stride needs output_padding=0
]


@pytest.mark.parametrize(("k", "s", "p", "op", "same"), TRANSPOSED)
def test_conv_transpose_same_only_when_exact(K, k, s, p, op, same):
    graph = spec(
        "x: {shape: [3, 5, 4]}",
        f"- {{op: conv_transpose2d, filters: 2, kernel: {k}, stride: {s}, padding: {p}, "
        f"output_padding: {op}}}",
        name=f"t{k}{s}{p}{op}",
    )
    src = K.generate(graph)
    assert ('padding="same"' in src) == same, src
    assert ("Cropping2D" in src) == (not same and p > 0)
    assert ("output_padding" in src) == (not same and (op > 0 or k < s))
    check_parity(K, graph)


def test_dcgan_uses_keras_same(K):

    src = K.generate(netspec.load(ROOT / "specs" / "dcgan_generator.yaml"))
    assert src.count('padding="same"') == 4 and "Cropping" not in src
