"""batch_norm, layer_norm and dropout."""

from __future__ import annotations

import math

from .base import Attr, Ctx, op
from .common import channels


@op(
    "batch_norm",
    "normalization",
    [
        Attr("eps", "float", 1e-5, "added to the variance", minimum=0, exclusive_min=True),
        Attr(
            "momentum",
            "float",
            0.1,
            "weight of the new batch in the running statistics (PyTorch's convention)",
            minimum=0,
            maximum=1,
        ),
    ],
    doc="Normalizes axis 1 (channels of an image, features of a vector) with running "
    "statistics at inference.",
)
def batch_norm(ctx: Ctx):
    ctx.want_rank(1, 4)
    c = channels(ctx)
    ctx.params = {"weight": (c,), "bias": (c,)}
    ctx.buffers = {"running_mean": (c,), "running_var": (c,)}
    ctx.macs = math.prod(d if isinstance(d, int) else 1 for d in ctx.x.shape)
    return ctx.x.shape


@op(
    "layer_norm",
    "normalization",
    [Attr("eps", "float", 1e-5, "added to the variance", minimum=0, exclusive_min=True)],
    doc="Normalizes the last axis, with a learned scale and shift.",
)
def layer_norm(ctx: Ctx):
    ctx.want_rank(1, 8)
    f = ctx.static(ctx.x.shape[-1], f"the last axis of '{ctx.x.name}'")
    ctx.params = {"weight": (f,), "bias": (f,)}
    return ctx.x.shape


@op(
    "dropout",
    "regularization",
    [
        Attr(
            "rate",
            "float",
            0.5,
            "fraction dropped in training",
            minimum=0,
            maximum=1,
            exclusive_max=True,
            hint="a rate of 1 would drop every value",
        )
    ],
    doc="Identity at inference.",
)
def dropout(ctx: Ctx):
    return ctx.x.shape
