"""conv1d, conv2d and conv_transpose2d."""

from __future__ import annotations

import math

from .base import Attr, Ctx, conv_out, op
from .common import channels, padding, spatial

CONV_ATTRS = [
    Attr("filters", "int", doc="output channels", minimum=1),
    Attr("kernel", "spatial", doc="kernel size"),
    Attr("stride", "spatial", 1, "stride"),
    Attr("padding", "padding", 0, "zero padding, 'same' or 'valid'"),
    Attr("dilation", "spatial", 1, "dilation"),
    Attr("groups", "int", 1, "channel groups (groups = channels is depthwise)", minimum=1),
    Attr("bias", "bool", True, "add a learned bias"),
    Attr("activation", "activation", None, "activation applied to the output"),
]


def _conv(ctx: Ctx, n: int):
    ctx.want_rank(n + 1)
    c = channels(ctx)
    a = ctx.attrs
    k = a["kernel"] = spatial(ctx, "kernel", n)
    s = a["stride"] = spatial(ctx, "stride", n)
    d = a["dilation"] = spatial(ctx, "dilation", n)
    a["padding"] = pads = padding(ctx, n, k, s, d)
    g, f = a["groups"], a["filters"]
    if c % g or f % g:
        what = f"the input channels ({c})" if c % g else f"filters ({f})"
        ok = [q for q in range(1, math.gcd(c, f) + 1) if c % q == 0 and f % q == 0]
        ctx.fail(
            f"groups ({g}) must divide {what}: each group convolves channels / groups inputs "
            "to filters / groups outputs",
            "groups",
            hint="groups that divide both here: "
            + ", ".join(map(str, ok[:12]))
            + (", ..." if len(ok) > 12 else ""),
        )
    out = []
    for i in range(n):
        o = conv_out(ctx.x.shape[1 + i], k[i], s[i], d[i], pads[i])
        if o is not None and o < 1:
            span = d[i] * (k[i] - 1) + 1
            spans = f"{k[i]}" if d[i] == 1 else f"{k[i]} with dilation {d[i]}, spanning {span},"
            ctx.fail(
                f"the kernel ({spans}) is larger than spatial axis {i + 1} of "
                f"'{ctx.x.name}': size {ctx.x.shape[1 + i]}, padded {pads[i][0]} + "
                f"{pads[i][1]} (input shape {ctx.shape()})",
                "kernel",
                hint="use a smaller kernel, add padding (padding: same keeps the size), or "
                "downsample less before this layer",
            )
        out.append(o)
    ctx.params["weight"] = (f, c // g, *k)
    if a["bias"]:
        ctx.params["bias"] = (f,)
    ctx.macs = math.prod(o or 1 for o in out) * f * (c // g) * math.prod(k)
    return (f, *out)


@op(
    "conv1d",
    "convolution",
    CONV_ATTRS,
    weighted=True,
    doc="1-D convolution over `[channels, length]`.",
)
def conv1d(ctx: Ctx):
    return _conv(ctx, 1)


@op(
    "conv2d",
    "convolution",
    CONV_ATTRS,
    weighted=True,
    doc="2-D convolution over `[channels, height, width]`.",
)
def conv2d(ctx: Ctx):
    return _conv(ctx, 2)


@op(
    "conv_transpose2d",
    "convolution",
    [
        Attr("filters", "int", doc="output channels", minimum=1),
        Attr("kernel", "spatial", doc="kernel size"),
        Attr("stride", "spatial", 1, "stride"),
        Attr("padding", "padding", 0, "rows/columns removed from each side of the output"),
        Attr(
            "output_padding", "spatial", 0, "extra rows/columns added after (< stride)", minimum=0
        ),
        Attr("bias", "bool", True, "add a learned bias"),
        Attr("activation", "activation", None, "activation applied to the output"),
    ],
    weighted=True,
    doc="2-D transposed convolution: out = (in - 1) * stride - 2 * padding + kernel "
    "+ output_padding.",
)
def conv_transpose2d(ctx: Ctx):
    ctx.want_rank(3)
    c = channels(ctx)
    a = ctx.attrs
    k = a["kernel"] = spatial(ctx, "kernel", 2)
    s = a["stride"] = spatial(ctx, "stride", 2)
    op_ = a["output_padding"]
    if op_ == 0:
        op_ = (0, 0)
    elif isinstance(op_, int):
        op_ = (op_, op_)
    elif len(op_) != 2:
        ctx.fail(f"expected one value per spatial axis (2), got {len(op_)}", "output_padding")
    a["output_padding"] = tuple(op_)
    p = a["padding"]
    if p in ("same", "valid") or (isinstance(p, list) and any(isinstance(x, list) for x in p)):
        if p != "valid":
            ctx.fail(
                "conv_transpose2d takes an int or one int per spatial axis as padding",
                "padding",
            )
        p = 0
    pads = (p, p) if isinstance(p, int) else tuple(p)
    if len(pads) != 2:
        ctx.fail(f"expected one value per spatial axis (2), got {len(pads)}", "padding")
    a["padding"] = tuple((q, q) for q in pads)
    a["padding_mode"] = "explicit"
    out = []
    for i in range(2):
        if a["output_padding"][i] >= s[i]:
            ctx.fail(
                f"output_padding ({a['output_padding'][i]}) must be smaller than the stride "
                f"({s[i]})",
                "output_padding",
            )
        size = ctx.x.shape[1 + i]
        o = None
        if isinstance(size, int):
            o = (size - 1) * s[i] - 2 * pads[i] + k[i] + a["output_padding"][i]
            if o < 1:
                ctx.fail(f"padding {pads[i]} leaves no output on spatial axis {i + 1}", "padding")
        out.append(o)
    f = a["filters"]
    ctx.params["weight"] = (c, f, *k)
    if a["bias"]:
        ctx.params["bias"] = (f,)
    ins = math.prod(d if isinstance(d, int) else 1 for d in ctx.x.shape[1:])
    ctx.macs = ins * c * f * math.prod(k)
    return (f, *out)
