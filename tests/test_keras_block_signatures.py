"""Keras block functions take the block's declared params and write the spec's own expressions.

Every check reads the generated source with `ast` (never by guessing from numbers): a block is
`def unit(x, width, name, stride=1)` (inputs, required params, the layer-name prefix, params with
their declared defaults), attributes written with params render the spec's expression, uses pass
their arguments, and `build_model` takes the spec params its layers are written with. Some specs
are also built and run against the float64 reference (Keras tests).
"""

from __future__ import annotations

import ast

import pytest
from conftest import ROOT, spec

import netspec


def source(graph) -> str:
    return netspec.generate(graph, "keras")


def functions(src: str) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)}


def signature(fn: ast.FunctionDef) -> list[str]:
    """`x, width, name, stride=1` as a list of `arg` / `arg=default` texts."""
    args = fn.args.args
    defaults = [None] * (len(args) - len(fn.args.defaults)) + list(fn.args.defaults)
    pairs = zip(args, defaults, strict=True)
    return [a.arg if d is None else f"{a.arg}={ast.unparse(d)}" for a, d in pairs]


def layer_calls(fn: ast.FunctionDef, cls: str) -> list[ast.Call]:
    """The constructor calls `layers.<cls>(...)` in a function."""
    return [
        n
        for n in ast.walk(fn)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == cls
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "layers"
    ]


def calls_of(fn: ast.FunctionDef, callee: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(fn)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == callee
    ]


def keywords(call: ast.Call) -> dict[str, str]:
    return {k.arg: ast.unparse(k.value) for k in call.keywords}


SQUEEZE = """
unit:
  params: {width: null}
  inputs: [x]
  layers:
    - {op: conv2d, name: squeeze, filters: "${width // 4}", kernel: 1}
"""


def test_the_issues_example():
    """`filters: ${width // 4}` used with width 16 and 32 on the same 8-channel input: one
    function with param `width`, `Conv2D(width // 4, 1, ...)`, uses passing 16 and 32."""
    graph = spec(
        "x: {shape: [8, 6, 6]}",
        """
        - {block: unit, name: a, width: 16, inputs: [x]}
        - {block: unit, name: b, width: 32, inputs: [x]}
        - {op: concat, inputs: [a, b]}
        """,
        blocks=SQUEEZE,
    )
    fns = functions(source(graph))
    assert [f for f in fns if f.startswith("unit")] == ["unit"]
    assert signature(fns["unit"]) == ["x", "width", "name"]
    (conv,) = layer_calls(fns["unit"], "Conv2D")
    assert [ast.unparse(a) for a in conv.args] == ["width // 4", "1"]
    assert keywords(conv)["name"] == "name + '.squeeze'"
    uses = calls_of(fns["build_model"], "unit")
    assert [keywords(c) for c in uses] == [
        {"width": "16", "name": "'a'"},
        {"width": "32", "name": "'b'"},
    ]


def test_a_value_equal_to_another_param_times_a_constant():
    """`filters: $depth` with depth = 2 * width at every use is still `depth`."""
    graph = spec(
        "x: {shape: [3, 6, 6]}",
        """
        - {block: unit, name: a, width: 8, depth: 16}
        - {block: unit, name: b, width: 4, depth: 8}
        """,
        blocks="""
        unit:
          params: {width: null, depth: null}
          layers:
            - {op: conv2d, name: c, filters: $depth, kernel: 3, padding: same}
            - {op: dense, name: d, units: $width}
        """,
    )
    fn = functions(source(graph))["unit"]
    assert signature(fn) == ["x", "width", "depth", "name"]
    (conv,) = layer_calls(fn, "Conv2D")
    (dense,) = layer_calls(fn, "Dense")
    assert ast.unparse(conv.args[0]) == "depth" and ast.unparse(dense.args[0]) == "width"


def test_nested_blocks_pass_expressions_and_defaults():
    """A use inside a block renders its arguments in the outer function's params; a param left
    to its declared default is not passed; a default written as an expression over an earlier
    param is computed at the top of the function."""
    graph = spec(
        "x: {shape: [4, 6, 6]}",
        """
        - {block: stage, name: s1, w: 2}
        - {block: stage, name: s2, w: 3, stride: 2}
        """,
        blocks="""
        unit:
          params: {width: null, stride: 1, expand: "${width * 2}"}
          layers:
            - {op: conv2d, name: conv, filters: $expand, kernel: 3, stride: $stride,
               padding: same}
        stage:
          params: {w: null, stride: 1}
          layers:
            - {block: unit, name: u, width: "${w * 4}", stride: $stride}
            - {block: unit, name: v, width: $w}
        """,
    )
    src = source(graph)
    fns = functions(src)
    assert signature(fns["unit"]) == ["x", "width", "name", "stride=1", "expand=None"]
    assert "    if expand is None:\n        expand = width * 2\n" in src
    (conv,) = layer_calls(fns["unit"], "Conv2D")
    assert ast.unparse(conv.args[0]) == "expand" and keywords(conv)["strides"] == "stride"
    assert signature(fns["stage"]) == ["x", "w", "name", "stride=1"]
    u, v = calls_of(fns["stage"], "unit")
    assert keywords(u) == {"width": "w * 4", "stride": "stride", "name": "name + '.u'"}
    assert keywords(v) == {"width": "w", "name": "name + '.v'"}
    s1, s2 = calls_of(fns["build_model"], "stage")
    assert keywords(s1) == {"w": "2", "name": "'s1'"}
    assert keywords(s2) == {"w": "3", "stride": "2", "name": "'s2'"}


