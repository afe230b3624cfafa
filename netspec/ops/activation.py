"""Elementwise activations (and softmax / log_softmax over one axis)."""

from __future__ import annotations

from .base import ACTIVATIONS, Attr, Ctx, ex, op


def _same(ctx: Ctx):
    return ctx.x.shape


def _axis(ctx: Ctx):
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
    return ctx.x.shape


# -- float64 references (numpy imported on use) ------------------------------------------------
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _relu(x, a):
    import numpy as np

    return np.maximum(x, 0)


def _sigmoid(x, a):
    from .numeric import sigmoid

    return sigmoid(x)


def _tanh(x, a):
    import numpy as np

    return np.tanh(x)


def _relu6(x, a):
    import numpy as np

    return np.clip(x, 0, 6)


def _selu(x, a):
    import numpy as np

    return SELU_SCALE * (np.maximum(x, 0) + np.minimum(SELU_ALPHA * np.expm1(np.minimum(x, 0)), 0))


def _gelu(x, a):
    from .numeric import ERF

    return x * 0.5 * (1 + ERF(x / 2**0.5))


def _silu(x, a):
    from .numeric import sigmoid

    return x * sigmoid(x)


def _softplus(x, a):
    import numpy as np

    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)  # log(1 + exp(x)), overflow-free


def _hard_sigmoid(x, a):
    import numpy as np

    return np.clip(x / 6 + 0.5, 0, 1)


def _hard_swish(x, a):
    import numpy as np

    return x * np.clip(x + 3, 0, 6) / 6


def _identity(x, a):
    return x


def _softmax(x, a):
    import numpy as np

    e = np.exp(x - x.max(axis=a["axis"], keepdims=True))
    return e / e.sum(axis=a["axis"], keepdims=True)


def _log_softmax(x, a):
    import numpy as np

    z = x - x.max(axis=a["axis"], keepdims=True)
    return z - np.log(np.exp(z).sum(axis=a["axis"], keepdims=True))


def _leaky_relu(x, a):
    import numpy as np

    return np.where(x > 0, x, a["alpha"] * x)


def _elu(x, a):
    import numpy as np

    return np.where(x > 0, x, a["alpha"] * np.expm1(np.minimum(x, 0)))


def _elementwise(fn):
    """An activation's reference as an op reference: one input, no weights."""
    return lambda xs, attrs, params: fn(xs[0], attrs)


# -- random-spec sampling ----------------------------------------------------------------------
def _no_attrs(draw, shape) -> dict:
    return {}


def _axis_attr(draw, shape) -> dict:
    r = len(shape)
    if not draw.chance(0.7):
        return {}
    ax = draw.rng.randint(1, r)
    return {"axis": ax if draw.chance(0.5) else ax - r - 1}


def _alpha(choices):
    def sample(draw, shape) -> dict:
        a: dict = {}
        draw.maybe(a, "alpha", 0.6, draw.rng.choice(choices))
        return a

    return sample


WEIGHTS = (0.25, 0.25, 0.25, 0.1)
IMAGE = [3, 5, 6]
SIMPLE = {
    "relu": ("max(x, 0)", _relu),
    "sigmoid": ("1 / (1 + exp(-x))", _sigmoid),
    "tanh": ("tanh(x)", _tanh),
    "relu6": ("clip(x, 0, 6)", _relu6),
    "selu": ("scale * (max(x, 0) + min(alpha * (exp(x) - 1), 0)), PyTorch's constants", _selu),
    "gelu": ("x * Phi(x), the exact (erf) form", _gelu),
    "silu": ("x * sigmoid(x)", _silu),
    "softplus": ("log(1 + exp(x))", _softplus),
    "hard_sigmoid": ("clip(x / 6 + 1/2, 0, 1)", _hard_sigmoid),
    "identity": ("x", _identity),
    "hard_swish": ("x * relu6(x + 3) / 6 (MobileNetV3's)", _hard_swish),
}
# large |x| takes other branches
WIDE = {"sigmoid", "selu", "gelu", "silu", "softplus", "tanh", "hard_swish"}
NONNEGATIVE = {"relu", "relu6", "sigmoid", "softplus", "hard_sigmoid"}  # outputs are >= 0

