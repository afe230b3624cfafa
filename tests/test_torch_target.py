"""The PyTorch target: emitter table, generated source, block classes, names, weights, and
per-op results against an independent reference.

The references are written here from the design page, in float64, with numpy (pooling windows,
recurrent equations, activations, normalization) or `torch.nn.functional` on explicitly padded
inputs (convolutions); none of them reads the generated code or the emitters. Results must agree
within the design page's parity bound (`assert_close`). Inputs are tiny.
"""

from __future__ import annotations

import ast
import itertools
import math
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest
from conftest import ROOT, SPECS, ruff_clean, spec

import netspec
from netspec.build import build
from netspec.ops import OPS
from netspec.testing import assert_close, random_inputs, random_weights
from netspec.weights import WeightsError

torch = pytest.importorskip("torch")
F = torch.nn.functional
T = pytest.importorskip("netspec.targets.torch")


# -- helpers ---------------------------------------------------------------------------------------
def run(graph, weights, inputs) -> list[np.ndarray]:
    module = netspec.compile(graph, "torch", weights)
    assert not module.training
    with torch.no_grad():
        ys = module(*(torch.from_numpy(inputs[k]) for k in graph.inputs))
    ys = ys if isinstance(ys, tuple) else (ys,)
    return [y.numpy() for y in ys]


def ruff(source: str) -> None:
    """`ruff check` and `ruff format --check` with the repository's configuration."""
    ruff_clean(source, "generated torch source")


# -- independent references (float64) --------------------------------------------------------------
def same_pad(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def t64(a) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, np.float64))


def conv_ref(x, w, b, stride, pads, dilation=1, groups=1) -> np.ndarray:
    """Convolution (1-D or 2-D) after explicit zero padding; pads = [(before, after), ...]."""
    flat = [p for pair in reversed(pads) for p in pair]
    xp = F.pad(t64(x), flat)
    fn = F.conv1d if x.ndim == 3 else F.conv2d
    y = fn(
        xp, t64(w), None if b is None else t64(b), stride=stride, dilation=dilation, groups=groups
    )
    return y.numpy()


def pool_ref(x, kind: str, k, s, pads) -> np.ndarray:
    """Max / average over windows; padding is NaN, which neither max nor mean counts."""
    n = x.ndim - 2
    xp = np.pad(np.asarray(x, np.float64), [(0, 0), (0, 0), *pads], constant_values=np.nan)
    outs = [(xp.shape[2 + i] - k[i]) // s[i] + 1 for i in range(n)]
    y = np.empty((*x.shape[:2], *outs))
    for pos in itertools.product(*[range(o) for o in outs]):
        win = xp[(..., *[slice(p * s[i], p * s[i] + k[i]) for i, p in enumerate(pos)])]
        flat = win.reshape(*x.shape[:2], -1)
        y[(..., *pos)] = np.nanmax(flat, -1) if kind == "max" else np.nanmean(flat, -1)
    return y


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
ERF = np.vectorize(math.erf)
ACT_REF = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu6": lambda x: np.clip(x, 0, 6),
    "selu": lambda x: SELU_SCALE * (np.maximum(x, 0) + np.minimum(SELU_ALPHA * (np.exp(x) - 1), 0)),
    "gelu": lambda x: x * 0.5 * (1 + ERF(x / math.sqrt(2))),
    "silu": lambda x: x * sigmoid(x),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "identity": lambda x: x,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "softmax": lambda x: softmax(x, -1),
    "log_softmax": lambda x: np.log(softmax(x, -1)),
}


