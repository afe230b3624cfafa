"""add, subtract, multiply (broadcasting) and concat."""

from __future__ import annotations

from ..ir import Dim
from .base import Attr, Ctx, op


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


@op("add", "merge", doc=MERGE_DOC.format("sum"), min_inputs=2, max_inputs=None)
def add(ctx: Ctx):
    return broadcast(ctx)


@op(
    "subtract",
    "merge",
    doc=MERGE_DOC.format("difference (first minus second)"),
    min_inputs=2,
    max_inputs=2,
)
def subtract(ctx: Ctx):
    return broadcast(ctx)


@op("multiply", "merge", doc=MERGE_DOC.format("product"), min_inputs=2, max_inputs=None)
def multiply(ctx: Ctx):
    return broadcast(ctx)


@op(
    "concat",
    "merge",
    [Attr("axis", "axis", 1, "logical axis (batch is 0; channels of an image are 1)")],
    doc="Joins inputs along a logical axis; the other axes must be equal.",
    min_inputs=2,
    max_inputs=None,
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
