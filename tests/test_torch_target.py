"""The PyTorch target: generated source, block classes, names, weights, and whole graphs
against the float64 reference (tools/reference.py, built from the op records' numpy references).

Per-op results on every target, and the emitter table, are tests/test_ops.py's. Results must
agree within the design page's parity bound (`assert_close`). Inputs are tiny.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest
from conftest import ROOT, SPECS, ruff_clean, spec

import netspec
from netspec.build import build
from netspec.targets.torch.codegen import HELPERS
from netspec.weights import WeightsError
from tools.reference import reference as float64_reference
from tools.testing import assert_close, random_inputs, random_weights

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


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


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
    """Float64 results of the small graphs below, from the op records' numpy references."""
    return list(float64_reference(graph, w, x).values())


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
        if not isinstance(cls, ast.ClassDef) or fn is None or cls.name in HELPERS:
            continue  # helper classes are fixed source (codegen.HELPERS), not a spec's forward
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
    from tools import randspec

    graphs = [netspec.load(p) for p in SPECS]
    graphs += [all_ops_graph(), netspec.loads(HOSTILE), netspec.loads(SMALL_RESNET)]
    # 98, 132 (and 3, 13, 18...): a recurrent layer's final state, after its input's last read
    graphs += [randspec.generate(seed).graph for seed in [*range(40), 98, 132]]
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
    # the training script too when the spec has a `training:` section
    want = ["xor_torch.py"] + (["xor_train_torch.py"] if graph.training is not None else [])
    assert files == [tmp_path / f for f in want]
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
