"""One emitter per op: the Keras layers that compute it, and beside it how its weights map
between netspec's canonical layouts (PyTorch's) and Keras'.

An emitter gets the scope, the node and its input tensors, asks `layout` which layout the op
needs and what its axes become there, and adds layers. Where Keras has no layer with exactly
netspec's meaning, it uses a small generated layer class (`runtime.LAYERS`), never a Lambda.
Values the spec wrote with params (`filters: ${width // 4}`) come through `Scope.attr` /
`Scope.spatial`, so that the generated code writes the spec's expression.

Weight conversions are ordinary functions, registered with the emitter that uses them
(`emitter(..., weights=...)`). The generated module contains their source (`inspect.getsource`),
so they must stay standalone: numpy as `np` and nothing else, no annotations, formatted as
`ruff format` writes them. `to_keras` takes a node's canonical arrays by param name (without a
recurrent layer's `_l<i>` suffix) and returns the Keras layer's arrays in its weight order, in
any shape with the same elements in the same order (the loader reshapes them);
`from_keras` takes the layer's arrays and returns the canonical ones. Both are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...ir import Node
from ...ops import OPS
from ...ops.base import same_pad
from . import layout
from .codegen import Ctor, Default, Scope, T


@dataclass(frozen=True)
class Conversion:
    """canonical <-> Keras for one kind of Keras layer (see the module docstring)."""

    to_keras: Callable[..., list]
    from_keras: Callable[..., dict]


@dataclass(frozen=True)
class OpEmitter:
    """An op's emitter and the weight conversions it may use."""

    emit: Callable[[Scope, Node, list[T]], T]
    conversions: tuple[Conversion, ...] = ()

    def __call__(self, s: Scope, node: Node, xs: list[T]) -> T:
        return self.emit(s, node, xs)


EMITTERS: dict[str, OpEmitter] = {}
L = "layers."


def emitter(*ops: str, weights: tuple[Conversion, ...] = ()):
    """Register the emitter of one or more ops (each op has exactly one) with the weight
    conversions it uses."""

    def deco(fn: Callable[[Scope, Node, list[T]], T]) -> Callable[[Scope, Node, list[T]], T]:
        for op in ops:
            if op in EMITTERS:  # pragma: no cover - a definition error
                raise AssertionError(f"two Keras emitters for {op}")
            EMITTERS[op] = OpEmitter(fn, weights)
        return fn

    return deco


def conversions() -> list[Conversion]:
    """Every registered conversion, once, in registration order."""
    return list(dict.fromkeys(c for e in EMITTERS.values() for c in e.conversions))


def compact(v: tuple) -> Any:
    """`(3, 3)` -> `3`, as Keras users write it; unequal entries stay a tuple."""
    return v[0] if len(set(v)) == 1 else tuple(v)


def compact_pads(pads: tuple[tuple[int, int], ...]) -> Any:
    """ZeroPadding / Cropping arguments: `1`, `(1, 2)` (symmetric per axis) or the pairs."""
    if all(a == b for a, b in pads):
        return compact(tuple(a for a, _ in pads))
    return pads[0] if len(pads) == 1 else tuple(pads)


def with_defaults(defaults: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Keyword arguments; literal ones equal to Keras' default are marked to be left out (a value
    the spec wrote with params is always written)."""
    return {
        k: Default(v) if k in defaults and _eq(v, defaults[k]) else v for k, v in kwargs.items()
    }


def _eq(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


# -- weight conversions (standalone: copied into generated modules) -------------------------
def kernel_to_keras(weight, bias=None):
    """Dense and convolutions: canonical [out, in, *kernel] -> Keras' [*kernel, in, out] (a
    transposed convolution's [in, out, *kernel] -> [*kernel, out, in]: the same move)."""
    kernel = np.moveaxis(weight, (0, 1), (-1, -2))
    return [kernel] if bias is None else [kernel, bias]


def kernel_from_keras(kernel, bias=None):
    weight = np.moveaxis(kernel, (-1, -2), (0, 1))
    return {"weight": weight} if bias is None else {"weight": weight, "bias": bias}


def depthwise_to_keras(weight, bias=None):
    """Depthwise convolutions: canonical [channels * multiplier, 1, *kernel] -> Keras'
    [*kernel, channels, multiplier] (output channel c * multiplier + m in both)."""
    kernel = np.moveaxis(weight, (0, 1), (-2, -1))
    return [kernel] if bias is None else [kernel, bias]


def depthwise_from_keras(kernel, bias=None):
    weight = np.moveaxis(kernel.reshape(*kernel.shape[:-2], -1, 1), (-2, -1), (0, 1))
    return {"weight": weight} if bias is None else {"weight": weight, "bias": bias}


def batch_norm_to_keras(weight, bias, running_mean, running_var):
    """BatchNormalization: gamma, beta, moving mean and variance are the canonical arrays."""
    return [weight, bias, running_mean, running_var]


