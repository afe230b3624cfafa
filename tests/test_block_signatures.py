"""PyTorch block classes take the spec's own params: the generated `__init__` signatures are
checked against each block's declared params (names, order, defaults) by parsing the source with
`ast`, attributes written with expressions must appear as those expressions, and the modules
must still compute the float64 reference with the canonical weight keys.

The helpers (`init_params`, `declared`, `check_signature`) read only the source text and the
IR, so a Keras check can use them too.
"""

from __future__ import annotations

import ast

import pytest
from conftest import ruff_clean, spec

import netspec
from netspec.ir import REQUIRED
from tools.testing import assert_close, random_inputs, random_weights

torch = pytest.importorskip("torch")


# -- helpers (framework-neutral: source text and IR) --------------------------------------------
def function(tree: ast.Module, cls: str | None, name: str) -> ast.FunctionDef:
    """Function `name` at module level (`cls` None) or in class `cls`."""
    body = tree.body
    if cls is not None:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    return next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)


def init_params(fn: ast.FunctionDef) -> list[tuple[str, object]]:
    """(name, default or REQUIRED) of every parameter but `self`, keyword-only ones included;
    a default is a literal's value."""
    a = fn.args
    pos = [p for p in a.args if p.arg != "self"]
    defaults = [REQUIRED] * (len(pos) - len(a.defaults)) + [ast.literal_eval(d) for d in a.defaults]
    out = list(zip([p.arg for p in pos], defaults, strict=True))
    for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        out.append((p.arg, REQUIRED if d is None else ast.literal_eval(d)))
    return out


def declared(graph, block: str) -> list[tuple[str, object]]:
    """The block's declared params as (name, default or REQUIRED); a default written as an
    expression is None (computed in the body)."""
    out = []
    for p in graph.blocks[block].params.values():
        default = None if p.expr is not None else p.default
        out.append((p.name, tuple(default) if isinstance(default, list) else default))
    return out


def check_signature(graph, source: str, cls: str, block: str, rename=None, extra=()) -> None:
    """Class `cls`'s `__init__` takes `extra` (names, required) then the block's declared params
    in declared order with their defaults (`rename`: declared name -> the legal name)."""
    rename = rename or {}
    got = init_params(function(ast.parse(source), cls, "__init__"))
    want = [(x, REQUIRED) for x in extra]
    want += [(rename.get(n, n), d) for n, d in declared(graph, block)]
    assert got == want


def check_against_reference(graph, seed: int = 0) -> torch.nn.Module:
    """The compiled module's keys are the canonical keys; its outputs equal the float64
    reference."""
    from tools.reference import reference

    w = random_weights(graph, seed=seed)
    module = netspec.compile(graph, "torch", w)
    keys = [k for k in module.state_dict() if not k.endswith("num_batches_tracked")]
    assert keys == list(graph.weight_shapes())
    x = random_inputs(graph, batch=2, seed=seed)
    with torch.no_grad():
        ys = module(*(torch.from_numpy(x[k]) for k in graph.inputs))
    ys = ys if isinstance(ys, tuple) else (ys,)
    want = reference(graph, w, x)
    for y, (name, ref) in zip(ys, want.items(), strict=True):
        assert_close(y.numpy(), ref, f"torch vs reference: {name}")
    return module


def generated(graph) -> tuple[str, object]:
    source = netspec.generate(graph, "torch")
    ruff_clean(source, "generated torch source")
    from netspec.targets.python.run import run_source

    return source, run_source(source, "torch", graph.name)


# -- the example ------------------------------------------------------------------------
UNIT = """
unit:
  params: {width: null}
  layers:
    - {op: conv2d, name: squeeze, filters: "${width // 4}", kernel: 1}
    - {op: relu, name: act}
"""


def test_expression_attribute_is_the_spec_expression():
    graph = spec(
        "x: {shape: [8, 5, 5]}",
        """
        - {block: unit, name: a, width: 16, inputs: [x]}
        - {block: unit, name: b, width: 32, inputs: [x]}
        """,
        outputs="[a, b]",
        blocks=UNIT,
        name="units",
    )
    source, mod = generated(graph)
    assert source.count("class Unit(nn.Module):") == 1  # one class for both uses
    check_signature(graph, source, "Unit", "unit")
    assert "def __init__(self, width: int):" in source
    assert "self.squeeze = nn.Conv2d(8, width // 4, 1)" in source  # same input: literal 8
    assert "self.a = Unit(width=16)" in source and "self.b = Unit(width=32)" in source
    # the parameter is real: another width gives another layer
    assert mod.Unit(width=64).squeeze.out_channels == 16
    check_against_reference(graph)


