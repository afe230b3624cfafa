"""Spec expressions kept in the IR: `Expr` objects (parse, names, render, evaluate), `Node.exprs`,
`BlockUse.args`, `Graph.blocks` and `Graph.param_exprs`, and that keeping them changes no value.

Rendered Python is checked against Python itself: a rendered expression, evaluated by Python on
the same params, gives what netspec's evaluator gives (the test may use Python's eval on text it
generated; netspec never does).
"""

from __future__ import annotations

import json

import pytest
from conftest import SPECS
from hypothesis import given, settings
from hypothesis import strategies as st

import netspec
from netspec import expr
from netspec.ir import REQUIRED, BlockDef, BlockParam
from netspec.weights import init_weights


def loads(layers, params=None, blocks=None, overrides=None, shape=(8,)) -> netspec.Graph:
    spec = {"netspec": 1, "name": "t", "inputs": {"x": {"shape": list(shape)}}}
    if params is not None:
        spec["params"] = params
    if blocks is not None:
        spec["blocks"] = blocks
    spec["layers"] = layers
    return netspec.loads(json.dumps(spec), overrides)


# -- the Expr object ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rendered", "names"),
    [
        ("$w", "w", ("w",)),
        ("${w}", "w", ("w",)),
        ("${width // 4}", "width // 4", ("width",)),
        ("${(a + b) * c}", "(a + b) * c", ("a", "b", "c")),
        ("${a + (b * c)}", "a + b * c", ("a", "b", "c")),
        ("${a - (b - c)}", "a - (b - c)", ("a", "b", "c")),
        ("${(a - b) - c}", "a - b - c", ("a", "b", "c")),
        ("${a // (b * c)}", "a // (b * c)", ("a", "b", "c")),
        ("${a * b // c}", "a * b // c", ("a", "b", "c")),
        ("${-(a + 1)}", "-(a + 1)", ("a",)),
        ("${- -a}", "a", ("a",)),
        ("${2 * -a}", "2 * -a", ("a",)),
        ("${+4}", "4", ()),
        ("${((a))}", "a", ("a",)),
        ("${a * a + b}", "a * a + b", ("a", "b")),
        ("${1.5 * 2e3 / a}", "1.5 * 2000.0 / a", ("a",)),
        ("${a % 3 % 2}", "a % 3 % 2", ("a",)),
        ("${a % (3 % 2)}", "a % (3 % 2)", ("a",)),
    ],
)
def test_expr_render_and_names(text, rendered, names):
    e = expr.parse(text)
    assert e.text == text and str(e) == text
    assert e.render() == rendered
    assert e.names() == names


def test_render_renames_each_param():
    e = expr.parse("${(width + extra) // 4}")
    assert e.render(lambda n: f"self.{n}") == "(self.width + self.extra) // 4"


def test_whole_param_keeps_any_value():
    e = expr.parse("$pad")
    assert e.whole and e.evaluate({"pad": "same"}) == "same"
    assert not expr.parse("${pad}").whole
    with pytest.raises(expr.ExprError, match="not a number"):
        expr.parse("${pad}").evaluate({"pad": "same"})


def test_parse_once_and_errors_are_syntax_only():
    assert expr.parse("${a + 1}") is expr.parse("${a + 1}")
    e = expr.parse("${unknown * 2}")  # names are resolved at evaluation, in a scope
    with pytest.raises(expr.ExprError, match="unknown param 'unknown'"):
        e.evaluate({})
    for bad in ("${1 +}", "${abs(a)}", "$a b", "${a"):
        with pytest.raises(expr.ExprError):
            expr.parse(bad)


def test_find_mirrors_the_value():
    k = expr.parse("$k")
    assert expr.find([k.text, 3]) == [k, None]
    assert expr.find([[1, k.text], [0, 0]]) == [[None, k], None]
    assert expr.find({"op": "leaky_relu", "alpha": "$a"}) == {"alpha": expr.parse("$a")}
    assert expr.find([1, 2]) is None and expr.find(3) is None and expr.find("same") is None


