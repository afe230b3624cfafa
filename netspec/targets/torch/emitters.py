"""One emitter per op (or per family of ops): what each layer becomes in the PyTorch module.

An emitter receives the node and an `Emit` context (see `codegen.Emit`). It declares the node's
submodule, if it has one (`e.module("nn.Conv2d", 3, 64, 7, stride=2)`: attribute = the layer's
name, so `state_dict()` keys are netspec's canonical keys), and returns the expression of the
node's value in `forward` (or writes its own statements and returns None). Every weight lives in
a submodule; parameter-free ops are plain functional calls where that reads best.

The conventions of the design page are spelled out here: `padding` arrives resolved to
(before, after) pairs per spatial axis; symmetric pairs go to the layer's own `padding`, other
pairs to an explicit `F.pad` (with -inf before a max pool); average pooling divides by the
number of real elements; recurrent layers give each direction's final hidden state (h_n) when
`return_sequences` is false.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...ir import Node
from ..python.pyfmt import WIDTH, BinOp, Call, Expr, Kw, Raw, Seq, flat, lit
from .variables import inplace_activation

if TYPE_CHECKING:
    from .codegen import Emit

Emitter = Callable[[Node, "Emit"], Expr | None]
EMITTERS: dict[str, Emitter] = {}


def emitter(*ops: str) -> Callable[[Emitter], Emitter]:
    """Register `fn` as the emitter of `ops` (each op has exactly one)."""

    def deco(fn: Emitter) -> Emitter:
        for op in ops:
            if op in EMITTERS:  # pragma: no cover - a definition error
                raise AssertionError(f"two torch emitters for {op}")
            EMITTERS[op] = fn
        return fn

    return deco


# -- helpers --------------------------------------------------------------------------------
class Default:
    """A keyword argument equal to PyTorch's default: left out of the source (in a block class,
    unless another use of the class needs another value)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"Default({self.value!r})"


@dataclass(frozen=True)
class Spec:
    """An argument that is a node's attribute (or a block param) the spec wrote with params:
    `expr` is the `Expr` (or a list mirroring the value, `Node.exprs`), `value` the argument as
    PyTorch takes it (possibly a `Default`). The source writes the expression when it gives
    that value; `items`: the attribute's own items, for a list with some items literal.
    `spec_level`: every name in `expr` is a spec-level param."""

    name: str
    expr: Any
    value: Any
    items: tuple = ()
    spec_level: bool = False


@dataclass(frozen=True)
class Size:
    """An argument that is the size of axis `axis` of the value `of` (a layer's input channels
    or features, which the spec does not write): the source follows it back to the layer that
    set it. `name`: how an argument for it is called (`in_channels`, `in_features`)."""

    of: str
    axis: int
    value: int
    name: str


def opt(value: Any, default: Any) -> Any:
    """`value`, marked as PyTorch's default when it is one."""
    same = type(value) is type(default) and value == default
    return Default(value) if same else value


def uniform(values: tuple[int, ...]) -> int | tuple[int, ...]:
    """One int when every spatial axis has the same value (as a PyTorch user writes it)."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def symmetric(pads: tuple[tuple[int, int], ...]) -> bool:
    return all(b == a for b, a in pads)


def pad_arg(pads: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """(before, after) pairs per spatial axis -> F.pad's order (last axis first)."""
    out: list[int] = []
    for before, after in reversed(pads):
        out += [before, after]
    return tuple(out)


def padded(x: Expr, pads: tuple[tuple[int, int], ...], value: float | None = None) -> Expr:
    args: list[Expr | Kw] = [x, lit(pad_arg(pads))]
    if value is not None:
        args.append(Kw("value", lit(value)))
    return Call("F.pad", tuple(args))


SIMPLE = {
    "relu": "F.relu",
    "sigmoid": "torch.sigmoid",
    "tanh": "torch.tanh",
    "relu6": "F.relu6",
    "selu": "F.selu",
    "gelu": "F.gelu",  # the exact (erf) form: approximate="none" is the default
    "silu": "F.silu",
    "softplus": "F.softplus",
    "hard_sigmoid": "F.hardsigmoid",  # relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1)
    "hard_swish": "F.hardswish",  # x * relu6(x + 3) / 6
}


