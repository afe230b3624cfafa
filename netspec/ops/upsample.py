"""upsample (nearest, linear) and pad (constant, reflect, replicate) of the spatial axes."""

from __future__ import annotations

import math

from .base import Attr, Ctx, ex, op
from .common import spatial


def linear_taps(size: int, out: int, scale: int, align_corners: bool):
    """PyTorch's linear interpolation along one axis: for each output index, the two input
    indices it reads and the weight of the second (align_corners: the corners of input and
    output coincide; else half-pixel centers, clamped at 0)."""
    taps = []
    for j in range(out):
        if align_corners:
            src = j * (size - 1) / (out - 1) if out > 1 else 0.0
        else:
            src = max((j + 0.5) / scale - 0.5, 0.0)
        i0 = min(int(math.floor(src)), size - 1)
        i1 = min(i0 + 1, size - 1)
        taps.append((i0, i1, src - i0))
    return taps


def _upsample_ref(xs, a, p):
    import numpy as np

    x = xs[0]
    for i, s in enumerate(a["scale_factor"]):
        axis = 2 + i
        if a["mode"] == "nearest":
            x = np.repeat(x, s, axis=axis)
            continue
        size = x.shape[axis]
        taps = linear_taps(size, size * s, s, a["align_corners"])
        i0 = np.take(x, [t[0] for t in taps], axis=axis)
        i1 = np.take(x, [t[1] for t in taps], axis=axis)
        w = np.array([t[2] for t in taps]).reshape([-1] + [1] * (x.ndim - axis - 1))
        x = i0 * (1 - w) + i1 * w
    return x


def _upsample_sample(draw, shape) -> dict:
    n = len(shape) - 1
    a: dict = {"scale_factor": draw.spatial(n, 1, 3)}
    if all(isinstance(d, int) for d in shape[1:]) and draw.chance(0.5):
        a["mode"] = "linear"
        draw.maybe(a, "align_corners", 0.4, True)
    return a


@op(
    "upsample",
    "shape",
    [
        Attr("scale_factor", "spatial", doc="the integer factor of each spatial axis"),
        Attr(
            "mode",
            "choice",
            "nearest",
            "nearest: each value repeated; linear: PyTorch's linear / bilinear / trilinear",
            choices=("nearest", "linear"),
        ),
        Attr(
            "align_corners",
            "bool",
            False,
            "linear only: the corner values of input and output coincide (PyTorch's "
            "align_corners); false: half-pixel centers",
        ),
    ],
    doc="Enlarges the spatial axes of `[channels, *spatial]` by integer factors (PyTorch's "
    "`interpolate` with `scale_factor`); linear needs fixed spatial sizes.",
    reference=_upsample_ref,
    examples=[
        ex("nearest", [3, 4, 5], scale_factor=2),
        ex("nearest_rect", [2, 3, 4], scale_factor=[2, 3]),
        ex("nearest_sequence", [3, 5], scale_factor=3),
        ex("nearest_dynamic", [2, None, 4], scale_factor=[1, 2]),
        ex("nearest_volume", [2, 2, 3, 2], scale_factor=[2, 1, 2]),
        ex("bilinear", [3, 4, 5], scale_factor=2, mode="linear"),
        ex("bilinear_rect", [2, 3, 4], scale_factor=[3, 2], mode="linear"),
        ex("bilinear_corners", [2, 4, 3], scale_factor=2, mode="linear", align_corners=True),
        ex("linear_sequence", [3, 5], scale_factor=2, mode="linear"),
        ex("linear_sequence_corners", [3, 5], scale_factor=3, mode="linear", align_corners=True),
        ex("trilinear", [2, 2, 3, 2], scale_factor=2, mode="linear"),
    ],
    sample=_upsample_sample,
    weights=(0.0, 0.2, 0.4, 0.1),
    keeps_size="channels",
)
def upsample(ctx: Ctx):
    ctx.want_rank(2, 4)
    n = ctx.x.rank - 1
    s = ctx.attrs["scale_factor"] = spatial(ctx, "scale_factor", n)
    if ctx.attrs["mode"] == "nearest" and ctx.attrs["align_corners"]:
        ctx.fail(
            "align_corners applies to mode linear only",
            "align_corners",
            hint="remove align_corners, or write mode: linear",
        )
    if ctx.attrs["mode"] == "linear":
        for i in range(n):
            ctx.static(ctx.x.shape[1 + i], f"spatial axis {i + 1} of '{ctx.x.name}'")
    out = [d * k if isinstance(d, int) else None for d, k in zip(ctx.x.shape[1:], s, strict=True)]
    ctx.macs = math.prod(d for d in (ctx.x.shape[0], *out) if isinstance(d, int))
    return (ctx.x.shape[0], *out)


