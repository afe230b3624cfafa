"""dense and embedding."""

from __future__ import annotations

import math

from .base import Attr, Ctx, op


@op(
    "dense",
    "linear",
    [
        Attr("units", "int", doc="output features", minimum=1),
        Attr("activation", "activation", None, "activation applied to the output"),
        Attr("bias", "bool", True, "add a learned bias"),
    ],
    weighted=True,
    doc="Fully connected layer on the last axis: `y = x @ W.T + b`.",
)
def dense(ctx: Ctx):
    ctx.want_rank(1, 8)
    fin = ctx.static(ctx.x.shape[-1], f"the last axis of '{ctx.x.name}'")
    units = ctx.attrs["units"]
    ctx.params["weight"] = (units, fin)
    if ctx.attrs["bias"]:
        ctx.params["bias"] = (units,)
    rest = [d for d in ctx.x.shape[:-1]]
    ctx.macs = math.prod(d if isinstance(d, int) else 1 for d in rest) * fin * units
    return (*ctx.x.shape[:-1], units)


@op(
    "embedding",
    "embedding",
    [
        Attr("vocab", "int", doc="number of distinct token ids", minimum=1),
        Attr("dim", "int", doc="embedding size", minimum=1),
    ],
    weighted=True,
    input_dtype="int64",
    doc="Looks up a learned vector for each int64 token id; adds a trailing axis of size `dim`.",
)
def embedding(ctx: Ctx):
    if ctx.x.dtype != "int64":
        ctx.fail(
            f"embedding expects int64 token ids, but '{ctx.x.name}' is {ctx.x.dtype}",
            hint="declare the input with dtype: int64",
        )
    ctx.params["weight"] = (ctx.attrs["vocab"], ctx.attrs["dim"])
    return (*ctx.x.shape, ctx.attrs["dim"])