def rnn_ref(kind, x, w, prefix, layers, bidirectional, units, return_sequences):
    """PyTorch's equations written out; final states: forward after the last step, backward
    after the first."""
    seq = np.asarray(x, np.float64)
    n, steps, _ = seq.shape
    finals = []
    for layer in range(layers):
        outs, finals = [], []
        for sfx in ["", "_reverse"][: 2 if bidirectional else 1]:
            p = {
                k: np.asarray(w[f"{prefix}.{k}_l{layer}{sfx}"], np.float64)
                for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            xs = seq if not sfx else seq[:, ::-1]
            h = np.zeros((n, units))
            c = np.zeros((n, units))
            hs = []
            for t in range(steps):
                gi = xs[:, t] @ p["weight_ih"].T + p["bias_ih"]
                gh = h @ p["weight_hh"].T + p["bias_hh"]
                if kind == "rnn":
                    h = np.tanh(gi + gh)
                elif kind == "lstm":
                    i, f, g, o = np.split(gi + gh, 4, axis=1)
                    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                    h = sigmoid(o) * np.tanh(c)
                else:
                    ir, iz, in_ = np.split(gi, 3, axis=1)
                    hr, hz, hn = np.split(gh, 3, axis=1)
                    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
                    h = (1 - z) * np.tanh(in_ + r * hn) + z * h
                hs.append(h)
            hs = np.stack(hs, 1)
            outs.append(hs if not sfx else hs[:, ::-1])
            finals.append(h)
        seq = np.concatenate(outs, -1)
    return seq if return_sequences else np.concatenate(finals, -1)


def channel(a, rank):
    """A per-channel vector shaped to broadcast on axis 1 of a batch of per-example rank."""
    return np.asarray(a, np.float64).reshape(-1, *[1] * (rank - 1))


# -- per-op cases ----------------------------------------------------------------------------------
# (id, inputs, layers, outputs, reference(weights, inputs) -> list of outputs)
def _conv_case(cid, shape, layer, kernel, stride, pads_fn, dilation=1, groups=1, act=None):
    def ref(w, x):
        x = x["x"]
        pads = pads_fn(x.shape[2:])
        y = conv_ref(x, w["c.weight"], w.get("c.bias"), stride, pads, dilation, groups)
        return [ACT_REF[act](y) if act else y]

    return (cid, f"x: {{shape: {shape}}}", f"- {{op: {layer}, name: c, {kernel}}}", "", ref)


CASES = [
    # dense
    (
        "dense",
        "x: {shape: [5]}",
        "- {op: dense, name: d, units: 3, activation: relu}",
        "",
        lambda w, x: [np.maximum(x["x"] @ w["d.weight"].T.astype(np.float64) + w["d.bias"], 0)],
    ),
    (
        "dense_rank3_nobias",
        "x: {shape: [2, 3, 4]}",
        "- {op: dense, name: d, units: 3, bias: false}",
        "",
        lambda w, x: [x["x"].astype(np.float64) @ w["d.weight"].T],
    ),
    # convolutions: same with stride 2 on odd and even sizes, stride 1 with an even kernel
    _conv_case(
        "conv2d_same_s2_odd",
        "[3, 7, 7]",
        "conv2d",
        "filters: 4, kernel: 3, stride: 2, padding: same",
        2,
        lambda s: [same_pad(n, 3, 2) for n in s],
    ),
    _conv_case(
        "conv2d_same_s2_even",
        "[3, 8, 6]",
        "conv2d",
        "filters: 4, kernel: [3, 4], stride: 2, padding: same",
        2,
        lambda s: [same_pad(s[0], 3, 2), same_pad(s[1], 4, 2)],
    ),
    _conv_case(
        "conv2d_same_even_kernel",
        "[2, 6, 6]",
        "conv2d",
        "filters: 3, kernel: 4, padding: same",
        1,
        lambda s: [same_pad(n, 4, 1) for n in s],
    ),
    _conv_case(
        "conv2d_same_dilation",
        "[2, 9, 9]",
        "conv2d",
        "filters: 3, kernel: 3, dilation: 2, stride: 2, padding: same",
        2,
        lambda s: [same_pad(n, 3, 2, 2) for n in s],
        dilation=2,
    ),
    _conv_case(
        "conv2d_groups",
        "[4, 6, 6]",
        "conv2d",
        "filters: 6, kernel: 3, groups: 2, padding: 1",
        1,
        lambda s: [(1, 1), (1, 1)],
        groups=2,
    ),
    _conv_case(
        "conv2d_depthwise",
        "[4, 6, 6]",
        "conv2d",
        "filters: 4, kernel: 3, groups: 4, bias: false, padding: valid",
        1,
        lambda s: [(0, 0), (0, 0)],
        groups=4,
    ),
    _conv_case(
        "conv2d_asym_pairs",
        "[2, 5, 6]",
        "conv2d",
        "filters: 3, kernel: [3, 2], stride: [1, 2], padding: [[0, 1], [2, 1]]",
        (1, 2),
        lambda s: [(0, 1), (2, 1)],
    ),
    _conv_case(
        "conv2d_per_axis_pad_act",
        "[2, 5, 6]",
        "conv2d",
        "filters: 3, kernel: 3, padding: [1, 0], activation: {op: leaky_relu, alpha: 0.2}",
        1,
        lambda s: [(1, 1), (0, 0)],
        act="leaky_relu_0.2",
    ),
    _conv_case(
        "conv1d_same_s2",
        "[3, 9]",
        "conv1d",
        "filters: 2, kernel: 4, stride: 2, padding: same",
        2,
        lambda s: [same_pad(s[0], 4, 2)],
    ),
    _conv_case(
        "conv1d_dilation_pad",
        "[3, 9]",
        "conv1d",
        "filters: 2, kernel: 3, dilation: 3, padding: 2, activation: tanh",
        1,
        lambda s: [(2, 2)],
        dilation=3,
        act="tanh",
    ),
    (
        "conv_transpose2d",
        "x: {shape: [3, 4, 5]}",
        "- {op: conv_transpose2d, name: c, filters: 2, kernel: [3, 4], stride: 2, padding: 1, "
        "output_padding: 1, activation: sigmoid}",
        "",
        lambda w, x: [
            sigmoid(
                F.conv_transpose2d(
                    t64(x["x"]),
                    t64(w["c.weight"]),
                    t64(w["c.bias"]),
                    stride=2,
                    padding=1,
                    output_padding=1,
                ).numpy()
            )
        ],
    ),
    (
        "conv_transpose2d_plain",
        "x: {shape: [3, 2, 2]}",
        "- {op: conv_transpose2d, name: c, filters: 2, kernel: 4, bias: false}",
        "",
        lambda w, x: [F.conv_transpose2d(t64(x["x"]), t64(w["c.weight"])).numpy()],
    ),
]
ACT_REF["leaky_relu_0.2"] = lambda x: np.where(x > 0, x, 0.2 * x)


def _pool(cid, shape, op, attrs, k, s, pads_fn):
    kind = op.split("_")[0]

    def ref(w, x):
        return [pool_ref(x["x"], kind, k, s, pads_fn(x["x"].shape[2:]))]

    return (cid, f"x: {{shape: {shape}}}", f"- {{op: {op}, {attrs}}}", "", ref)


CASES += [
    _pool(
        "max_pool2d", "[2, 6, 6]", "max_pool2d", "size: 2", (2, 2), (2, 2), lambda s: [(0, 0)] * 2
    ),
    _pool(
        "max_pool2d_pad",
        "[2, 7, 7]",
        "max_pool2d",
        "size: 3, stride: 2, padding: 1",
        (3, 3),
        (2, 2),
        lambda s: [(1, 1)] * 2,
    ),
    _pool(
        "max_pool2d_same_s2",
        "[2, 6, 7]",
        "max_pool2d",
        "size: 3, stride: 2, padding: same",
        (3, 3),
        (2, 2),
        lambda s: [same_pad(n, 3, 2) for n in s],
    ),
    _pool(
        "max_pool2d_asym",
        "[2, 6, 6]",
        "max_pool2d",
        "size: [2, 3], stride: 1, padding: [[0, 1], [1, 0]]",
        (2, 3),
        (1, 1),
        lambda s: [(0, 1), (1, 0)],
    ),
    _pool(
        "max_pool1d_same",
        "[3, 8]",
        "max_pool1d",
        "size: 2, stride: 1, padding: same",
        (2,),
        (1,),
        lambda s: [same_pad(s[0], 2, 1)],
    ),
    _pool(
        "avg_pool2d", "[2, 6, 6]", "avg_pool2d", "size: 2", (2, 2), (2, 2), lambda s: [(0, 0)] * 2
    ),
    _pool(
        "avg_pool2d_pad",
        "[2, 7, 5]",
        "avg_pool2d",
        "size: 3, stride: 2, padding: 1",
        (3, 3),
        (2, 2),
        lambda s: [(1, 1)] * 2,
    ),
    _pool(
        "avg_pool2d_same_s2",
        "[2, 6, 7]",
        "avg_pool2d",
        "size: 3, stride: 2, padding: same",
        (3, 3),
        (2, 2),
        lambda s: [same_pad(n, 3, 2) for n in s],
    ),
    _pool(
        "avg_pool2d_asym",
        "[2, 5, 6]",
        "avg_pool2d",
        "size: [3, 2], stride: [2, 1], padding: [[1, 0], [0, 1]]",
        (3, 2),
        (2, 1),
        lambda s: [(1, 0), (0, 1)],
    ),
    _pool(
        "avg_pool1d_same",
        "[3, 8]",
        "avg_pool1d",
        "size: 4, stride: 3, padding: same",
        (4,),
        (3,),
        lambda s: [same_pad(s[0], 4, 3)],
    ),
    _pool(
        "avg_pool1d_pad",
        "[3, 8]",
        "avg_pool1d",
        "size: 3, padding: 1",
        (3,),
        (3,),
        lambda s: [(1, 1)],
    ),
]

CASES += [
    (
        "global_pools",
        "a: {shape: [3, 5]}\nb: {shape: [3, 4, 5]}\nc: {shape: [2, 3, 4, 2]}",
        "- {op: global_avg_pool, name: ga, inputs: [a]}\n"
        "- {op: global_max_pool, name: gm, inputs: [a]}\n"
        "- {op: global_avg_pool, name: gb, inputs: [b]}\n"
        "- {op: global_max_pool, name: gc, inputs: [c]}",
        "[ga, gm, gb, gc]",
        lambda w, x: [x["a"].mean(2), x["a"].max(2), x["b"].mean((2, 3)), x["c"].max((2, 3, 4))],
    ),
]


def _bn(name, rank, xs, w, eps):
    g = {
        k: channel(w[f"{name}.{k}"], rank)
        for k in ("weight", "bias", "running_mean", "running_var")
    }
    return (xs - g["running_mean"]) / np.sqrt(g["running_var"] + eps) * g["weight"] + g["bias"]


CASES += [
    (
        "batch_norm_ranks",
        "a: {shape: [4]}\nb: {shape: [3, 5]}\nc: {shape: [2, 3, 3]}\nd: {shape: [2, 2, 3, 2]}",
        "- {op: batch_norm, name: ba, inputs: [a], eps: 0.001, momentum: 0.01}\n"
        "- {op: batch_norm, name: bb, inputs: [b]}\n"
        "- {op: batch_norm, name: bc, inputs: [c], eps: 0.1}\n"
        "- {op: batch_norm, name: bd, inputs: [d]}",
        "[ba, bb, bc, bd]",
        lambda w, x: [
            _bn("ba", 1, x["a"], w, 1e-3),
            _bn("bb", 2, x["b"], w, 1e-5),
            _bn("bc", 3, x["c"], w, 0.1),
            _bn("bd", 4, x["d"], w, 1e-5),
        ],
    ),
    (
        "layer_norm",
        "x: {shape: [3, 6]}",
        "- {op: layer_norm, name: n, eps: 0.01}",
        "",
        lambda w, x: [
            (x["x"] - x["x"].mean(-1, keepdims=True))
            / np.sqrt(x["x"].var(-1, keepdims=True) + 0.01)
            * w["n.weight"]
            + w["n.bias"]
        ],
    ),
    ("dropout", "x: {shape: [6]}", "- {op: dropout, rate: 0.3}", "", lambda w, x: [x["x"]]),
    (
        "flatten_reshape_permute",
        "x: {shape: [2, 3, 4]}",
        "- {op: permute, name: p, dims: [3, 1, 2]}\n"
        "- {op: reshape, name: r, shape: [6, -1]}\n"
        "- {op: flatten, name: f}",
        "[p, r, f]",
        lambda w, x: [
            x["x"].transpose(0, 3, 1, 2),
            x["x"].transpose(0, 3, 1, 2).reshape(2, 6, 4),
            x["x"].transpose(0, 3, 1, 2).reshape(2, -1),
        ],
    ),
    (
        "merges_broadcast",
        "a: {shape: [4, 1]}\nb: {shape: [1, 5]}\nc: {shape: [4, 5]}",
        "- {op: add, name: s, inputs: [a, b, c]}\n"
        "- {op: subtract, name: d, inputs: [a, b]}\n"
        "- {op: multiply, name: m, inputs: [c, b, a]}",
        "[s, d, m]",
        lambda w, x: [x["a"] + x["b"] + x["c"], x["a"] - x["b"], x["c"] * x["b"] * x["a"]],
    ),
    (
        "concat_axes",
        "a: {shape: [2, 3, 4]}\nb: {shape: [2, 3, 4]}",
        "- {op: concat, name: c1, inputs: [a, b]}\n"
        "- {op: concat, name: c2, inputs: [a, b, a], axis: 2}\n"
        "- {op: concat, name: c3, inputs: [a, b], axis: -1}",
        "[c1, c2, c3]",
        lambda w, x: [
            np.concatenate([x["a"], x["b"]], 1),
            np.concatenate([x["a"], x["b"], x["a"]], 2),
            np.concatenate([x["a"], x["b"]], 3),
        ],
    ),
    (
        "embedding",
        "ids: {shape: [null], dtype: int64}",
        "- {op: embedding, name: e, vocab: 7, dim: 3}",
        "",
        lambda w, x: [w["e.weight"][x["ids"]]],
    ),
    (
        "softmax_axes",
        "x: {shape: [3, 4, 5]}",
        "- {op: softmax, name: s1, axis: 1}\n- {op: softmax, name: s2, axis: 2, inputs: [x]}\n"
        "- {op: softmax, name: s3, inputs: [x]}\n- {op: log_softmax, name: l1, axis: -2, "
        "inputs: [x]}\n- {op: log_softmax, name: l2, inputs: [x]}",
        "[s1, s2, s3, l1, l2]",
        lambda w, x: [
            softmax(x["x"], 1),
            softmax(x["x"], 2),
            softmax(x["x"], 3),
            np.log(softmax(x["x"], 2)),
            np.log(softmax(x["x"], 3)),
        ],
    ),
    (
        "activation_attrs",
        "x: {shape: [7]}",
        "- {op: leaky_relu, name: a, alpha: 0.3}\n- {op: elu, name: b, alpha: 0.5, inputs: [x]}\n"
        "- {op: dense, name: d, units: 4, activation: {op: elu, alpha: 2.0}, inputs: [x]}",
        "[a, b, d]",
        lambda w, x: [
            np.where(x["x"] > 0, x["x"], 0.3 * x["x"]),
            np.where(x["x"] > 0, x["x"], 0.5 * (np.exp(x["x"]) - 1)),
            (lambda y: np.where(y > 0, y, 2.0 * (np.exp(y) - 1)))(
                x["x"] @ w["d.weight"].T.astype(np.float64) + w["d.bias"]
            ),
        ],
    ),
    (
        "prelu",
        "a: {shape: [4]}\nb: {shape: [3, 4, 2]}",
        "- {op: prelu, name: pa, inputs: [a]}\n- {op: prelu, name: pb, inputs: [b]}",
        "[pa, pb]",
        lambda w, x: [
            np.where(x["a"] > 0, x["a"], channel(w["pa.weight"], 1) * x["a"]),
            np.where(x["b"] > 0, x["b"], channel(w["pb.weight"], 3) * x["b"]),
        ],
    ),
]

ACTIVATIONS = [
    "relu",
    "sigmoid",
    "tanh",
    "relu6",
    "selu",
    "gelu",
    "silu",
    "softplus",
    "hard_sigmoid",
    "identity",
    "leaky_relu",
    "elu",
    "softmax",
    "log_softmax",
]
CASES.append(
    (
        "every_activation",
        "x: {shape: [3, 8]}",
        "\n".join(f"- {{op: {a}, name: {a}_out, inputs: [x]}}" for a in ACTIVATIONS),
        "[" + ", ".join(f"{a}_out" for a in ACTIVATIONS) + "]",
        lambda w, x: [ACT_REF[a](x["x"]) for a in ACTIVATIONS],
    )
)

for kind in ("rnn", "lstm", "gru"):
    for layers, bidir, seqs in (
        (1, False, False),
        (1, True, True),
        (2, True, False),
        (2, False, True),
        (3, True, True),
    ):
        units = 3

        def _ref(w, x, kind=kind, layers=layers, bidir=bidir, seqs=seqs, units=units):
            return [rnn_ref(kind, x["x"], w, "r", layers, bidir, units, seqs)]

        CASES.append(
            (
                f"{kind}_l{layers}_{'bi' if bidir else 'uni'}_{'seq' if seqs else 'last'}",
                "x: {shape: [null, 4]}",
                f"- {{op: {kind}, name: r, units: {units}, num_layers: {layers}, "
                f"bidirectional: {str(bidir).lower()}, return_sequences: {str(seqs).lower()}}}",
                "",
                _ref,
            )
        )


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_against_reference(case):
    cid, inputs, layers, outputs, ref = case
    graph = spec(inputs, layers, outputs, name=cid)
    w = random_weights(graph, seed=3)
    x = random_inputs(graph, batch=2, seed=4, dynamic=6)
    if cid == "every_activation":  # spread the inputs over the activations' kinks
        x = {"x": x["x"] * 3}
    got = run(graph, w, x)
    want = ref(w, {k: v if v.dtype == np.int64 else v.astype(np.float64) for k, v in x.items()})
    assert len(got) == len(want) == len(graph.outputs)
    for name, a, b in zip(graph.outputs, got, want, strict=True):
        assert a.dtype == np.float32, name
        assert a.shape[1:] == tuple(
            d if isinstance(d, int) else 6 for d in graph.value(graph.outputs[name]).shape
        ), name
        assert_close(a, b, f"{cid}: {name}")


def test_every_op_has_an_emitter():
    assert set(OPS) <= set(T.EMITTERS), sorted(set(OPS) - set(T.EMITTERS))
    assert set(T.EMITTERS) <= set(OPS), sorted(set(T.EMITTERS) - set(OPS))


def test_cases_cover_every_op():
    seen: set[str] = set()
    for cid, inputs, layers, outputs, _ in CASES:
        seen |= {n.op for n in spec(inputs, layers, outputs, name=cid).nodes}
    assert seen == set(OPS), sorted(set(OPS) - seen)


# -- a graph with every op, blocks and several inputs and outputs ----------------------------------
ALL_OPS = dict(
    name="all_ops",
    description='every op: "quotes", a backslash \\\\ and {braces}',
    inputs="""
        image: {shape: [3, 9, 9]}
        seq: {shape: [seq, 4]}
        tokens: {shape: [seq], dtype: int64}
        vec: {shape: [6]}
    """,
    blocks="""
        unit:
          params: {filters: null, stride: 1, expansion: 2}
          inputs: [x]
          layers:
            - {op: conv2d, name: expand, filters: "${filters * expansion}", kernel: 1}
            - {op: batch_norm, name: bn, eps: 0.001, momentum: 0.01}
            - {op: prelu, name: act}
            - {op: conv2d, name: dw, filters: "${filters * expansion}",
               groups: "${filters * expansion}", kernel: 3, stride: $stride, padding: same}
            - {op: conv2d, name: project, filters: $filters, kernel: 1, bias: false,
               activation: silu}
        pair:
          params: {width: null}
          inputs: [a, b]
          outputs: [left, right]
          layers:
            - {op: dense, name: left, inputs: [a], units: $width, activation: gelu}
            - {op: dense, name: right, inputs: [b], units: $width}
    """,
    layers="""
        - {block: unit, name: u1, inputs: [image], filters: 4, stride: 2}
        - {block: unit, name: u2, filters: 8}
        - {block: unit, name: u3, filters: 8}
        - {op: max_pool2d, name: mp, size: 2, stride: 1, padding: same}
        - {op: avg_pool2d, name: ap, size: 3, padding: 1}
        - {op: conv_transpose2d, name: up, filters: 2, kernel: 2, stride: 2, activation: relu6}
        - {op: global_max_pool, name: gmax}
        - {op: permute, name: seq_t, inputs: [seq], dims: [2, 1]}
        - {op: conv1d, name: c1, filters: 3, kernel: 3, padding: same}
        - {op: max_pool1d, name: mp1, size: 2, stride: 1, padding: [[0, 1]]}
        - {op: avg_pool1d, name: ap1, size: 2, stride: 1, padding: same}
        - {op: global_avg_pool, name: gavg}
        - {op: embedding, name: embed, inputs: [tokens], vocab: 11, dim: 4}
        - {op: add, name: mix, inputs: [embed, seq]}
        - {op: lstm, name: lstm, units: 5, bidirectional: true, num_layers: 2}
        - {op: gru, name: gru, units: 3, return_sequences: true, inputs: [mix]}
        - {op: rnn, name: rnn, units: 3}
        - {op: layer_norm, name: ln, inputs: [lstm]}
        - {op: dense, name: proj, inputs: [vec], units: 10, activation: {op: leaky_relu,
           alpha: 0.2}}
        - {op: dropout, name: drop}
        - {op: reshape, name: grid, shape: [2, 5]}
        - {op: flatten, name: flat}
        - {block: pair, name: pr, inputs: [flat, ln], width: 4}
        - {op: subtract, name: diff, inputs: [pr.left, pr.right]}
        - {op: multiply, name: prod, inputs: [diff, diff]}
        - {op: concat, name: cat, inputs: [prod, gmax, gmax, rnn], axis: 1}
        - {op: sigmoid, name: s1}
        - {op: tanh, name: s2}
        - {op: relu, name: s3}
        - {op: elu, name: s4}
        - {op: selu, name: s5}
        - {op: softplus, name: s6}
        - {op: hard_sigmoid, name: s7}
        - {op: identity, name: s8}
        - {op: gelu, name: s9}
        - {op: relu6, name: s10}
        - {op: silu, name: s11}
        - {op: leaky_relu, name: s12}
        - {op: softmax, name: probs}
        - {op: log_softmax, name: logp, inputs: [s8], axis: 1}
    """,
    outputs="{probs: probs, logp: logp, gavg: gavg}",
)


def all_ops_graph() -> netspec.Graph:
    text = "netspec: 1\nname: all_ops\n"
    text += f"description: '{ALL_OPS['description']}'\n"
    for key in ("inputs", "blocks", "layers"):
        text += f"{key}:\n{textwrap.indent(textwrap.dedent(ALL_OPS[key]).strip(), '  ')}\n"
    text += f"outputs: {ALL_OPS['outputs']}\n"
    return netspec.loads(text, file="all_ops.yaml")


@pytest.fixture(scope="module")
def all_ops():
    return all_ops_graph()


def test_all_ops_graph_uses_every_op(all_ops):
    assert {n.op for n in all_ops.nodes} == set(OPS), sorted(
        set(OPS) - {n.op for n in all_ops.nodes}
    )


def test_all_ops_graph_runs(all_ops):
    w = random_weights(all_ops, seed=1)
    x = random_inputs(all_ops, batch=3, seed=1, dynamic=4)
    got = run(all_ops, w, x)
    for (name, value), y in zip(all_ops.outputs.items(), got, strict=True):
        shape = all_ops.value(value).shape
        assert y.shape == (3, *[d if isinstance(d, int) else 4 for d in shape]), name
        assert np.isfinite(y).all(), name


def test_generated_source_passes_ruff_all_ops(all_ops):
    ruff(netspec.generate(all_ops, "torch"))


# -- every example spec ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_example_spec(path):
    graph = netspec.load(path)
    source = netspec.generate(graph, "torch")
    ruff(source)
    w = random_weights(graph, seed=0)
    big = graph.macs > 50_000_000
    x = random_inputs(graph, batch=1 if big else 2, seed=0)
    module = netspec.compile(graph, "torch", w)
    assert sum(p.numel() for p in module.parameters()) == graph.param_count
    keys = [k for k in module.state_dict() if not k.endswith("num_batches_tracked")]
    assert keys == list(graph.weight_shapes())
    got = run(graph, w, x)
    assert len(got) == len(graph.outputs)
    for y, value in zip(got, graph.outputs.values(), strict=True):
        want = tuple(d if isinstance(d, int) else 5 for d in graph.value(value).shape)
        assert y.shape == (1 if big else 2, *want)
        assert np.isfinite(y).all()


# -- source, classes and names ---------------------------------------------------------------------
def test_source_is_standalone_and_readable():
    graph = netspec.load(ROOT / "specs" / "resnet18.yaml")
    source = netspec.generate(graph, "torch")
    tree = ast.parse(source)
    imports = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imports.add(node.module)
    assert imports == {"torch", "torch.nn.functional", "safetensors.torch"}
    assert "netspec" not in imports
    assert ast.get_docstring(tree).startswith("The `resnet18` network as a PyTorch module")
    assert "specs/resnet18.yaml" in ast.get_docstring(tree)
    assert "load_weights(model" in ast.get_docstring(tree)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    assert set(classes) == {"Basic", "BasicDown", "Resnet18"}
    init = {n.name: n for n in classes["BasicDown"].body if isinstance(n, ast.FunctionDef)}
    # the block's declared params (with their defaults), after the input's channel count
    args = init["__init__"].args
    assert [a.arg for a in args.args] == ["self", "in_channels", "filters", "stride"]
    assert [ast.literal_eval(d) for d in args.defaults] == [2]
    assert [a.arg for a in init["forward"].args.args] == ["self", "x"]
    assert "self.layer2_1 = BasicDown(in_channels=64, filters=128)" in source
    assert "self.layer1_1 = Basic(in_channels=64, filters=64)" in source
    assert "self.conv1 = nn.Conv2d(in_channels, filters, 3, padding=1, bias=False)" in source
    assert "self.conv2 = nn.Conv2d(filters, filters, 3, padding=1, bias=False)" in source
    assert "stride=stride" in source and "def __init__(self, classes: int = 1000):" in source
    assert "self.fc = nn.Linear(512, classes)" in source
    assert "nn.BatchNorm2d(64)" in source and "eps=" not in source  # defaults left out
    assert "def forward(self, image: torch.Tensor) -> torch.Tensor:" in source
    assert "def load_weights(module: nn.Module, path: str) -> nn.Module:" in source


def test_block_variants_and_derived_parameters():
    graph = spec(
        "x: {shape: [4, 8, 8]}",
        """
        - {block: b, name: s1, filters: 4, stride: 2}
        - {block: b, name: s2, filters: 4, stride: 1}
        - {block: b, name: s3, filters: 8, stride: 1}
        - {block: b, name: s4, filters: 8, stride: 1}
        """,
        blocks="""
        b:
          params: {filters: null, stride: 1, mult: 3}
          layers:
            - {op: conv2d, name: c, filters: "${filters * mult}", kernel: 3, stride: $stride,
               padding: same}
            - {op: dense, name: d, units: $filters}
        """,
        name="variants",
    )
    source = netspec.generate(graph, "torch")
    ruff(source)
    # s1 pads explicitly (stride 2, even size), the others do not: two classes
    assert "class B(nn.Module):" in source and "class B2(nn.Module):" in source
    assert "self.s1 = B(filters=4, stride=2)" in source  # the use's values; mult: its default
    # the declared params with their defaults; the conv's input channels differ between the
    # uses of B2 (an argument); the dense reads the last axis (width), which no attribute sets
    sig = "self, in_channels: int, d_in_features: int, filters: int, stride: int = 1, mult: int = 3"
    assert sig in source
    assert "self.c = nn.Conv2d(in_channels, filters * mult, 3, stride=stride, padding=1)" in source
    assert "self.d = nn.Linear(d_in_features, filters)" in source
    assert "self.s3 = B2(in_channels=12, d_in_features=4, filters=8)" in source
    w = random_weights(graph, seed=0)
    x = random_inputs(graph, batch=2)
    y = run(graph, w, x)[0]
    assert y.shape == (2, 24, 4, 8)


def test_shared_class_when_only_defaults_differ():
    graph = spec(
        "x: {shape: [4, 8, 8]}",
        """
        - {block: b, name: s1, stride: 1}
        - {block: b, name: s2, stride: 2}
        """,
        blocks="""
        b:
          params: {stride: 1}
          layers:
            - {op: conv2d, name: c, filters: 4, kernel: 3, stride: $stride, padding: 1}
        """,
        name="shared",
    )
    source = netspec.generate(graph, "torch")
    assert source.count("(nn.Module):") == 2
    assert "self.c = nn.Conv2d(4, 4, 3, stride=stride, padding=1)" in source
    assert "def __init__(self, stride: int = 1):" in source
    assert "self.s1 = B()" in source and "self.s2 = B(stride=2)" in source


def test_nested_blocks_and_multiple_outputs():
    graph = spec(
        "x: {shape: [6]}",
        """
        - {block: outer, name: o1, units: 4}
        - {block: outer, name: o2, units: 5, inputs: [o1.main]}
        - {op: concat, name: cat, inputs: [o1.side, o2.main, o2.side]}
        """,
        outputs="[cat, o2.main]",
        blocks="""
        inner:
          params: {units: null}
          layers:
            - {op: dense, name: fc, units: $units, activation: tanh}
        outer:
          params: {units: null}
          outputs: [main, side]
          layers:
            - {block: inner, name: first, units: $units}
            - {block: inner, name: second, units: "${units * 2}"}
            - {op: relu, name: main}
            - {op: sigmoid, name: side, inputs: [first]}
        """,
        name="nested",
    )
    source = netspec.generate(graph, "torch")
    ruff(source)
    assert "self.first = Inner(in_features=in_features, units=units)" in source
    assert "self.second = Inner(in_features=units, units=units * 2)" in source
    assert "main, side = self.o1(x)" not in source  # variables are named after the use
    assert "o1_main, o1_side = self.o1(x)" in source
    w = random_weights(graph, seed=2)
    x = random_inputs(graph, batch=2)
    got = run(graph, w, x)

    def fc(name, v):
        return np.tanh(v @ w[f"{name}.fc.weight"].T.astype(np.float64) + w[f"{name}.fc.bias"])

    def outer(name, v):
        first = fc(f"{name}.first", v)
        return np.maximum(fc(f"{name}.second", first), 0), sigmoid(first)

    m1, s1 = outer("o1", x["x"].astype(np.float64))
    m2, s2 = outer("o2", m1)
    assert_close(got[0], np.concatenate([s1, m2, s2], 1))
    assert_close(got[1], m2)


HOSTILE = """
netspec: 1
name: f
description: "quotes \\" \\"\\"\\" a backslash \\\\ a tab\\t NUL \\0 and\\na second line"
params: {int: 2}
inputs:
  self: {shape: [2, 5, 5]}
  torch: {shape: [3]}
blocks:
  F:
    params: {float: null, super: 1}
    inputs: [nn]
    layers:
      - {op: conv2d, name: x, filters: $float, kernel: 3, padding: same}
      - {op: batch_norm, name: l}
      - {op: add, name: Basic, inputs: [l, nn]}
layers:
  - {block: F, name: F_, inputs: [self], repeat: 2, float: 2}
  - {op: global_avg_pool, name: print}
  - {op: dense, name: tuple, inputs: [torch], units: $int}
  - {op: add, name: h_n, inputs: [print, tuple]}
  - {op: reshape, name: load_weights, shape: [1, 2]}
  - {op: gru, name: gru, units: 2}
  - {op: lstm, name: lstm, units: 2, inputs: [load_weights], bidirectional: true}
  - {op: flatten, name: Resnet, inputs: [F__1]}
outputs: {super: h_n, o: gru, p: lstm, q: Resnet}
"""


def test_hostile_names():
    graph = netspec.loads(HOSTILE, file='we"ird\\path.yaml')
    source = netspec.generate(graph, "torch")
    ruff(source)
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    assert '"""' in doc and "\\" in doc and 'we"ird\\path.yaml' in doc
    assert "\x00" not in source
    assert "class FBlock(nn.Module):" in source and "class FModel(nn.Module):" in source
    assert "def forward(\n        self, self_: torch.Tensor, torch_: torch.Tensor\n" in source
    # block F: conv `x`, batch_norm `l`, add: one chain in the generic variable (the argument is
    # `nn_`); at the top level `h_n` (two readers) keeps its layer's name, `print` does not
    assert "x = self.x(nn_)\n        x = self.l(x)\n        x = x + nn_\n" in source
    assert "x = x.mean(dim=(2, 3))" in source and "h_n = x + tuple_" in source
    # a layer called `l` whose variable is its own name gets `l_` (E741)
    twice = "- {op: dense, name: l, units: 2}\n- {op: tanh, name: t}\n- {op: add, inputs: [t, l]}"
    assert "l_ = self.l(x)" in netspec.generate(spec("x: {shape: [2]}", twice), "torch")
    w = random_weights(graph, seed=0)
    module = netspec.compile(graph, "torch", w)
    assert [k for k in module.state_dict() if "num_batches" not in k] == list(graph.weight_shapes())
    x = random_inputs(graph, batch=2)
    got = run(graph, w, x)
    assert [g.shape for g in got] == [(2, 2), (2, 2), (2, 4), (2, 50)]


def test_description_cannot_inject_code():
    base = spec("x: {shape: [2]}", "- {op: dense, units: 1}", name="d", description="plain")
    for text in [
        '"\\"\\"\\"; import os; \\"\\"\\""',
        "'# -*- coding: latin-1 -*-'",
        '"\\u2028\\x0c\\r\\n\\x00{}%s"',
    ]:
        g = spec("x: {shape: [2]}", "- {op: dense, units: 1}", name="d", description=text)
        a, b = ast.parse(netspec.generate(g, "torch")), ast.parse(netspec.generate(base, "torch"))
        for tree in (a, b):
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    node.value = ""
        assert ast.dump(a) == ast.dump(b)


# -- forward variables and in-place activations ----------------------------------------------------
BASIC_FORWARD = """
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.bn1(out)
        out = F.relu(out, inplace=True)
        out = self.conv2(out)
        out = self.bn2(out)
        out = out + x
        out = F.relu(out, inplace=True)
        return out
"""


def test_resnet18_forward_reads_like_torchvision():
    source = netspec.generate(netspec.load(ROOT / "specs" / "resnet18.yaml"), "torch")
    assert BASIC_FORWARD in source
    down = (
        "downsample = self.downsample_conv(x)\n        downsample = self.downsample_bn(downsample)"
    )
    assert down in source and "out = out + downsample\n" in source
    top = source[source.index('"""image [N, 3, 224, 224] -> fc [N, 1000]"""') :]
    lines = [ln.strip() for ln in top[: top.index("return x")].splitlines()[1:]]
    assert lines[:3] == [
        "x = self.conv1(image)  # [N, 64, 112, 112]",
        "x = self.bn1(x)  # [N, 64, 112, 112]",
        "x = F.relu(x, inplace=True)  # [N, 64, 112, 112]",
    ]
    assert "x = self.layer2_1(x)  # [N, 128, 28, 28]" in lines
    assert lines[-2:] == ["x = self.fc(x)  # [N, 1000]", ""]
    assert all(ln.startswith("x = ") for ln in lines[:-1])
    assert " del " not in source


def reference(graph, w, x) -> list[np.ndarray]:
    """Float64 results of the small graphs below (dense, batch_norm, conv2d, shape ops, merges
    and activations), from the graph's nodes alone."""
    vals = {k: np.asarray(v, np.float64) for k, v in x.items()}
    for n in graph.nodes:
        a = [vals[i] for i in n.inputs]
        p = {k: np.asarray(w[f"{n.name}.{k}"], np.float64) for k in [*n.params, *n.buffers]}
        if n.op == "dense":
            y = a[0] @ p["weight"].T + p.get("bias", 0)
        elif n.op == "conv2d":
            y = conv_ref(a[0], p["weight"], p.get("bias"), n.attrs["stride"], n.attrs["padding"])
        elif n.op == "batch_norm":
            shape = (1, -1) + (1,) * (a[0].ndim - 2)
            scale = p["weight"] / np.sqrt(p["running_var"] + n.attrs["eps"])
            y = (a[0] - p["running_mean"].reshape(shape)) * scale.reshape(shape)
            y = y + p["bias"].reshape(shape)
        elif n.op in ("flatten", "reshape"):
            y = a[0].reshape(len(a[0]), -1)
        elif n.op == "permute":
            y = a[0].transpose(0, *n.attrs["dims"])
        elif n.op in ("dropout", "identity"):
            y = a[0]
        elif n.op == "add":
            y = a[0] + a[1]
        elif n.op == "leaky_relu":
            y = np.where(a[0] > 0, a[0], n.attrs["alpha"] * a[0])
        else:
            y = ACT_REF[n.op](a[0])
        act = n.attrs.get("activation")
        vals[n.name] = y if act is None else ACT_REF[act["op"]](y)
    return [vals[v] for v in graph.outputs.values()]


# (what, layers, outputs, whether the activation may run in place); the input is `img` [2, 3, 3]
# where a layer names it, else `x` [6]; each case has one standalone or fused activation
INPLACE_CASES = [
    ("after dense", "- {op: dense, name: d, units: 6}\n- {op: relu, name: r}", "[r]", True),
    ("fused relu", "- {op: dense, name: d, units: 6, activation: relu}", "[d]", True),
    (
        "after conv and batch_norm",
        "- {op: conv2d, name: c, inputs: [img], filters: 2, kernel: 1}\n"
        "- {op: batch_norm, name: bn}\n- {op: relu, name: r}",
        "[r]",
        True,
    ),
    (
        "leaky, slope 0.2",
        "- {op: dense, name: d, units: 6}\n- {op: leaky_relu, alpha: 0.2}",
        "",
        True,
    ),
    (
        "relu6 after add",
        "- {op: dense, name: d, units: 6}\n- {op: add, name: s, inputs: [d, x]}\n- {op: relu6}",
        "",
        True,
    ),
    ("a forward argument", "- {op: relu, name: r}", "[r]", False),
    (
        "a second reader",
        "- {op: dense, name: d, units: 6}\n- {op: relu, name: r}\n- {op: add, inputs: [r, d]}",
        "",
        False,
    ),
    ("returned too", "- {op: dense, name: d, units: 6}\n- {op: relu, name: r}", "[r, d]", False),
    ("after sigmoid", "- {op: dense, name: d, units: 6}\n- {op: sigmoid}\n- {op: relu}", "", False),
    ("after fused tanh", "- {op: dense, units: 6, activation: tanh}\n- {op: relu}", "", False),
    ("a flatten view", "- {op: flatten, name: f, inputs: [img]}\n- {op: relu}", "", False),
    ("a reshape view", "- {op: reshape, inputs: [img], shape: [18]}\n- {op: relu}", "", False),
    ("a permute view", "- {op: permute, inputs: [img], dims: [2, 1, 3]}\n- {op: relu}", "", False),
    ("dropout in eval", "- {op: dropout, rate: 0.5}\n- {op: relu6}", "", False),
    ("identity", "- {op: identity}\n- {op: relu}", "", False),
    (
        "leaky, negative slope",
        "- {op: dense, name: d, units: 6}\n- {op: leaky_relu, alpha: -0.5}",
        "",
        False,
    ),
]


@pytest.mark.parametrize(
    "layers, outputs, inplace", [c[1:] for c in INPLACE_CASES], ids=[c[0] for c in INPLACE_CASES]
)
def test_inplace_activation_only_where_safe(layers, outputs, inplace):
    inputs = "img: {shape: [2, 3, 3]}" if "[img]" in layers else "x: {shape: [6]}"
    graph = spec(inputs, layers, outputs, name="ip")
    source = netspec.generate(graph, "torch")
    ruff(source)
    assert source.count("inplace=True") == int(inplace), source
    w = random_weights(graph, seed=3)
    x = random_inputs(graph, batch=2, seed=4)
    x = {k: v - 0.5 * v.mean() for k, v in x.items()}  # negatives for the activations to cut
    module = netspec.compile(graph, "torch", w)
    args = [torch.from_numpy(x[k].copy()) for k in graph.inputs]
    with torch.no_grad():
        got = module(*args)
    got = got if isinstance(got, tuple) else (got,)
    for k, a in zip(graph.inputs, args, strict=True):
        assert np.array_equal(a.numpy(), x[k]), f"forward changed its input {k!r}"
    for a, b in zip(got, reference(graph, w, x), strict=True):
        assert_close(a.numpy(), b)
    # training: the backward pass works through it (an in-place op on a value that a backward
    # needs raises "modified by an inplace operation")
    module.train()
    args = [torch.from_numpy(x[k].copy()).requires_grad_() for k in graph.inputs]
    got = module(*args)
    sum(y.sum() for y in (got if isinstance(got, tuple) else (got,))).backward()


SMALL_RESNET = """
netspec: 1
name: small_resnet
inputs:
  image: {shape: [3, 12, 12]}
blocks:
  basic:
    params: {filters: null}
    layers:
      - {op: conv2d, name: conv1, filters: $filters, kernel: 3, padding: 1, bias: false}
      - {op: batch_norm, name: bn1}
      - {op: relu, name: relu1}
      - {op: conv2d, name: conv2, filters: $filters, kernel: 3, padding: 1, bias: false}
      - {op: batch_norm, name: bn2}
      - {op: add, name: add, inputs: [bn2, x]}
      - {op: relu, name: relu2}
  basic_down:
    params: {filters: null}
    layers:
      - {op: conv2d, name: conv1, filters: $filters, kernel: 3, stride: 2, padding: 1}
      - {op: batch_norm, name: bn1}
      - {op: relu, name: relu1}
      - {op: conv2d, name: conv2, filters: $filters, kernel: 3, padding: 1, bias: false}
      - {op: batch_norm, name: bn2}
      - {op: conv2d, name: downsample_conv, inputs: [x], filters: $filters, kernel: 1, stride: 2}
      - {op: batch_norm, name: downsample_bn}
      - {op: add, name: add, inputs: [bn2, downsample_bn]}
      - {op: relu, name: relu2}
layers:
  - {op: conv2d, name: conv1, filters: 4, kernel: 3, padding: 1, bias: false}
  - {op: batch_norm, name: bn1}
  - {op: relu, name: relu}
  - {block: basic, name: layer1, filters: 4}
  - {block: basic_down, name: layer2, filters: 8}
  - {op: global_avg_pool, name: pool}
  - {op: dense, name: fc, units: 3, activation: relu}
"""


def test_training_backward_through_inplace_activations():
    """Train mode (batch statistics): the backward pass through the in-place activations works
    and gives the gradients and running statistics of the same module without them."""
    graph = netspec.loads(SMALL_RESNET)
    source = netspec.generate(graph, "torch")
    assert source.count("inplace=True") == 6
    plain = source.replace(", inplace=True", "")
    w = random_weights(graph, seed=5)
    x = random_inputs(graph, batch=4, seed=6)["image"]
    results = []
    for text in (source, plain):
        model = T.load_module(graph, text).__dict__["SmallResnet"]().double()
        state = {k: torch.from_numpy(v).double() for k, v in w.items()}
        model.load_state_dict({**model.state_dict(), **state})
        model.train()
        image = torch.from_numpy(x).double().requires_grad_()
        y = model(image)
        (y * torch.arange(1.0, 4.0, dtype=torch.float64)).sum().backward()
        assert np.array_equal(image.detach().numpy(), x)
        results.append((y, image.grad, model))
    (y, gx, m), (y0, gx0, m0) = results
    torch.testing.assert_close(y, y0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, gx0, rtol=1e-12, atol=1e-12)
    assert gx.abs().sum() > 0
    for (k, p), (k0, p0) in zip(m.named_parameters(), m0.named_parameters(), strict=True):
        assert k == k0
        torch.testing.assert_close(p.grad, p0.grad, rtol=1e-12, atol=1e-12, msg=k)
    for (k, b), (_, b0) in zip(m.named_buffers(), m0.named_buffers(), strict=True):
        torch.testing.assert_close(b, b0, rtol=1e-12, atol=1e-12, msg=k)


def forward_leaks(source: str) -> list[str]:
    """Locals of every `forward` in `source` still bound to a value after that value's last read
    (while statements that allocate still run), from the AST.

    A value bound to `n` is read last at statement L (the statement that binds `n` next reads
    the old value before rebinding it). It is released if L itself rebinds `n`, or the statement
    after L is `del ... n ...`, or L is `m = F.<act>(n, inplace=True)` (the tensor lives on as
    `m`), or nothing after L but in-place activations, views (`h = h[-1]`), `del` and `return`
    runs. Forward arguments are the caller's; a returned value is read last by the `return`."""
    leaks = []
    for cls in ast.parse(source).body:
        fn = next(
            (f for f in getattr(cls, "body", []) if getattr(f, "name", "") == "forward"), None
        )
        if not isinstance(cls, ast.ClassDef) or fn is None:
            continue
        body = [
            s
            for s in fn.body
            if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        ]
        args = {a.arg for a in fn.args.args}

        def names(stmt, ctx):
            return {
                n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)
            }

        def inplace_of(stmt) -> str | None:
            v = getattr(stmt, "value", None)
            if isinstance(v, ast.Call) and any(
                k.arg == "inplace" and getattr(k.value, "value", None) is True for k in v.keywords
            ):
                return getattr(v.args[0], "id", "")  # "": a fused activation
            return None

        light = [  # statements that allocate nothing
            inplace_of(s) is not None
            or isinstance(s, (ast.Delete, ast.Return))
            or (isinstance(s, ast.Assign) and isinstance(s.value, ast.Subscript))  # a view
            for s in body
        ]
        for b, stmt in enumerate(body):
            for n in names(stmt, ast.Store) - args - {"_"}:
                end = next(
                    (
                        r
                        for r in range(b + 1, len(body))
                        if n in names(body[r], (ast.Store, ast.Del))
                    ),
                    len(body),
                )
                reads = [
                    k
                    for k in range(b + 1, min(end + 1, len(body)))
                    if n in names(body[k], ast.Load)
                ]
                assert reads, f"{cls.name}: {n!r} bound at {b} is never read"
                last = reads[-1]
                freed = (
                    n in names(body[last], ast.Store)
                    or (last + 1 < len(body) and n in names(body[last + 1], ast.Del))
                    or inplace_of(body[last]) == n
                    or all(light[last + 1 :])
                )
                if not freed:
                    leaks.append(
                        f"{cls.name}.forward: {n!r} (statement {b}) outlives statement {last}"
                    )
    return leaks


