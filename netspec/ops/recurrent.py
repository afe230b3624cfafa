"""rnn, lstm and gru with PyTorch's equations, gate order and parameter names."""

from __future__ import annotations

from .base import Attr, Ctx, op

RNN_ATTRS = [
    Attr("units", "int", doc="hidden size", minimum=1),
    Attr("return_sequences", "bool", False, "every step's output, not only the last"),
    Attr("bidirectional", "bool", False, "run forward and backward; concatenate features"),
    Attr("num_layers", "int", 1, "stacked layers", minimum=1),
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


DOC = (
    "{} over `[time, features]` (batch first), PyTorch's equations and gate order; "
    "`return_sequences: false` gives the final hidden state of each direction."
)


@op("rnn", "recurrent", RNN_ATTRS, weighted=True, doc=DOC.format("Elman RNN with tanh"))
def rnn(ctx: Ctx):
    return _recurrent(ctx, 1)


@op(
    "lstm",
    "recurrent",
    RNN_ATTRS,
    weighted=True,
    doc=DOC.format("LSTM (gates i, f, g, o; no peepholes)"),
)
def lstm(ctx: Ctx):
    return _recurrent(ctx, 4)


@op(
    "gru",
    "recurrent",
    RNN_ATTRS,
    weighted=True,
    doc=DOC.format("GRU (gates r, z, n; reset applied after the recurrent product)"),
)
def gru(ctx: Ctx):
    return _recurrent(ctx, 3)