for _name, (_formula, _ref) in SIMPLE.items():
    op(
        _name,
        "activation",
        doc=f"`{_formula}`",
        reference=_elementwise(_ref),
        # (vectors: tests/test_ops.py runs each activation as a dense layer's too)
        examples=[ex("image", IMAGE, scale=3.0)]
        + ([ex("wide", [5], scale=20.0)] if _name in WIDE else []),
        sample=_no_attrs,
        weights=WEIGHTS,
        keeps_size="all",
        nonnegative=_name in NONNEGATIVE,
    )(_same)
    ACTIVATIONS.append(_name)

AXIS = Attr("axis", "axis", -1, "logical axis (negative counts from the end)")
for _name, _doc, _ref in [
    ("softmax", "`exp(x) / sum(exp(x))` along `axis`", _softmax),
    ("log_softmax", "`log(softmax(x))` along `axis`", _log_softmax),
]:
    op(
        _name,
        "activation",
        [AXIS],
        doc=_doc,
        reference=_elementwise(_ref),
        examples=[
            ex("channels", IMAGE, scale=3.0, axis=1),
            ex("height", IMAGE, scale=3.0, axis=2),
            ex("last", IMAGE, scale=3.0),
            ex("middle_negative", [3, 4, 5], axis=-2),
            ex("vector", [6]),
        ],
        sample=_axis_attr,
        weights=WEIGHTS,
        keeps_size="all",
        nonnegative=_name == "softmax",
    )(_axis)
op(
    "leaky_relu",
    "activation",
    [Attr("alpha", "float", 0.01, "slope for x < 0")],
    doc="`x if x > 0 else alpha * x`",
    reference=_elementwise(_leaky_relu),
    examples=[
        ex("image", IMAGE, scale=3.0),
        ex("vector", [6], scale=3.0),
        ex("alpha", IMAGE, scale=3.0, alpha=0.2),
        ex("alpha_vector", [7], alpha=0.3),
    ],
    sample=_alpha([0.0, 0.1, 0.2, 0.3, 1.5]),
    weights=WEIGHTS,
    keeps_size="all",
)(_same)
op(
    "elu",
    "activation",
    [Attr("alpha", "float", 1.0, "scale of the negative part")],
    doc="`x if x > 0 else alpha * (exp(x) - 1)`",
    reference=_elementwise(_elu),
    examples=[
        ex("image", IMAGE, scale=3.0),
        ex("vector", [6], scale=3.0),
        ex("alpha", IMAGE, scale=3.0, alpha=0.3),
        ex("alpha_vector", [7], alpha=0.5),
        ex("wide", [5], scale=20.0),
    ],
    sample=_alpha([0.1, 0.5, 2.0]),
    weights=WEIGHTS,
    keeps_size="all",
)(_same)
ACTIVATIONS.extend(["softmax", "log_softmax", "leaky_relu", "elu"])


def _prelu_ref(xs, attrs, p):
    import numpy as np

    from .numeric import channel

    x = xs[0]
    return np.where(x > 0, x, channel(p["weight"], x.ndim) * x)


@op(
    "prelu",
    "activation",
    weighted=False,
    doc="`x if x > 0 else a * x` with one learned slope per channel (axis 1), starting at 0.25",
    reference=_prelu_ref,
    examples=[
        ex("image", IMAGE, scale=3.0),
        ex("vector", [4], scale=3.0),
        ex("sequence", [4, 7]),
        ex("rank3", [3, 4, 2]),
        ex("after_conv", [3, 6], before=[{"op": "conv1d", "filters": 3, "kernel": 1}]),
    ],
    sample=_no_attrs,
    weights=(0.4, 0.4, 0.4, 0.1),
    start={"weight": 0.25},
    test_values={"weight": ("uniform", 0.05, 0.5)},
    keeps_size="all",
)
def prelu(ctx: Ctx):
    ctx.want_rank(1, 4)
    ctx.params["weight"] = (ctx.static(ctx.x.shape[0], f"the channel axis of '{ctx.x.name}'"),)
    return ctx.x.shape