def batch_norm_from_keras(gamma, beta, moving_mean, moving_variance):
    return dict(weight=gamma, bias=beta, running_mean=moving_mean, running_var=moving_variance)


def layer_norm_to_keras(weight, bias):
    """LayerNorm: gamma and beta are the canonical arrays."""
    return [weight, bias]


def layer_norm_from_keras(gamma, beta):
    return {"weight": gamma, "bias": beta}


def normalize_to_keras(mean, variance):
    """Normalize: the mean and variance are the canonical arrays."""
    return [mean, variance]


def normalize_from_keras(mean, variance):
    return {"mean": mean, "variance": variance}


def group_norm_to_keras(weight, bias):
    """GroupNorm: gamma and beta are the canonical arrays."""
    return [weight, bias]


def group_norm_from_keras(gamma, beta):
    return {"weight": gamma, "bias": beta}


def prelu_to_keras(weight):
    """PReLU: one slope per channel (Keras' alpha has the channel axis among shared ones)."""
    return [weight]


def prelu_from_keras(alpha):
    return {"weight": alpha.reshape(-1)}


def embedding_to_keras(weight):
    """Embedding: the same [vocab, dim] table."""
    return [weight]


def embedding_from_keras(embeddings):
    return {"weight": embeddings}


def rnn_to_keras(weight_ih, weight_hh, bias_ih, bias_hh):
    """LSTM and SimpleRNN (one direction of one layer): Keras keeps one bias, the sum; LSTM's
    gates (i, f, g, o) are Keras' (i, f, c, o)."""
    return [weight_ih.T, weight_hh.T, bias_ih + bias_hh]


def rnn_from_keras(kernel, recurrent_kernel, bias):
    """The one Keras bias comes back as bias_ih; bias_hh is zero."""
    return {
        "weight_ih": kernel.T,
        "weight_hh": recurrent_kernel.T,
        "bias_ih": bias,
        "bias_hh": np.zeros_like(bias),
    }


def gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh):
    """GRU (one direction of one layer): PyTorch's gates (r, z, n) are Keras' (z, r, h), along
    the gate axis; reset_after=True keeps both biases, stacked."""

    def gates(a):
        r, z, n = np.split(a, 3)
        return np.concatenate([z, r, n])

    return [gates(weight_ih).T, gates(weight_hh).T, np.stack([gates(bias_ih), gates(bias_hh)])]


def gru_from_keras(kernel, recurrent_kernel, bias):
    def gates(a):  # swapping the first two thirds is its own inverse
        z, r, n = np.split(a, 3)
        return np.concatenate([r, z, n])

    return {
        "weight_ih": gates(kernel.T),
        "weight_hh": gates(recurrent_kernel.T),
        "bias_ih": gates(bias[0]),
        "bias_hh": gates(bias[1]),
    }


def learned_to_keras(weight):
    """Learned (parameter): the same tensor."""
    return [weight]


def learned_from_keras(weight):
    return {"weight": weight}


def attention_to_keras(
    weight_q, weight_k, weight_v, weight_out, bias_q=None, bias_k=None, bias_v=None, bias_out=None
):
    """MultiHeadAttention: each projection's kernel is the canonical [out, in] matrix
    transposed (query, key and value kernels [in, heads, head_dim], the output kernel
    [heads, head_dim, out]: the same elements in the same order); biases as they are."""
    weights = [weight_q, weight_k, weight_v, weight_out]
    biases = [bias_q, bias_k, bias_v, bias_out]
    out = []
    for w, b in zip(weights, biases, strict=True):
        out += [w.T] if b is None else [w.T, b]
    return out


def attention_from_keras(*arrays):
    step = 2 if len(arrays) == 8 else 1
    out = {}
    for i, name in enumerate(["q", "k", "v", "out"]):
        kernel = arrays[i * step]
        if name == "out":
            out["weight_out"] = kernel.reshape(-1, kernel.shape[-1]).T
        else:
            out[f"weight_{name}"] = kernel.reshape(kernel.shape[0], -1).T
        if step == 2:
            out[f"bias_{name}"] = arrays[i * step + 1].reshape(-1)
    return out


KERNEL = Conversion(kernel_to_keras, kernel_from_keras)
DEPTHWISE = Conversion(depthwise_to_keras, depthwise_from_keras)
BATCH_NORM = Conversion(batch_norm_to_keras, batch_norm_from_keras)
LAYER_NORM = Conversion(layer_norm_to_keras, layer_norm_from_keras)
PRELU = Conversion(prelu_to_keras, prelu_from_keras)
NORMALIZE = Conversion(normalize_to_keras, normalize_from_keras)
GROUP_NORM = Conversion(group_norm_to_keras, group_norm_from_keras)
EMBEDDING = Conversion(embedding_to_keras, embedding_from_keras)
RNN_WEIGHTS = Conversion(rnn_to_keras, rnn_from_keras)
GRU_WEIGHTS = Conversion(gru_to_keras, gru_from_keras)
LEARNED = Conversion(learned_to_keras, learned_from_keras)
ATTENTION = Conversion(attention_to_keras, attention_from_keras)


