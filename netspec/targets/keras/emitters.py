"""One emitter per op: the Keras layers that compute it.

An emitter gets the scope, the node and its input tensors, asks `layout` which layout the op
needs and what its axes become there, and adds layers. Where Keras has no layer with exactly
netspec's meaning, it uses a small generated layer class (`runtime.LAYERS`), never a Lambda.
"""

from __future__ import annotations

from typing import Any

from ...ir import Node
from ...ops.base import same_pad
from . import layout
from .codegen import Default, Emitter, Expr, Scope, T, lit

EMITTERS: dict[str, Emitter] = {}
L = "keras.layers."


def emitter(*ops: str):
    """Register the emitter of one or more ops (each op has exactly one)."""

    def deco(fn: Emitter) -> Emitter:
        for op in ops:
            if op in EMITTERS:  # pragma: no cover - a definition error
                raise AssertionError(f"two Keras emitters for {op}")
            EMITTERS[op] = fn
        return fn

    return deco


def compact(v: tuple) -> Any:
    """`(3, 3)` -> `3`, as Keras users write it; unequal entries stay a tuple."""
    return v[0] if len(set(v)) == 1 else tuple(v)


def compact_pads(pads: tuple[tuple[int, int], ...]) -> Any:
    """ZeroPadding / Cropping arguments: `1`, `(1, 2)` (symmetric per axis) or the pairs."""
    if all(a == b for a, b in pads):
        return compact(tuple(a for a, _ in pads))
    return pads[0] if len(pads) == 1 else tuple(pads)