def _pad_ref(xs, a, p):
    import numpy as np

    pairs = [(0, 0), (0, 0), *a["padding"]]
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[a["mode"]]
    if mode == "constant":
        return np.pad(xs[0], pairs, constant_values=a["value"])
    return np.pad(xs[0], pairs, mode=mode)


def _pad_sample(draw, shape) -> dict:
    n = len(shape) - 1
    rng = draw.rng
    a: dict = {"padding": [[rng.randint(0, 2), rng.randint(0, 2)] for _ in range(n)]}
    r = rng.random()
    if r < 0.3:
        a["mode"] = "replicate"
    elif r < 0.5 and all(isinstance(d, int) and d > 2 for d in shape[1:]):
        a["mode"] = "reflect"
    elif r < 0.7:
        a["value"] = rng.choice([1.0, -0.5])
    return a


def _pad_keep_shape(draw, a: dict, shape: tuple, exact: bool) -> None:
    return None


@op(
    "pad",
    "shape",
    [
        Attr(
            "padding",
            "padding",
            doc="an int (every side), or one int or one [before, after] pair per spatial axis",
        ),
        Attr(
            "mode",
            "choice",
            "constant",
            "constant: `value`; reflect: mirrored without the edge (PyTorch's reflect); "
            "replicate: the edge value repeated",
            choices=("constant", "reflect", "replicate"),
        ),
        Attr("value", "float", 0.0, "the padding value of mode constant"),
    ],
    doc="Pads the spatial axes of `[channels, *spatial]` (PyTorch's `F.pad`).",
    reference=_pad_ref,
    examples=[
        ex("zeros", [2, 4, 5], padding=1),
        ex("value", [2, 4, 5], padding=[[1, 2], [0, 1]], value=-1.5),
        ex("reflect", [2, 4, 5], padding=[[1, 2], [3, 0]], mode="reflect"),
        ex("replicate", [2, 4, 5], padding=[2, [1, 0]], mode="replicate"),
        ex("sequence_reflect", [3, 6], padding=2, mode="reflect"),
        ex("dynamic_replicate", [2, None, 4], padding=[0, [1, 3]], mode="replicate"),
        ex("volume", [2, 2, 3, 2], padding=1, mode="replicate"),
    ],
    sample=_pad_sample,
    keep_shape=_pad_keep_shape,
    weights=(0.0, 0.2, 0.3, 0.1),
    keeps_size="channels",
)
def pad(ctx: Ctx):
    ctx.want_rank(2, 4)
    n = ctx.x.rank - 1
    v = ctx.attrs["padding"]
    if isinstance(v, str):
        ctx.fail(
            f"pad takes explicit sizes, not '{v}'",
            "padding",
            hint="write an int, or one int or [before, after] pair per spatial axis",
        )
    if isinstance(v, int):
        pairs = ((v, v),) * n
    elif len(v) != n:
        ctx.fail(f"expected one entry per spatial axis ({n}), got {len(v)}: {v}", "padding")
    else:
        pairs = tuple((q, q) if isinstance(q, int) else (q[0], q[1]) for q in v)
    ctx.attrs["padding"] = pairs
    mode = ctx.attrs["mode"]
    if mode != "constant" and ctx.attrs["value"] != 0.0:
        ctx.fail("value applies to mode constant only", "value", hint="remove value")
    out = []
    for i, (b, c) in enumerate(pairs):
        d = ctx.x.shape[1 + i]
        if mode == "reflect":
            size = ctx.static(d, f"spatial axis {i + 1} of '{ctx.x.name}' (mode reflect)")
            if max(b, c) >= size:
                ctx.fail(
                    f"reflect padding {[b, c]} on spatial axis {i + 1} must be less than its "
                    f"size ({size})",
                    "padding",
                    hint="pad less, or use mode replicate",
                )
        out.append(d + b + c if isinstance(d, int) else None)
    return (ctx.x.shape[0], *out)
