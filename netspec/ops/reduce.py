"""reduce_mean, reduce_max, reduce_sum over chosen per-example axes."""

from __future__ import annotations

import math

from .base import Attr, Ctx, ex, op

ATTRS = [
    Attr("axes", "dims", doc="the per-example axes reduced, numbered from 1 (the channels)"),
    Attr("keepdims", "bool", False, "keep each reduced axis, with size 1"),
]


def _ref(name: str):
    def ref(xs, a, p):
        import numpy as np

        return getattr(np, name)(xs[0], axis=tuple(a["axes"]), keepdims=a["keepdims"])

    return ref


def _sample(draw, shape) -> dict:
    rank = len(shape)
    rng = draw.rng
    axes = sorted(rng.sample(range(1, rank + 1), rng.randint(1, rank)))
    a: dict = {"axes": axes}
    if len(axes) == rank or draw.chance(0.3):
        a["keepdims"] = True
    return a


def _keep_shape(draw, a: dict, shape: tuple, exact: bool) -> None:
    return None


def _rule(ctx: Ctx):
    rank = ctx.x.rank
    axes = ctx.attrs["axes"]
    bad = [d for d in axes if not 1 <= d <= rank]
    if bad:
        ctx.fail(
            f"axis {bad[0]} is out of range for an input of per-example rank {rank} (valid: "
            f"1..{rank}; the batch, axis 0, is never reduced)",
            "axes",
        )
    if len(set(axes)) != len(axes):
        ctx.fail(f"axes {axes} name an axis twice", "axes")
    keep = ctx.attrs["keepdims"]
    if len(axes) == rank and not keep:
        ctx.fail(
            "reducing every per-example axis would leave no axis",
            "axes",
            hint="write keepdims: true, or leave one axis out",
        )
    ctx.attrs["axes"] = tuple(sorted(axes))
    ctx.macs = math.prod(d for d in ctx.x.shape if isinstance(d, int))
    out = []
    for i, d in enumerate(ctx.x.shape):
        if i + 1 not in axes:
            out.append(d)
        elif keep:
            out.append(1)
    return tuple(out)


EXAMPLES = [
    ex("spatial", [3, 4, 5], axes=[2, 3]),
    ex("channels_keep", [3, 4, 5], axes=[1], keepdims=True),
    ex("last", [4, 6], axes=[2]),
    ex("all_keep", [2, 3, 4], axes=[3, 1, 2], keepdims=True),
    ex("dynamic", [None, 4], axes=[1]),
    ex("middle", [2, 3, 4, 2], axes=[2, 4]),
]


@op(
    "reduce_mean",
    "pooling",
    ATTRS,
    doc="The mean over `axes`.",
    reference=_ref("mean"),
    examples=EXAMPLES,
    sample=_sample,
    keep_shape=_keep_shape,
    weights=(0.0, 0.2, 0.3, 0.2),
)
def reduce_mean(ctx: Ctx):
    return _rule(ctx)


@op(
    "reduce_max",
    "pooling",
    ATTRS,
    doc="The maximum over `axes`.",
    reference=_ref("max"),
    examples=EXAMPLES,
    sample=_sample,
    keep_shape=_keep_shape,
    weights=(0.0, 0.2, 0.3, 0.2),
)
def reduce_max(ctx: Ctx):
    return _rule(ctx)


@op(
    "reduce_sum",
    "pooling",
    ATTRS,
    doc="The sum over `axes`.",
    reference=_ref("sum"),
    examples=EXAMPLES,
    sample=_sample,
    keep_shape=_keep_shape,
    weights=(0.0, 0.2, 0.3, 0.2),
)
def reduce_sum(ctx: Ctx):
    return _rule(ctx)