def test_value_equal_to_another_param_times_a_constant():
    """`filters` equals `base * 2` at every use: the spec wrote `base * 2` for the conv and
    `$filters` for the dense, and each keeps its own expression."""
    graph = spec(
        "x: {shape: [4, 3, 3]}",
        """
        - {block: pair, name: p1, filters: 8, base: 4, inputs: [x]}
        - {block: pair, name: p2, filters: 16, base: 8, inputs: [x]}
        """,
        outputs="[p1, p2]",
        blocks="""
        pair:
          params: {filters: null, base: null}
          layers:
            - {op: conv2d, name: conv, filters: "${base * 2}", kernel: 1}
            - {op: global_avg_pool, name: pool}
            - {op: dense, name: fc, units: $filters}
        """,
        name="pairs",
    )
    source, mod = generated(graph)
    check_signature(graph, source, "Pair", "pair")
    assert "self.conv = nn.Conv2d(4, base * 2, 1)" in source
    # the dense's input features: the pool keeps the conv's channels
    assert "self.fc = nn.Linear(base * 2, filters)" in source
    assert "self.p2 = Pair(filters=16, base=8)" in source
    layer = mod.Pair(filters=5, base=7)
    assert (layer.conv.out_channels, layer.fc.in_features, layer.fc.out_features) == (14, 14, 5)
    check_against_reference(graph)


# -- nested blocks, spec-level params, defaults -------------------------------------------------
NESTED = """
basic:
  params: {filters: null, stride: 1}
  layers:
    - {op: conv2d, name: conv, filters: $filters, kernel: 3, stride: $stride, padding: 1}
    - {op: batch_norm, name: bn}
    - {op: relu, name: relu}
stage:
  params: {width: null, mid: "${width // 2}"}
  layers:
    - {block: basic, name: first, filters: "${width * 2}", stride: 2}
    - {block: basic, name: second, filters: "${width * 2}"}
    - {op: conv2d, name: squeeze, filters: $mid, kernel: 1}
    - {op: conv2d, name: head, filters: $out, kernel: 1}
"""


def test_nested_blocks_pass_their_expressions_down():
    graph = spec(
        "x: {shape: [3, 8, 8]}",
        """
        - {block: stage, name: s1, width: 4}
        - {block: stage, name: s2, width: 8, mid: 3}
        """,
        blocks=NESTED,
        params="{out: 5}",
        name="nested",
    )
    source, mod = generated(graph)
    # the spec-level param `out` is an extra argument of the class that uses it
    check_signature(graph, source, "Stage", "stage", extra=["in_channels", "out"])
    check_signature(graph, source, "Basic", "basic", extra=["in_channels"])
    assert "self.first = Basic(in_channels=in_channels, filters=width * 2, stride=2)" in source
    # the second's input is the first's output: its channels are what `first` was given
    assert "self.second = Basic(in_channels=width * 2, filters=width * 2)" in source
    assert "self.squeeze = nn.Conv2d(width * 2, mid, 1)" in source
    assert "self.head = nn.Conv2d(mid, out, 1)" in source
    # a default written as an expression: None, computed from the params above it
    assert "if mid is None:\n            mid = width // 2\n" in source
    assert "self.s1 = Stage(in_channels=3, out=out, width=4)" in source
    # s2's input is s1's output, whose channels the spec-level `out` set
    assert "self.s2 = Stage(in_channels=out, out=out, width=8, mid=3)" in source
    assert "def __init__(self, out: int = 5):" in source
    stage = mod.Stage(in_channels=2, out=7, width=10)
    assert (stage.squeeze.out_channels, stage.head.out_channels) == (5, 7)
    assert "eps=" not in source and "momentum=" not in source  # PyTorch's defaults
    check_against_reference(graph)


