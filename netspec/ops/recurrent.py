"""rnn, lstm and gru with PyTorch's equations, gate order and parameter names."""

from __future__ import annotations

from .base import Attr, Ctx, ex, op

RNN_ATTRS = [
    Attr("units", "int", doc="hidden size", minimum=1, width=True),
    Attr("return_sequences", "bool", False, "every step's output, not only the last"),
    Attr("bidirectional", "bool", False, "run forward and backward; concatenate features"),
    # bounded like a spec's node count: each stacked layer declares its own weights
    Attr("num_layers", "int", 1, "stacked layers", minimum=1, maximum=1000),
]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _recurrent(ctx: Ctx, gates: int):
    ctx.want_rank(2, what="input [time, features]")
    t, f = ctx.x.shape
    f = ctx.static(f, f"the feature axis of '{ctx.x.name}'")
    h = ctx.attrs["units"]
    dirs = 2 if ctx.attrs["bidirectional"] else 1
    steps = t if isinstance(t, int) else 1
    for layer in range(ctx.attrs["num_layers"]):
        fin = f if layer == 0 else h * dirs
        for suffix in ["", "_reverse"][:dirs]:
            ctx.params[f"weight_ih_l{layer}{suffix}"] = (gates * h, fin)
            ctx.params[f"weight_hh_l{layer}{suffix}"] = (gates * h, h)
            ctx.params[f"bias_ih_l{layer}{suffix}"] = (gates * h,)
            ctx.params[f"bias_hh_l{layer}{suffix}"] = (gates * h,)
            ctx.macs += steps * gates * h * (fin + h)
    if ctx.attrs["return_sequences"]:
        return (t, h * dirs)
    return (h * dirs,)


def _reference(kind: str):
    def ref(xs, a, p):
        from .numeric import recurrent

        return recurrent(kind, xs[0], p, a)

    return ref


def _sample(draw, shape) -> dict:
    a: dict = {"units": draw.width(1, 5)}
    draw.maybe(a, "return_sequences", 0.5, draw.chance(0.7))
    draw.maybe(a, "bidirectional", 0.4, draw.chance(0.8))
    draw.maybe(a, "num_layers", 0.3, draw.rng.choice([1, 2, 2]))
    draw.init(a)
    return a


def _examples(kind: str) -> list:
    out = [
        ex("last", [None, 3], units=4),
        ex("seq", [6, 3], units=4, return_sequences=True),
        ex("bi_last_2", [None, 3], units=4, bidirectional=True, num_layers=2),
        ex("bi_seq", [6, 3], units=4, bidirectional=True, return_sequences=True),
        ex("stack_seq", [None, 3], units=4, num_layers=3, return_sequences=True),
        ex(
            "bi_stack_seq", [5, 4], units=3, bidirectional=True, num_layers=2, return_sequences=True
        ),
        ex("uni_2_last", [5, 4], units=3, num_layers=2),
    ]
    if kind == "lstm":
        out.append(
            ex(
                "after_embedding",
                [None],
                dtype="int64",
                units=3,
                before=[{"op": "embedding", "vocab": 11, "dim": 4}],
            )
        )
    return out


def _keep_shape(draw, a: dict, shape: tuple, exact: bool) -> dict | None:
    a["return_sequences"] = True
    if exact:
        last = shape[-1]
        if not isinstance(last, int) or (a.get("bidirectional") and last % 2):
            return None
        a["units"] = last // 2 if a.get("bidirectional") else last
    return a


RECORD = {
    "sample": _sample,
    "keep_shape": _keep_shape,
    "weights": (0.0, 0.6, 0.0, 0.0),
    "seq_weights": (0.0, 1.5, 0.0, 0.0),
    "sets_size": (-1, "units"),
}


DOC = (
    "{} over `[time, features]` (batch first), PyTorch's equations and gate order; "
    "`return_sequences: false` gives the final hidden state of each direction."
)


@op(
    "rnn",
    "recurrent",
    RNN_ATTRS,
    weighted=True,
    doc=DOC.format("Elman RNN with tanh"),
    reference=_reference("rnn"),
    examples=_examples("rnn"),
    **RECORD,
)
def rnn(ctx: Ctx):
    return _recurrent(ctx, 1)


@op(
    "lstm",
    "recurrent",
    RNN_ATTRS,
    weighted=True,
    doc=DOC.format("LSTM (gates i, f, g, o; no peepholes)"),
    reference=_reference("lstm"),
    examples=_examples("lstm"),
    **RECORD,
)
def lstm(ctx: Ctx):
    return _recurrent(ctx, 4)


@op(
    "gru",
    "recurrent",
    RNN_ATTRS,
    weighted=True,
    doc=DOC.format("GRU (gates r, z, n; reset applied after the recurrent product)"),
    reference=_reference("gru"),
    examples=_examples("gru"),
    **RECORD,
)
def gru(ctx: Ctx):
    return _recurrent(ctx, 3)