def activation(x: Expr, act: dict[str, Any] | None, rank: int, inplace: bool = False) -> Expr:
    """`act` ({"op": name, **attrs}, or None) applied to `x` (of per-example rank `rank`);
    `inplace`: `x` may be overwritten (`variables.inplace_activation` says which ops use it)."""
    if act is None:
        return x
    name = act["op"]
    inplace = inplace and inplace_activation(act)
    tail: tuple[Kw, ...] = (Kw("inplace", lit(True)),) if inplace else ()
    if name in SIMPLE:
        return Call(SIMPLE[name], (x, *tail))
    if name == "identity":
        return x
    if name == "leaky_relu":
        alpha = act.get("alpha", 0.01)
        args = (x,) if alpha == 0.01 and not tail else (x, lit(float(alpha)))
        return Call("F.leaky_relu", (*args, *tail))
    if name == "elu":
        alpha = act.get("alpha", 1.0)
        args = (x,) if alpha == 1.0 else (x, Kw("alpha", lit(float(alpha))))
        return Call("F.elu", args)
    if name in ("softmax", "log_softmax"):
        axis = act.get("axis", -1)
        axis = axis + rank + 1 if axis < 0 else axis
        dim = -1 if axis == rank else axis
        return Call(f"F.{name}", (x, Kw("dim", lit(dim))))
    raise AssertionError(f"no torch activation for {name}")  # pragma: no cover


# A fused `activation:` reads the layer's own result, a fresh tensor that nothing else reads,
# from a producer whose backward does not need it (dense and the convolutions are in
# `variables.SAFE_PRODUCERS`): it may always run in place.
FRESH = True


# -- linear and embedding ---------------------------------------------------------------------
@emitter("dense")
def dense(node: Node, e: Emit) -> Expr:
    bias = e.attr("bias", opt(node.attrs["bias"], True))
    e.module("nn.Linear", e.size(-1), e.attr("units"), bias=bias)
    return activation(e.call(e.x), node.attrs["activation"], len(node.shape), FRESH)


@emitter("embedding")
def embedding(node: Node, e: Emit) -> Expr:
    e.module("nn.Embedding", e.attr("vocab"), e.attr("dim"))
    return e.call(e.x)


# -- convolution ------------------------------------------------------------------------------
def conv_input(node: Node, e: Emit) -> Raw:
    """The convolution's input, copied to a standard layout when it is a permuted view with a
    length-1 spatial axis: PyTorch's CPU convolution (oneDNN) can crash on the unusual stride
    such a view has on that axis (pytorch/pytorch#195394; `.contiguous()` does not help, the
    view already counts as contiguous). A copy only where that can happen."""
    src = node.inputs[0]
    producer = e.scope.graph.node(src) if src not in e.scope.graph.inputs else None
    if producer is None or producer.op != "permute" or 1 not in e.shape()[1:]:
        return e.x
    copy = Call(f"{e.x.text}.clone", (Kw("memory_format", Raw("torch.contiguous_format")),))
    e.stmt(e.var, copy, comment="oneDNN: pytorch/pytorch#195394")
    return Raw(e.var)


@emitter("conv1d", "conv2d", "conv3d")
def conv(node: Node, e: Emit) -> Expr:
    a = node.attrs
    n = len(a["kernel"])
    pads = a["padding"]
    sym = uniform(tuple(b for b, _ in pads)) if symmetric(pads) else 0
    kwargs = {
        "stride": e.attr("stride", opt(uniform(a["stride"]), 1)),
        "padding": e.attr("padding", opt(sym, 0)),
        "dilation": e.attr("dilation", opt(uniform(a["dilation"]), 1)),
        "groups": e.attr("groups", opt(a["groups"], 1)),
        "bias": e.attr("bias", opt(a["bias"], True)),
    }
    kernel = e.attr("kernel", uniform(a["kernel"]))
    e.module(f"nn.Conv{n}d", e.size(0), e.attr("filters"), kernel, **kwargs)
    x = conv_input(node, e) if symmetric(pads) else padded(e.x, pads)  # F.pad makes a copy
    return activation(e.call(x), a["activation"], len(node.shape), FRESH)


