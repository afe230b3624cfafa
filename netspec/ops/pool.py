"""Max and average pooling, and the global pools."""

from __future__ import annotations

import math

from .base import Attr, Ctx, conv_out, op
from .common import padding, spatial

POOL_ATTRS = [
    Attr("size", "spatial", doc="window size"),
    Attr("stride", "spatial", None, "stride (default: the window size)"),
    Attr("padding", "padding", 0, "padding, at most size // 2 per side; 'same' or 'valid'"),
]


def _pool(ctx: Ctx, n: int):
    ctx.want_rank(n + 1)
    a = ctx.attrs
    k = a["size"] = spatial(ctx, "size", n)
    if a["stride"] is None:
        a["stride"] = list(k)
    s = a["stride"] = spatial(ctx, "stride", n)
    pads = a["padding"] = padding(ctx, n, k, s, (1,) * n)
    out = []
    for i in range(n):
        if max(pads[i]) > k[i] // 2:
            ctx.fail(
                f"padding {list(pads[i])} on spatial axis {i + 1} is more than half the window "
                f"({k[i]} // 2 = {k[i] // 2})",
                "padding",
                hint=f"use padding {k[i] // 2} or less, or padding: same",
            )
        o = conv_out(ctx.x.shape[1 + i], k[i], s[i], 1, pads[i])
        if o is not None and o < 1:
            ctx.fail(
                f"the window ({k[i]}) is larger than the padded input ({ctx.x.shape[1 + i]}) on "
                f"spatial axis {i + 1}",
                "size",
            )
        out.append(o)
    c = ctx.x.shape[0]
    ctx.macs = math.prod(d if isinstance(d, int) else 1 for d in [c, *out]) * math.prod(k)
    return (c, *out)


@op(
    "max_pool1d",
    "pooling",
    POOL_ATTRS,
    doc="Max over windows of `[channels, length]`; padding is never the maximum.",
)
def max_pool1d(ctx: Ctx):
    return _pool(ctx, 1)


@op(
    "max_pool2d",
    "pooling",
    POOL_ATTRS,
    doc="Max over windows of `[channels, h, w]`; padding is never the maximum.",
)
def max_pool2d(ctx: Ctx):
    return _pool(ctx, 2)


@op(
    "avg_pool1d",
    "pooling",
    POOL_ATTRS,
    doc="Mean over windows of `[channels, length]`, counting only real (unpadded) elements.",
)
def avg_pool1d(ctx: Ctx):
    return _pool(ctx, 1)


@op(
    "avg_pool2d",
    "pooling",
    POOL_ATTRS,
    doc="Mean over windows of `[channels, h, w]`, counting only real (unpadded) elements.",
)
def avg_pool2d(ctx: Ctx):
    return _pool(ctx, 2)


def _global(ctx: Ctx):
    ctx.want_rank(2, 4)
    ctx.macs = math.prod(d if isinstance(d, int) else 1 for d in ctx.x.shape)
    return (ctx.x.shape[0],)


@op(
    "global_avg_pool",
    "pooling",
    doc="Mean over every axis after the channels: output `[channels]`.",
)
def global_avg_pool(ctx: Ctx):
    return _global(ctx)


@op(
    "global_max_pool", "pooling", doc="Max over every axis after the channels: output `[channels]`."
)
def global_max_pool(ctx: Ctx):
    return _global(ctx)
