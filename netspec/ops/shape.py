"""flatten, reshape and permute: per-example shapes in logical (channels-first) order."""

from __future__ import annotations

import math

from .base import Attr, Ctx, op


@op(
    "flatten",
    "shape",
    doc="Flattens the per-example axes in channels-first order, as PyTorch does.",
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
