"""Max and average pooling, and the global pools."""

from __future__ import annotations

import math

from .base import Attr, Ctx, conv_out, ex, op
from .common import padding, spatial

POOL_ATTRS = [
    Attr("size", "spatial", doc="window size"),
    Attr("stride", "spatial", None, "stride (default: the window size)"),
    Attr("padding", "padding", 0, "padding, at most size // 2 per side; 'same' or 'valid'"),
    Attr(
        "ceil_mode",
        "bool",
        False,
        "round the output size up (PyTorch's ceil_mode): a last, partial window where it "
        "starts inside the input or the padding before it",
    ),
]
MAX_ATTRS = POOL_ATTRS
AVG_ATTRS = [
    *POOL_ATTRS,
    Attr(
        "count_include_pad",
        "bool",
        False,
        "divide by the window size including the padding (PyTorch's default, not netspec's): "
        "false divides by the number of real elements",
    ),
]


def overhang(a: dict) -> list[tuple[int, int]]:
    """The padding pairs with ceil mode's overhang (`ceil_extra`) added after."""
    extra = a.get("ceil_extra") or (0,) * len(a["padding"])
    return [(b, c + e) for (b, c), e in zip(a["padding"], extra, strict=True)]


def _max_ref(xs, a, p):
    """Padding (and ceil mode's overhang) is -inf: never the maximum."""
    import numpy as np

    from .numeric import pad, windows

    n = len(a["size"])
    win = windows(pad(xs[0], overhang(a), -np.inf), a["size"], a["stride"])
    return win.max(axis=tuple(range(-n, 0)))


def _avg_ref(xs, a, p):
    """The sum of each window over the number of real elements in it, or (count_include_pad)
    over its size clipped to the padded input (PyTorch: ceil mode's overhang never counts)."""
    import numpy as np

    from .numeric import pad, windows

    x = xs[0]
    n = len(a["size"])
    axes = tuple(range(-n, 0))
    total = windows(pad(x, overhang(a)), a["size"], a["stride"]).sum(axis=axes)
    ones = np.ones((1, 1, *x.shape[2:]))
    if a.get("count_include_pad"):
        ones = np.pad(ones, [(0, 0), (0, 0), *a["padding"]], constant_values=1.0)
        extra = a.get("ceil_extra") or (0,) * n
        ones = pad(ones, [(0, e) for e in extra])
    else:
        ones = pad(ones, overhang(a))
    count = windows(ones, a["size"], a["stride"]).sum(axis=axes)
    return total / count


def _global_avg_ref(xs, a, p):
    x = xs[0]
    return x.mean(axis=tuple(range(2, x.ndim)))


def _global_max_ref(xs, a, p):
    x = xs[0]
    return x.max(axis=tuple(range(2, x.ndim)))


def _pool_sample(n: int, avg: bool = False):
    def sample(draw, shape) -> dict:
        rng = draw.rng
        a: dict = {"size": draw.spatial(n, 1, 3)}
        if draw.chance(0.5):
            a["stride"] = draw.spatial(n, 1, 2)
        pad = rng.random()
        if pad < 0.2:
            a["padding"] = "same"
        elif pad < 0.3:
            a["padding"] = "valid"
        elif pad < 0.5:
            a["padding"] = 1
        elif pad < 0.6:
            a["padding"] = [[rng.randint(0, 1), rng.randint(0, 1)] for _ in range(n)]
        if draw.chance(0.15) and all(isinstance(d, int) for d in shape[1:]):
            a["ceil_mode"] = True
        if avg and draw.chance(0.2):
            a["count_include_pad"] = True
        return a

    return sample


def _pool_keep_shape(draw, a: dict, shape: tuple, exact: bool) -> dict:
    a.pop("stride", None)
    a.pop("ceil_mode", None)
    a["padding"] = "same"
    a["stride"] = 1
    return a


def _no_attrs(draw, shape) -> dict:
    return {}


IMG = [3, 9, 11]
NEGATIVE = {"shift": -3.0}  # inputs below zero: zero padding would win a max