@emitter("conv_transpose1d", "conv_transpose2d")
def conv_transpose(node: Node, e: Emit) -> Expr:
    a = node.attrs
    pads = tuple(b for b, _ in a["padding"])  # always symmetric: removed from each side
    kwargs = {
        "stride": e.attr("stride", opt(uniform(a["stride"]), 1)),
        "padding": e.attr("padding", opt(uniform(pads), 0)),
        "output_padding": e.attr("output_padding", opt(uniform(a["output_padding"]), 0)),
        "bias": e.attr("bias", opt(a["bias"], True)),
    }
    kernel = e.attr("kernel", uniform(a["kernel"]))
    n = len(a["kernel"])
    e.module(f"nn.ConvTranspose{n}d", e.size(0), e.attr("filters"), kernel, **kwargs)
    return activation(e.call(conv_input(node, e)), a["activation"], len(node.shape), FRESH)


# -- pooling ----------------------------------------------------------------------------------
@emitter("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d")
def pool(node: Node, e: Emit) -> Expr:
    """nn.MaxPool / nn.AvgPool where their padding is exact (symmetric, with ceil_mode as
    PyTorch rounds); else F.pad first (-inf before a max pool) or `PaddedAvgPool`, with ceil
    mode's overhang (`ceil_extra`) written as padding after that no window counts."""
    a = node.attrs
    kind = node.op.split("_")[0]
    n = len(a["size"])
    size = e.attr("size", uniform(a["size"]))
    stride = uniform(a["stride"])
    stride = e.attr("stride", Default(stride) if tuple(a["stride"]) == tuple(a["size"]) else stride)
    pads, extra = a["padding"], a["ceil_extra"]
    include = kind == "avg" and a["count_include_pad"]
    eff = tuple((b, c + x) for (b, c), x in zip(pads, extra, strict=True))
    native, ceil = pads, a["ceil_mode"] and any(extra)
    if not symmetric(pads) and symmetric(eff) and not include:
        native, ceil = eff, False
    # PyTorch's 3-D pools refuse an input smaller than the window on any axis, even when the
    # padding makes up for it: pad first there
    sizes = e.shape()[1:]
    small = n == 3 and any(
        not isinstance(d, int) or d < k for d, k in zip(sizes, a["size"], strict=True)
    )
    if symmetric(native) and not (small and any(map(any, native))):
        sym = e.attr("padding", opt(uniform(tuple(b for b, _ in native)), 0))
        kw = {"padding": sym, "ceil_mode": e.attr("ceil_mode", opt(ceil, False))}
        if kind == "max":
            e.module(f"nn.MaxPool{n}d", size, stride=stride, **kw)
            return e.call(e.x)
        real = any(b or c for b, c in native)  # without padding, count_include_pad is moot
        kw["count_include_pad"] = e.attr(
            "count_include_pad", Default(True) if not real or include else False
        )
        e.module(f"nn.AvgPool{n}d", size, stride=stride, **kw)
        return e.call(e.x)
    if kind == "max":  # PyTorch pads max pooling with -inf
        e.module(f"nn.MaxPool{n}d", size, stride=stride)
        return e.call(padded(e.x, eff, float("-inf")))
    x = e.x
    if include:  # the padding counts as real zeros; only the overhang is left
        x, eff = padded(x, pads), tuple((0, c) for c in extra)
    if not any(b or c for b, c in eff):
        e.module(f"nn.AvgPool{n}d", size, stride=stride)
    else:
        e.helper("PaddedAvgPool")
        e.module(
            "PaddedAvgPool",
            size,
            stride=e.attr("stride", uniform(a["stride"])),
            padding=pad_arg(eff),
        )
    return e.call(x)