# -- padding ------------------------------------------------------------------------------
def keras_padding(pads, sizes, kernel, stride, dilation) -> str | None:
    """'valid' or 'same' when Keras' padding has exactly these pads (Keras' 'same' is
    TensorFlow's rule, which is netspec's); None when they must be explicit."""
    if all(p == (0, 0) for p in pads):
        return "valid"
    for i, p in enumerate(pads):
        if stride[i] == 1:
            total = (kernel[i] - 1) * dilation[i]
            want = (total // 2, total - total // 2)
        elif isinstance(sizes[i], int):
            want = same_pad(sizes[i], kernel[i], stride[i], dilation[i])
        else:
            return None
        if tuple(p) != want:
            return None
    return "same"


def zero_pad(s: Scope, node: Node, x: T, pads) -> T:
    """A ZeroPadding layer `<node>-pad` with these (before, after) pads per spatial axis."""
    shape = (
        x.shape[0],
        *[
            d + a + b if isinstance(d, int) else None
            for d, (a, b) in zip(x.shape[1:], pads, strict=True)
        ],
    )
    cls = f"{L}ZeroPadding{len(pads)}D"
    return s.layer(cls, x, f"{node.local_name}-pad", shape, x.perm, [compact_pads(pads)])


def padded(s: Scope, node: Node, x: T, kernel, stride, dilation) -> tuple[T, str]:
    """The input and Keras `padding` for a convolution: 'same'/'valid' where exact, else a
    ZeroPadding layer and 'valid'."""
    pads = node.attrs["padding"]
    mode = keras_padding(pads, x.shape[1:], kernel, stride, dilation)
    if mode is not None:
        return x, mode
    return zero_pad(s, node, x, pads), "valid"


# -- activations --------------------------------------------------------------------------
# Keras' own activations with netspec's meaning (Keras 3's "hard_swish" is hard_silu:
# x * relu6(x + 3) / 6)
SIMPLE = {"relu", "sigmoid", "tanh", "relu6", "selu", "gelu", "silu", "softplus", "hard_swish"}


def activation_string(act: dict | None, rank: int) -> str | None:
    """The Keras `activation=` string with exactly this meaning on a layer's output, if any.
    (Keras' `gelu` is the exact erf form by default; `softmax` / `log_softmax` act on Keras'
    last axis, which is the last logical axis of a dense layer's output.)"""
    if act is None:
        return None
    op = act["op"]
    if op in SIMPLE:
        return op
    if op == "identity":
        return "linear"
    if op == "elu" and act["alpha"] == 1.0:
        return "elu"
    if op in ("softmax", "log_softmax"):
        ax = act["axis"] + rank + 1 if act["axis"] < 0 else act["axis"]
        return op if ax == rank else None
    return None


def linear(act: str | None) -> str | None:
    """A layer's `activation=`: "linear" is Keras' default (None), left out."""
    return None if act == "linear" else act


def finish(s: Scope, node: Node, t: T, act: dict | None, inline: bool) -> T:
    """Apply a layer's `activation` as its own layer when it was not given inline."""
    if act is not None and inline:
        t.nonnegative = OPS[act["op"]].nonnegative  # a max pool may pad it with zeros
    if act is None or inline:
        return t
    return activation(s, act["op"], act, t, f"{node.local_name}-activation")


def activation(s: Scope, op: str, attrs: dict, x: T, suffix: str, node: Node | None = None) -> T:
    """The layer of an activation op (`node`: the op's own node, whose params it may use)."""
    t = _activation(s, op, attrs, x, suffix, node)
    t.nonnegative = OPS[op].nonnegative
    return t


def _activation(s: Scope, op: str, attrs: dict, x: T, suffix: str, node: Node | None) -> T:
    shape, perm = x.shape, x.perm

    def alpha() -> Any:
        return attrs["alpha"] if node is None else s.attr(node, "alpha")

    if op in SIMPLE:
        return s.layer(f"{L}Activation", x, suffix, shape, perm, [op])
    if op == "identity":
        return s.layer(f"{L}Identity", x, suffix, shape, perm)
    if op == "leaky_relu":
        kw = with_defaults({"negative_slope": 0.3}, negative_slope=alpha())
        return s.layer(f"{L}LeakyReLU", x, suffix, shape, perm, **kw)
    if op == "elu":
        kw = with_defaults({"alpha": 1.0}, alpha=alpha())
        return s.layer(f"{L}ELU", x, suffix, shape, perm, **kw)
    if op == "hard_sigmoid":
        return s.layer(s.custom("HardSigmoid"), x, suffix, shape, perm)
    if op in ("softmax", "log_softmax"):
        ax = attrs["axis"] + x.rank + 1 if attrs["axis"] < 0 else attrs["axis"]
        k = layout.axis(perm, ax)
        if op == "softmax":
            kw = with_defaults({"axis": -1}, axis=k)
            return s.layer(f"{L}Softmax", x, suffix, shape, perm, **kw)
        if k == -1:
            return s.layer(f"{L}Activation", x, suffix, shape, perm, ["log_softmax"])
        return s.layer(s.custom("LogSoftmax"), x, suffix, shape, perm, axis=k)
    raise AssertionError(op)  # pragma: no cover


@emitter(
    "relu",
    "sigmoid",
    "tanh",
    "relu6",
    "selu",
    "gelu",
    "silu",
    "softplus",
    "identity",
    "leaky_relu",
    "elu",
    "hard_sigmoid",
    "hard_swish",
    "softmax",
    "log_softmax",
)
def emit_activation(s: Scope, node: Node, xs: list[T]) -> T:
    return activation(s, node.op, node.attrs, xs[0], node.local_name, node)


@emitter("prelu", weights=(PRELU,))
def emit_prelu(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    kw = with_defaults({"shared_axes": None}, shared_axes=layout.shared_axes(x.perm) or None)
    return s.layer(f"{L}PReLU", x, node.local_name, x.shape, x.perm, weights=PRELU, **kw)


# -- linear -------------------------------------------------------------------------------
@emitter("dense", weights=(KERNEL,))
def emit_dense(s: Scope, node: Node, xs: list[T]) -> T:
    a = node.attrs
    x = s.convert(xs[0], layout.last_axis_last(xs[0].perm))
    act = activation_string(a["activation"], len(node.shape))
    kw = with_defaults({"activation": None, "use_bias": True}, activation=linear(act))
    kw |= with_defaults({"use_bias": True}, use_bias=a["bias"])
    units = s.attr(node, "units")
    t = s.layer(f"{L}Dense", x, node.local_name, node.shape, x.perm, [units], weights=KERNEL, **kw)
    return finish(s, node, t, a["activation"], act is not None)


@emitter("embedding", weights=(EMBEDDING,))
def emit_embedding(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    return s.layer(
        f"{L}Embedding",
        x,
        node.local_name,
        node.shape,
        layout.appended(x.perm),
        [s.attr(node, "vocab"), s.attr(node, "dim")],
        weights=EMBEDDING,
    )


# -- convolution --------------------------------------------------------------------------
CONV_DEFAULTS = {
    "strides": 1,
    "padding": "valid",
    "dilation_rate": 1,
    "use_bias": True,
    "activation": None,
    "groups": 1,
    "depth_multiplier": 1,
}


@emitter("conv1d", "conv2d", "conv3d", weights=(KERNEL, DEPTHWISE))
def emit_conv(s: Scope, node: Node, xs: list[T]) -> T:
    a = node.attrs
    n = len(a["kernel"])
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    c, f, g = x.shape[0], a["filters"], a["groups"]
    stride, dil = a["stride"], a["dilation"]
    # Keras refuses strides > 1 together with dilation > 1: convolve with stride 1 and keep
    # every stride-th output (a 1-wide max pool with that stride), which is the same.
    subsample = max(stride) > 1 and max(dil) > 1
    kstride = (1,) * n if subsample else stride
    x, mode = padded(s, node, x, a["kernel"], kstride, dil)
    act = activation_string(a["activation"], len(node.shape))
    kw = with_defaults(
        CONV_DEFAULTS,
        strides=compact(kstride) if subsample else s.spatial(node, "stride"),
        padding=mode,
        dilation_rate=s.spatial(node, "dilation"),
    )
    out_shape = (f, *[None] * n) if subsample else node.shape
    perm = layout.spatial(len(node.shape))
    kernel = s.spatial(node, "kernel")
    tail = with_defaults(CONV_DEFAULTS, use_bias=a["bias"], activation=linear(act))
    if g > 1 and g == c and n < 3:  # Keras has no DepthwiseConv3D
        kw |= with_defaults(CONV_DEFAULTS, depth_multiplier=f // c)
        cls, args, w = f"{L}DepthwiseConv{n}D", [kernel], DEPTHWISE
    else:
        kw |= with_defaults(CONV_DEFAULTS, groups=s.attr(node, "groups"))
        cls, args, w = f"{L}Conv{n}D", [s.attr(node, "filters"), kernel], KERNEL
    t = s.layer(cls, x, node.local_name, out_shape, perm, args, weights=w, **kw, **tail)
    if subsample:
        t = s.layer(
            f"{L}MaxPooling{n}D",
            t,
            f"{node.local_name}-subsample",
            node.shape,
            perm,
            [1],
            strides=s.spatial(node, "stride"),
        )
    return finish(s, node, t, a["activation"], act is not None)


@emitter("conv_transpose1d", "conv_transpose2d", weights=(KERNEL,))
def emit_conv_transpose(s: Scope, node: Node, xs: list[T]) -> T:
    """Keras' 'same' where it crops what netspec crops: PyTorch's output
    (in - 1) * stride + kernel - 2 * padding + output_padding starts `padding` into the full
    result, Keras' 'same' output in * stride starts max(kernel - stride, 0) // 2 into it. Else
    'valid' with an explicit output_padding, cropped by a Cropping layer."""
    a = node.attrs
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    act = activation_string(a["activation"], len(node.shape))
    k, st, op = a["kernel"], a["stride"], a["output_padding"]
    pads = [p for p, _ in a["padding"]]
    same = all(
        p == max(ki - si, 0) // 2 and ki - 2 * p + oi == si
        for ki, si, p, oi in zip(k, st, pads, op, strict=True)
    )
    cropped = not same and any(pads)
    # 'valid' leaves out output_padding only where Keras' default gives PyTorch's size
    plain = same or (not any(op) and all(ki >= si for ki, si in zip(k, st, strict=True)))
    kw = with_defaults(
        {"strides": 1, "padding": "valid", "use_bias": True, "activation": None},
        strides=s.spatial(node, "stride"),
        padding="same" if same else "valid",
        **({} if plain else {"output_padding": compact(op)}),
        use_bias=a["bias"],
        activation=linear(act),
    )
    full = (
        node.shape[0],
        *[None if d is None else d + 2 * p for d, p in zip(node.shape[1:], pads, strict=True)],
    )
    perm = layout.spatial(len(node.shape))
    t = s.layer(
        f"{L}Conv{len(k)}DTranspose",
        x,
        node.local_name,
        full if cropped else node.shape,
        perm,
        [s.attr(node, "filters"), s.spatial(node, "kernel")],
        weights=KERNEL,
        **kw,
    )
    if cropped:
        t = s.layer(
            f"{L}Cropping{len(k)}D",
            t,
            f"{node.local_name}-crop",
            node.shape,
            perm,
            [compact_pads(a["padding"])],
        )
    return finish(s, node, t, a["activation"], act is not None)


# -- pooling ------------------------------------------------------------------------------
@emitter("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d")
def emit_pool(s: Scope, node: Node, xs: list[T]) -> T:
    """Keras' pooling where its padding is exact: 'same' / 'valid' (its 'same' max pool never
    takes the padding, its average divides by the number of real elements: netspec's meaning),
    or, for a max pool of a tensor that is never negative, zero padding first (every window
    keeps a real element, whose maximum is at least 0). Else a generated layer. Ceil mode's
    overhang is padding after that no window counts; count_include_pad is a ZeroPadding layer
    first (its zeros are then real elements)."""
    a = node.attrs
    n = len(a["size"])
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    perm = layout.spatial(len(node.shape))
    size, stride = a["size"], a["stride"]
    extra = a["ceil_extra"]
    pads = tuple((b, c + e) for (b, c), e in zip(a["padding"], extra, strict=True))
    if node.op.startswith("avg") and a["count_include_pad"] and any(map(any, a["padding"])):
        x = zero_pad(s, node, x, a["padding"])
        pads = tuple((0, e) for e in extra)
    mode = keras_padding(pads, x.shape[1:], size, stride, (1,) * n)
    is_max = node.op.startswith("max")
    cls = f"{L}{'Max' if is_max else 'Average'}Pooling{n}D"
    zeros_exact = all(max(p) < k for p, k in zip(pads, size, strict=True))
    if mode is None and is_max and x.nonnegative and zeros_exact:
        x, mode = zero_pad(s, node, x, pads), "valid"
    if mode is not None:
        strides = s.spatial(node, "stride")
        kw = with_defaults({"padding": "valid"}, padding=mode)
        if "stride" in node.exprs or stride != size:  # Keras' default stride is the size
            kw = {"strides": strides, **kw}
        t = s.layer(cls, x, node.local_name, node.shape, perm, [s.spatial(node, "size")], **kw)
        t.nonnegative = x.nonnegative
        return t
    custom = s.custom("PaddedMaxPool" if is_max else "PaddedAvgPool")
    return s.layer(
        custom,
        x,
        node.local_name,
        node.shape,
        perm,
        pool_size=tuple(size),
        strides=tuple(stride),
        padding=tuple(tuple(p) for p in pads),
    )


@emitter("adaptive_avg_pool", "adaptive_max_pool")
def emit_adaptive_pool(s: Scope, node: Node, xs: list[T]) -> T:
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    kw = with_defaults(
        {"reduce": "mean"}, reduce="mean" if node.op == "adaptive_avg_pool" else "max"
    )
    perm = layout.spatial(len(node.shape))
    size = tuple(node.attrs["output_size"])
    return s.layer(
        s.custom("AdaptivePool"), x, node.local_name, node.shape, perm, output_size=size, **kw
    )


@emitter("global_avg_pool", "global_max_pool")
def emit_global_pool(s: Scope, node: Node, xs: list[T]) -> T:
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    kind = "Average" if node.op == "global_avg_pool" else "Max"
    cls = f"{L}Global{kind}Pooling{x.rank - 1}D"
    return s.layer(cls, x, node.local_name, node.shape, layout.logical(1))


# -- normalization and regularization -----------------------------------------------------
@emitter("batch_norm", weights=(BATCH_NORM,))
def emit_batch_norm(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    momentum = float(f"{1.0 - node.attrs['momentum']:.12g}")  # Keras: weight of the old stats
    kw = with_defaults(
        {"axis": -1, "momentum": 0.99, "epsilon": 0.001},
        axis=layout.axis(x.perm, node.attrs["axis"]),
        momentum=momentum,
        epsilon=s.attr(node, "eps"),
    )
    cls = f"{L}BatchNormalization"
    return s.layer(cls, x, node.local_name, x.shape, x.perm, weights=BATCH_NORM, **kw)


@emitter("layer_norm", weights=(LAYER_NORM,))
def emit_layer_norm(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    # not keras.layers.LayerNormalization: it folds the mean into the bias (see LayerNorm)
    return s.layer(
        s.custom("LayerNorm"),
        x,
        node.local_name,
        x.shape,
        x.perm,
        weights=LAYER_NORM,
        axis=layout.axis(x.perm, node.attrs["axis"]),
        epsilon=s.attr(node, "eps"),
    )


@emitter("group_norm", "instance_norm", weights=(GROUP_NORM,))
def emit_group_norm(s: Scope, node: Node, xs: list[T]) -> T:
    """Not keras.layers.GroupNormalization: it folds the mean into the shift, as Keras'
    LayerNormalization does (see LayerNorm)."""
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    a = node.attrs
    if node.op == "group_norm":
        groups, affine = s.attr(node, "groups"), True
    else:
        groups, affine = node.shape[0], a["affine"]
    kw = with_defaults({"affine": True}, affine=affine)
    w = GROUP_NORM if affine else None
    cls = s.custom("GroupNorm")
    return s.layer(
        cls,
        x,
        node.local_name,
        x.shape,
        x.perm,
        [groups],
        weights=w,
        epsilon=s.attr(node, "eps"),
        **kw,
    )


@emitter("normalize", weights=(NORMALIZE,))
def emit_normalize(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    axis = node.attrs["axis"]
    kw = with_defaults({"axis": -1}, axis=None if axis is None else layout.axis(x.perm, axis))
    cls = s.custom("Normalize")
    return s.layer(cls, x, node.local_name, x.shape, x.perm, weights=NORMALIZE, **kw)


@emitter("dropout")
def emit_dropout(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    t = s.layer(f"{L}Dropout", x, node.local_name, x.shape, x.perm, [s.attr(node, "rate")])
    t.nonnegative = x.nonnegative
    return t


@emitter("drop_path", "spatial_dropout", "dropblock")
def emit_drop(s: Scope, node: Node, xs: list[T]) -> T:
    """SpatialDropout (channels-last); DropPath and DropBlock classes (the identity at
    inference)."""
    x = xs[0]
    rate = s.attr(node, "rate")
    if node.op == "spatial_dropout":
        x = s.convert(x, layout.spatial(x.rank))
        cls = f"{L}SpatialDropout{x.rank - 1}D"
        t = s.layer(cls, x, node.local_name, x.shape, x.perm, [rate])
    elif node.op == "drop_path":
        t = s.layer(s.custom("DropPath"), x, node.local_name, x.shape, x.perm, [rate])
    else:
        x = s.convert(x, layout.spatial(x.rank))
        size = s.attr(node, "block_size")
        t = s.layer(s.custom("DropBlock"), x, node.local_name, x.shape, x.perm, [rate, size])
    t.nonnegative = x.nonnegative
    return t


# -- shape --------------------------------------------------------------------------------
@emitter("flatten")
def emit_flatten(s: Scope, node: Node, xs: list[T]) -> T:
    x = s.convert(xs[0], layout.flatten_input(xs[0].shape, xs[0].perm))
    return s.layer(f"{L}Flatten", x, node.local_name, node.shape, layout.logical(1))


@emitter("reshape")
def emit_reshape(s: Scope, node: Node, xs: list[T]) -> T:
    x = s.convert(xs[0], layout.reshape_input(xs[0].shape, xs[0].perm))
    perm = layout.reshape_output(node.shape)
    target = layout.keras_shape(node.shape, perm)
    return s.layer(f"{L}Reshape", x, node.local_name, node.shape, perm, [target])


@emitter("permute")
def emit_permute(s: Scope, node: Node, xs: list[T]) -> T:
    """No data moves: the same Keras tensor, its axes relabeled (a later layer that needs a
    particular layout transposes)."""
    x = xs[0]
    perm = layout.permuted(x.perm, node.attrs["dims"])
    return x.relabeled(node.shape, perm, node.local_name)


@emitter("upsample")
def emit_upsample(s: Scope, node: Node, xs: list[T]) -> T:
    """Keras' UpSampling where it computes the same (nearest; bilinear with half-pixel centers
    on two axes), else `LinearUpsample`."""
    a = node.attrs
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    n = len(a["scale_factor"])
    perm = layout.spatial(len(node.shape))
    size = s.spatial(node, "scale_factor")
    if a["mode"] == "nearest" or (n == 2 and not a["align_corners"]):
        kw = {} if a["mode"] == "nearest" or n != 2 else {"interpolation": "bilinear"}
        return s.layer(f"{L}UpSampling{n}D", x, node.local_name, node.shape, perm, [size], **kw)
    kw = with_defaults({"align_corners": False}, align_corners=a["align_corners"])
    cls = s.custom("LinearUpsample")
    return s.layer(cls, x, node.local_name, node.shape, perm, scale=tuple(a["scale_factor"]), **kw)


@emitter("pad")
def emit_pad(s: Scope, node: Node, xs: list[T]) -> T:
    a = node.attrs
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    perm = layout.spatial(len(node.shape))
    if a["mode"] == "constant" and not a["value"]:
        cls = f"{L}ZeroPadding{len(a['padding'])}D"
        t = s.layer(cls, x, node.local_name, node.shape, perm, [compact_pads(a["padding"])])
        t.nonnegative = x.nonnegative
        return t
    kw = with_defaults({"mode": "constant", "value": 0.0}, mode=a["mode"], value=a["value"])
    pads = tuple(tuple(p) for p in a["padding"])
    return s.layer(s.custom("Pad"), x, node.local_name, node.shape, perm, padding=pads, **kw)


@emitter("reduce_mean", "reduce_max", "reduce_sum")
def emit_reduce(s: Scope, node: Node, xs: list[T]) -> T:
    """In the input's layout: its Keras axes of the reduced logical ones; the other axes keep
    their order."""
    x = xs[0]
    axes, keep = node.attrs["axes"], node.attrs["keepdims"]
    gone = {d - 1 for d in axes}
    keras_axes = tuple(sorted(x.perm.index(g) + 1 for g in gone))
    if keep:
        perm = x.perm
    else:
        perm = tuple(p - sum(g < p for g in gone) for p in x.perm if p not in gone)
    kw = with_defaults(
        {"keepdims": False, "reduce": "mean"}, keepdims=keep, reduce=node.op.split("_")[1]
    )
    cls = s.custom("Reduce")
    return s.layer(cls, x, node.local_name, node.shape, perm, axis=keras_axes, **kw)


def logical_in(s: Scope, x: T) -> T:
    """`x` in logical order: the indexing ops and matmul number axes as the spec does."""
    return s.convert(x, layout.logical(x.rank))


@emitter("slice")
def emit_slice(s: Scope, node: Node, xs: list[T]) -> T:
    a = node.attrs
    x = logical_in(s, xs[0])
    kw = {"axis": a["axis"], "start": a["start"], "end": a["end"]}
    kw |= with_defaults({"step": 1}, step=a["step"])
    return s.layer(s.custom("Slice"), x, node.local_name, node.shape, x.perm, **kw)


@emitter("select")
def emit_select(s: Scope, node: Node, xs: list[T]) -> T:
    x = logical_in(s, xs[0])
    perm = layout.logical(len(node.shape))
    kw = {"axis": node.attrs["axis"], "index": node.attrs["index"]}
    return s.layer(s.custom("Select"), x, node.local_name, node.shape, perm, **kw)


@emitter("gather")
def emit_gather(s: Scope, node: Node, xs: list[T]) -> T:
    x = logical_in(s, xs[0])
    kw = {"axis": node.attrs["axis"], "indices": tuple(node.attrs["indices"])}
    return s.layer(s.custom("Gather"), x, node.local_name, node.shape, x.perm, **kw)


@emitter("roll")
def emit_roll(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]  # any layout: each logical axis rolls where it is
    kw = {
        "shifts": tuple(node.attrs["shifts"]),
        "axes": tuple(layout.axis(x.perm, d) for d in node.attrs["dims"]),
    }
    return s.layer(s.custom("Roll"), x, node.local_name, node.shape, x.perm, **kw)


@emitter("parameter", weights=(LEARNED,))
def emit_parameter(s: Scope, node: Node, xs: list[T]) -> T:
    shape = node.attrs["shape"]
    perm = layout.logical(len(shape))
    cls = s.custom("Learned")
    return s.layer(cls, xs[0], node.local_name, node.shape, perm, [tuple(shape)], weights=LEARNED)


@emitter("constant")
def emit_constant(s: Scope, node: Node, xs: list[T]) -> T:
    a = node.attrs
    perm = layout.logical(len(a["shape"]))
    kw = with_defaults(
        {"value": 0.0, "triu": None, "tril": None}, value=a["value"], triu=a["triu"], tril=a["tril"]
    )
    cls = s.custom("Constant")
    return s.layer(cls, xs[0], node.local_name, node.shape, perm, [tuple(a["shape"])], **kw)


@emitter("matmul")
def emit_matmul(s: Scope, node: Node, xs: list[T]) -> T:
    ins = [logical_in(s, x) for x in xs]
    perm = layout.logical(len(node.shape))
    return s.layer(s.custom("MatMul"), ins, node.local_name, node.shape, perm)


# -- merge --------------------------------------------------------------------------------
MERGE = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply"}


@emitter("add", "subtract", "multiply")
def emit_merge(s: Scope, node: Node, xs: list[T]) -> T:
    perm = layout.common([x.perm for x in xs])
    ins = [s.convert(x, perm) for x in xs]
    broadcast = any(x.shape != node.shape or None in x.shape for x in xs)
    if node.op == "add" and broadcast:  # keras.layers.Add may take an input for a bias
        return s.layer(s.custom("BroadcastAdd"), ins, node.local_name, node.shape, perm)
    return s.layer(f"{L}{MERGE[node.op]}", ins, node.local_name, node.shape, perm)


@emitter("concat")
def emit_concat(s: Scope, node: Node, xs: list[T]) -> T:
    perm = layout.common([x.perm for x in xs])
    ins = [s.convert(x, perm) for x in xs]
    kw = with_defaults({"axis": -1}, axis=layout.axis(perm, node.attrs["axis"]))
    return s.layer(f"{L}Concatenate", ins, node.local_name, node.shape, perm, **kw)


# -- attention ----------------------------------------------------------------------------
@emitter("attention", weights=(ATTENTION,))
def emit_attention(s: Scope, node: Node, xs: list[T]) -> T:
    """keras.layers.MultiHeadAttention inside the `Attention` class (which turns the key mask
    and `causal` into its attention mask); the query's features split into the heads."""
    a = node.attrs
    ins = [s.convert(x, layout.logical(x.rank)) for x in xs]
    kw = with_defaults(
        {"use_bias": True, "causal": False, "dropout": 0.0},
        use_bias=a["bias"],
        causal=s.attr(node, "causal"),
        dropout=s.attr(node, "dropout"),
    )
    args = [s.attr(node, "heads"), node.shape[-1] // a["heads"]]
    cls = s.custom("Attention")
    inputs = ins if len(ins) > 1 else ins[0]
    perm = layout.logical(2)
    return s.layer(cls, inputs, node.local_name, node.shape, perm, args, weights=ATTENTION, **kw)


# -- recurrent ----------------------------------------------------------------------------
RNN = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}


@emitter("lstm", "gru", "rnn", weights=(RNN_WEIGHTS, GRU_WEIGHTS))
def emit_recurrent(s: Scope, node: Node, xs: list[T]) -> T:
    """Keras' recurrent layers compute PyTorch's equations (GRU with reset_after=True, Keras'
    default; the weights are converted on loading). A Bidirectional layer with
    return_sequences=False returns the backward layer's state after it has read the first step,
    as netspec does. Stacked layers are `<node>-l<i>`."""
    a = node.attrs
    x = s.convert(xs[0], layout.recurrent(xs[0].rank))
    count = a["num_layers"]
    dirs = 2 if a["bidirectional"] else 1
    cls = RNN[node.op]
    w = GRU_WEIGHTS if node.op == "gru" else RNN_WEIGHTS
    for i in range(count):
        seq = True if i < count - 1 else a["return_sequences"]
        shape = (x.shape[0], a["units"] * dirs) if seq else (a["units"] * dirs,)
        suffix = node.local_name if count == 1 else f"{node.local_name}-l{i}"
        kw = with_defaults({"return_sequences": False}, return_sequences=seq)
        units = s.attr(node, "units")
        perm = layout.logical(len(shape))
        if a["bidirectional"]:
            inner = Ctor(f"{L}{cls}", [units], kw)
            x = s.layer(
                f"{L}Bidirectional", x, suffix, shape, perm, [inner], weights=w, weights_key=cls
            )
        else:
            x = s.layer(f"{L}{cls}", x, suffix, shape, perm, [units], weights=w, **kw)
    return x
