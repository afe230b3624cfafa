"""Adaptive average and max pooling: a fixed output size, whatever the input's size."""

from __future__ import annotations

import math

from .base import Attr, Ctx, ex, op
from .common import spatial


def bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive bins along one axis: bin i is [floor(i L / o), ceil((i + 1) L / o))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _ref(reduce: str):
    def ref(xs, a, p):
        import numpy as np

        x = xs[0]
        for i, o in enumerate(a["output_size"]):
            axis = 2 + i
            parts = [
                getattr(np, reduce)(np.take(x, range(lo, hi), axis=axis), axis=axis, keepdims=True)
                for lo, hi in bins(x.shape[axis], o)
            ]
            x = np.concatenate(parts, axis=axis)
        return x

    return ref


def _sample(draw, shape) -> dict:
    n = len(shape) - 1
    return {"output_size": draw.spatial(n, 1, 4)}


def _rule(ctx: Ctx):
    ctx.want_rank(2, 4)
    n = ctx.x.rank - 1
    out = ctx.attrs["output_size"] = spatial(ctx, "output_size", n)
    for i in range(n):
        ctx.static(ctx.x.shape[1 + i], f"spatial axis {i + 1} of '{ctx.x.name}'")
    ctx.macs = math.prod(d for d in ctx.x.shape if isinstance(d, int))
    return (ctx.x.shape[0], *out)


ATTRS = [
    Attr(
        "output_size",
        "spatial",
        doc="the output's size on each spatial axis (one int: the same on every axis)",
    )
]
EXAMPLES = [
    ex("divisible", [3, 8, 6], output_size=[4, 3]),
    ex("uneven", [2, 7, 10], output_size=[3, 4]),
    ex("one", [2, 5, 6], output_size=1),
    ex("larger", [2, 3, 5], output_size=[5, 2]),
    ex("sequence", [3, 11], output_size=4),
    ex("volume", [2, 5, 4, 6], output_size=[2, 3, 4]),
]
NOTE = (
    " Bin i of an axis of size L covers [floor(i L / o), ceil((i + 1) L / o)) (PyTorch's);"
    " the spatial sizes must be fixed."
)


@op(
    "adaptive_avg_pool",
    "pooling",
    ATTRS,
    doc="Mean over `output_size` bins of each spatial axis of `[channels, *spatial]`." + NOTE,
    reference=_ref("mean"),
    examples=EXAMPLES,
    sample=_sample,
    weights=(0.0, 0.2, 0.4, 0.2),
    keeps_size="channels",
)
def adaptive_avg_pool(ctx: Ctx):
    return _rule(ctx)


@op(
    "adaptive_max_pool",
    "pooling",
    ATTRS,
    doc="Max over `output_size` bins of each spatial axis of `[channels, *spatial]`." + NOTE,
    reference=_ref("max"),
    examples=EXAMPLES,
    sample=_sample,
    weights=(0.0, 0.2, 0.4, 0.2),
    keeps_size="channels",
)
def adaptive_max_pool(ctx: Ctx):
    return _rule(ctx)
