"""batch_norm, layer_norm, normalize and dropout."""

from __future__ import annotations

import math

from .base import Attr, Ctx, ex, op


def _batch_norm_ref(xs, a, p):
    import numpy as np

    from .numeric import channel

    x = np.moveaxis(xs[0], a["axis"], 1)
    mean, var = channel(p["running_mean"], x.ndim), channel(p["running_var"], x.ndim)
    scale, shift = channel(p["weight"], x.ndim), channel(p["bias"], x.ndim)
    return np.moveaxis((x - mean) / np.sqrt(var + a["eps"]) * scale + shift, 1, a["axis"])


def _batch_norm_sample(draw, shape) -> dict:
    a: dict = {}
    draw.maybe(a, "eps", 0.3, draw.rng.choice([1e-3, 0.01, 1e-5, 0.1]))
    draw.maybe(a, "momentum", 0.2, draw.rng.choice([0.01, 0.5, 0.9]))
    return a


def _layer_norm_ref(xs, a, p):
    import numpy as np

    x = np.moveaxis(xs[0], a["axis"], -1)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + a["eps"]) * p["weight"] + p["bias"]
    return np.moveaxis(y, -1, a["axis"])


def _layer_norm_sample(draw, shape) -> dict:
    a: dict = {}
    draw.maybe(a, "eps", 0.3, draw.rng.choice([1e-3, 1e-6, 0.01]))
    return a


def chosen_axis(ctx: Ctx) -> int:
    """The `axis` attribute as a logical axis 1..rank (batch is 0; negative from the end)."""
    rank = ctx.x.rank
    axis = ctx.attrs["axis"]
    ax = axis + rank + 1 if axis < 0 else axis
    if not 1 <= ax <= rank:
        ctx.fail(
            f"axis {axis} is out of range for an input of per-example rank {rank} (axis 0 is "
            f"the batch; valid: 1..{rank} or -{rank}..-1)",
            "axis",
        )
    ctx.attrs["axis"] = ax
    return ax


def _dropout_ref(xs, a, p):
    return xs[0]


def _dropout_sample(draw, shape) -> dict:
    a: dict = {}
    draw.maybe(a, "rate", 0.6, draw.rng.choice([0.0, 0.1, 0.25, 0.5, 0.9]))
    return a


IMG = [3, 9, 11]
SCALE = ("uniform", 0.5, 1.5)  # random test weights: scales away from 0 and 1


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
        Attr(
            "axis",
            "axis",
            1,
            "the logical axis with one statistic per entry (batch is 0; 1: the channels of an "
            "image, the features of a vector; 2 or -1: the features of `[time, features]`)",
        ),
    ],
    doc="Normalizes `axis` (by default 1: channels of an image, features of a vector) with "
    "running statistics at inference.",
    reference=_batch_norm_ref,
    examples=[
        ex("image", IMG, eps=0.001, momentum=0.01),
        ex("vector", [6]),
        ex("vector_eps", [4], eps=0.001, momentum=0.01),
        ex("sequence", [4, 7]),
        ex("image_eps", [2, 3, 3], eps=0.1),
        ex("rank4", [2, 2, 3, 2]),
        ex("sequence_features", [5, 4], axis=2),
        ex("image_last", [2, 3, 4], axis=-1, eps=0.01),
    ],
    sample=_batch_norm_sample,
    weights=(1.0, 0.8, 1.0, 1.0),
    start={"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0},
    test_values={
        "running_mean": ("normal", 0.0, 0.1),
        "running_var": SCALE,
        "weight": SCALE,
    },
    keeps_size="all",
)
def batch_norm(ctx: Ctx):
    ctx.want_rank(1, 4)
    ax = chosen_axis(ctx)
    if ax == 1 and ctx.x.rank == 2 and not isinstance(ctx.x.shape[0], int):  # [time, features]
        ctx.fail(
            f"batch_norm normalizes axis 1 (channels), which in the sequence '{ctx.x.name}' "
            f"(shape {ctx.shape()}) is its time axis, of dynamic size",
            hint="to normalize each step's features, use layer_norm or batch_norm with "
            "axis: -1; or permute the sequence to [features, time] first",
        )
    c = ctx.static(ctx.x.shape[ax - 1], f"axis {ax} of '{ctx.x.name}'")
    ctx.params = {"weight": (c,), "bias": (c,)}
    ctx.buffers = {"running_mean": (c,), "running_var": (c,)}
    ctx.macs = math.prod(d if isinstance(d, int) else 1 for d in ctx.x.shape)
    return ctx.x.shape


