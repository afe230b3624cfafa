"""conv1d, conv2d, conv_transpose1d and conv_transpose2d."""

from __future__ import annotations

import math

from .base import Attr, Ctx, conv_out, ex, op
from .common import channels, padding, spatial

CONV_ATTRS = [
    Attr("filters", "int", doc="output channels", minimum=1, width=True),
    Attr("kernel", "spatial", doc="kernel size"),
    Attr("stride", "spatial", 1, "stride"),
    Attr("padding", "padding", 0, "zero padding, 'same' or 'valid'"),
    Attr("dilation", "spatial", 1, "dilation"),
    Attr("groups", "int", 1, "channel groups (groups = channels is depthwise)", minimum=1),
    Attr("bias", "bool", True, "add a learned bias"),
    Attr("activation", "activation", None, "activation applied to the output"),
]


TRANSPOSE_ATTRS = [
    Attr("filters", "int", doc="output channels", minimum=1, width=True),
    Attr("kernel", "spatial", doc="kernel size"),
    Attr("stride", "spatial", 1, "stride"),
    Attr("padding", "padding", 0, "rows/columns removed from each side of the output"),
    Attr("output_padding", "spatial", 0, "extra rows/columns added after (< stride)", minimum=0),
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


# -- float64 references (numpy imported on use) ------------------------------------------------
def _conv_ref(xs, a, p):
    """Zero padding by the IR's pairs, then every window against the kernel, per group (as
    one batched matrix product: windows [G, N * out, C/G * k] by kernels [G, C/G * k, F/G])."""
    import numpy as np

    from .numeric import pad, windows

    w, g = p["weight"], a["groups"]
    n, c = xs[0].shape[:2]
    f, k = w.shape[0], len(a["kernel"])
    win = windows(pad(xs[0], a["padding"]), a["kernel"], a["stride"], a["dilation"])
    out = win.shape[2 : 2 + k]
    win = win.reshape(n, g, c // g, *win.shape[2:])
    # [N, G, C/G, *out, *kernel] -> [G, N, *out, C/G, *kernel] -> [G, N * out, C/G * kernel]
    order = (1, 0, *range(3, 3 + k), 2, *range(3 + k, 3 + 2 * k))
    cols = win.transpose(order).reshape(g, n * math.prod(out), -1)
    kern = w.reshape(g, f // g, -1).transpose(0, 2, 1)
    y = np.matmul(cols, kern)  # [G, N * out, F/G]
    y = y.reshape(g, n, *out, f // g)
    y = np.moveaxis(y, -1, 1).reshape(g * (f // g), n, *out)  # [F, N, *out], group-major
    y = np.moveaxis(y, 0, 1)
    if "bias" in p:
        y = y + p["bias"].reshape(1, -1, *[1] * k)
    return y


def _conv_transpose_ref(xs, a, p):
    """Each input element scatters kernel * value at stride steps; then `padding` comes off
    each side of each spatial axis and `output_padding` stays on at the end."""
    import itertools

    import numpy as np

    x, w = xs[0], p["weight"]
    n, size = x.shape[0], x.shape[2:]
    k, st = a["kernel"], a["stride"]
    pads = [q for q, _ in a["padding"]]
    dims = len(k)
    full = np.zeros(
        (n, w.shape[1], *[(d - 1) * s + kk + s for d, s, kk in zip(size, st, k, strict=True)])
    )
    for tap in itertools.product(*[range(kk) for kk in k]):
        part = np.einsum("nc...,cf->nf...", x, w[(slice(None), slice(None), *tap)])
        where = tuple(
            slice(t, t + (d - 1) * s + 1, s) for t, d, s in zip(tap, size, st, strict=True)
        )
        full[(slice(None), slice(None), *where)] += part
    out = [
        (d - 1) * s - 2 * q + kk + o
        for d, s, q, kk, o in zip(size, st, pads, k, a["output_padding"], strict=True)
    ]
    y = full[(slice(None), slice(None), *[slice(q, q + o) for q, o in zip(pads, out, strict=True)])]
    if "bias" in p:
        y = y + p["bias"].reshape(1, -1, *[1] * dims)
    return y


# -- random-spec sampling ----------------------------------------------------------------------
def _conv_sample(n: int):
    def sample(draw, shape) -> dict:
        rng = draw.rng
        a: dict = {}
        c = shape[0] if isinstance(shape[0], int) else 1
        g = 1
        if draw.chance(0.25):
            g = rng.choice([d for d in range(1, c + 1) if c % d == 0])
        f = draw.width()
        if f % g:
            f = g * rng.randint(1, max(1, 6 // g))
        a["filters"] = f
        if g > 1 or draw.chance(0.05):
            a["groups"] = g
        a["kernel"] = draw.spatial(n, 1, 3)
        if draw.chance(0.35):
            a["stride"] = draw.spatial(n, 1, 2)
        if draw.chance(0.2):
            a["dilation"] = draw.spatial(n, 1, 2)
        pad = rng.random()
        if pad < 0.25:
            a["padding"] = "same"
        elif pad < 0.35:
            a["padding"] = "valid"
        elif pad < 0.55:
            a["padding"] = rng.randint(0, 2)
        elif pad < 0.65:
            a["padding"] = [rng.randint(0, 2) for _ in range(n)]
        elif pad < 0.75:
            a["padding"] = [[rng.randint(0, 2), rng.randint(0, 2)] for _ in range(n)]
        draw.activation(a, True, shape)
        draw.maybe(a, "bias", 0.2, False)
        draw.init(a)
        return a

    return sample


def _conv_transpose_sample(draw, shape) -> dict:
    rng = draw.rng
    n = len(shape) - 1
    a: dict = {"filters": draw.width(1, 6), "kernel": draw.spatial(n, 1, 3)}
    s = draw.spatial(n, 1, 2) if draw.chance(0.5) else 1
    if s != 1:
        a["stride"] = s
    if draw.chance(0.3):
        a["padding"] = draw.spatial(n, 0, 1) if draw.chance(0.8) else "valid"
    smax = max(s) if isinstance(s, list) else s
    if smax > 1 and draw.chance(0.4):
        a["output_padding"] = [rng.randint(0, q - 1) for q in s] if isinstance(s, list) else 1
    draw.activation(a, True, shape)
    draw.maybe(a, "bias", 0.2, False)
    draw.init(a)
    return a


def _conv_keep_shape(draw, a: dict, shape: tuple, exact: bool) -> dict | None:
    a.pop("stride", None)
    a["padding"] = "same"
    if exact:
        c = shape[0]
        if not isinstance(c, int):
            return None
        a["filters"] = c
        if c % a.get("groups", 1):
            a.pop("groups")
    return a


def _conv_transpose_keep_shape(draw, a: dict, shape: tuple, exact: bool) -> dict | None:
    k = draw.rng.choice([1, 3])
    a.update(kernel=k, padding=k // 2)
    a.pop("stride", None)
    a.pop("output_padding", None)
    if exact and isinstance(shape[0], int):
        a["filters"] = shape[0]
    return a


IMG = [3, 9, 11]
CONV2D_EXAMPLES = [
    ex("same_s2_odd", [3, 7, 7], filters=4, kernel=3, stride=2, padding="same"),
    ex("same_s2_even", [3, 8, 6], filters=4, kernel=[3, 4], stride=2, padding="same"),
    ex("same_even_kernel", [2, 6, 6], filters=3, kernel=4, padding="same"),
    ex("same_mixed", IMG, filters=4, kernel=[3, 5], stride=[2, 3], padding="same"),
    ex("same_dilation", [2, 9, 9], filters=3, kernel=3, dilation=2, stride=2, padding="same"),
    ex("pad1_s2", IMG, filters=4, kernel=3, stride=2, padding=1),
    ex("dilation_stride", IMG, filters=4, kernel=3, dilation=[2, 1], stride=2, padding=1),
    ex("groups", [6, 8, 8], filters=9, kernel=3, groups=3, padding=1),
    ex("depthwise", [4, 8, 9], filters=8, kernel=3, groups=4, stride=2, padding="same"),
    ex(
        "depthwise_mult1",
        [4, 8, 9],
        filters=4,
        kernel=3,
        groups=4,
        padding=1,
        bias=False,
        activation="relu6",
    ),
    ex(
        "depthwise_dilated",
        [4, 9, 9],
        filters=4,
        kernel=3,
        groups=4,
        stride=2,
        dilation=2,
        padding=2,
    ),
    ex("valid_nobias", IMG, filters=5, kernel=2, padding="valid", bias=False),
    ex("asym_pairs", [2, 5, 6], filters=3, kernel=[3, 2], stride=[1, 2], padding=[[0, 1], [2, 1]]),
    ex(
        "asym_dilation_groups",
        [4, 9, 7],
        filters=6,
        kernel=3,
        padding=[[1, 2], [0, 1]],
        dilation=[2, 1],
        groups=2,
        bias=False,
    ),
    ex(
        "per_axis_pad_leaky",
        [2, 5, 6],
        filters=3,
        kernel=3,
        padding=[1, 0],
        activation={"op": "leaky_relu", "alpha": 0.2},
    ),
    ex("elu", IMG, filters=4, kernel=3, activation={"op": "elu", "alpha": 0.5}),
    ex("hard_sigmoid", IMG, filters=4, kernel=3, activation="hard_sigmoid"),
    ex("gelu", IMG, filters=4, kernel=3, activation="gelu"),
]


@op(
    "conv1d",
    "convolution",
    CONV_ATTRS,
    weighted=True,
    doc="1-D convolution over `[channels, length]`.",
    reference=_conv_ref,
    examples=[
        ex("same_s2", [4, 11], filters=3, kernel=4, stride=2, padding="same"),
        ex(
            "same_s3_tanh",
            [4, 11],
            filters=4,
            kernel=5,
            stride=3,
            padding="same",
            activation="tanh",
        ),
        ex("dilation_pad", [3, 9], filters=2, kernel=3, dilation=3, padding=2, activation="tanh"),
        ex("asym_dilated", [4, 11], filters=3, kernel=3, dilation=2, padding=[[1, 2]]),
        ex("depthwise", [4, 11], filters=8, kernel=3, groups=4, padding=1),
        ex("groups_dilated", [4, 11], filters=8, kernel=2, dilation=2, groups=4, padding=[[2, 0]]),
        ex("dynamic", [4, None], filters=3, kernel=3, padding="same", activation="sigmoid"),
        ex("strided_length1", [3, 3], filters=3, kernel=1, stride=2, dilation=2, padding=1),
    ],
    sample=_conv_sample(1),
    keep_shape=_conv_keep_shape,
    sets_size=(0, "filters"),
    weights=(0.0, 3.0, 0.0, 0.0),
    seq_weights=(0.0, 1.0, 0.0, 0.0),
)
def conv1d(ctx: Ctx):
    return _conv(ctx, 1)


@op(
    "conv2d",
    "convolution",
    CONV_ATTRS,
    weighted=True,
    doc="2-D convolution over `[channels, height, width]`.",
    reference=_conv_ref,
    examples=CONV2D_EXAMPLES,
    sample=_conv_sample(2),
    keep_shape=_conv_keep_shape,
    sets_size=(0, "filters"),
    weights=(0.0, 0.0, 4.0, 0.0),
)
def conv2d(ctx: Ctx):
    return _conv(ctx, 2)


@op(
    "conv_transpose2d",
    "convolution",
    TRANSPOSE_ATTRS,
    weighted=True,
    doc="2-D transposed convolution: out = (in - 1) * stride - 2 * padding + kernel "
    "+ output_padding.",
    reference=_conv_transpose_ref,
    examples=[
        ex(
            "pad_output_padding",
            [3, 4, 5],
            filters=2,
            kernel=[3, 4],
            stride=2,
            padding=1,
            output_padding=1,
            activation="sigmoid",
        ),
        ex("plain", [3, 2, 2], filters=2, kernel=4, bias=False),
        ex(
            "mixed",
            [3, 5, 6],
            filters=2,
            kernel=[3, 4],
            stride=[2, 3],
            padding=[0, 1],
            output_padding=[1, 2],
        ),
        ex(
            "kernel_below_stride",
            [3, 4, 4],
            filters=2,
            kernel=2,
            stride=3,
            bias=False,
            activation="relu",
        ),
        ex(
            "from_unit_image",
            [6],
            filters=2,
            kernel=3,
            before=[{"op": "reshape", "shape": [-1, 1, 1]}],
        ),
    ],
    sample=_conv_transpose_sample,
    keep_shape=_conv_transpose_keep_shape,
    sets_size=(0, "filters"),
    weights=(0.0, 0.0, 1.0, 0.0),
)
def conv_transpose2d(ctx: Ctx):
    return _conv_transpose(ctx, 2)


@op(
    "conv_transpose1d",
    "convolution",
    TRANSPOSE_ATTRS,
    weighted=True,
    doc="1-D transposed convolution over `[channels, length]`: out = (in - 1) * stride "
    "- 2 * padding + kernel + output_padding.",
    reference=_conv_transpose_ref,
    examples=[
        ex("plain", [3, 5], filters=2, kernel=3),
        ex("s2_pad", [3, 6], filters=4, kernel=4, stride=2, padding=1, activation="relu"),
        ex("output_padding", [2, 5], filters=3, kernel=3, stride=3, padding=1, output_padding=2),
        ex("kernel_below_stride", [3, 4], filters=2, kernel=2, stride=3, bias=False),
        ex("same_like", [3, 7], filters=2, kernel=4, stride=2, padding=1),
    ],
    sample=_conv_transpose_sample,
    keep_shape=_conv_transpose_keep_shape,
    sets_size=(0, "filters"),
    weights=(0.0, 0.6, 0.0, 0.0),
)
def conv_transpose1d(ctx: Ctx):
    return _conv_transpose(ctx, 1)


def _conv_transpose(ctx: Ctx, n: int):
    ctx.want_rank(n + 1)
    c = channels(ctx)
    a = ctx.attrs
    k = a["kernel"] = spatial(ctx, "kernel", n)
    s = a["stride"] = spatial(ctx, "stride", n)
    op_ = a["output_padding"]
    if isinstance(op_, int):
        op_ = (op_,) * n
    elif len(op_) != n:
        ctx.fail(f"expected one value per spatial axis ({n}), got {len(op_)}", "output_padding")
    a["output_padding"] = tuple(op_)
    p = a["padding"]
    if p in ("same", "valid") or (isinstance(p, list) and any(isinstance(x, list) for x in p)):
        if p != "valid":
            ctx.fail(
                f"{ctx.op} takes an int or one int per spatial axis as padding",
                "padding",
            )
        p = 0
    pads = (p,) * n if isinstance(p, int) else tuple(p)
    if len(pads) != n:
        ctx.fail(f"expected one value per spatial axis ({n}), got {len(pads)}", "padding")
    a["padding"] = tuple((q, q) for q in pads)
    a["padding_mode"] = "explicit"
    out = []
    for i in range(n):
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
