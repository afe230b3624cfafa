"""group_norm and instance_norm: statistics of each example, over groups of channels."""

from __future__ import annotations

import math

from .base import Attr, Ctx, ex, op
from .common import channels

EPS = Attr("eps", "float", 1e-5, "added to the variance", minimum=0, exclusive_min=True)
SCALE = ("uniform", 0.5, 1.5)


def group_norm_ref(x, groups: int, eps: float, weight=None, bias=None):
    """`x` [N, C, *spatial] normalized over each group of C / groups channels and the spatial
    axes (population variance), then scaled and shifted per channel."""
    import numpy as np

    from .numeric import channel

    n, c = x.shape[:2]
    g = x.reshape(n, groups, -1)
    mean = g.mean(-1, keepdims=True)
    var = ((g - mean) ** 2).mean(-1, keepdims=True)
    y = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    if weight is not None:
        y = y * channel(weight, x.ndim) + channel(bias, x.ndim)
    return y


def _group_ref(xs, a, p):
    return group_norm_ref(xs[0], a["groups"], a["eps"], p["weight"], p["bias"])


def _instance_ref(xs, a, p):
    x = xs[0]
    return group_norm_ref(x, x.shape[1], a["eps"], p.get("weight"), p.get("bias"))


def _group_sample(draw, shape) -> dict:
    c = shape[0]
    options = [g for g in (1, 2, 3, 4) if isinstance(c, int) and c % g == 0]
    a: dict = {"groups": draw.rng.choice(options or [1])}
    draw.maybe(a, "eps", 0.3, draw.rng.choice([1e-3, 1e-6]))
    return a


def _instance_sample(draw, shape) -> dict:
    a: dict = {}
    draw.maybe(a, "affine", 0.5, True)
    draw.maybe(a, "eps", 0.3, draw.rng.choice([1e-3, 1e-6]))
    return a


def _spatial(ctx: Ctx) -> int:
    ctx.want_rank(2, 4)
    c = channels(ctx)
    ctx.macs = 4 * math.prod(d if isinstance(d, int) else 1 for d in ctx.x.shape)
    return c


@op(
    "group_norm",
    "normalization",
    [
        Attr("groups", "int", doc="the number of channel groups (divides the channels)", minimum=1),
        EPS,
    ],
    doc="Normalizes each group of channels of `[channels, *spatial]` over the group's channels "
    "and the spatial axes, per example (PyTorch's `GroupNorm`); a learned scale and shift per "
    "channel.",
    reference=_group_ref,
    examples=[
        ex("image", [6, 4, 5], groups=3),
        ex("one_group", [4, 3, 3], groups=1, eps=0.001),
        ex("sequence", [4, 7], groups=2, scale=3.0, shift=5.0),
        ex("dynamic", [4, None, None], groups=4),
        ex("volume", [4, 2, 3, 2], groups=2),
    ],
    sample=_group_sample,
    weights=(0.0, 0.3, 0.5, 0.3),
    start={"weight": 1.0, "bias": 0.0},
    test_values={"weight": SCALE},
    keeps_size="all",
)
def group_norm(ctx: Ctx):
    c = _spatial(ctx)
    g = ctx.attrs["groups"]
    if c % g:
        ctx.fail(
            f"groups ({g}) must divide the channels ({c})",
            "groups",
            hint=f"use a divisor of {c}",
        )
    if all(isinstance(d, int) for d in ctx.x.shape) and math.prod(ctx.x.shape) == g:
        ctx.fail(
            f"group_norm over groups of one value each ('{ctx.x.name}' has shape {ctx.shape()}, "
            f"{g} groups): the output would be the shift alone (and PyTorch refuses it)",
            "groups",
            hint="use fewer groups, or normalize a larger value",
        )
    ctx.params = {"weight": (c,), "bias": (c,)}
    return ctx.x.shape


@op(
    "instance_norm",
    "normalization",
    [
        EPS,
        Attr(
            "affine",
            "bool",
            False,
            "a learned scale and shift per channel (PyTorch's default: none)",
        ),
    ],
    doc="Normalizes each channel of `[channels, *spatial]` over the spatial axes, per example "
    "(PyTorch's `InstanceNorm` without running statistics): `group_norm` with one group per "
    "channel.",
    reference=_instance_ref,
    examples=[
        ex("image", [3, 4, 5]),
        ex("affine", [3, 4, 5], affine=True, eps=0.001),
        ex("sequence", [4, 7], affine=True, scale=2.0, shift=-3.0),
        ex("dynamic", [2, None, 3]),
        ex("volume", [2, 2, 3, 2], affine=True),
    ],
    sample=_instance_sample,
    weights=(0.0, 0.3, 0.5, 0.3),
    start={"weight": 1.0, "bias": 0.0},
    test_values={"weight": SCALE},
    keeps_size="all",
)
def instance_norm(ctx: Ctx):
    c = _spatial(ctx)
    if all(d == 1 for d in ctx.x.shape[1:]):
        ctx.fail(
            f"instance_norm normalizes each channel over its spatial axes, but '{ctx.x.name}' "
            f"has one spatial element (shape {ctx.shape()}): the output would be all zeros "
            "(and PyTorch refuses it in training)",
            hint="normalize over channels instead (layer_norm with axis: 1, or batch_norm)",
        )
    if ctx.attrs["affine"]:
        ctx.params = {"weight": (c,), "bias": (c,)}
    return ctx.x.shape
