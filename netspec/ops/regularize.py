"""drop_path, spatial_dropout and dropblock: the identity at inference on every target.

Training behaviour (PyTorch's and Keras' generated code; ONNX models are for inference):
`drop_path` zeroes whole examples with probability `rate` and scales the rest by
1 / (1 - rate) (stochastic depth, torchvision's `StochasticDepth(mode="row")`);
`spatial_dropout` zeroes whole channels (PyTorch's `Dropout1d/2d/3d`, Keras' `SpatialDropout`);
`dropblock` zeroes square blocks of each channel, then scales by the kept fraction
(Ghiasi et al. 2018, as torchvision's `DropBlock2d`).
"""

from __future__ import annotations

from .base import Attr, Ctx, ex, op

RATE = Attr(
    "rate",
    "float",
    0.1,
    "probability of dropping, in training",
    minimum=0,
    maximum=1,
    exclusive_max=True,
    hint="a rate of 1 would drop every value",
)


def _identity(xs, a, p):
    return xs[0]


def _rate_sample(draw, shape) -> dict:
    a: dict = {}
    draw.maybe(a, "rate", 0.6, draw.rng.choice([0.0, 0.1, 0.2, 0.5]))
    return a


def _dropblock_sample(draw, shape) -> dict:
    a = _rate_sample(draw, shape)
    sizes = [d for d in shape[1:] if isinstance(d, int)]
    if len(sizes) == 2:
        a["block_size"] = draw.rng.randint(1, min(sizes))
    return a


@op(
    "drop_path",
    "regularization",
    [RATE],
    doc="Stochastic depth: in training, each example's value is zeroed with probability "
    "`rate` and the rest scaled by 1 / (1 - rate); the identity at inference.",
    reference=_identity,
    examples=[ex("vector", [6], rate=0.2), ex("image", [3, 4, 5])],
    sample=_rate_sample,
    weights=(0.3, 0.3, 0.3, 0.1),
    keeps_size="all",
)
def drop_path(ctx: Ctx):
    return ctx.x.shape


@op(
    "spatial_dropout",
    "regularization",
    [RATE],
    doc="Dropout of whole channels of `[channels, *spatial]` in training (PyTorch's "
    "`Dropout1d/2d/3d`); the identity at inference.",
    reference=_identity,
    examples=[ex("sequence", [4, 6], rate=0.3), ex("image", [3, 4, 5]), ex("volume", [2, 2, 3, 2])],
    sample=_rate_sample,
    weights=(0.0, 0.3, 0.3, 0.1),
    keeps_size="all",
)
def spatial_dropout(ctx: Ctx):
    ctx.want_rank(2, 4)
    return ctx.x.shape


@op(
    "dropblock",
    "regularization",
    [RATE, Attr("block_size", "int", 3, "the side of each dropped square", minimum=1)],
    doc="DropBlock on `[channels, h, w]`: in training, square blocks of each channel are "
    "zeroed (about `rate` of the values) and the rest scaled up; the identity at inference.",
    reference=_identity,
    examples=[ex("image", [3, 6, 5], rate=0.2, block_size=3), ex("default", [2, 4, 4])],
    sample=_dropblock_sample,
    weights=(0.0, 0.0, 0.3, 0.0),
    keeps_size="all",
)
def dropblock(ctx: Ctx):
    ctx.want_rank(3)
    k = ctx.attrs["block_size"]
    for i, d in enumerate(ctx.x.shape[1:]):
        if isinstance(d, int) and k > d:
            ctx.fail(
                f"block_size {k} is larger than spatial axis {i + 1} ({d})",
                "block_size",
                hint=f"use a block_size of at most {d}",
            )
    return ctx.x.shape
