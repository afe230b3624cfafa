"""Tensors that are not computed from an input (a learned `parameter`, a `constant`), indexing
(`slice`, `select`, `gather` with constant indices), `roll` and `matmul` of two activations.

Axes are logical per-example axes, numbered from 1 (the batch is 0), negative from the end, as
`concat` numbers them. `parameter` and `constant` read one input only for its batch size: their
value is the same for every example (PyTorch's `expand`, no copy).
"""

from __future__ import annotations

import math

from ..ir import Dim
from .base import Attr, Ctx, ex, never, op

AXIS = "logical axis (batch is 0; channels of an image are 1); negative counts from the end"


def norm_axis(ctx: Ctx, attr: str = "axis", rank: int | None = None) -> int:
    """`ctx.attrs[attr]` as a positive logical axis 1..rank (written back)."""
    rank = ctx.x.rank if rank is None else rank
    axis = ctx.attrs[attr]
    ax = axis + rank + 1 if axis < 0 else axis
    if not 1 <= ax <= rank:
        ctx.fail(
            f"axis {axis} is out of range for an input of per-example rank {rank} (axis 0 is the "
            f"batch; valid: 1..{rank} or -{rank}..-1)",
            attr,
        )
    ctx.attrs[attr] = ax
    return ax


def fixed_shape(ctx: Ctx) -> tuple[int, ...]:
    shape = ctx.attrs["shape"]
    if -1 in shape:
        ctx.fail(
            f"{ctx.op} needs every size of its shape, got {shape}",
            "shape",
            hint="write the size instead of -1",
        )
    ctx.attrs["shape"] = tuple(shape)
    return tuple(shape)


# -- parameter and constant -------------------------------------------------------------------
def _parameter_ref(xs, a, p):
    import numpy as np

    return np.broadcast_to(p["weight"], (xs[0].shape[0], *a["shape"])).copy()


def _constant_value(a):
    import numpy as np

    c = np.full(a["shape"], a["value"], np.float64)
    if a["triu"] is not None:
        c = np.triu(c, a["triu"])
    if a["tril"] is not None:
        c = np.tril(c, a["tril"])
    return c


def _constant_ref(xs, a, p):
    import numpy as np

    return np.broadcast_to(_constant_value(a), (xs[0].shape[0], *a["shape"])).copy()


def _tensor_sample(draw, shape) -> dict:
    r = draw.rng.randint(1, 3)
    return {"shape": [draw.width(1, 5) for _ in range(r)]}


def _constant_sample(draw, shape) -> dict:
    a = _tensor_sample(draw, shape)
    a["value"] = round(draw.rng.uniform(-2, 2), 2)
    if len(a["shape"]) >= 2 and draw.chance(0.5):
        a[draw.rng.choice(["triu", "tril"])] = draw.rng.randint(-1, 1)
    return a


def _same_shape(draw, a: dict, shape: tuple, exact: bool) -> dict | None:
    if not all(isinstance(d, int) for d in shape):
        return None
    a["shape"] = list(shape)
    return a


@op(
    "parameter",
    "tensor",
    [
        Attr("shape", "shape", doc="per-example shape of the learned tensor"),
        Attr("init", "init", "normal", "initializer of the tensor"),
    ],
    weighted=True,
    doc="A learned tensor of a fixed `shape` (a ViT class token, a position embedding), the same "
    "for every example; its input gives only the batch size. Stored as `<name>.weight`.",
    reference=_parameter_ref,
    examples=[
        ex("class_token", [5, 4], shape=[1, 4]),
        ex("position", [6, 3], shape=[6, 3]),
        ex("image", [3, 4, 5], shape=[2, 3, 4]),
    ],
    sample=_tensor_sample,
    keep_shape=_same_shape,
    weights=(0.05, 0.1, 0.05, 0.05),
)
def parameter(ctx: Ctx):
    shape = fixed_shape(ctx)
    if len(shape) < 2 and ctx.attrs["init"] not in ("normal", "uniform", "zeros", "ones"):
        ctx.fail(
            f"init {ctx.attrs['init']} needs a tensor of rank 2 or more (its fan-in and "
            f"fan-out), but shape is {list(shape)}",
            "init",
            hint="use normal, uniform, zeros or ones, or a shape such as [1, size]",
        )
    ctx.params["weight"] = shape
    return shape


