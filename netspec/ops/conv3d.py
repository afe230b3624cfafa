"""conv3d, max_pool3d and avg_pool3d: the 2-D rules on `[channels, depth, height, width]`."""

from __future__ import annotations

from .base import Ctx, ex, op
from .conv import CONV_ATTRS, _conv, _conv_keep_shape, _conv_ref, _conv_sample
from .pool import (
    AVG_ATTRS,
    MAX_ATTRS,
    NEGATIVE,
    _avg_ref,
    _max_ref,
    _pool,
    _pool_keep_shape,
    _pool_sample,
)

VOL = [2, 5, 6, 4]


@op(
    "conv3d",
    "convolution",
    CONV_ATTRS,
    weighted=True,
    doc="3-D convolution over `[channels, depth, height, width]`.",
    reference=_conv_ref,
    examples=[
        ex("plain", VOL, filters=3, kernel=3),
        ex("same_s2", VOL, filters=3, kernel=[3, 2, 3], stride=2, padding="same"),
        ex("pad_dilation", [2, 6, 6, 5], filters=2, kernel=2, dilation=2, padding=1),
        ex("asym", VOL, filters=2, kernel=2, padding=[[1, 0], 0, [0, 1]], activation="relu"),
        ex("depthwise", [4, 4, 5, 4], filters=4, kernel=3, groups=4, padding=1, bias=False),
    ],
    sample=_conv_sample(3),
    keep_shape=_conv_keep_shape,
    sets_size=(0, "filters"),
    weights=(0.0, 0.0, 0.0, 1.0),
)
def conv3d(ctx: Ctx):
    return _conv(ctx, 3)


@op(
    "max_pool3d",
    "pooling",
    MAX_ATTRS,
    doc="Max over windows of `[channels, depth, h, w]`; padding is never the maximum.",
    reference=_max_ref,
    examples=[
        ex("plain", VOL, size=2),
        ex("pad_s2", [2, 5, 5, 6], size=3, stride=2, padding=1, **NEGATIVE),
        ex("same", VOL, size=[2, 3, 2], stride=1, padding="same", **NEGATIVE),
        ex("ceil", VOL, size=2, stride=2, ceil_mode=True, **NEGATIVE),
        ex("window_over_input", [2, 1, 3, 2], size=3, stride=1, padding=1, **NEGATIVE),
    ],
    sample=_pool_sample(3),
    keep_shape=_pool_keep_shape,
    weights=(0.0, 0.0, 0.0, 0.6),
    keeps_size="channels",
)
def max_pool3d(ctx: Ctx):
    return _pool(ctx, 3)


@op(
    "avg_pool3d",
    "pooling",
    AVG_ATTRS,
    doc="Mean over windows of `[channels, depth, h, w]`, counting only real (unpadded) "
    "elements unless `count_include_pad`.",
    reference=_avg_ref,
    examples=[
        ex("plain", VOL, size=2),
        ex("pad", [2, 5, 5, 6], size=3, stride=2, padding=1),
        ex("asym", VOL, size=2, stride=1, padding=[[1, 0], 0, [0, 1]]),
        ex("include_pad", [2, 5, 5, 6], size=3, stride=2, padding=1, count_include_pad=True),
        ex("ceil", VOL, size=2, stride=2, ceil_mode=True),
        ex("window_over_input", [2, 2, 1, 4], size=3, stride=1, padding=1),
    ],
    sample=_pool_sample(3, avg=True),
    keep_shape=_pool_keep_shape,
    weights=(0.0, 0.0, 0.0, 0.6),
    keeps_size="channels",
)
def avg_pool3d(ctx: Ctx):
    return _pool(ctx, 3)