def test_model_class_takes_the_spec_params():
    graph = netspec.load("specs/student_score.yaml")
    source, mod = generated(graph)
    assert init_params(function(ast.parse(source), "StudentScore", "__init__")) == [("hidden", 8)]
    assert "nn.Linear(2, hidden)" in source and "nn.Linear(hidden, 1)" in source
    linears = [m for m in mod.StudentScore(hidden=3).modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 3), (3, 1)]
    # --set: the resolved value is the default
    graph = netspec.load("specs/student_score.yaml", params={"hidden": 4})
    assert "def __init__(self, hidden: int = 4):" in netspec.generate(graph, "torch")


def test_required_after_default_is_keyword_only():
    graph = spec(
        "x: {shape: [4]}",
        "- {block: head, name: h, units: 3}",
        blocks="""
        head:
          params: {scale: 2, units: null}
          layers:
            - {op: dense, name: fc, units: "${units * scale}"}
        """,
        name="kwonly",
    )
    source, _ = generated(graph)
    assert "def __init__(self, *, scale: int = 2, units: int):" in source
    check_signature(graph, source, "Head", "head")
    assert "self.fc = nn.Linear(4, units * scale)" in source
    check_against_reference(graph)


# -- hostile param names ------------------------------------------------------------------------
def test_hostile_param_names_are_renamed():
    graph = spec(
        "x: {shape: [2, 4, 4]}",
        """
        - {block: b, name: b1, self: 4, nn: 3, F: 1, torch: 2}
        - {block: b, name: b2, self: 6, nn: 1, F: 1, torch: 3}
        """,
        blocks="""
        b:
          params: {self: null, nn: null, F: 1, torch: null}
          layers:
            - {op: conv2d, name: conv, filters: "${self + torch}", kernel: $nn, padding: same,
               stride: $F}
        """,
        params="{super: 2}",
        name="hostile",
    )
    source, mod = generated(graph)
    rename = {"self": "self_", "nn": "nn_", "F": "F_", "torch": "torch_"}
    # `padding: same` is resolved to numbers that differ between the uses: an explicit argument
    check_signature(graph, source, "B", "b", rename, extra=["in_channels", "conv_padding"])
    conv = "nn.Conv2d(in_channels, self_ + torch_, nn_, stride=F_, padding=conv_padding)"
    assert conv in source
    assert "self.b1 = B(in_channels=2, conv_padding=1, self_=4, nn_=3, torch_=2)" in source
    assert "def __init__(self, super_: int = 2):" in source
    assert mod.B(in_channels=1, conv_padding=0, self_=2, nn_=3, torch_=5).conv.out_channels == 7
    check_against_reference(graph)


def test_generated_text_is_byte_identical_across_runs():
    graph = spec(
        "x: {shape: [3, 8, 8]}",
        "- {block: stage, name: s1, width: 4}\n- {block: stage, name: s2, width: 8}",
        blocks=NESTED,
        params="{out: 5}",
    )
    texts = {netspec.generate(graph, "torch") for _ in range(3)}
    assert len(texts) == 1


def test_list_and_mapping_params():
    """A list default is a tuple, a mapping default is set in the body (no mutable defaults);
    a list attribute with one item written as an expression keeps that item's expression."""
    graph = spec(
        "x: {shape: [2, 6, 6]}",
        """
        - {block: b, name: b1, inputs: [x]}
        - {block: b, name: b2, k: [1, 3], act: {op: leaky_relu, alpha: 0.1}, inputs: [x]}
        """,
        blocks="""
        b:
          params: {k: [3, 3], act: {op: relu}, j: 3}
          layers:
            - {op: conv2d, name: c, filters: 2, kernel: $k, activation: $act}
            - {op: conv2d, name: d, filters: 2, kernel: [$j, 1]}
        """,
        outputs="[b1, b2]",
        name="lists",
    )
    source, mod = generated(graph)
    for cls in ("B", "B2"):  # the activation is in `forward`: two classes
        got = init_params(function(ast.parse(source), cls, "__init__"))
        assert got == [("k", (3, 3)), ("act", None), ("j", 3)]
    assert 'if act is None:\n            act = {"op": "relu"}\n' in source
    assert "self.c = nn.Conv2d(2, 2, k)" in source and "nn.Conv2d(2, 2, (j, 1))" in source
    assert 'self.b2 = B2(k=(1, 3), act={"op": "leaky_relu", "alpha": 0.1})' in source
    assert mod.B(j=5).d.kernel_size == (5, 1)
    check_against_reference(graph)