@op(
    "constant",
    "tensor",
    [
        Attr("shape", "shape", doc="per-example shape"),
        Attr("value", "float", 0.0, "the value of every element"),
        Attr(
            "triu",
            "int",
            None,
            "keep the upper triangle of the last two axes from this diagonal (torch.triu), "
            "zeros below; null: all",
            nullable=True,
        ),
        Attr(
            "tril",
            "int",
            None,
            "keep the lower triangle of the last two axes up to this diagonal (torch.tril), "
            "zeros above; null: all",
            nullable=True,
        ),
    ],
    doc="A constant tensor, the same for every example: `value` everywhere, optionally only in "
    "a triangle (a causal mask: `{shape: [T, T], value: -1e9, triu: 1}`); its input gives only "
    "the batch size.",
    reference=_constant_ref,
    examples=[
        ex("fill", [3], shape=[2, 3], value=1.5),
        ex("causal", [4, 4], shape=[4, 4], value=-3.0, triu=1),
        ex("lower", [4, 4], shape=[3, 4, 5], value=2.0, tril=-1),
        ex("band", [4], shape=[5, 5], value=1.0, triu=-1, tril=1),
    ],
    sample=_constant_sample,
    keep_shape=_same_shape,
    weights=(0.05, 0.1, 0.05, 0.05),
)
def constant(ctx: Ctx):
    shape = fixed_shape(ctx)
    if (ctx.attrs["triu"] is not None or ctx.attrs["tril"] is not None) and len(shape) < 2:
        attr = "triu" if ctx.attrs["triu"] is not None else "tril"
        ctx.fail(f"{attr} needs a shape of rank 2 or more, got {list(shape)}", attr)
    return shape


# -- indexing ---------------------------------------------------------------------------------
def _slice_ref(xs, a, p):
    idx = [slice(None)] * xs[0].ndim
    idx[a["axis"]] = slice(a["start"], a["end"], a["step"])
    return xs[0][tuple(idx)]


def _select_ref(xs, a, p):
    import numpy as np

    return np.take(xs[0], a["index"], axis=a["axis"])


def _gather_ref(xs, a, p):
    import numpy as np

    return np.take(xs[0], a["indices"], axis=a["axis"])


def _roll_ref(xs, a, p):
    import numpy as np

    return np.roll(xs[0], a["shifts"], a["dims"])


def _static_axes(shape) -> list[int]:
    return [i + 1 for i, d in enumerate(shape) if isinstance(d, int)]


def _slice_sample(draw, shape) -> dict:
    axes = _static_axes(shape)
    ax = draw.rng.choice(axes) if axes else 1
    n = shape[ax - 1] if isinstance(shape[ax - 1], int) else 4
    a: dict = {"axis": ax if draw.chance(0.7) else ax - len(shape) - 1}
    start = draw.rng.randint(-n, n - 1)
    if start:
        a["start"] = start
    if draw.chance(0.5):
        a["end"] = draw.rng.randint(-n, n)
    if draw.chance(0.3):
        a["step"] = draw.rng.randint(2, 3)
    return a


def _select_sample(draw, shape) -> dict:
    axes = _static_axes(shape) or [1]
    ax = draw.rng.choice(axes)
    n = shape[ax - 1] if isinstance(shape[ax - 1], int) else 1
    return {"axis": ax, "index": draw.rng.randint(-n, n - 1)}


def _gather_sample(draw, shape) -> dict:
    axes = _static_axes(shape)
    ax = draw.rng.choice(axes) if axes else 1
    n = shape[ax - 1] if isinstance(shape[ax - 1], int) else 1
    k = draw.rng.randint(1, 6)
    return {"axis": ax, "indices": [draw.rng.randint(-n, n - 1) for _ in range(k)]}


def _roll_sample(draw, shape) -> dict:
    axes = _static_axes(shape) or [1]
    dims = draw.rng.sample(axes, draw.rng.randint(1, len(axes)))
    return {"shifts": [draw.rng.randint(-4, 4) for _ in dims], "dims": dims}


def _static_axis(ctx: Ctx, ax: int) -> int:
    d = ctx.x.shape[ax - 1]
    if not isinstance(d, int):
        ctx.fail(
            f"{ctx.op} needs a fixed size on axis {ax}, but '{ctx.x.name}' has shape {ctx.shape()}",
            hint="give that axis a size in the input's shape",
        )
    return d


