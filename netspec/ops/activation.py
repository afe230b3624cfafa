"""Elementwise activations (and softmax / log_softmax over one axis)."""

from __future__ import annotations

from .base import ACTIVATIONS, Attr, Ctx, op


def _same(ctx: Ctx):
    return ctx.x.shape


def _axis(ctx: Ctx):
    rank = ctx.x.rank
    axis = ctx.attrs["axis"]
    ax = axis + rank + 1 if axis < 0 else axis
    if not 1 <= ax <= rank:
        ctx.fail(
            f"axis {axis} is out of range for an input of per-example rank {rank} (axis 0 is "
            f"the batch; valid: 1..{rank} or -{rank}..-1)",
            "axis",
        )
    ctx.attrs["axis"] = ax
    return ctx.x.shape


SIMPLE = {
    "relu": "max(x, 0)",
    "sigmoid": "1 / (1 + exp(-x))",
    "tanh": "tanh(x)",
    "relu6": "clip(x, 0, 6)",
    "selu": "scale * (max(x, 0) + min(alpha * (exp(x) - 1), 0)), PyTorch's constants",
    "gelu": "x * Phi(x), the exact (erf) form",
    "silu": "x * sigmoid(x)",
    "softplus": "log(1 + exp(x))",
    "hard_sigmoid": "clip(x / 6 + 1/2, 0, 1)",
    "identity": "x",
}

for _name, _formula in SIMPLE.items():
    op(_name, "activation", doc=f"`{_formula}`")(_same)
    ACTIVATIONS.append(_name)

AXIS = Attr("axis", "axis", -1, "logical axis (negative counts from the end)")
op("softmax", "activation", [AXIS], doc="`exp(x) / sum(exp(x))` along `axis`")(_axis)
op("log_softmax", "activation", [AXIS], doc="`log(softmax(x))` along `axis`")(_axis)
op(
    "leaky_relu",
    "activation",
    [Attr("alpha", "float", 0.01, "slope for x < 0")],
    doc="`x if x > 0 else alpha * x`",
)(_same)
op(
    "elu",
    "activation",
    [Attr("alpha", "float", 1.0, "scale of the negative part")],
    doc="`x if x > 0 else alpha * (exp(x) - 1)`",
)(_same)
ACTIVATIONS.extend(["softmax", "log_softmax", "leaky_relu", "elu"])


@op(
    "prelu",
    "activation",
    weighted=False,
    doc="`x if x > 0 else a * x` with one learned slope per channel (axis 1), starting at 0.25",
)
def prelu(ctx: Ctx):
    ctx.want_rank(1, 4)
    ctx.params["weight"] = (ctx.static(ctx.x.shape[0], f"the channel axis of '{ctx.x.name}'"),)
    return ctx.x.shape
