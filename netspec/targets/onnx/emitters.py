"""One emitter per op: a small function that appends the ONNX nodes of one layer.

`@emitter("conv1d", "conv2d")` registers `fn(b, node, xs, out) -> str`: `b` is the `Builder`,
`node` the IR node (attributes normalized by the op table), `xs` the ONNX tensor names of its
inputs, `out` the name its result should get. It returns the tensor that holds the result:
`out`, or an input's name for ops that are the identity at inference (no node is emitted).

`unpack(node, inits) -> {canonical key: array}` turns a layer's initializers back into canonical
weights; the default takes the initializers named by the canonical keys, reshaped to the
canonical shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from ...errors import SpecError
from ...ir import Node
from ...ops.norm import EPSILON
from .builder import Builder

Emit = Callable[[Builder, Node, list[str], str], str]
Unpack = Callable[[Node, dict[str, np.ndarray]], dict[str, np.ndarray]]


def default_unpack(node: Node, inits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    shapes = {**node.params, **node.buffers}
    return {f"{node.name}.{p}": inits[f"{node.name}.{p}"].reshape(s) for p, s in shapes.items()}


@dataclass(frozen=True)
class Emitter:
    op: str
    emit: Emit
    unpack: Unpack = default_unpack

    def __call__(self, b: Builder, node: Node, xs: list[str], out: str) -> str:
        return self.emit(b, node, xs, out)


EMITTERS: dict[str, Emitter] = {}


def emitter(*ops: str, unpack: Unpack = default_unpack):
    def deco(fn: Emit) -> Emit:
        for name in ops:
            assert name not in EMITTERS, name
            EMITTERS[name] = Emitter(name, fn, unpack)
        return fn

    return deco


def emit_node(b: Builder, node: Node, xs: list[str], out: str) -> str:
    prev, b.current = b.current, node
    try:
        return EMITTERS[node.op].emit(b, node, xs, out)
    finally:
        b.current = prev


def activate(b: Builder, node: Node, y: str, out: str) -> str:
    """Apply a layer's `activation` attribute ({op, **attrs} or None) to `y`."""
    act = node.attrs.get("activation")
    if act is None or act["op"] == "identity":
        return y
    attrs = {k: v for k, v in act.items() if k != "op"}
    pseudo = Node(node.name, act["op"], attrs, [node.name], node.shape)
    return EMITTERS[act["op"]].emit(b, pseudo, [y], out)


def _pads(pairs) -> list[int]:
    """((b1, a1), (b2, a2)) -> ONNX [b1, b2, a1, a2]."""
    return [p[0] for p in pairs] + [p[1] for p in pairs]


# -- linear -------------------------------------------------------------------------------
def _dense_unpack(node: Node, inits):
    out = {}
    if node.shape and len(node.shape) > 1:  # MatMul form: weight stored [in, out]
        out[f"{node.name}.weight"] = np.ascontiguousarray(inits[f"{node.name}/weight_t"].T)
    else:
        out[f"{node.name}.weight"] = inits[f"{node.name}.weight"]
    if "bias" in node.params:
        out[f"{node.name}.bias"] = inits[f"{node.name}.bias"]
    return out


@emitter("dense", unpack=_dense_unpack)
def dense(b: Builder, node: Node, xs: list[str], out: str) -> str:
    y = b.tmp("linear") if _has_act(node) else out
    if len(node.shape) == 1:  # [N, in]: one Gemm with the canonical [out, in] weight
        w = b.param(node, "weight")
        bias = [b.param(node, "bias")] if node.attrs["bias"] else []
        b.op("Gemm", [xs[0], w, *bias], y, transB=1)
    else:  # [N, ..., in]: MatMul against the transposed weight, then the bias
        wt = b.initializer(f"{node.name}/weight_t", b.weight(f"{node.name}.weight").T)
        bias = [b.param(node, "bias")] if node.attrs["bias"] else []
        if bias:
            b.op("Add", [b.op("MatMul", [xs[0], wt], what="matmul"), bias[0]], y)
        else:
            b.op("MatMul", [xs[0], wt], y)
    return activate(b, node, y, out)


