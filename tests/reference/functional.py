"""A float64 reference interpreter for netspec graphs, written with `torch.nn.functional`.

`reference(graph, weights, inputs)` walks `graph.nodes` in order and computes each op in float64
from the spec's documented semantics, not from netspec's code: it reads only the IR (a node's
`op`, `inputs`, `attrs`, `params` and `buffers`, `graph.outputs`) and the canonical weights
(`<node path>.<param>` -> array in PyTorch's layouts); it never imports netspec or calls a
target. The Keras, ONNX and parity tests compare netspec's models against it.

Conventions it encodes (those of the design page and docs/spec-language.md):
- Layout: batch first, channels first (`[N, C, H, W]`, `[N, C, L]`); recurrent inputs are
  `[N, time, features]`. Float inputs are computed in float64; int64 inputs (embedding indices)
  stay int64.
- Padding: the IR's resolved `padding` pairs, `(before, after)` per spatial axis, first spatial
  axis first (`same` already resolved by the loader, TensorFlow's rule: the odd pixel after),
  applied explicitly with `F.pad` before an unpadded convolution or pooling.
- `conv_transpose2d`: PyTorch's padding (rows/columns removed from each side of the output) and
  `output_padding`.
- `max_pool*`: padding is `-inf`, so it is never the maximum. `avg_pool*`: the mean over the real
  (unpadded) elements of each window only (padding is not counted).
- `global_*_pool`: over every axis after the channels.
- `batch_norm`: inference form with the running statistics, over axis 1, written out:
  `(x - mean) / sqrt(var + eps) * weight + bias`. `layer_norm`: over the last axis.
- Activations from their documented formulas: `gelu` the exact erf form, `softplus`
  `log(1 + exp(x))` in its overflow-free form, `hard_sigmoid` `clip(x / 6 + 1/2, 0, 1)`,
  `selu` with PyTorch's constants, `leaky_relu` and `elu` with their `alpha`, `prelu` one slope
  per channel (axis 1), `softmax` / `log_softmax` along the (normalized) `axis`. A node's
  `activation:` attribute is applied to its output.
- `lstm` / `gru` / `rnn`: PyTorch's equations and gate order (`torch.nn.LSTM/GRU/RNN`, batch
  first, tanh); `return_sequences: false` gives each direction's final hidden state (the
  backward direction's after the first step) of the last layer, concatenated forward first.
- `dropout` and `identity` are the identity at inference; `flatten`, `reshape` and `permute` act
  on the per-example axes (the batch axis stays first); merges broadcast like numpy.

Returns `{output name: array}` in `graph.outputs` order.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RECURRENT = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a)).double()


def _pad(x: torch.Tensor, pairs, value: float = 0.0) -> torch.Tensor:
    """IR pairs ((before, after) per spatial axis, first axis first) -> F.pad (last axis first)."""
    flat = [p for pair in reversed(pairs) for p in pair]
    return F.pad(x, flat, value=value)


def _channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-channel vector shaped to broadcast over axis 1 of `x`."""
    return v.view((1, -1) + (1,) * (x.ndim - 2))


def activation(x: torch.Tensor, a: dict) -> torch.Tensor:
    """The activation `a` (`{"op": name, **attrs}`) of `x`; prelu is a node (it has a weight)."""
    op = a["op"]
    if op == "relu":
        return F.relu(x)
    if op == "sigmoid":
        return torch.sigmoid(x)
    if op == "tanh":
        return torch.tanh(x)
    if op == "softmax":
        return torch.softmax(x, a["axis"])
    if op == "log_softmax":
        return torch.log_softmax(x, a["axis"])
    if op == "relu6":
        return x.clamp(0, 6)
    if op == "leaky_relu":
        return torch.where(x > 0, x, a["alpha"] * x)
    if op == "elu":
        return torch.where(x > 0, x, a["alpha"] * torch.expm1(x))
    if op == "selu":
        return F.selu(x)
    if op == "gelu":
        return x * 0.5 * (1 + torch.erf(x / np.sqrt(2.0)))
    if op == "silu":
        return x * torch.sigmoid(x)
    if op == "softplus":
        return torch.log1p(torch.exp(-x.abs())) + x.clamp(min=0)
    if op == "hard_sigmoid":
        return (x / 6 + 0.5).clamp(0, 1)
    if op == "identity":
        return x
    raise AssertionError(f"no reference for activation {op!r}")