@emitter("adaptive_avg_pool", "adaptive_max_pool")
def adaptive_pool(node: Node, e: Emit) -> Expr:
    n = len(node.attrs["output_size"])
    kind = "Avg" if node.op == "adaptive_avg_pool" else "Max"
    e.module(
        f"nn.Adaptive{kind}Pool{n}d", e.attr("output_size", uniform(node.attrs["output_size"]))
    )
    return e.call(e.x)


@emitter("global_avg_pool", "global_max_pool")
def global_pool(node: Node, e: Emit) -> Expr:
    rank = len(e.shape())
    dims = tuple(range(2, rank + 1))
    method = "mean" if node.op == "global_avg_pool" else "amax"
    return Call(f"{e.var_of(0)}.{method}", (Kw("dim", lit(dims[0] if len(dims) == 1 else dims)),))


# -- normalization and regularization ---------------------------------------------------------
def moved(node: Node, e: Emit, axis: int, to: int) -> Expr:
    """The module's call on the input with logical `axis` moved to `to`, moved back after (a
    norm on another axis than PyTorch's)."""
    if axis == to or (to == -1 and axis == len(e.shape())):
        return e.call(e.x)
    e.stmt(e.var, e.call(Raw(f"{e.var_of(0)}.movedim({axis}, {to})")))
    return Call(f"{e.var}.movedim", (lit(to), lit(axis)))


@emitter("batch_norm")
def batch_norm(node: Node, e: Emit) -> Expr:
    rank = len(e.shape())
    cls = {1: "nn.BatchNorm1d", 2: "nn.BatchNorm1d", 3: "nn.BatchNorm2d", 4: "nn.BatchNorm3d"}
    eps = e.attr("eps", opt(float(node.attrs["eps"]), 1e-5))
    momentum = e.attr("momentum", opt(float(node.attrs["momentum"]), 0.1))
    axis = node.attrs["axis"]
    e.module(cls[rank], e.size(axis - 1), eps=eps, momentum=momentum)
    return moved(node, e, axis, 1)


@emitter("layer_norm")
def layer_norm(node: Node, e: Emit) -> Expr:
    axis = node.attrs["axis"]
    eps = e.attr("eps", opt(float(node.attrs["eps"]), 1e-5))
    e.module("nn.LayerNorm", e.size(axis - 1), eps=eps)
    return moved(node, e, axis, -1)


@emitter("group_norm")
def group_norm(node: Node, e: Emit) -> Expr:
    eps = e.attr("eps", opt(float(node.attrs["eps"]), 1e-5))
    e.module("nn.GroupNorm", e.attr("groups"), e.size(0), eps=eps)
    return e.call(e.x)


@emitter("instance_norm")
def instance_norm(node: Node, e: Emit) -> Expr:
    n = len(node.shape) - 1
    eps = e.attr("eps", opt(float(node.attrs["eps"]), 1e-5))
    affine = e.attr("affine", opt(node.attrs["affine"], False))
    e.module(f"nn.InstanceNorm{n}d", e.size(0), eps=eps, affine=affine)
    return e.call(e.x)


@emitter("normalize")
def normalize(node: Node, e: Emit) -> Expr:
    """The helper module `Normalize` (in codegen): the statistics are buffers (state_dict keys
    `<name>.mean`, `<name>.variance`), viewed to broadcast on their axis."""
    axis, rank = node.attrs["axis"], len(node.shape)
    e.helper("Normalize")
    trailing = 0 if axis is None else rank - axis
    size = lit(1) if axis is None else e.size(axis - 1)
    if trailing:
        e.module("Normalize", size, trailing=trailing)
    else:
        e.module("Normalize", size)
    return e.call(e.x)


def fits(var: str, expr: Expr) -> bool:
    """Whether `var = expr` fits on one line of `forward` (two indents deep)."""
    return 8 + len(var) + 3 + len(flat(expr)) <= WIDTH


@emitter("dropout")
def dropout(node: Node, e: Emit) -> Expr:
    e.module("nn.Dropout", e.attr("rate", float(node.attrs["rate"])))
    return e.call(e.x)


@emitter("drop_path")
def drop_path(node: Node, e: Emit) -> Expr:
    e.helper("DropPath")
    e.module("DropPath", e.attr("rate", float(node.attrs["rate"])))
    return e.call(e.x)