def _pool(ctx: Ctx, n: int):
    ctx.want_rank(n + 1)
    a = ctx.attrs
    k = a["size"] = spatial(ctx, "size", n)
    if a["stride"] is None:
        a["stride"] = list(k)
    s = a["stride"] = spatial(ctx, "stride", n)
    pads = a["padding"] = padding(ctx, n, k, s, (1,) * n)
    out = []
    extra = []
    for i in range(n):
        if max(pads[i]) > k[i] // 2:
            ctx.fail(
                f"padding {list(pads[i])} on spatial axis {i + 1} is more than half the window "
                f"({k[i]} // 2 = {k[i] // 2})",
                "padding",
                hint=f"use padding {k[i] // 2} or less, or padding: same",
            )
        size = ctx.x.shape[1 + i]
        o = conv_out(size, k[i], s[i], 1, pads[i])
        if o is not None and o < 1:
            ctx.fail(
                f"the window ({k[i]}) is larger than the padded input ({size}) on "
                f"spatial axis {i + 1}",
                "size",
            )
        if a["ceil_mode"]:
            if not isinstance(size, int):
                ctx.fail(
                    f"ceil_mode needs a fixed size on spatial axis {i + 1}, but it is dynamic "
                    f"('{ctx.x.name}' has shape {ctx.shape()})",
                    "ceil_mode",
                    hint="give the axis a size in the input's shape, or use padding instead",
                )
            span = size + pads[i][0] + pads[i][1] - k[i]
            o = -(-span // s[i]) + 1
            if (o - 1) * s[i] >= size + pads[i][0]:  # PyTorch: no window starts after the input
                o -= 1
        extra.append(max(0, (o - 1) * s[i] + k[i] - size - pads[i][0] - pads[i][1]) if o else 0)
        out.append(o)
    a["ceil_extra"] = tuple(extra)
    c = ctx.x.shape[0]
    ctx.macs = math.prod(d if isinstance(d, int) else 1 for d in [c, *out]) * math.prod(k)
    return (c, *out)


@op(
    "max_pool1d",
    "pooling",
    POOL_ATTRS,
    doc="Max over windows of `[channels, length]`; padding is never the maximum.",
    reference=_max_ref,
    examples=[
        ex("same", [3, 8], size=2, stride=1, padding="same"),
        ex("pad_s2", [4, 11], size=3, stride=2, padding=1, **NEGATIVE),
        ex("asym", [3, 10], size=3, stride=2, padding=[[1, 0]], **NEGATIVE),
        ex("ceil", [3, 10], size=3, stride=2, ceil_mode=True, **NEGATIVE),
    ],
    sample=_pool_sample(1),
    keep_shape=_pool_keep_shape,
    weights=(0.0, 1.0, 0.0, 0.0),
    keeps_size="channels",
)
def max_pool1d(ctx: Ctx):
    return _pool(ctx, 1)


@op(
    "max_pool2d",
    "pooling",
    POOL_ATTRS,
    doc="Max over windows of `[channels, h, w]`; padding is never the maximum.",
    reference=_max_ref,
    examples=[
        ex("plain", [2, 6, 6], size=2),
        ex("pad", [2, 7, 7], size=3, stride=2, padding=1, **NEGATIVE),
        ex("same_s2", [2, 6, 7], size=3, stride=2, padding="same", **NEGATIVE),
        ex("same_s1", IMG, size=2, stride=1, padding="same"),
        ex("asym", [2, 6, 6], size=[2, 3], stride=1, padding=[[0, 1], [1, 0]], **NEGATIVE),
        ex("asym_s2", IMG, size=[2, 3], stride=[1, 2], padding=[[1, 0], [0, 1]]),
        ex("ceil", [2, 6, 7], size=3, stride=2, ceil_mode=True, **NEGATIVE),
        ex("ceil_pad", [2, 8, 7], size=3, stride=2, padding=1, ceil_mode=True, **NEGATIVE),
        ex("ceil_asym", [2, 6, 7], size=2, stride=2, padding=[[1, 0], [0, 1]], ceil_mode=True),
    ],
    sample=_pool_sample(2),
    keep_shape=_pool_keep_shape,
    weights=(0.0, 0.0, 1.0, 0.0),
    keeps_size="channels",
)
def max_pool2d(ctx: Ctx):
    return _pool(ctx, 2)


@op(
    "avg_pool1d",
    "pooling",
    AVG_ATTRS,
    doc="Mean over windows of `[channels, length]`, counting only real (unpadded) elements.",
    reference=_avg_ref,
    examples=[
        ex("same", [3, 8], size=4, stride=3, padding="same"),
        ex("pad", [3, 8], size=3, padding=1),
        ex("asym", [3, 10], size=3, stride=2, padding=[[0, 1]]),
        ex("same_s1", [3, 10], size=2, padding="same"),
        ex("ceil", [3, 10], size=3, stride=2, ceil_mode=True),
        ex("include_pad", [3, 10], size=3, stride=2, padding=1, count_include_pad=True),
        ex(
            "ceil_include",
            [3, 9],
            size=3,
            stride=2,
            padding=1,
            ceil_mode=True,
            count_include_pad=True,
        ),
    ],
    sample=_pool_sample(1, avg=True),
    keep_shape=_pool_keep_shape,
    weights=(0.0, 1.0, 0.0, 0.0),
    keeps_size="channels",
)
def avg_pool1d(ctx: Ctx):
    return _pool(ctx, 1)


@op(
    "avg_pool2d",
    "pooling",
    AVG_ATTRS,
    doc="Mean over windows of `[channels, h, w]`, counting only real (unpadded) elements.",
    reference=_avg_ref,
    examples=[
        ex("plain", [2, 6, 6], size=2),
        ex("plain_rect", IMG, size=[2, 3]),
        ex("pad", [2, 7, 5], size=3, stride=2, padding=1),
        ex("same_s2", [2, 6, 7], size=3, stride=2, padding="same"),
        ex("same_s1", IMG, size=[2, 3], stride=1, padding="same"),
        ex("asym", [2, 5, 6], size=[3, 2], stride=[2, 1], padding=[[1, 0], [0, 1]]),
        ex("before_only", [2, 5, 6], size=3, stride=2, padding=[[1, 0], [0, 0]]),
        ex("ceil", [2, 6, 7], size=3, stride=2, ceil_mode=True),
        ex("ceil_pad", [2, 6, 7], size=3, stride=2, padding=1, ceil_mode=True),
        ex("include_pad", [2, 7, 5], size=3, stride=1, padding=1, count_include_pad=True),
        ex("include_same", [2, 6, 7], size=3, stride=2, padding="same", count_include_pad=True),
        ex(
            "ceil_include",
            [2, 6, 8],
            size=3,
            stride=2,
            padding=1,
            ceil_mode=True,
            count_include_pad=True,
        ),
        ex(
            "ceil_include_asym",
            [2, 6, 8],
            size=[3, 2],
            stride=2,
            padding=[[1, 0], [0, 1]],
            ceil_mode=True,
            count_include_pad=True,
        ),
    ],
    sample=_pool_sample(2, avg=True),
    keep_shape=_pool_keep_shape,
    weights=(0.0, 0.0, 1.0, 0.0),
    keeps_size="channels",
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
    reference=_global_avg_ref,
    examples=[ex("sequence", [3, 5]), ex("image", [3, 4, 5]), ex("rank4", [2, 3, 4, 5])],
    sample=_no_attrs,
    weights=(0.0, 0.6, 0.5, 1.0),
    keeps_size="channels",
)
def global_avg_pool(ctx: Ctx):
    return _global(ctx)


@op(
    "global_max_pool",
    "pooling",
    doc="Max over every axis after the channels: output `[channels]`.",
    reference=_global_max_ref,
    examples=[ex("sequence", [4, 7]), ex("image", IMG), ex("rank4", [2, 3, 4, 2])],
    sample=_no_attrs,
    weights=(0.0, 0.6, 0.5, 1.0),
    keeps_size="channels",
)
def global_max_pool(ctx: Ctx):
    return _global(ctx)
