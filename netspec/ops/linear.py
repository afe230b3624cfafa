"""dense and embedding."""

from __future__ import annotations

import math

from .base import Attr, Ctx, ex, never, op


def _dense_ref(xs, a, p):
    y = xs[0] @ p["weight"].T
    return y + p["bias"] if "bias" in p else y


def _dense_sample(draw, shape) -> dict:
    a: dict = {"units": draw.width()}
    draw.activation(a, False, shape)
    draw.maybe(a, "bias", 0.2, False)
    draw.init(a)
    return a


def _dense_keep_shape(draw, a: dict, shape: tuple, exact: bool) -> dict | None:
    if exact:
        if not isinstance(shape[-1], int):
            return None
        a["units"] = shape[-1]
    return a


def _embedding_ref(xs, a, p):
    return p["weight"][xs[0]]


def _embedding_sample(draw, shape) -> dict:
    return {"vocab": draw.width(2, 16), "dim": draw.width(1, 6)}


CONV = {"op": "conv2d", "filters": 4, "kernel": 3}


@op(
    "dense",
    "linear",
    [
        Attr("units", "int", doc="output features", minimum=1, width=True),
        Attr("activation", "activation", None, "activation applied to the output"),
        Attr("bias", "bool", True, "add a learned bias"),
    ],
    weighted=True,
    doc="Fully connected layer on the last axis: `y = x @ W.T + b`.",
    reference=_dense_ref,
    examples=[
        ex("relu", [5], units=3, activation="relu"),
        ex("rank3_nobias", [2, 3, 4], units=3, bias=False),
        ex("rank3_gelu", [3, 4, 5], units=6, activation="gelu"),
        ex("dynamic_rows", [None, 3], units=4, activation={"op": "elu", "alpha": 2.0}),
        ex("softmax", [5, 7], units=6, activation="softmax"),
        ex("softmax_axis1", [5, 7], units=6, activation={"op": "softmax", "axis": 1}),
        ex("log_softmax_axis2", [3, 4, 5], units=3, activation={"op": "log_softmax", "axis": 2}),
        ex("on_image", [3, 9, 11], units=6, activation="tanh", before=[CONV]),
        ex(
            "after_permute",
            [3, 9, 11],
            units=5,
            before=[CONV, {"op": "permute", "dims": [3, 1, 2]}],
        ),
        ex("after_flatten", [3, 9, 11], units=5, before=[{**CONV, "stride": 2}, {"op": "flatten"}]),
    ],
    sample=_dense_sample,
    keep_shape=_dense_keep_shape,
    sets_size=(-1, "units"),
    weights=(4.0, 1.2, 0.4, 1.0),
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
        Attr("vocab", "int", doc="number of distinct token ids", minimum=1, width=True),
        Attr("dim", "int", doc="embedding size", minimum=1, width=True),
    ],
    weighted=True,
    input_dtype="int64",
    doc="Looks up a learned vector for each int64 token id; adds a trailing axis of size `dim`.",
    reference=_embedding_ref,
    examples=[
        ex("tokens", [None], dtype="int64", vocab=7, dim=3),
        ex("grid", [3, 4], dtype="int64", vocab=11, dim=2),
    ],
    sample=_embedding_sample,
    keep_shape=never,
    sets_size=(-1, "dim"),
    weights=(1.0, 1.0, 1.0, 1.0),  # proposed for int64 values, the only ones it takes
)
def embedding(ctx: Ctx):
    if ctx.x.dtype != "int64":
        ctx.fail(
            f"embedding expects int64 token ids, but '{ctx.x.name}' is {ctx.x.dtype}",
            hint="declare the input with dtype: int64",
        )
    ctx.params["weight"] = (ctx.attrs["vocab"], ctx.attrs["dim"])
    return (*ctx.x.shape, ctx.attrs["dim"])
