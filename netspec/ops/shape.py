"""flatten, reshape and permute: per-example shapes in logical (channels-first) order."""

from __future__ import annotations

import math

from .base import Attr, Ctx, ex, never, op


def _flatten_ref(xs, a, p):
    return xs[0].reshape(xs[0].shape[0], -1)


def _reshape_ref(xs, a, p):
    return xs[0].reshape(xs[0].shape[0], *a["shape"])


def _permute_ref(xs, a, p):
    return xs[0].transpose(0, *a["dims"])


def _no_attrs(draw, shape) -> dict:
    return {}


def _reshape_sample(draw, shape) -> dict:
    return {"shape": draw.reshape_target(shape)}


def _permute_sample(draw, shape) -> dict:
    r = len(shape)
    dims = list(range(1, r + 1))
    draw.rng.shuffle(dims)
    if dims == sorted(dims) and r > 1:
        dims.reverse()
    return {"dims": dims}


IMG = [3, 9, 11]
CONV = {"op": "conv2d", "filters": 4, "kernel": 3}


@op(
    "flatten",
    "shape",
    doc="Flattens the per-example axes in channels-first order, as PyTorch does.",
    reference=_flatten_ref,
    examples=[
        ex("image", [2, 3, 4]),
        ex("after_conv", IMG, before=[{**CONV, "stride": 2}]),
        ex("unit_spatial", IMG, before=[{**CONV, "kernel": [9, 11]}]),
        ex("after_permute", IMG, before=[CONV, {"op": "permute", "dims": [2, 3, 1]}]),
        ex("sequence", [3, 5]),
    ],
    sample=_no_attrs,
    keep_shape=never,
    weights=(0.0, 0.6, 0.8, 2.0),
)
def flatten(ctx: Ctx):
    dims = ctx.x.shape
    if all(isinstance(d, int) for d in dims):
        return (math.prod(dims),)
    return (None,)


@op(
    "reshape",
    "shape",
    [Attr("shape", "shape", doc="per-example shape; one -1 is inferred")],
    doc="Reshapes the per-example axes (row-major, channels-first).",
    reference=_reshape_ref,
    examples=[
        ex("infer", [2, 3, 4], shape=[6, -1]),
        ex("after_conv", IMG, shape=[12, -1], before=[{**CONV, "padding": 1}]),
        ex("to_image", [48], shape=[3, 4, 4]),
        ex("to_unit_image", [6], shape=[-1, 1, 1]),
        ex("image_to_rows", [4, 9, 7], shape=[4, 63]),
        ex(
            "after_permute",
            [4, 9, 7],
            shape=[-1, 4, 7],
            before=[{"op": "permute", "dims": [2, 3, 1]}],
        ),
    ],
    sample=_reshape_sample,
    keep_shape=never,
    weights=(1.0, 0.4, 0.3, 0.0),
)
def reshape(ctx: Ctx):
    target = list(ctx.attrs["shape"])
    dims = ctx.x.shape
    if not all(isinstance(d, int) for d in dims):
        ctx.fail(
            f"reshape needs a fixed input shape, but '{ctx.x.name}' has shape {ctx.shape()}",
            hint="give every axis of the input a size",
        )
    total = math.prod(dims)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if total % known:
            ctx.fail(
                f"cannot reshape {ctx.shape()} ({total} elements) to {target}: {total} is "
                f"not a multiple of {known}",
                "shape",
            )
        target[target.index(-1)] = total // known
    elif known != total:
        ctx.fail(
            f"cannot reshape {ctx.shape()} ({total} elements) to {target} ({known} elements)",
            "shape",
            hint="the sizes must multiply to the same number; one -1 is inferred",
        )
    ctx.attrs["shape"] = tuple(target)
    return tuple(target)


@op(
    "permute",
    "shape",
    [Attr("dims", "dims", doc="a permutation of the per-example axes, numbered from 1")],
    doc="Reorders the per-example axes; the batch axis 0 stays put.",
    reference=_permute_ref,
    examples=[
        ex("image", [2, 3, 4], dims=[3, 1, 2]),
        ex("output", IMG, dims=[2, 1, 3]),
        ex("to_channels_first", [9, 11, 3], dims=[3, 1, 2]),
        ex("after_conv", IMG, dims=[2, 3, 1], before=[CONV]),
        ex("sequence", [4, 6], dims=[2, 1]),
    ],
    sample=_permute_sample,
    keep_shape=never,
    weights=(0.0, 0.8, 0.4, 0.5),
)
def permute(ctx: Ctx):
    dims = ctx.attrs["dims"]
    r = ctx.x.rank
    if sorted(dims) != list(range(1, r + 1)):
        ctx.fail(
            f"expected a permutation of {list(range(1, r + 1))} for an input of per-example "
            f"rank {r}, got {dims}",
            "dims",
        )
    ctx.attrs["dims"] = tuple(dims)
    return tuple(ctx.x.shape[d - 1] for d in dims)