@op(
    "slice",
    "shape",
    [
        Attr("axis", "axis", 1, AXIS),
        Attr("start", "int", 0, "first index (negative counts from the end)"),
        Attr(
            "end",
            "int",
            None,
            "index after the last (negative from the end); null: the end",
            nullable=True,
        ),
        Attr("step", "int", 1, "stride between taken indices", minimum=1),
    ],
    doc="Takes `x[..., start:end:step, ...]` along one axis, as Python slices (out-of-range "
    "bounds are clipped); the axis must have a fixed size.",
    reference=_slice_ref,
    examples=[
        ex("tokens", [6, 4], axis=1, start=1),
        ex("features", [5, 8], axis=2, start=2, end=6),
        ex("negative_bounds", [7, 3], axis=1, start=-6, end=-1, step=2),
        ex(
            "image",
            [4, 6, 5],
            axis=1,
            start=2,
            before=[{"op": "conv2d", "filters": 4, "kernel": 1}],
        ),
        ex("clip", [5], axis=-1, start=-9, end=99),
    ],
    sample=_slice_sample,
    keep_shape=never,
    weights=(0.3, 0.3, 0.3, 0.2),
)
def slice_(ctx: Ctx):
    ax = norm_axis(ctx)
    n = _static_axis(ctx, ax)
    a = ctx.attrs
    start, end, step = slice(a["start"], a["end"], a["step"]).indices(n)
    size = len(range(start, end, step))
    if size == 0:
        ctx.fail(
            f"slice [{a['start']}:{a['end']}:{a['step']}] of axis {ax} (size {n}) is empty",
            "start",
        )
    a["start"], a["end"] = start, end  # normalized: 0 <= start, end <= n
    out = list(ctx.x.shape)
    out[ax - 1] = size
    return tuple(out)


@op(
    "select",
    "shape",
    [
        Attr("axis", "axis", 1, AXIS),
        Attr("index", "int", doc="the index taken (negative counts from the end)"),
    ],
    doc="Takes one index along an axis and removes that axis: `x[:, 0]` (a class token) is "
    "`{op: select, axis: 1, index: 0}`.",
    reference=_select_ref,
    examples=[
        ex("class_token", [5, 4], index=0),
        ex("last", [5, 4], axis=1, index=-1),
        ex("feature", [3, 5, 4], axis=3, index=2),
    ],
    sample=_select_sample,
    keep_shape=never,
    weights=(0.0, 0.3, 0.2, 0.1),
)
def select(ctx: Ctx):
    ctx.want_rank(2, 8)
    ax = norm_axis(ctx)
    n = ctx.x.shape[ax - 1]
    i = ctx.attrs["index"]
    if isinstance(n, int):
        if not -n <= i < n:
            ctx.fail(f"index {i} is out of range for axis {ax} of size {n}", "index")
        ctx.attrs["index"] = i % n
    elif i < 0:
        ctx.fail(
            f"a negative index needs a fixed size on axis {ax}, but '{ctx.x.name}' has shape "
            f"{ctx.shape()}",
            "index",
        )
    return tuple(d for k, d in enumerate(ctx.x.shape) if k != ax - 1)


@op(
    "gather",
    "shape",
    [
        Attr("axis", "axis", 1, AXIS),
        Attr("indices", "ints", doc="indices taken along the axis, in order (may repeat)"),
    ],
    doc="Takes the listed indices along an axis (`torch.index_select` with constant indices): "
    "a relative position bias gathers its table rows so, then reshapes.",
    reference=_gather_ref,
    examples=[
        ex("rows", [5, 3], indices=[4, 0, 0, 2, -1]),
        ex("table", [7, 2], axis=2, indices=[1, 0, 1]),
        ex("channels", [4, 3, 3], indices=[3, 1]),
    ],
    sample=_gather_sample,
    keep_shape=never,
    weights=(0.2, 0.2, 0.2, 0.1),
)
def gather(ctx: Ctx):
    ax = norm_axis(ctx)
    n = _static_axis(ctx, ax)
    idx = ctx.attrs["indices"]
    bad = [i for i in idx if not -n <= i < n]
    if bad:
        ctx.fail(f"indices {bad} are out of range for axis {ax} of size {n}", "indices")
    ctx.attrs["indices"] = tuple(i % n for i in idx)
    out = list(ctx.x.shape)
    out[ax - 1] = len(idx)
    return tuple(out)