TERMS = st.recursive(
    st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 20).map(str), st.just("2.5")),
    lambda inner: st.one_of(
        st.builds(
            lambda x, op, y: f"{x} {op} {y}", inner, st.sampled_from("+ - * / // %".split()), inner
        ),
        st.builds(lambda x: f"({x})", inner),
        st.builds(lambda x: f"-{x}", inner),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(TERMS, st.integers(-9, 9), st.integers(1, 9), st.sampled_from([3, -2, 0.5]))
def test_rendered_python_computes_what_netspec_computes(text, a, b, c):
    env = {"a": a, "b": b, "c": c}
    e = expr.parse("${" + text + "}")
    try:
        want = e.evaluate(env)
    except expr.ExprError:
        return
    got = eval(e.render(), {"__builtins__": {}}, dict(env))  # noqa: S307 - our own rendering
    assert got == want and type(got) is type(want), (text, e.render())
    # rendering is a fixed point: the rendered text parses to the same tree
    assert expr.parse("${" + e.render() + "}").tree == e.tree


# -- Node.exprs ------------------------------------------------------------------------------


def test_attribute_exprs_are_recorded_and_values_unchanged():
    g = loads(
        [
            {"op": "dense", "units": "${hidden * 2}", "activation": "relu"},
            {"op": "dense", "units": "$out", "bias": False},
            {"op": "dropout", "rate": "${1 / 4}"},
        ],
        params={"hidden": 8, "out": "${hidden // 4}"},
    )
    d1, d2, drop = g.nodes
    assert d1.exprs == {"units": expr.parse("${hidden * 2}")} and d1.attrs["units"] == 16
    assert d2.exprs == {"units": expr.parse("$out")} and d2.attrs["units"] == 2
    assert drop.exprs["rate"].render() == "1 / 4" and drop.attrs["rate"] == 0.25
    assert g.param_exprs == {"out": expr.parse("${hidden // 4}")}
    assert g.params == {"hidden": 8, "out": 2}


def test_list_items_and_activation_mappings():
    g = loads(
        [
            {
                "op": "conv2d",
                "filters": 4,
                "kernel": ["$k", 3],
                "padding": [["${k // 2}", 1], [1, 1]],
                "activation": {"op": "leaky_relu", "alpha": "$a"},
            },
            {"op": "conv2d", "filters": 4, "kernel": "$kk", "padding": "$pad"},
        ],
        params={"k": 3, "a": 0.2, "kk": [1, 1], "pad": "same"},
        shape=(3, 8, 8),
    )
    c1, c2 = g.nodes
    assert c1.exprs["kernel"] == [expr.parse("$k"), None]
    assert c1.exprs["padding"] == [[expr.parse("${k // 2}"), None], None]
    assert c1.exprs["activation"] == {"alpha": expr.parse("$a")}
    assert "filters" not in c1.exprs and "stride" not in c1.exprs
    assert c2.exprs == {"kernel": expr.parse("$kk"), "padding": expr.parse("$pad")}
    literal = loads(
        [
            {
                "op": "conv2d",
                "filters": 4,
                "kernel": [3, 3],
                "padding": [[1, 1], [1, 1]],
                "activation": {"op": "leaky_relu", "alpha": 0.2},
            },
            {"op": "conv2d", "filters": 4, "kernel": [1, 1], "padding": "same"},
        ],
        shape=(3, 8, 8),
    )
    assert [n.attrs for n in g.nodes] == [n.attrs for n in literal.nodes]
    assert [n.exprs for n in literal.nodes] == [{}, {}]


def test_literal_spec_has_no_exprs():
    g = netspec.load(next(p for p in SPECS if p.stem == "mlp"))
    assert all(not n.exprs for n in g.nodes if "$" not in json.dumps(n.attrs))


def test_overrides_keep_the_expression_and_update_the_value():
    layers = [{"op": "dense", "units": "$wide"}, {"op": "dense", "units": "${base + 1}"}]
    params = {"base": 4, "wide": "${base * 2}"}
    g = loads(layers, params=params, overrides={"base": 5})
    assert [n.attrs["units"] for n in g.nodes] == [10, 6]
    assert g.nodes[0].exprs["units"] == expr.parse("$wide")
    assert g.nodes[1].exprs["units"].render() == "base + 1"
    assert g.param_exprs == {"wide": expr.parse("${base * 2}")}
    g = loads(layers, params=params, overrides={"wide": 3})  # an override is a literal
    assert g.param_exprs == {} and g.nodes[0].attrs["units"] == 3
    assert g.nodes[0].exprs["units"] == expr.parse("$wide")


def test_repeat_copies_each_keep_the_expression():
    g = loads([{"op": "dense", "units": "${n + 1}", "repeat": "$n"}], params={"n": 3})
    assert len(g.nodes) == 3
    assert all(n.exprs == {"units": expr.parse("${n + 1}")} for n in g.nodes)
    assert all(n.attrs["units"] == 4 for n in g.nodes)


# -- blocks -------------------------------------------------------------------------------------

UNIT = {
    "params": {"width": None, "stride": 1, "mid": "${width // 4}"},
    "layers": [
        {"op": "conv2d", "name": "squeeze", "filters": "${width // 4}", "kernel": 1},
        {"op": "conv2d", "name": "expand", "filters": "$width", "kernel": 3, "padding": 1},
        {"op": "conv2d", "name": "mid", "filters": "$mid", "kernel": 1, "stride": "$stride"},
    ],
    "description": "a bottleneck",
}


def test_block_defs_declare_params_in_order_with_defaults():
    g = loads([{"block": "unit", "width": 16}], blocks={"unit": UNIT}, shape=(3, 8, 8))
    assert list(g.blocks) == ["unit"]
    b = g.blocks["unit"]
    assert isinstance(b, BlockDef)
    assert list(b.params) == ["width", "stride", "mid"]
    assert b.params["width"] == BlockParam("width", REQUIRED, None) and b.params["width"].required
    assert b.params["stride"] == BlockParam("stride", 1, None)
    assert b.params["mid"].default == "${width // 4}"
    assert b.params["mid"].expr == expr.parse("${width // 4}")
    assert (b.inputs, b.outputs, b.description) == (["x"], ["out"], "a bottleneck")
    assert repr(REQUIRED) == "REQUIRED"


def test_block_use_args_and_scope_of_names():
    g = loads(
        [
            {"block": "unit", "width": 16},
            {"block": "unit", "width": "$w", "stride": "${s + 1}"},
            {"block": "unit", "width": "${2 * w}"},
        ],
        params={"w": 32, "s": 1},
        blocks={"unit": UNIT},
        shape=(3, 8, 8),
    )
    u1, u2, u3 = g.uses.values()
    assert u1.args == {} and u1.params == {"width": 16, "stride": 1, "mid": 4}
    assert u2.args == {"width": expr.parse("$w"), "stride": expr.parse("${s + 1}")}
    assert u2.params == {"width": 32, "stride": 2, "mid": 8}
    assert u3.args == {"width": expr.parse("${2 * w}")} and u3.params["width"] == 64
    squeeze = g.node("unit_3.squeeze")
    assert squeeze.exprs["filters"].render() == "width // 4" and squeeze.attrs["filters"] == 16
    # a name inside a body is the innermost use's block param when the block declares it
    block = g.blocks[g.uses[".".join(squeeze.scope)].block]
    assert all(n in block.params for n in squeeze.exprs["filters"].names())
    # names at a top-level use are spec params
    assert all(n in g.params for n in u2.args["stride"].names())


def test_nested_blocks_resolve_args_in_the_enclosing_block():
    blocks = {
        "inner": {
            "params": {"units": None},
            "layers": [{"op": "dense", "units": "${units + hidden}"}],
        },
        "outer": {
            "params": {"n": 2, "size": 4},
            "layers": [{"block": "inner", "units": "${size * 2}", "repeat": "$n"}],
        },
    }
    g = loads([{"block": "outer", "size": "$hidden"}], params={"hidden": 3}, blocks=blocks)
    assert list(g.blocks) == ["inner", "outer"]
    outer = g.uses["outer_1"]
    assert outer.args == {"size": expr.parse("$hidden")} and outer.params["size"] == 3
    for name in ("outer_1.inner_1", "outer_1.inner_2"):
        use = g.uses[name]
        assert use.args == {"units": expr.parse("${size * 2}")} and use.params["units"] == 6
        # the arg's names live in the scope of the use: the enclosing block's params
        assert g.blocks[g.uses[".".join(use.scope)].block].params.keys() >= {"size"}
    dense = g.node("outer_1.inner_1.dense_1")
    assert dense.attrs["units"] == 9
    names = dense.exprs["units"].names()
    inner = g.blocks["inner"]
    assert [n for n in names if n in inner.params] == ["units"]
    assert [n for n in names if n not in inner.params] == ["hidden"]  # a spec-level param


def test_block_default_expression_must_parse():
    blocks = {"b": {"params": {"k": "${1 +}"}, "layers": ["relu"]}}
    with pytest.raises(netspec.SpecError, match="ends too early"):
        loads([{"block": "b", "k": 1}], blocks=blocks)


# -- nothing else changes --------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_weights_keys_and_values_do_not_depend_on_exprs(spec):
    g = netspec.load(spec)
    keys = list(g.weight_shapes())
    for n in g.nodes:
        n.exprs = {}
    assert list(g.weight_shapes()) == keys
    w = init_weights(g, seed=0)
    assert list(w) == keys