@emitter("embedding")
def embedding(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("Gather", [b.param(node, "weight"), xs[0]], out, axis=0)


# -- convolution --------------------------------------------------------------------------
def _has_act(node: Node) -> bool:
    act = node.attrs.get("activation")
    return act is not None and act["op"] != "identity"


@emitter("conv1d", "conv2d", "conv3d")
def conv(b: Builder, node: Node, xs: list[str], out: str) -> str:
    a = node.attrs
    y = b.tmp("conv") if _has_act(node) else out
    w = b.param(node, "weight")
    bias = [b.param(node, "bias")] if a["bias"] else []
    b.op(
        "Conv",
        [xs[0], w, *bias],
        y,
        kernel_shape=list(a["kernel"]),
        strides=list(a["stride"]),
        dilations=list(a["dilation"]),
        pads=_pads(a["padding"]),
        group=a["groups"],
    )
    return activate(b, node, y, out)


@emitter("conv_transpose1d", "conv_transpose2d")
def conv_transpose(b: Builder, node: Node, xs: list[str], out: str) -> str:
    a = node.attrs
    y = b.tmp("conv_transpose") if _has_act(node) else out
    w = b.param(node, "weight")
    bias = [b.param(node, "bias")] if a["bias"] else []
    b.op(
        "ConvTranspose",
        [xs[0], w, *bias],
        y,
        kernel_shape=list(a["kernel"]),
        strides=list(a["stride"]),
        pads=_pads(a["padding"]),
        output_padding=list(a["output_padding"]),
    )
    return activate(b, node, y, out)


# -- pooling ------------------------------------------------------------------------------
def _pad(
    b: Builder, x: str, pairs, out: str | None = None, mode: str = "constant", what: str = "pad"
) -> str:
    """Pad the spatial axes by (before, after) pairs (zeros, or `mode`: reflect, edge)."""
    pads = b.const(_pads([(0, 0), (0, 0), *pairs]), what="pads")
    return b.op("Pad", [x, pads], out, what=what, mode=None if mode == "constant" else mode)


def _overhang(a: dict) -> list[tuple[int, int]]:
    """Padding pairs with ceil mode's overhang added after (ONNX's own ceil_mode is left
    alone: ONNX Runtime's rounding has differed from PyTorch's between versions)."""
    return [(b, c + x) for (b, c), x in zip(a["padding"], a["ceil_extra"], strict=True)]


@emitter("max_pool1d", "max_pool2d", "max_pool3d")
def max_pool(b: Builder, node: Node, xs: list[str], out: str) -> str:
    a = node.attrs  # ONNX MaxPool never takes a padded position as the maximum
    return b.op(
        "MaxPool",
        xs[:1],
        out,
        kernel_shape=list(a["size"]),
        strides=list(a["stride"]),
        pads=_pads(_overhang(a)),
    )


@emitter("avg_pool1d", "avg_pool2d", "avg_pool3d")
def avg_pool(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """count_include_pad counts the padding but never ceil mode's overhang (PyTorch): the
    padding is then a Pad of zeros, and the pool counts only the elements it reads."""
    a = node.attrs
    x, pads = xs[0], _overhang(a)
    if a["count_include_pad"] and any(p for pair in a["padding"] for p in pair):
        x = _pad(b, x, a["padding"], what="padded")
        pads = [(0, e) for e in a["ceil_extra"]]
    return b.op(
        "AveragePool",
        [x],
        out,
        kernel_shape=list(a["size"]),
        strides=list(a["stride"]),
        pads=_pads(pads),
        count_include_pad=0,
    )


@emitter("adaptive_avg_pool", "adaptive_max_pool")
def adaptive_pool(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """One AveragePool / MaxPool over the axes whose size the output size divides (kernel and
    stride L / o); each other axis bin by bin: Slice, ReduceMean / ReduceMax, Concat (a bin of
    several axes is the product of one bin per axis, so reducing axis after axis is exact)."""
    from ...ops.adaptive import bins

    sizes = b.graph.value(node.inputs[0]).shape[1:]
    outs = node.attrs["output_size"]
    avg = node.op == "adaptive_avg_pool"
    even = [o <= size and size % o == 0 for size, o in zip(sizes, outs, strict=True)]
    steps = [i for i, ok in enumerate(even) if not ok]
    x = xs[0]
    if any(ok and size != o for ok, size, o in zip(even, sizes, outs, strict=True)):
        k = [size // o if ok else 1 for ok, size, o in zip(even, sizes, outs, strict=True)]
        pool = "AveragePool" if avg else "MaxPool"
        x = b.op(pool, [x], out if not steps else None, what="pool", kernel_shape=k, strides=k)
    for j, i in enumerate(steps):
        axis = 2 + i
        parts = []
        for lo, hi in bins(sizes[i], outs[i]):
            part = b.op(
                "Slice",
                [x, b.const([lo]), b.const([hi]), b.const([axis], what="axes")],
                what="bin",
            )
            parts.append(
                b.reduce("ReduceMean" if avg else "ReduceMax", part, [axis], True, what="bin_pool")
            )
        last = j == len(steps) - 1
        x = b.op("Concat", parts, out if last else None, what="bins", axis=axis)
    return x  # the input itself where the output size is the input's (the identity)


@emitter("global_avg_pool", "global_max_pool")
def global_pool(b: Builder, node: Node, xs: list[str], out: str) -> str:
    op_type = "GlobalAveragePool" if node.op == "global_avg_pool" else "GlobalMaxPool"
    return b.op("Flatten", [b.op(op_type, xs[:1], what="pool")], out, axis=1)


# -- normalization ------------------------------------------------------------------------
@emitter("batch_norm")
def batch_norm(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """On another axis than 1: transposed to axis 1 and back."""
    axis, rank = node.attrs["axis"], len(node.shape)
    x = xs[0]
    perm = [0, axis, *[i for i in range(1, rank + 1) if i != axis]]
    if axis != 1:
        x = b.op("Transpose", [x], what="to_axis1", perm=perm)
    ins = [x, *(b.param(node, p) for p in ("weight", "bias", "running_mean", "running_var"))]
    # ONNX's momentum weighs the running value (PyTorch's weighs the new batch)
    y = b.op(
        "BatchNormalization",
        ins,
        out if axis == 1 else None,
        what="normalized",
        epsilon=node.attrs["eps"],
        momentum=1.0 - node.attrs["momentum"],
    )
    if axis == 1:
        return y
    return b.op("Transpose", [y], out, perm=[perm.index(i) for i in range(rank + 1)])


@emitter("layer_norm")
def layer_norm(b: Builder, node: Node, xs: list[str], out: str) -> str:
    eps, axis, rank = node.attrs["eps"], node.attrs["axis"], len(node.shape)
    last = axis == rank
    shape = None if last else [-1] + [1] * (rank - axis)  # the weights broadcast on the axis
    w, bias = b.param(node, "weight", shape), b.param(node, "bias", shape)
    if b.opset >= 17 and last:
        return b.op("LayerNormalization", [xs[0], w, bias], out, axis=-1, epsilon=eps)
    # before opset 17, or another axis than the last: (x - mean) / sqrt(var + eps) * w + b
    mean = b.reduce("ReduceMean", xs[0], [axis], True, what="mean")
    d = b.op("Sub", [xs[0], mean], what="centered")
    var = b.reduce("ReduceMean", b.op("Mul", [d, d], what="square"), [axis], True, what="var")
    std = b.op(
        "Sqrt", [b.op("Add", [var, b.const(eps, np.float32, "eps")], what="var_eps")], what="std"
    )
    y = b.op("Mul", [b.op("Div", [d, std], what="normalized"), w], what="scaled")
    return b.op("Add", [y, bias], out)


@emitter("group_norm")
def group_norm(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """[N, C, ...] -> [N, groups, -1], normalized over the last axis, back to the input's shape,
    then the per-channel scale and shift (ONNX's GroupNormalization scales per group before
    opset 21)."""
    x, rank = xs[0], len(node.shape)
    g = b.reshape(x, [0, node.attrs["groups"], -1], what="groups")
    mean = b.reduce("ReduceMean", g, [2], True, what="mean")
    d = b.op("Sub", [g, mean], what="centered")
    var = b.reduce("ReduceMean", b.op("Mul", [d, d], what="square"), [2], True, what="var")
    eps = b.const(node.attrs["eps"], np.float32, "eps")
    std = b.op("Sqrt", [b.op("Add", [var, eps], what="var_eps")], what="std")
    y = b.op("Div", [d, std], what="normalized")
    y = b.op("Reshape", [y, b.op("Shape", [x], what="shape")], what="ungrouped")
    c = node.params["weight"][0]
    w = b.param(node, "weight", [c] + [1] * (rank - 1))
    bias = b.param(node, "bias", [c] + [1] * (rank - 1))
    return b.op("Add", [b.op("Mul", [y, w], what="scaled"), bias], out)


@emitter("instance_norm")
def instance_norm(b: Builder, node: Node, xs: list[str], out: str) -> str:
    c = node.shape[0]
    if node.attrs["affine"]:
        w, bias = b.param(node, "weight"), b.param(node, "bias")
    else:
        w = b.const(np.ones(c), np.float32, "ones")
        bias = b.const(np.zeros(c), np.float32, "zeros")
    return b.op("InstanceNormalization", [xs[0], w, bias], out, epsilon=node.attrs["eps"])


@emitter("normalize")
def normalize(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """(x - mean) / max(sqrt(variance), 1e-7); mean and variance are initializers shaped to
    broadcast on their axis."""
    axis, rank = node.attrs["axis"], len(node.shape)
    shape = [-1] + [1] * (rank - axis) if axis is not None else [1]
    mean, var = b.param(node, "mean", shape), b.param(node, "variance", shape)
    d = b.op("Sub", [xs[0], mean], what="centered")
    std = b.op("Sqrt", [var], what="std")
    eps = b.const(EPSILON, np.float32, "normalize_eps")
    return b.op("Div", [d, b.op("Max", [std, eps], what="std_eps")], out)


@emitter("dropout", "identity", "drop_path", "spatial_dropout", "dropblock")
def identity(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return xs[0]  # the identity at inference: no node


# -- shape --------------------------------------------------------------------------------
@emitter("flatten")
def flatten(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("Flatten", xs[:1], out, axis=1)


@emitter("reshape")
def reshape(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.reshape(xs[0], [0, *node.attrs["shape"]], out)  # 0 keeps the batch axis


@emitter("permute")
def permute(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("Transpose", xs[:1], out, perm=[0, *node.attrs["dims"]])


@emitter("upsample")
def upsample(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """Resize by constant scales: nearest as PyTorch picks (floor of out / scale), linear with
    half-pixel centers or aligned corners."""
    a = node.attrs
    scales = b.const([1.0, 1.0, *map(float, a["scale_factor"])], np.float32, "scales")
    if a["mode"] == "nearest":
        kw = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    else:
        corners = "align_corners" if a["align_corners"] else "half_pixel"
        kw = {"coordinate_transformation_mode": corners}
    return b.op("Resize", [xs[0], "", scales], out, mode=a["mode"], **kw)


@emitter("pad")
def pad(b: Builder, node: Node, xs: list[str], out: str) -> str:
    a = node.attrs
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[a["mode"]]
    if mode == "constant" and a["value"]:
        pads = b.const(_pads([(0, 0), (0, 0), *a["padding"]]), what="pads")
        value = b.const(a["value"], np.float32, "pad_value")
        return b.op("Pad", [xs[0], pads, value], out)
    return _pad(b, xs[0], a["padding"], out, mode)


@emitter("reduce_mean", "reduce_max", "reduce_sum")
def reduce(b: Builder, node: Node, xs: list[str], out: str) -> str:
    axes, keep = list(node.attrs["axes"]), node.attrs["keepdims"]
    if node.op == "reduce_sum":  # ReduceSum takes its axes as an input from opset 13
        ins = [xs[0], b.const(axes, what="axes")]
        return b.op("ReduceSum", ins, out, keepdims=int(keep))
    op_type = "ReduceMean" if node.op == "reduce_mean" else "ReduceMax"
    return b.reduce(op_type, xs[0], axes, keep, out=out)


INT64_MAX = 2**63 - 1


@emitter("slice")
def slice_(b: Builder, node: Node, xs: list[str], out: str) -> str:
    a = node.attrs
    ins = [
        xs[0],
        b.const([a["start"]], what="starts"),
        b.const([a["end"]], what="ends"),
        b.const([a["axis"]], what="axes"),
    ]
    if a["step"] != 1:
        ins.append(b.const([a["step"]], what="steps"))
    return b.op("Slice", ins, out)


@emitter("select")
def select(b: Builder, node: Node, xs: list[str], out: str) -> str:
    index = b.const(node.attrs["index"], what="index")  # a scalar index removes the axis
    return b.op("Gather", [xs[0], index], out, axis=node.attrs["axis"])


@emitter("gather")
def gather(b: Builder, node: Node, xs: list[str], out: str) -> str:
    indices = b.const(list(node.attrs["indices"]), what="indices")
    return b.op("Gather", [xs[0], indices], out, axis=node.attrs["axis"])


@emitter("roll")
def roll(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """Per axis: the last `shift` elements, then the rest (two Slices and a Concat)."""
    a = node.attrs
    y = xs[0]
    moves = [(s, d) for s, d in zip(a["shifts"], a["dims"], strict=True) if s]
    if not moves:
        return b.op("Identity", [y], out)
    for i, (shift, axis) in enumerate(moves):
        n = node.shape[axis - 1]
        ax = b.const([axis], what="axes")
        tail = b.op(
            "Slice",
            [y, b.const([n - shift], what="starts"), b.const([n], what="ends"), ax],
            what="tail",
        )
        head = b.op(
            "Slice",
            [y, b.const([0], what="starts"), b.const([n - shift], what="ends"), ax],
            what="head",
        )
        last = i == len(moves) - 1
        y = b.op("Concat", [tail, head], out if last else None, what="rolled", axis=axis)
    return y


def _dims(b: Builder, x: str, start: int, what: str) -> str:
    """Axis `start` of `x`'s shape as a 1-D int64 tensor (Shape's start/end from opset 15)."""
    if b.opset >= 15:
        return b.op("Shape", [x], what=what, start=start, end=start + 1)
    shape = b.op("Shape", [x], what=f"{what}_shape")
    ends = [b.const([start], what="starts"), b.const([start + 1], what="ends")]
    return b.op("Slice", [shape, *ends, b.const([0], what="axes")], what=what)


def _batched(b: Builder, x: str, value: str, shape: tuple[int, ...], out: str) -> str:
    """`value` (of per-example `shape`) expanded to the batch size of `x`."""
    batch = _dims(b, x, 0, "batch")
    full = b.op("Concat", [batch, b.const(list(shape), what="shape")], what="shape", axis=0)
    return b.op("Expand", [value, full], out)


@emitter("parameter")
def parameter(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return _batched(b, xs[0], b.param(node, "weight"), node.attrs["shape"], out)


@emitter("constant")
def constant(b: Builder, node: Node, xs: list[str], out: str) -> str:
    from ...ops.tensor import _constant_value

    value = b.const(_constant_value(node.attrs), np.float32, "value")
    return _batched(b, xs[0], value, node.attrs["shape"], out)


@emitter("matmul")
def matmul(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("MatMul", xs, out)


# -- merge --------------------------------------------------------------------------------
def _chain(b: Builder, op_type: str, xs: list[str], out: str) -> str:
    y = xs[0]
    for i, x in enumerate(xs[1:], start=2):
        y = b.op(op_type, [y, x], out if i == len(xs) else None, what=op_type.lower())
    return y


@emitter("add")
def add(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return _chain(b, "Add", xs, out)


@emitter("subtract")
def subtract(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("Sub", xs, out)


@emitter("multiply")
def multiply(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return _chain(b, "Mul", xs, out)


@emitter("concat")
def concat(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("Concat", xs, out, axis=node.attrs["axis"])


# -- recurrent ----------------------------------------------------------------------------
# Gate blocks: ONNX's order taken from PyTorch's. LSTM: PyTorch i f g o -> ONNX i o f c;
# GRU: PyTorch r z n -> ONNX z r h; RNN: one block.
GATE_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}
ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _reorder(a: np.ndarray, order: list[int]) -> np.ndarray:
    blocks = np.split(a, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


def _suffixes(node: Node) -> list[str]:
    return ["", "_reverse"] if node.attrs["bidirectional"] else [""]


def _rnn_unpack(node: Node, inits):
    order = GATE_ORDER[node.op]
    inverse = [order.index(i) for i in range(len(order))]
    out = {}
    for layer in range(node.attrs["num_layers"]):
        w, r, bias = (inits[f"{node.name}/{k}_l{layer}"] for k in "WRB")
        for d, sfx in enumerate(_suffixes(node)):
            wb, rb = np.split(bias[d], 2)
            out[f"{node.name}.weight_ih_l{layer}{sfx}"] = _reorder(w[d], inverse)
            out[f"{node.name}.weight_hh_l{layer}{sfx}"] = _reorder(r[d], inverse)
            out[f"{node.name}.bias_ih_l{layer}{sfx}"] = _reorder(wb, inverse)
            out[f"{node.name}.bias_hh_l{layer}{sfx}"] = _reorder(rb, inverse)
    return out


@emitter("rnn", "lstm", "gru", unpack=_rnn_unpack)
def recurrent(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """One fused ONNX node per layer, sequence-first ([T, N, F]) as ONNX Runtime requires."""
    a = node.attrs
    h, layers, seq = a["units"], a["num_layers"], a["return_sequences"]
    sfx = _suffixes(node)
    dirs = len(sfx)
    order = GATE_ORDER[node.op]
    x = b.op("Transpose", xs[:1], what="time_first", perm=[1, 0, 2])  # [N, T, F] -> [T, N, F]
    for layer in range(layers):

        def canon(p: str, layer: int = layer) -> list[np.ndarray]:
            return [b.weight(f"{node.name}.{p}_l{layer}{s}") for s in sfx]

        w = np.stack([_reorder(m, order) for m in canon("weight_ih")])
        r = np.stack([_reorder(m, order) for m in canon("weight_hh")])
        bias = np.stack(
            [
                np.concatenate([_reorder(i, order), _reorder(j, order)])
                for i, j in zip(canon("bias_ih"), canon("bias_hh"), strict=True)
            ]
        )
        ins = [
            x,
            *(
                b.initializer(f"{node.name}/{k}_l{layer}", v)
                for k, v in zip("WRB", (w, r, bias), strict=True)
            ),
        ]
        last = layer == layers - 1
        if last and not seq:
            outputs = ["", b.tmp(f"h_l{layer}")]  # only Y_h: [dirs, N, H]
        else:
            outputs = [b.tmp(f"y_l{layer}")]  # Y: [T, dirs, N, H]
        b.op(
            ONNX_OP[node.op],
            ins,
            outputs=outputs,
            hidden_size=h,
            direction="bidirectional" if dirs == 2 else "forward",
            linear_before_reset=1 if node.op == "gru" else None,
        )
        if last:
            break
        # the next layer reads [T, N, dirs * H]
        if dirs == 1:
            x = b.squeeze(outputs[0], [1], what=f"x_l{layer + 1}")
        else:
            t = b.op("Transpose", outputs[:1], what=f"y_l{layer}_t", perm=[0, 2, 1, 3])
            x = b.reshape(t, [0, 0, dirs * h], what=f"x_l{layer + 1}")
    if seq and dirs == 1:  # Y [T, 1, N, H] -> [T, N, H] -> [N, T, H]: a 3-D transpose is cheaper
        y = b.squeeze(outputs[0], [1], what="y")
        return b.op("Transpose", [y], out, perm=[1, 0, 2])
    if seq:  # Y [T, dirs, N, H] -> [N, T, dirs * H]
        t = b.op("Transpose", outputs[:1], what="batch_first", perm=[2, 0, 1, 3])
        return b.reshape(t, [0, 0, dirs * h], out)
    if dirs == 1:  # Y_h [1, N, H] -> [N, H]
        return b.squeeze(outputs[1], [0], out)
    t = b.op("Transpose", outputs[1:], what="batch_first", perm=[1, 0, 2])  # forward first
    return b.reshape(t, [0, dirs * h], out)


# -- attention ----------------------------------------------------------------------------
NATIVE_ATTENTION = 23  # the ONNX `Attention` operator, from this opset
MASKED = -1e9  # added to the scores of keys a query does not attend to


def _attention_unpack(node: Node, inits):
    out = {}
    for w in ("q", "k", "v", "out"):
        t = inits[f"{node.name}/weight_{w}_t"]
        out[f"{node.name}.weight_{w}"] = np.ascontiguousarray(t.T)
        if f"bias_{w}" in node.params:
            out[f"{node.name}.bias_{w}"] = inits[f"{node.name}.bias_{w}"]
    return out


def _project(b: Builder, node: Node, x: str, w: str) -> str:
    """x @ weight.T (+ bias): a MatMul against the transposed weight, then an Add."""
    wt = b.initializer(f"{node.name}/weight_{w}_t", b.weight(f"{node.name}.weight_{w}").T)
    y = b.op("MatMul", [x, wt], what=f"{w}_matmul")
    if node.attrs["bias"]:
        y = b.op("Add", [y, b.param(node, f"bias_{w}")], what=w)
    return y


def _attention_mask(b: Builder, node: Node, xs: list[str], causal: bool) -> str | None:
    """The additive mask [N or 1, 1, T, S]: MASKED where a key is padded (mask == 0) or, when
    `causal`, after the query's position; None when there is nothing to mask."""
    parts = []
    if len(xs) > 2:
        padded = b.op("Equal", [xs[2], b.const(0.0, np.float32, "zero")], what="padded")
        add = b.op(
            "Where",
            [padded, b.const(MASKED, np.float32, "masked"), b.const(0.0, np.float32, "zero")],
            what="key_mask",
        )
        parts.append(b.op("Unsqueeze", [add, b.const([1, 2], what="axes")], what="key_mask_4d"))
    if causal:
        t = node.shape[0]
        s = b.graph.value(node.inputs[1] if len(xs) > 1 else node.inputs[0]).shape[0]
        if isinstance(t, int) and isinstance(s, int):
            tri = np.triu(np.full((t, s), MASKED, np.float32), 1)
            parts.append(b.const(tri[None, None], np.float32, "causal"))
        else:  # sizes known at run time: MASKED everywhere, then only above the diagonal
            q = _dims(b, xs[0], 1, "t")
            k = _dims(b, xs[1] if len(xs) > 1 else xs[0], 1, "s")
            ts = b.op("Concat", [b.const([1, 1], what="ones"), q, k], what="ts", axis=0)
            fill = onnx.helper.make_tensor("value", onnx.TensorProto.FLOAT, [1], [MASKED])
            full = b.op("ConstantOfShape", [ts], what="full", value=fill)
            parts.append(b.op("Trilu", [full, b.const(1, what="k")], what="causal", upper=1))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else b.op("Add", parts, what="mask")


@emitter("attention", unpack=_attention_unpack)
def attention(b: Builder, node: Node, xs: list[str], out: str) -> str:
    """From opset 23 the ONNX `Attention` operator on the projected [N, L, D] tensors; before,
    the decomposition ONNX Runtime's attention fusion looks for (as `torch.onnx.export` writes
    BERT's self-attention): Reshape/Transpose per head, MatMul, Div by sqrt(head size), Add the
    mask, Softmax, MatMul, Transpose/Reshape back, then the output projection."""
    a = node.attrs
    heads, d = a["heads"], node.shape[-1]
    hd = d // heads
    kv = xs[1] if len(xs) > 1 else xs[0]
    q, k, v = _project(b, node, xs[0], "q"), _project(b, node, kv, "k"), _project(b, node, kv, "v")
    if b.opset >= NATIVE_ATTENTION:
        mask = _attention_mask(b, node, xs, a["causal"] and len(xs) > 2)
        causal = 1 if a["causal"] and len(xs) <= 2 else None
        if mask is not None and not a["causal"]:  # ONNX Runtime wants the query axis: T, not 1
            t = _dims(b, xs[0], 1, "t")
            ones = b.const([1, 1], what="ones")
            full = b.op("Concat", [ones, t, b.const([1], what="one")], what="mask_shape", axis=0)
            mask = b.op("Expand", [mask, full], what="mask_full")
        y = b.op(
            "Attention",
            [q, k, v, *([mask] if mask else [])],
            what="attention",
            q_num_heads=heads,
            kv_num_heads=heads,
            is_causal=causal,
        )
    else:
        if a["causal"] and b.opset < 14 and not isinstance(node.shape[0], int):
            raise SpecError(
                f"attention '{node.name}': a causal mask on a sequence of dynamic length "
                f"needs ONNX opset 14 or later (Trilu)",
                hint="build with --opset 14 or later, or give the sequence a fixed length",
            )

        def heads_of(x: str, what: str, perm: list[int]) -> str:
            r = b.reshape(x, [0, 0, heads, hd], what=f"{what}_heads")
            return b.op("Transpose", [r], what=f"{what}_t", perm=perm)

        qh = heads_of(q, "q", [0, 2, 1, 3])
        kh = heads_of(k, "k", [0, 2, 3, 1])  # [N, H, hd, S]
        vh = heads_of(v, "v", [0, 2, 1, 3])
        scores = b.op("MatMul", [qh, kh], what="qk")
        scores = b.op("Div", [scores, b.const(math.sqrt(hd), np.float32, "sqrt_hd")], what="scaled")
        mask = _attention_mask(b, node, xs, a["causal"])
        if mask is not None:
            scores = b.op("Add", [scores, mask], what="masked")
        probs = b.op("Softmax", [scores], what="probs", axis=-1)
        ctx = b.op("MatMul", [probs, vh], what="context")
        ctx = b.op("Transpose", [ctx], what="context_t", perm=[0, 2, 1, 3])
        y = b.reshape(ctx, [0, 0, d], what="merged")
    wt = b.initializer(f"{node.name}/weight_out_t", b.weight(f"{node.name}.weight_out").T)
    if not a["bias"]:
        return b.op("MatMul", [y, wt], out)
    return b.op("Add", [b.op("MatMul", [y, wt], what="out_matmul"), b.param(node, "bias_out")], out)


# -- activations --------------------------------------------------------------------------
def _unary(op_type: str, **fixed):
    def emit(b: Builder, node: Node, xs: list[str], out: str) -> str:
        return b.op(op_type, xs[:1], out, **fixed)

    return emit


for _op, _onnx in {
    "relu": "Relu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softplus": "Softplus",
}.items():
    emitter(_op)(_unary(_onnx))

# PyTorch's SELU constants; ONNX's defaults are the same numbers rounded to float32
emitter("selu")(_unary("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805))
emitter("hard_sigmoid")(_unary("HardSigmoid", alpha=1.0 / 6.0, beta=0.5))


@emitter("softmax", "log_softmax")
def softmax(b: Builder, node: Node, xs: list[str], out: str) -> str:
    op_type = "Softmax" if node.op == "softmax" else "LogSoftmax"
    return b.op(op_type, xs[:1], out, axis=node.attrs["axis"])  # opset 13+: one axis


@emitter("relu6")
def relu6(b: Builder, node: Node, xs: list[str], out: str) -> str:
    lo, hi = b.const(0.0, np.float32, "zero"), b.const(6.0, np.float32, "six")
    return b.op("Clip", [xs[0], lo, hi], out)


@emitter("leaky_relu")
def leaky_relu(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("LeakyRelu", xs[:1], out, alpha=node.attrs["alpha"])


@emitter("elu")
def elu(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("Elu", xs[:1], out, alpha=node.attrs["alpha"])


@emitter("prelu")
def prelu(b: Builder, node: Node, xs: list[str], out: str) -> str:
    c = node.params["weight"][0]  # one slope per channel (axis 1), broadcast over the rest
    slope = b.param(node, "weight", [c] + [1] * (len(node.shape) - 1))
    return b.op("PRelu", [xs[0], slope], out)


@emitter("gelu")
def gelu(b: Builder, node: Node, xs: list[str], out: str) -> str:
    if b.opset >= 20:
        return b.op("Gelu", xs[:1], out, approximate="none")
    # exact form: x * 0.5 * (1 + erf(x / sqrt(2)))
    x = xs[0]
    e = b.op(
        "Erf",
        [b.op("Div", [x, b.const(math.sqrt(2.0), np.float32, "sqrt2")], what="scaled")],
        what="erf",
    )
    p = b.op("Add", [e, b.const(1.0, np.float32, "one")], what="erf_plus_1")
    return b.op("Mul", [b.op("Mul", [x, p], what="x_erf"), b.const(0.5, np.float32, "half")], out)


@emitter("hard_swish")
def hard_swish(b: Builder, node: Node, xs: list[str], out: str) -> str:
    if b.opset >= 14:
        return b.op("HardSwish", xs[:1], out)  # x * max(0, min(1, x / 6 + 1/2))
    h = b.op("HardSigmoid", xs[:1], what="hard_sigmoid", alpha=1.0 / 6.0, beta=0.5)
    return b.op("Mul", [xs[0], h], out)


@emitter("silu")
def silu(b: Builder, node: Node, xs: list[str], out: str) -> str:
    return b.op("Mul", [xs[0], b.op("Sigmoid", xs[:1], what="sigmoid")], out)