def test_dead_intermediates_are_released():
    """No local of a generated `forward` keeps a dead value alive while more work runs: checked
    on the AST of every example spec, the graphs above and random specs, and on the old naming
    (every layer its own variable), which this check must catch."""
    from netspec import randspec

    graphs = [netspec.load(p) for p in SPECS]
    graphs += [all_ops_graph(), netspec.loads(HOSTILE), netspec.loads(SMALL_RESNET)]
    # 111, 241: a recurrent layer's final state, after its input's last read
    graphs += [randspec.generate(seed).graph for seed in [*range(40), 111, 241]]
    for graph in graphs:
        source = netspec.generate(graph, "torch")
        assert forward_leaks(source) == [], graph.name
    assert len(forward_leaks(OLD_BASIC)) == 5  # conv1, bn1, relu1, conv2, bn2


OLD_BASIC = """
class Basic(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv1 = self.conv1(x)
        bn1 = self.bn1(conv1)
        relu1 = F.relu(bn1)
        conv2 = self.conv2(relu1)
        bn2 = self.bn2(conv2)
        add = bn2 + x
        relu2 = F.relu(add)
        return relu2
"""


def test_live_intermediates_at_run_time():
    """At run time: while the generated ResNet-18 and DCGAN generator run, few intermediate
    tensors are alive at once (a chain frees each value when it rebinds its variable)."""
    from torch.overrides import TorchFunctionMode

    class Live(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.refs: list = []
            self.peak = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.peak = max(self.peak, sum(r() is not None for r in self.refs))
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, tuple) else (out,):
                if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter):
                    self.refs.append(weakref.ref(t))
            return out

    peaks = {}
    for name, batch in (("resnet18", 1), ("dcgan_generator", 2)):
        graph = netspec.load(ROOT / "specs" / f"{name}.yaml")
        module = netspec.compile(graph, "torch", random_weights(graph, seed=0))
        x = [torch.from_numpy(v) for v in random_inputs(graph, batch=batch, seed=0).values()]
        mode = Live()
        with torch.no_grad(), mode:
            module(*x)
        peaks[name] = mode.peak
    # resnet18: the block's argument, `out`, `downsample` and the result being made; dcgan: the
    # input, its reshape view and the value being made (every layer its own variable: 18, 14)
    assert peaks["resnet18"] <= 4 and peaks["dcgan_generator"] <= 3, peaks


