"""add, subtract, multiply (broadcasting) and concat."""

from __future__ import annotations

from ..ir import Dim
from .base import Attr, Ctx, ex, op


def _add_ref(xs, a, p):
    return sum(xs[1:], xs[0])


def _subtract_ref(xs, a, p):
    return xs[0] - xs[1]


def _multiply_ref(xs, a, p):
    y = xs[0]
    for z in xs[1:]:
        y = y * z
    return y


def _concat_ref(xs, a, p):
    import numpy as np

    return np.concatenate(xs, a["axis"])


def _no_attrs(draw, shape) -> dict:
    return {}


CONV = {"op": "conv2d", "kernel": 3}
IMG = [3, 9, 11]
BROADCAST = {"a": [4, 1, 5], "b": [1, 3, 5], "c": [4, 3, 1]}
# a per-channel gate of an image (squeeze-and-excitation): [4, 1, 1] against [4, 7, 9]
GATE = [
    {**CONV, "name": "c", "filters": 4, "inputs": ["x"]},
    {"op": "global_avg_pool", "name": "g"},
    {"op": "reshape", "name": "r", "shape": [4, 1, 1]},
]


def broadcast(ctx: Ctx):
    rank = ctx.x.rank
    for v in ctx.inputs[1:]:
        if v.rank != rank:
            ctx.fail(
                f"inputs must have the same rank: '{ctx.x.name}' is {ctx.shape()}, "
                f"'{v.name}' is {ctx.shape(v)}",
                "inputs",
            )
    out: list[Dim] = []
    for axis in range(rank):
        dims = [v.shape[axis] for v in ctx.inputs]
        real = {d for d in dims if d != 1}
        if len(real) > 1 and all(isinstance(d, int) for d in real):
            shapes = ", ".join(f"'{v.name}' {ctx.shape(v)}" for v in ctx.inputs)
            ctx.fail(
                f"shapes do not match on axis {axis + 1} (sizes must be equal or 1): {shapes}",
                "inputs",
                hint="a dense or 1x1 conv layer can project one input to the other's size",
            )
        ints = [d for d in real if isinstance(d, int)]
        out.append(ints[0] if ints else (next(iter(real)) if real else 1))
    return tuple(out)


MERGE_DOC = "Elementwise {}, broadcasting axes of size 1; inputs of equal rank."


@op(
    "add",
    "merge",
    doc=MERGE_DOC.format("sum"),
    min_inputs=2,
    max_inputs=None,
    reference=_add_ref,
    examples=[
        ex("broadcast", BROADCAST, inputs=["a", "b", "c"]),
        ex("same", {"a": [2, 3], "b": [2, 3]}, inputs=["a", "b"]),
        ex("channel_gate", IMG, inputs=["c", "r"], before=GATE),
        ex(
            "mixed_layouts",
            IMG,
            inputs=["q", "c"],
            before=[
                {**CONV, "name": "c", "filters": 3, "kernel": 1, "inputs": ["x"]},
                {"op": "permute", "name": "p", "dims": [1, 3, 2], "inputs": ["x"]},
                {"op": "permute", "name": "q", "dims": [1, 3, 2], "inputs": ["p"]},
            ],
        ),
    ],
    sample=_no_attrs,
    keeps_size="all",
)
def add(ctx: Ctx):
    return broadcast(ctx)


@op(
    "subtract",
    "merge",
    doc=MERGE_DOC.format("difference (first minus second)"),
    min_inputs=2,
    max_inputs=2,
    ordered_inputs=True,
    reference=_subtract_ref,
    examples=[
        ex("broadcast", {"a": [4, 1, 5], "c": [4, 3, 1]}, inputs=["c", "a"]),
        ex("vectors", {"a": [5], "b": [1]}, inputs=["a", "b"]),
        ex("channel_gate", IMG, inputs=["r", "c"], before=GATE),
    ],
    sample=_no_attrs,
    keeps_size="all",
)
def subtract(ctx: Ctx):
    return broadcast(ctx)