@emitter("spatial_dropout")
def spatial_dropout(node: Node, e: Emit) -> Expr:
    e.module(f"nn.Dropout{len(node.shape) - 1}d", e.attr("rate", float(node.attrs["rate"])))
    return e.call(e.x)


@emitter("dropblock")
def dropblock(node: Node, e: Emit) -> Expr:
    e.helper("DropBlock")
    rate = e.attr("rate", float(node.attrs["rate"]))
    e.module("DropBlock", rate, e.attr("block_size"))
    return e.call(e.x)


# -- shape ------------------------------------------------------------------------------------
@emitter("flatten")
def flatten(node: Node, e: Emit) -> Expr:
    return Call("torch.flatten", (e.x, lit(1)))


@emitter("reshape")
def reshape(node: Node, e: Emit) -> Expr:
    x = e.var_of(0)
    dims = [lit(d) for d in node.attrs["shape"]]
    return Call(f"{x}.reshape", (Raw(f"{x}.shape[0]"), *dims))


@emitter("permute")
def permute(node: Node, e: Emit) -> Expr:
    return Call(f"{e.var_of(0)}.permute", tuple(lit(d) for d in (0, *node.attrs["dims"])))


@emitter("upsample")
def upsample(node: Node, e: Emit) -> Expr:
    a = node.attrs
    n = len(a["scale_factor"])
    args: list[Expr | Kw] = [e.x, Kw("scale_factor", lit(uniform(a["scale_factor"])))]
    if a["mode"] == "linear":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[n]
        args.append(Kw("mode", lit(mode)))
        if a["align_corners"]:
            args.append(Kw("align_corners", lit(True)))
    return Call("F.interpolate", tuple(args))


@emitter("pad")
def pad(node: Node, e: Emit) -> Expr:
    a = node.attrs
    args: list[Expr | Kw] = [e.x, lit(pad_arg(a["padding"]))]
    if a["mode"] != "constant":
        args.append(Kw("mode", lit(a["mode"])))
    elif a["value"]:
        args.append(Kw("value", lit(float(a["value"]))))
    return Call("F.pad", tuple(args))


@emitter("reduce_mean", "reduce_max", "reduce_sum")
def reduce(node: Node, e: Emit) -> Expr:
    axes = node.attrs["axes"]
    method = {"reduce_mean": "mean", "reduce_max": "amax", "reduce_sum": "sum"}[node.op]
    args: list[Expr | Kw] = [Kw("dim", lit(axes[0] if len(axes) == 1 else tuple(axes)))]
    if node.attrs["keepdims"]:
        args.append(Kw("keepdim", lit(True)))
    return Call(f"{e.var_of(0)}.{method}", tuple(args))


@emitter("slice")
def slice_(node: Node, e: Emit) -> Expr:
    a = node.attrs
    n = e.shape()[a["axis"] - 1]
    start = "" if a["start"] == 0 else str(a["start"])
    end = "" if a["end"] == n else str(a["end"])
    step = "" if a["step"] == 1 else f":{a['step']}"
    return Raw(f"{e.var_of(0)}[{':, ' * a['axis']}{start}:{end}{step}]")


@emitter("select")
def select(node: Node, e: Emit) -> Expr:
    a = node.attrs
    return Raw(f"{e.var_of(0)}[{':, ' * a['axis']}{a['index']}]")


@emitter("gather")
def gather(node: Node, e: Emit) -> Expr:
    e.helper("Gather")
    e.module("Gather", node.attrs["axis"], lit(node.attrs["indices"]))
    return e.call(e.x)


@emitter("roll")
def roll(node: Node, e: Emit) -> Expr:
    a = node.attrs
    shifts, dims = a["shifts"], a["dims"]
    one = len(dims) == 1
    return Call(
        "torch.roll",
        (e.x, lit(shifts[0] if one else shifts), Kw("dims", lit(dims[0] if one else dims))),
    )