# -- weights ---------------------------------------------------------------------------------------
def test_save_weights_round_trip_is_exact(tmp_path):
    graph = netspec.load(ROOT / "specs" / "dcgan_generator.yaml")
    w = random_weights(graph, seed=5)
    module = netspec.compile(graph, "torch", w)
    back = T.export_weights(module, graph)
    assert list(back) == list(graph.weight_shapes())
    for k in w:
        assert back[k].dtype == np.float32 and np.array_equal(back[k], w[k]), k
    with torch.no_grad():  # "train": change every weight, then write and read back
        for p in module.parameters():
            p.mul_(1.5)
    path = tmp_path / "w.safetensors"
    netspec.save_weights(module, graph, path)
    from safetensors.numpy import load_file

    saved = load_file(str(path))
    assert sorted(saved) == sorted(graph.weight_shapes())
    for k, v in module.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert np.array_equal(saved[k], v.numpy()), k
    again = netspec.compile(graph, "torch", path)
    for (k, a), b in zip(again.state_dict().items(), module.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_generated_file_runs_alone(tmp_path):
    """The written source, imported by a fresh interpreter, loads the weights file with its own
    `load_weights` and computes what `compile` computes; netspec is never imported."""
    graph = netspec.load(ROOT / "specs" / "lenet5.yaml")
    w = random_weights(graph, seed=1)
    x = random_inputs(graph, batch=2, seed=1)
    files = build(graph, ["torch"], tmp_path, w)
    assert sorted(p.name for p in files) == ["lenet5.safetensors", "lenet5_torch.py"]
    np.save(tmp_path / "x.npy", x["image"])
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, ".")
        import numpy as np
        import torch
        import lenet5_torch as m
        model = m.Lenet5()
        m.load_weights(model, "lenet5.safetensors")
        model.eval()
        with torch.no_grad():
            y = model(torch.from_numpy(np.load("x.npy")))
        np.save("y.npy", y.numpy())
        assert not any(k.split(".")[0] == "netspec" for k in sys.modules), "netspec imported"
        """
    )
    r = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": "", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert_close(np.load(tmp_path / "y.npy"), run(graph, w, x)[0])


def test_compile_checks_weight_keys():
    graph = netspec.load(ROOT / "specs" / "mlp.yaml")
    w = random_weights(graph)
    bad = dict(w)
    bad["extra.weight"] = np.zeros(1, np.float32)
    with pytest.raises(WeightsError):
        T.compile(graph, bad)
    bad = {k: v for k, v in w.items() if not k.endswith("bias")}
    with pytest.raises(WeightsError):
        T.compile(graph, bad)
    with pytest.raises(netspec.SpecError):
        T.compile(graph, w, opset=3)
    other = netspec.load(ROOT / "specs" / "xor.yaml")
    with pytest.raises(WeightsError):
        T.export_weights(T.compile(graph, w), other)


def test_batch_norm_buffers_load_and_module_is_in_eval_mode():
    graph = spec(
        "x: {shape: [3, 4]}", "- {op: batch_norm, name: bn, momentum: 0.3, eps: 0.01}", name="bn"
    )
    w = random_weights(graph, seed=0)
    module = netspec.compile(graph, "torch", w)
    bn = module.bn
    assert not module.training and bn.momentum == 0.3 and bn.eps == 0.01
    assert np.array_equal(bn.running_var.numpy(), w["bn.running_var"])
    assert isinstance(bn, torch.nn.BatchNorm1d)


def test_write_and_owns(tmp_path):
    graph = netspec.load(ROOT / "specs" / "xor.yaml")
    files = T.write(graph, random_weights(graph), tmp_path)
    assert files == [tmp_path / "xor_torch.py"]
    assert files[0].read_text() == netspec.generate(graph, "torch")
    module = netspec.compile(graph, "torch")
    assert T.owns(module) and not T.owns(object()) and not T.owns(graph)


def test_compile_runs_the_generated_text(monkeypatch):
    graph = netspec.load(ROOT / "specs" / "xor.yaml")
    text = netspec.generate(graph, "torch")
    assert text.count('"""The `xor` network."""') == 0
    marked = text.replace("class Xor(nn.Module):\n", "class Xor(nn.Module):\n    marker = 1\n", 1)
    assert marked != text
    monkeypatch.setattr(T, "generate", lambda g: marked)
    module = netspec.compile(graph, "torch")
    assert type(module).__name__ == "Xor" and type(module).marker == 1
    assert type(module).__module__.startswith("netspec_torch_xor_")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_same_results_on_cuda(all_ops):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    w = random_weights(all_ops, seed=1)
    x = random_inputs(all_ops, batch=2, seed=1, dynamic=4)
    module = netspec.compile(all_ops, "torch", w).cuda()
    with torch.no_grad():
        ys = module(*(torch.from_numpy(x[k]).cuda() for k in all_ops.inputs))
    for a, b in zip(ys, run(all_ops, w, x), strict=True):
        assert_close(a.cpu().numpy(), b, "cuda vs cpu")