@op(
    "roll",
    "shape",
    [
        Attr("shifts", "ints", doc="shift of each axis in `dims` (torch.roll)"),
        Attr(
            "dims",
            "ints",
            doc="the axes rolled, per-example, numbered from 1 (negative from the end)",
        ),
    ],
    doc="Rolls axes cyclically: element i moves to (i + shift) mod size (torch.roll); Swin's "
    "shifted windows.",
    reference=_roll_ref,
    examples=[
        ex("sequence", [6, 3], shifts=[2], dims=[1]),
        ex("window", [3, 5, 6], shifts=[-2, 3], dims=[2, 3]),
        ex("wrap", [4], shifts=[9], dims=[-1]),
    ],
    sample=_roll_sample,
    weights=(0.1, 0.2, 0.2, 0.2),
    keeps_size="all",
)
def roll(ctx: Ctx):
    shifts, dims = ctx.attrs["shifts"], ctx.attrs["dims"]
    if len(shifts) != len(dims):
        ctx.fail(f"shifts has {len(shifts)} entries but dims has {len(dims)}", "shifts")
    axes = []
    rank = ctx.x.rank
    for d in dims:
        ax = d + rank + 1 if d < 0 else d
        if not 1 <= ax <= rank:
            ctx.fail(f"axis {d} is out of range for per-example rank {rank}", "dims")
        axes.append(ax)
    if len(set(axes)) != len(axes):
        ctx.fail(f"dims names an axis twice: {dims}", "dims")
    ctx.attrs["shifts"] = tuple(
        s % _static_axis(ctx, ax) for s, ax in zip(shifts, axes, strict=True)
    )
    ctx.attrs["dims"] = tuple(axes)
    return ctx.x.shape


# -- matmul -----------------------------------------------------------------------------------
def _matmul_ref(xs, a, p):
    return xs[0] @ xs[1]


def _matmul_sample(draw, shape) -> dict:
    return {}


@op(
    "matmul",
    "merge",
    doc="Matrix product of two activations over their last two axes, `a @ b` "
    "(`[..., n, k] @ [..., k, m] -> [..., n, m]`); leading axes broadcast (equal or 1).",
    min_inputs=2,
    max_inputs=2,
    ordered_inputs=True,
    reference=_matmul_ref,
    examples=[
        ex("square", {"a": [3, 4], "b": [4, 5]}, inputs=["a", "b"]),
        ex("heads", {"a": [2, 3, 4], "b": [2, 4, 3]}, inputs=["a", "b"]),
        ex("broadcast", {"a": [2, 3, 4], "b": [1, 4, 2]}, inputs=["a", "b"]),
        ex(
            "scores",
            {"x": [5, 4]},
            inputs=["x", "t"],
            before=[{"op": "permute", "name": "t", "dims": [2, 1]}],
        ),
        ex("dynamic", {"a": [None, 3], "b": [3, 2]}, inputs=["a", "b"]),
    ],
    sample=_matmul_sample,
    keep_shape=never,
)
def matmul(ctx: Ctx):
    a, b = ctx.inputs
    if a.rank < 2 or a.rank != b.rank:
        ctx.fail(
            f"matmul takes two inputs of the same per-example rank, at least 2: '{a.name}' is "
            f"{ctx.shape(a)}, '{b.name}' is {ctx.shape(b)}",
            "inputs",
            hint="reshape a vector to [1, n] or [n, 1] first",
        )
    k1, k2 = a.shape[-1], b.shape[-2]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        ctx.fail(
            f"the last axis of '{a.name}' {ctx.shape(a)} must equal the second-to-last of "
            f"'{b.name}' {ctx.shape(b)} ({k1} != {k2})",
            "inputs",
            hint="permute the second input (dims [..., -1, -2]) if it is the other way round",
        )
    lead: list[Dim] = []
    for x, y in zip(a.shape[:-2], b.shape[:-2], strict=True):
        if isinstance(x, int) and isinstance(y, int) and x != y and 1 not in (x, y):
            ctx.fail(
                f"leading axes must be equal or 1: '{a.name}' {ctx.shape(a)}, "
                f"'{b.name}' {ctx.shape(b)}",
                "inputs",
            )
        lead.append(y if x == 1 else x)
    out = (*lead, a.shape[-2], b.shape[-1])
    ctx.macs = math.prod(d if isinstance(d, int) else 1 for d in out) * (
        k1 if isinstance(k1, int) else 1
    )
    return out
