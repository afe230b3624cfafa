"""attention: multi-head scaled dot-product attention with its four projections.

One canonical layout for every target (PyTorch's `nn.Linear` layout, `[out, in]`):
`weight_q` `[D, Dq]`, `weight_k` and `weight_v` `[D, Dkv]`, `weight_out` `[D, D]`, and with
`bias: true` the vectors `bias_q`, `bias_k`, `bias_v`, `bias_out` `[D]`, where `D = Dq` is the
query's feature size (PyTorch's `embed_dim`) and head h uses rows `h*D/heads ... (h+1)*D/heads`
of the q/k/v projections. `torch.nn.MultiheadAttention(D, heads, kdim=Dkv, vdim=Dkv,
batch_first=True)` holds the same numbers as `in_proj_weight = cat(weight_q, weight_k, weight_v)`
(or `q_proj_weight`, ... when Dkv != D), `in_proj_bias = cat(bias_q, bias_k, bias_v)`,
`out_proj.weight/bias = weight_out/bias_out`; Keras' `MultiHeadAttention` as kernels
`weight_q.T` reshaped to `[Dq, heads, D/heads]` (query, key, value) and `weight_out.T` reshaped
to `[heads, D/heads, D]`, biases reshaped to `[heads, D/heads]` (the output bias stays `[D]`).
"""

from __future__ import annotations

import math

from .base import Attr, Ctx, ex, op


def _attention_ref(xs, a, p):
    import numpy as np

    q_in = xs[0]
    kv_in = xs[1] if len(xs) > 1 else xs[0]
    heads = a["heads"]

    def proj(x, w):
        y = x @ p[f"weight_{w}"].T
        return y + p[f"bias_{w}"] if f"bias_{w}" in p else y

    def split(y):  # [N, L, D] -> [N, heads, L, D / heads]
        n, length, d = y.shape
        return y.reshape(n, length, heads, d // heads).transpose(0, 2, 1, 3)

    q, k, v = split(proj(q_in, "q")), split(proj(kv_in, "k")), split(proj(kv_in, "v"))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1])
    t, s = scores.shape[-2:]
    keep = np.ones((q_in.shape[0], 1, t, s), bool)
    if a["causal"]:
        keep = keep & np.tril(np.ones((t, s), bool))
    if len(xs) > 2:
        keep = keep & (xs[2] != 0)[:, None, None, :]
    scores = np.where(keep, scores, -np.inf)
    scores = scores - scores.max(-1, keepdims=True)
    e = np.exp(scores)
    y = (e / e.sum(-1, keepdims=True)) @ v
    n, _, length, _ = y.shape
    return proj(y.transpose(0, 2, 1, 3).reshape(n, length, -1), "out")


def _attention_sample(draw, shape) -> dict:
    d = shape[-1] if isinstance(shape[-1], int) else 1
    a: dict = {"heads": draw.rng.choice([h for h in range(1, 5) if d % h == 0])}
    draw.maybe(a, "causal", 0.4, True)
    draw.maybe(a, "bias", 0.2, False)
    draw.maybe(a, "dropout", 0.2, 0.1)
    return a


RELU_MASK = [{"op": "relu", "name": "m", "inputs": ["mask"]}]  # about half the keys padded


@op(
    "attention",
    "attention",
    [
        Attr("heads", "int", doc="number of heads; divides the query's features", minimum=1),
        Attr("causal", "bool", False, "query i attends to keys 0..i only (top-left aligned)"),
        Attr(
            "dropout",
            "float",
            0.0,
            "dropout rate on the attention weights (training only)",
            minimum=0.0,
            maximum=1.0,
            exclusive_max=True,
        ),
        Attr("bias", "bool", True, "learned biases on the four projections"),
    ],
    weighted=True,
    doc="Multi-head attention (`torch.nn.MultiheadAttention`, batch first): inputs `[query]` "
    "(self-attention), `[query, key_value]` or `[query, key_value, mask]`; query `[T, D]`, "
    "key_value `[S, Dkv]`, mask `[S]` (nonzero: attend, 0: a padded key); output `[T, D]`.",
    min_inputs=1,
    max_inputs=3,
    ordered_inputs=True,
    reference=_attention_ref,
    examples=[
        ex("self", [5, 8], heads=2),
        ex("one_head_nobias", [4, 6], heads=1, bias=False),
        ex(
            "cross",
            {"x": [4, 8], "memory": [6, 5]},
            inputs=["x", "memory"],
            heads=4,
        ),
        ex("causal", [6, 4], heads=2, causal=True, dropout=0.1),
        ex(
            "key_mask",
            {"x": [6, 4], "mask": [6]},
            inputs=["x", "x", "m"],
            heads=2,
            before=RELU_MASK,
        ),
        ex(
            "causal_cross_mask",
            {"x": [3, 4], "memory": [6, 2], "mask": [6]},
            inputs=["x", "memory", "m"],
            heads=2,
            causal=True,
            before=RELU_MASK,
        ),
        ex("dynamic", [None, 4], heads=2, causal=True),
    ],
    sample=_attention_sample,
    weights=(0.0, 0.0, 0.0, 0.0),
    seq_weights=(0.0, 0.6, 0.0, 0.0),
    keeps_size="all",
)
def attention(ctx: Ctx):
    q = ctx.x
    kv = ctx.inputs[1] if len(ctx.inputs) > 1 else q
    if q.rank != 2 or kv.rank != 2:
        bad = q if q.rank != 2 else kv
        ctx.fail(
            f"attention takes sequences of per-example shape [length, features], but "
            f"'{bad.name}' has shape {ctx.shape(bad)}",
            "inputs",
            hint="reshape images to [positions, channels] first (e.g. flatten the spatial "
            "axes and permute)",
        )
    d = ctx.static(q.shape[1], f"the features of '{q.name}'")
    dkv = ctx.static(kv.shape[1], f"the features of '{kv.name}'")
    heads = ctx.attrs["heads"]
    if d % heads:
        ctx.fail(
            f"heads ({heads}) must divide the query's features ({d})",
            "heads",
            hint=f"use one of {[h for h in range(1, d + 1) if d % h == 0][:8]}",
        )
    if len(ctx.inputs) > 2:
        m = ctx.inputs[2]
        if m.rank != 1 or (
            isinstance(m.shape[0], int)
            and isinstance(kv.shape[0], int)
            and m.shape[0] != kv.shape[0]
        ):
            ctx.fail(
                f"the mask must have per-example shape [{kv.shape[0]}] (one entry per key of "
                f"'{kv.name}'), got {ctx.shape(m)} from '{m.name}'",
                "inputs",
            )
    for w, fan_in in (("q", d), ("k", dkv), ("v", dkv), ("out", d)):  # PyTorch's order
        ctx.params[f"weight_{w}"] = (d, fan_in)
        if ctx.attrs["bias"]:
            ctx.params[f"bias_{w}"] = (d,)
    t = q.shape[0] if isinstance(q.shape[0], int) else 1
    s = kv.shape[0] if isinstance(kv.shape[0], int) else 1
    ctx.macs = t * d * d * 2 + s * dkv * d * 2 + 2 * t * s * d
    return (q.shape[0], d)