# -- tensors ----------------------------------------------------------------------------------
@emitter("parameter")
def parameter(node: Node, e: Emit) -> Expr:
    e.helper("Learned")
    e.module("Learned", e.attr("shape", tuple(node.attrs["shape"])))
    return e.call(e.x)


@emitter("constant")
def constant(node: Node, e: Emit) -> Expr:
    """Made in `forward` on the input's device: `x.new_full(shape, value)`, cut to a triangle
    (torch.triu / tril), expanded (not copied) to the batch."""
    a = node.attrs
    shape = a["shape"]
    y: Expr = Call(f"{e.var_of(0)}.new_full", (lit(tuple(shape)), lit(float(a["value"]))))
    for tri in ("triu", "tril"):
        if a[tri] is not None:
            y = Call(f"{flat(y)}.{tri}", (lit(a[tri]),) if a[tri] else ())
    sizes = ", ".join(["-1"] * len(shape))
    return Call(f"{flat(y)}.expand", (Raw(f"{e.var_of(0)}.shape[0]"), Raw(sizes)))


# -- merge ------------------------------------------------------------------------------------
@emitter("add", "subtract", "multiply")
def arithmetic(node: Node, e: Emit) -> Expr:
    op = {"add": "+", "subtract": "-", "multiply": "*"}[node.op]
    return BinOp(op, tuple(e.xs))


@emitter("matmul")
def matmul(node: Node, e: Emit) -> Expr:
    return BinOp("@", tuple(e.xs))


@emitter("concat")
def concat(node: Node, e: Emit) -> Expr:
    return Call("torch.cat", (Seq("[", tuple(e.xs)), Kw("dim", lit(node.attrs["axis"]))))


# -- recurrent --------------------------------------------------------------------------------
@emitter("rnn", "lstm", "gru")
def recurrent(node: Node, e: Emit) -> None:
    a = node.attrs
    cls = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}[node.op]
    kwargs = {
        "num_layers": e.attr("num_layers", opt(a["num_layers"], 1)),
        "batch_first": True,
        "bidirectional": e.attr("bidirectional", opt(a["bidirectional"], False)),
    }
    e.module(cls, e.size(-1), e.attr("units"), **kwargs)
    call = e.call(e.x)
    if a["return_sequences"]:
        e.stmt(f"{e.var}, _", call, comment=True)
        return None
    h = e.var  # h_n first, then its last layer's states: no temporary stays alive
    e.stmt(f"_, ({h}, _)" if node.op == "lstm" else f"_, {h}", call)
    if a["bidirectional"]:  # the last layer's forward and backward final states
        final = Call("torch.cat", (Seq("[", (Raw(f"{h}[-2]"), Raw(f"{h}[-1]"))), Kw("dim", lit(1))))
        e.stmt(e.var, final, comment=True)
    else:
        e.stmt(e.var, Raw(f"{h}[-1]"), comment=True, light=True)  # a view
    return None


# -- attention --------------------------------------------------------------------------------
@emitter("attention")
def attention(node: Node, e: Emit) -> Expr:
    """The helper module `Attention` (in codegen): its parameters are the canonical ones."""
    a = node.attrs
    e.helper("Attention")
    kwargs: dict[str, Any] = {}
    if len(node.inputs) > 1:
        kwargs["kv_dim"] = e.size(-1, 1)
    kwargs["bias"] = e.attr("bias", opt(a["bias"], True))
    kwargs["causal"] = e.attr("causal", opt(a["causal"], False))
    kwargs["dropout"] = e.attr("dropout", opt(float(a["dropout"]), 0.0))
    e.module("Attention", e.size(-1), e.attr("heads"), **kwargs)
    return e.call(*e.xs)


# -- activations ------------------------------------------------------------------------------
@emitter(*SIMPLE, "identity", "leaky_relu", "elu", "softmax", "log_softmax")
def elementwise(node: Node, e: Emit) -> Expr:
    return activation(e.x, {"op": node.op, **node.attrs}, len(node.shape), e.inplace)


@emitter("prelu")
def prelu(node: Node, e: Emit) -> Expr:
    e.module("nn.PReLU", num_parameters=e.size(0), init=0.25)
    return e.call(e.x)