def with_defaults(defaults: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Keyword arguments; those equal to Keras' default are marked to be left out."""
    return {
        k: Default(v) if k in defaults and _eq(v, defaults[k]) else v for k, v in kwargs.items()
    }


def _eq(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


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


def padded(s: Scope, node: Node, x: T, kernel, stride, dilation) -> tuple[T, str]:
    """The input and Keras `padding` for a convolution: 'same'/'valid' where exact, else a
    ZeroPadding layer and 'valid'."""
    pads = node.attrs["padding"]
    mode = keras_padding(pads, x.shape[1:], kernel, stride, dilation)
    if mode is not None:
        return x, mode
    n = len(pads)
    shape = (
        x.shape[0],
        *[
            d + a + b if isinstance(d, int) else None
            for d, (a, b) in zip(x.shape[1:], pads, strict=True)
        ],
    )
    x = s.layer(
        f"{L}ZeroPadding{n}D",
        x,
        f"{node.local_name}-pad",
        shape,
        x.perm,
        padding=compact_pads(pads),
    )
    return x, "valid"


# -- activations --------------------------------------------------------------------------
SIMPLE = {"relu", "sigmoid", "tanh", "relu6", "selu", "gelu", "silu", "softplus"}


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


def finish(s: Scope, node: Node, t: T, act: dict | None, inline: bool) -> T:
    """Apply a layer's `activation` as its own layer when it was not given inline."""
    if act is None or inline:
        return t
    return activation(s, act["op"], act, t, f"{node.local_name}-activation")


def activation(s: Scope, op: str, attrs: dict, x: T, suffix: str, var: str | None = None) -> T:
    shape, perm = x.shape, x.perm
    if op in SIMPLE:
        return s.layer(f"{L}Activation", x, suffix, shape, perm, [op], var=var)
    if op == "identity":
        return s.layer(f"{L}Identity", x, suffix, shape, perm, var=var)
    if op == "leaky_relu":
        return s.layer(
            f"{L}LeakyReLU", x, suffix, shape, perm, var=var, negative_slope=attrs["alpha"]
        )
    if op == "elu":
        return s.layer(f"{L}ELU", x, suffix, shape, perm, var=var, alpha=attrs["alpha"])
    if op == "hard_sigmoid":
        return s.layer(s.custom("HardSigmoid"), x, suffix, shape, perm, var=var)
    if op in ("softmax", "log_softmax"):
        ax = attrs["axis"] + x.rank + 1 if attrs["axis"] < 0 else attrs["axis"]
        k = layout.axis(perm, ax)
        if op == "softmax":
            return s.layer(f"{L}Softmax", x, suffix, shape, perm, var=var, axis=k)
        if k == -1:
            return s.layer(f"{L}Activation", x, suffix, shape, perm, ["log_softmax"], var=var)
        return s.layer(s.custom("LogSoftmax"), x, suffix, shape, perm, var=var, axis=k)
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
    "softmax",
    "log_softmax",
)
def emit_activation(s: Scope, node: Node, xs: list[T]) -> T:
    return activation(s, node.op, node.attrs, xs[0], node.local_name)


@emitter("prelu")
def emit_prelu(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    s.weights(node, "prelu")
    kw = with_defaults({"shared_axes": None}, shared_axes=layout.shared_axes(x.perm) or None)
    return s.layer(f"{L}PReLU", x, node.local_name, x.shape, x.perm, **kw)


# -- linear -------------------------------------------------------------------------------
@emitter("dense")
def emit_dense(s: Scope, node: Node, xs: list[T]) -> T:
    a = node.attrs
    x = s.convert(xs[0], layout.last_axis_last(xs[0].perm))
    act = activation_string(a["activation"], len(node.shape))
    s.weights(node, "dense")
    kw = with_defaults({"activation": None, "use_bias": True}, activation=act, use_bias=a["bias"])
    t = s.layer(f"{L}Dense", x, node.local_name, node.shape, x.perm, [a["units"]], **kw)
    return finish(s, node, t, a["activation"], act is not None)


@emitter("embedding")
def emit_embedding(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    s.weights(node, "embedding")
    return s.layer(
        f"{L}Embedding",
        x,
        node.local_name,
        node.shape,
        layout.appended(x.perm),
        input_dim=node.attrs["vocab"],
        output_dim=node.attrs["dim"],
    )


# -- convolution --------------------------------------------------------------------------
@emitter("conv1d", "conv2d")
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
    common = {"strides": compact(kstride), "padding": mode, "dilation_rate": compact(dil)}
    defaults = {
        "strides": 1,
        "padding": "valid",
        "dilation_rate": 1,
        "use_bias": True,
        "activation": None,
        "groups": 1,
    }
    out_shape = node.shape
    if subsample:
        out_shape = (f, *[None] * n)
    perm = layout.spatial(len(node.shape))
    if g > 1 and g == c:
        s.weights(node, "depthwise")
        kw = with_defaults(
            {**defaults, "depth_multiplier": 1},
            **common,
            depth_multiplier=f // c,
            use_bias=a["bias"],
            activation=act,
        )
        t = s.layer(
            f"{L}DepthwiseConv{n}D",
            x,
            node.local_name,
            out_shape,
            perm,
            [compact(a["kernel"])],
            **kw,
        )
    else:
        s.weights(node, "conv")
        kw = with_defaults(defaults, **common, groups=g, use_bias=a["bias"], activation=act)
        t = s.layer(
            f"{L}Conv{n}D", x, node.local_name, out_shape, perm, [f, compact(a["kernel"])], **kw
        )
    if subsample:
        t = s.layer(
            f"{L}MaxPooling{n}D",
            t,
            f"{node.local_name}-subsample",
            node.shape,
            perm,
            pool_size=1,
            strides=compact(stride),
        )
    return finish(s, node, t, a["activation"], act is not None)


@emitter("conv_transpose2d")
def emit_conv_transpose(s: Scope, node: Node, xs: list[T]) -> T:
    a = node.attrs
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    act = activation_string(a["activation"], len(node.shape))
    pads = a["padding"]
    s.weights(node, "conv_transpose")
    # 'valid' with an explicit output_padding gives PyTorch's size before cropping:
    # (in - 1) * stride + kernel + output_padding; the padding is then cropped off each side.
    kw = with_defaults(
        {"strides": 1, "padding": "valid", "use_bias": True, "activation": None},
        strides=compact(a["stride"]),
        padding="valid",
        output_padding=compact(a["output_padding"]),
        use_bias=a["bias"],
        activation=act,
    )
    cropped = any(p != (0, 0) for p in pads)
    full = (
        node.shape[0],
        *[None if d is None else d + 2 * p for d, (p, _) in zip(node.shape[1:], pads, strict=True)],
    )
    perm = layout.spatial(len(node.shape))
    t = s.layer(
        f"{L}Conv2DTranspose",
        x,
        node.local_name,
        full if cropped else node.shape,
        perm,
        [a["filters"], compact(a["kernel"])],
        **kw,
    )
    if cropped:
        t = s.layer(
            f"{L}Cropping2D",
            t,
            f"{node.local_name}-crop",
            node.shape,
            perm,
            cropping=compact_pads(pads),
        )
    return finish(s, node, t, a["activation"], act is not None)


# -- pooling ------------------------------------------------------------------------------
@emitter("max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d")
def emit_pool(s: Scope, node: Node, xs: list[T]) -> T:
    a = node.attrs
    n = len(a["size"])
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    perm = layout.spatial(len(node.shape))
    size, stride, pads = a["size"], a["stride"], a["padding"]
    mode = keras_padding(pads, x.shape[1:], size, stride, (1,) * n)
    is_max = node.op.startswith("max")
    if mode is not None:
        # Keras' 'same' max pool never takes the padding; its average divides by the number
        # of real elements: both netspec's meaning.
        cls = f"{L}{'Max' if is_max else 'Average'}Pooling{n}D"
        kw = with_defaults({"padding": "valid"}, strides=compact(stride), padding=mode)
        return s.layer(cls, x, node.local_name, node.shape, perm, [compact(size)], **kw)
    cls = s.custom("PaddedMaxPool" if is_max else "PaddedAvgPool")
    return s.layer(
        cls,
        x,
        node.local_name,
        node.shape,
        perm,
        pool_size=tuple(size),
        strides=tuple(stride),
        padding=tuple(tuple(p) for p in pads),
    )


@emitter("global_avg_pool", "global_max_pool")
def emit_global_pool(s: Scope, node: Node, xs: list[T]) -> T:
    x = s.convert(xs[0], layout.spatial(xs[0].rank))
    kind = "Average" if node.op == "global_avg_pool" else "Max"
    cls = f"{L}Global{kind}Pooling{x.rank - 1}D"
    return s.layer(cls, x, node.local_name, node.shape, layout.logical(1))


# -- normalization and regularization -----------------------------------------------------
@emitter("batch_norm")
def emit_batch_norm(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    s.weights(node, "batch_norm")
    momentum = float(f"{1.0 - node.attrs['momentum']:.12g}")  # Keras: weight of the old stats
    return s.layer(
        f"{L}BatchNormalization",
        x,
        node.local_name,
        x.shape,
        x.perm,
        axis=layout.channel_axis(x.perm),
        momentum=momentum,
        epsilon=node.attrs["eps"],
    )


@emitter("layer_norm")
def emit_layer_norm(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    s.weights(node, "layer_norm")
    # not keras.layers.LayerNormalization: it folds the mean into the bias (see LayerNorm)
    return s.layer(
        s.custom("LayerNorm"),
        x,
        node.local_name,
        x.shape,
        x.perm,
        axis=layout.last_axis(x.perm),
        epsilon=node.attrs["eps"],
    )


@emitter("dropout")
def emit_dropout(s: Scope, node: Node, xs: list[T]) -> T:
    x = xs[0]
    return s.layer(f"{L}Dropout", x, node.local_name, x.shape, x.perm, [node.attrs["rate"]])


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
    return T(x.var, node.shape, perm, x.layer, x.dtype, node.local_name)


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
    return s.layer(
        f"{L}Concatenate",
        ins,
        node.local_name,
        node.shape,
        perm,
        axis=layout.axis(perm, node.attrs["axis"]),
    )


# -- recurrent ----------------------------------------------------------------------------
RNN = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}


@emitter("lstm", "gru", "rnn")
def emit_recurrent(s: Scope, node: Node, xs: list[T]) -> T:
    """Keras' recurrent layers compute PyTorch's equations (GRU with reset_after=True; the
    weights are converted on loading). A Bidirectional layer with return_sequences=False
    returns the backward layer's state after it has read the first step, as netspec does."""
    a = node.attrs
    x = s.convert(xs[0], layout.recurrent(xs[0].rank))
    count = a["num_layers"]
    dirs = 2 if a["bidirectional"] else 1
    cls = f"{L}{RNN[node.op]}"
    extra = {"reset_after": True} if node.op == "gru" else {}
    s.weights(node, node.op, count)
    for i in range(count):
        seq = True if i < count - 1 else a["return_sequences"]
        shape = (x.shape[0], a["units"] * dirs) if seq else (a["units"] * dirs,)
        suffix = node.local_name if count == 1 else f"{node.local_name}-l{i}"
        if a["bidirectional"]:
            kws = ", ".join(
                f"{k}={lit(v)}"
                for k, v in {**({"return_sequences": True} if seq else {}), **extra}.items()
            )
            inner = Expr(f"{cls}({a['units']}{', ' if kws else ''}{kws})")
            x = s.layer(f"{L}Bidirectional", x, suffix, shape, layout.logical(len(shape)), [inner])
        else:
            kw = with_defaults({"return_sequences": False}, return_sequences=seq)
            x = s.layer(
                cls, x, suffix, shape, layout.logical(len(shape)), [a["units"]], **kw, **extra
            )
    return x