@op(
    "layer_norm",
    "normalization",
    [
        Attr("eps", "float", 1e-5, "added to the variance", minimum=0, exclusive_min=True),
        Attr(
            "axis",
            "axis",
            -1,
            "the logical axis normalized (batch is 0; -1: the last; 1: the channels of an image)",
        ),
    ],
    doc="Normalizes `axis` (by default the last), with a learned scale and shift.",
    reference=_layer_norm_ref,
    examples=[
        ex("sequence", [3, 6], eps=0.01),
        ex("vector", [6]),
        ex("image", IMG, eps=0.001, before=[{"op": "conv2d", "filters": 4, "kernel": 3}]),
        ex("channels", IMG, axis=1, scale=2.0, shift=1.0),
        ex("middle", [3, 4, 5], axis=2),
        ex("sequence_time", [5, 3], axis=-2),
    ],
    sample=_layer_norm_sample,
    weights=(1.0, 0.8, 0.4, 0.5),
    start={"weight": 1.0, "bias": 0.0},
    test_values={"weight": SCALE},
    keeps_size="all",
)
def layer_norm(ctx: Ctx):
    ctx.want_rank(1, 8)
    ax = chosen_axis(ctx)
    f = ctx.static(ctx.x.shape[ax - 1], f"axis {ax} of '{ctx.x.name}'")
    ctx.params = {"weight": (f,), "bias": (f,)}
    return ctx.x.shape


# normalize's divisor is max(sqrt(variance), EPSILON): Keras' Normalization with its default
# epsilon (keras.config.epsilon()), written as a constant on every target
EPSILON = 1e-7


def _normalize_ref(xs, a, p):
    import numpy as np

    x = xs[0]
    shape = [1] * x.ndim
    if a["axis"] is not None:
        shape[a["axis"]] = -1
    mean, var = p["mean"].reshape(shape), p["variance"].reshape(shape)
    return (x - mean) / np.maximum(np.sqrt(var), EPSILON)


def _normalize_sample(draw, shape) -> dict:
    static = [i + 1 for i, d in enumerate(shape) if isinstance(d, int)]
    if not static or draw.chance(0.2):
        return {"axis": None}
    if isinstance(shape[-1], int) and draw.chance(0.5):
        return {}  # the last axis, the default
    ax = draw.rng.choice(static)
    return {"axis": ax if draw.chance(0.5) else ax - len(shape) - 1}


@op(
    "normalize",
    "normalization",
    [
        Attr(
            "axis",
            "axis",
            -1,
            "the logical axis whose entries are separate features, each with its own mean and "
            "variance (batch is 0; channels of an image are 1); null: one mean and variance for "
            "every value",
            nullable=True,
        )
    ],
    doc="`(x - mean) / max(sqrt(variance), 1e-7)` with one mean and variance per entry of "
    "`axis` (Keras' `Normalization`), buffers set from the training data when training starts "
    "(`adapt`), not trained; they start at 0 and 1. Reads a model input when trained.",
    reference=_normalize_ref,
    examples=[
        ex("vector", [5], scale=10.0, shift=50.0),
        ex("image_channels", [3, 5, 6], scale=3.0, axis=1),
        ex("image_last", [3, 5, 6], scale=3.0),
        ex("middle_negative", [3, 4, 5], axis=-2),
        ex("all_values", [4, 3], scale=5.0, shift=-2.0, axis=None),
        ex("sequence", [None, 4], scale=2.0),
    ],
    sample=_normalize_sample,
    weights=(0.5, 0.4, 0.4, 0.2),
    start={"mean": 0.0, "variance": 1.0},
    test_values={"mean": ("normal", 0.0, 1.0), "variance": ("uniform", 0.25, 4.0)},
    keeps_size="all",
)
def normalize(ctx: Ctx):
    axis = ctx.attrs["axis"]
    if axis is None:
        ctx.buffers = {"mean": (1,), "variance": (1,)}
        return ctx.x.shape
    rank = ctx.x.rank
    ax = axis + rank + 1 if axis < 0 else axis
    if not 1 <= ax <= rank:
        ctx.fail(
            f"axis {axis} is out of range for an input of per-example rank {rank} (axis 0 is "
            f"the batch; valid: 1..{rank} or -{rank}..-1)",
            "axis",
            hint="write axis: null for one mean and variance over every value",
        )
    ctx.attrs["axis"] = ax
    size = ctx.static(ctx.x.shape[ax - 1], f"axis {ax} of '{ctx.x.name}'")
    ctx.buffers = {"mean": (size,), "variance": (size,)}
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
    reference=_dropout_ref,
    examples=[ex("vector", [6], rate=0.3), ex("image", IMG)],
    sample=_dropout_sample,
    weights=(0.5, 0.3, 0.3, 0.0),
    keeps_size="all",
)
def dropout(ctx: Ctx):
    return ctx.x.shape