def _recurrent(node, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    a = node.attrs
    m = RECURRENT[node.op](
        x.shape[-1],
        a["units"],
        num_layers=a["num_layers"],
        batch_first=True,
        bidirectional=a["bidirectional"],
    ).double()
    m.load_state_dict({k: p[k] for k in node.params})
    y, h = m(x)
    if node.op == "lstm":
        h = h[0]
    if a["return_sequences"]:
        return y
    dirs = 2 if a["bidirectional"] else 1
    return torch.cat(list(h[-dirs:]), dim=1)  # the last layer's directions, forward first


def _pool(f, x: torch.Tensor, a: dict, value: float = 0.0) -> torch.Tensor:
    return f(_pad(x, a["padding"], value), a["size"], a["stride"])


def _node(node, xs: list[torch.Tensor], p: dict[str, torch.Tensor]) -> torch.Tensor:
    a, op, x = node.attrs, node.op, xs[0]
    if op == "dense":
        return F.linear(x, p["weight"], p.get("bias"))
    if op == "embedding":
        return p["weight"][x]
    if op in ("conv1d", "conv2d"):
        f = F.conv1d if op == "conv1d" else F.conv2d
        y = _pad(x, a["padding"])
        return f(y, p["weight"], p.get("bias"), a["stride"], 0, a["dilation"], a["groups"])
    if op == "conv_transpose2d":
        before = [q[0] for q in a["padding"]]
        return F.conv_transpose2d(
            x, p["weight"], p.get("bias"), a["stride"], before, a["output_padding"]
        )
    if op in ("max_pool1d", "max_pool2d"):
        f = F.max_pool1d if op.endswith("1d") else F.max_pool2d
        return _pool(f, x, a, -np.inf)
    if op in ("avg_pool1d", "avg_pool2d"):
        f = F.avg_pool1d if op.endswith("1d") else F.avg_pool2d
        return _pool(f, x, a) / _pool(f, torch.ones_like(x[:, :1]), a)  # real elements only
    if op == "global_avg_pool":
        return x.mean(dim=tuple(range(2, x.ndim)))
    if op == "global_max_pool":
        return x.amax(dim=tuple(range(2, x.ndim)))
    if op == "batch_norm":
        mean, var = _channel(p["running_mean"], x), _channel(p["running_var"], x)
        scale, shift = _channel(p["weight"], x), _channel(p["bias"], x)
        return (x - mean) / torch.sqrt(var + a["eps"]) * scale + shift
    if op == "layer_norm":
        return F.layer_norm(x, x.shape[-1:], p["weight"], p["bias"], a["eps"])
    if op in ("dropout", "identity"):
        return x
    if op == "flatten":
        return x.flatten(1)
    if op == "reshape":
        return x.reshape(x.shape[0], *a["shape"])
    if op == "permute":
        return x.permute(0, *a["dims"])
    if op == "add":
        return sum(xs[1:], xs[0])
    if op == "subtract":
        return xs[0] - xs[1]
    if op == "multiply":
        y = xs[0]
        for z in xs[1:]:
            y = y * z
        return y
    if op == "concat":
        return torch.cat(xs, a["axis"])
    if op in RECURRENT:
        return _recurrent(node, x, p)
    if op == "prelu":
        return torch.where(x > 0, x, _channel(p["weight"], x) * x)
    return activation(x, {"op": op, **a})


def reference(graph, weights, inputs) -> dict[str, np.ndarray]:
    """Every output of `graph` (name -> array, float64) on canonical `weights` and `inputs`."""
    vals = {k: (torch.from_numpy(v) if v.dtype == np.int64 else _t(v)) for k, v in inputs.items()}
    with torch.no_grad():
        for node in graph.nodes:
            p = {k: _t(weights[f"{node.name}.{k}"]) for k in [*node.params, *node.buffers]}
            y = _node(node, [vals[i] for i in node.inputs], p)
            if node.attrs.get("activation"):
                y = activation(y, node.attrs["activation"])
            vals[node.name] = y
    return {o: vals[v].numpy() for o, v in graph.outputs.items()}