def test_hostile_param_names():
    """Params called like the block's input (`x`), the module's names (`layers`, `keras`) and a
    spec param called `name`: the function's arguments are renamed, the expressions follow."""
    graph = spec(
        "x: {shape: [8, 6, 6]}",
        """
        - {block: unit, name: a, x: 4, layers: 3, keras: 3, inputs: [x]}
        - {op: conv2d, name: top, filters: $name, kernel: 1}
        """,
        params="{name: 5}",
        blocks="""
        unit:
          params: {x: null, layers: null, keras: 1}
          inputs: [x]
          layers:
            - {op: conv2d, name: conv, filters: "${x + layers}", kernel: $keras}
        """,
    )
    src = source(graph)
    fns = functions(src)
    args = signature(fns["unit"])
    assert args[0] == "x" and args[-2] == "name" and args[-1] == "keras_=1"
    x_arg, layers_arg = args[1], args[2]
    assert {x_arg, layers_arg}.isdisjoint({"x", "layers", "keras", "name"})
    (conv,) = layer_calls(fns["unit"], "Conv2D")
    assert [ast.unparse(a) for a in conv.args] == [f"{x_arg} + {layers_arg}", "keras_"]
    assert keywords(calls_of(fns["build_model"], "unit")[0]) == {
        x_arg: "4",
        layers_arg: "3",
        "keras_": "3",
        "name": "'a'",
    }
    # the spec param `name` is build_model's keyword argument, used by the top-level layer
    assert signature(fns["build_model"]) == ["name=5"]
    assert ast.unparse(layer_calls(fns["build_model"], "Conv2D")[0].args[0]) == "name"


def test_build_model_takes_the_spec_params_its_layers_use():
    graph = netspec.load(
        ROOT / "specs" / "resnet18.yaml",
        params={"classes": 10},
    )
    fns = functions(source(graph))
    assert signature(fns["build_model"]) == ["classes=10"]
    assert signature(fns["basic"]) == ["x", "filters", "name"]
    assert signature(fns["basic_down"]) == ["x", "filters", "name", "stride=2"]


def test_a_spec_param_inside_a_block_is_its_value():
    """Block functions are module-level: a spec param they use is written as its value."""
    graph = spec(
        "x: {shape: [6]}",
        "- {block: unit, name: u, k: 3}",
        params="{scale: 2}",
        blocks="""
        unit:
          params: {k: null}
          layers:
            - {op: dense, name: d, units: "${k * scale}"}
        """,
    )
    fn = functions(source(graph))["unit"]
    assert ast.unparse(layer_calls(fn, "Dense")[0].args[0]) == "k * 2"


@pytest.mark.parametrize(
    "case",
    ["squeeze", "nested", "hostile"],
)
def test_expression_specs_run(case, keras):
    """The functions compute what the spec says (Keras against the float64 reference)."""
    from test_keras_target import check_parity

    from netspec.targets import keras as target

    graphs = {
        "squeeze": lambda: spec(
            "x: {shape: [8, 6, 6]}",
            """
            - {block: unit, name: a, width: 16, inputs: [x]}
            - {block: unit, name: b, width: 32, inputs: [x]}
            - {op: concat, inputs: [a, b]}
            """,
            blocks=SQUEEZE,
        ),
        "nested": lambda: spec(
            "x: {shape: [4, 6, 6]}",
            """
            - {block: stage, name: s1, w: 2}
            - {block: stage, name: s2, w: 3, stride: 2}
            """,
            blocks="""
            unit:
              params: {width: null, stride: 1, expand: "${width * 2}"}
              layers:
                - {op: conv2d, name: conv, filters: $expand, kernel: 3, stride: $stride,
                   padding: same}
            stage:
              params: {w: null, stride: 1}
              layers:
                - {block: unit, name: u, width: "${w * 4}", stride: $stride}
                - {block: unit, name: v, width: $w}
            """,
        ),
        "hostile": lambda: spec(
            "x: {shape: [8, 6, 6]}",
            "- {block: unit, name: a, x: 4, layers: 3, keras: 3, inputs: [x]}",
            blocks="""
            unit:
              params: {x: null, layers: null, keras: 1}
              inputs: [x]
              layers:
                - {op: conv2d, name: conv, filters: "${x + layers}", kernel: $keras}
            """,
        ),
    }
    check_parity(target, graphs[case](), batch=2)


def test_list_and_mapping_params():
    """A param whose value is a list or a mapping (kernel sizes, an activation) decides Keras'
    layers in each function, which says so; it is never a mutable default."""
    graph = spec(
        "x: {shape: [3, 6, 6]}",
        """
        - {block: unit, name: a, act: {op: leaky_relu, alpha: 0.1}, ks: [3, 1]}
        - {block: unit, name: b}
        """,
        blocks="""
        unit:
          params: {act: {op: relu}, ks: [1, 3]}
          layers:
            - {op: conv2d, name: c, filters: 2, kernel: $ks, activation: $act, padding: same}
        """,
    )
    src = source(graph)
    fns = functions(src)
    assert signature(fns["unit"]) == ["x", "name"] and signature(fns["unit_2"]) == ["x", "name"]
    assert "with act: {op: leaky_relu, alpha: 0.1}, ks: [3, 1]." in ast.get_docstring(fns["unit"])
    (conv,) = layer_calls(fns["unit_2"], "Conv2D")
    assert ast.unparse(conv.args[1]) == "(1, 3)" and keywords(conv)["activation"] == "'relu'"