@op(
    "multiply",
    "merge",
    doc=MERGE_DOC.format("product"),
    min_inputs=2,
    max_inputs=None,
    reference=_multiply_ref,
    examples=[
        ex("broadcast", BROADCAST, inputs=["a", "b", "c"]),
        ex("channel_gate", IMG, inputs=["r", "c", "r"], before=GATE),
        ex(
            "rows",
            IMG,
            inputs=["c", "d"],
            before=[
                {**CONV, "name": "c", "filters": 4, "inputs": ["x"]},
                {**CONV, "name": "d", "filters": 1, "inputs": ["x"]},
            ],
        ),
    ],
    sample=_no_attrs,
    keeps_size="all",
)
def multiply(ctx: Ctx):
    return broadcast(ctx)


@op(
    "concat",
    "merge",
    [Attr("axis", "axis", 1, "logical axis (batch is 0; channels of an image are 1)")],
    doc="Joins inputs along a logical axis; the other axes must be equal.",
    min_inputs=2,
    max_inputs=None,
    ordered_inputs=True,
    reference=_concat_ref,
    examples=[
        ex("channels", {"a": [2, 3, 4], "b": [2, 3, 4]}, inputs=["a", "b"]),
        ex("axis2", {"a": [2, 3, 4], "b": [2, 3, 4]}, inputs=["a", "b", "a"], axis=2),
        ex("last", {"a": [2, 3, 4], "b": [2, 3, 4]}, inputs=["a", "b"], axis=-1),
        ex(
            "conv_channels",
            IMG,
            inputs=["a", "b"],
            before=[
                {**CONV, "name": "a", "filters": 4, "inputs": ["x"]},
                {**CONV, "name": "b", "filters": 2, "inputs": ["x"]},
            ],
        ),
        ex(
            "conv_height",
            IMG,
            inputs=["a", "b"],
            axis=2,
            before=[
                {**CONV, "name": "a", "filters": 4, "inputs": ["x"]},
                {**CONV, "name": "b", "filters": 4, "kernel": [1, 3], "inputs": ["x"]},
            ],
        ),
        ex(
            "conv_last",
            IMG,
            inputs=["a", "b"],
            axis=-1,
            before=[
                {**CONV, "name": "a", "filters": 4, "inputs": ["x"]},
                {**CONV, "name": "b", "filters": 4, "kernel": [3, 1], "inputs": ["x"]},
            ],
        ),
        ex("vectors", [6], inputs=["a", "x"], before=[{"op": "dense", "name": "a", "units": 3}]),
        ex("time", [4, 3], inputs=["a", "x"], before=[{"op": "dense", "name": "a", "units": 3}]),
    ],
    sample=_no_attrs,
)
def concat(ctx: Ctx):
    rank = ctx.x.rank
    axis = ctx.attrs["axis"]
    ax = axis + rank + 1 if axis < 0 else axis
    if not 1 <= ax <= rank:
        ctx.fail(
            f"axis {axis} is out of range for inputs of per-example rank {rank} (axis 0 is the "
            f"batch; valid: 1..{rank} or -{rank}..-1)",
            "axis",
        )
    ctx.attrs["axis"] = ax
    total: Dim = 0
    for v in ctx.inputs:
        if v.rank != rank:
            ctx.fail(
                f"inputs must have the same rank: '{ctx.x.name}' is {ctx.shape()}, "
                f"'{v.name}' is {ctx.shape(v)}",
                "inputs",
            )
        for i in range(rank):
            a, b = ctx.x.shape[i], v.shape[i]
            if i != ax - 1 and a != b and isinstance(a, int) and isinstance(b, int):
                ctx.fail(
                    f"shapes must match except on axis {ax}: '{ctx.x.name}' is "
                    f"{ctx.shape()}, '{v.name}' is {ctx.shape(v)}",
                    "inputs",
                )
        d = v.shape[ax - 1]
        total = total + d if isinstance(total, int) and isinstance(d, int) else None
    out = list(ctx.x.shape)
    out[ax - 1] = total
    return tuple(out)
