"""The core: YAML loader, expressions, params, blocks, repeat, shape rules, parameter counts,
and the consistency of the JSON Schema and the docs with the op table.

Expected shapes and counts are computed independently of netspec: by the formulas of the design
page written out here, or by PyTorch modules (torch is a test dependency).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, SPECS, run_cli

import netspec
from netspec import SpecError, expr, yamlload
from netspec.ops import ACTIVATIONS, OPS
from netspec.schema import build_schema, schema_text
from tools.docs import DOC, render

INVALID = ROOT / "tests" / "invalid"


def loads(
    layers, inputs=None, params=None, blocks=None, outputs=None, overrides=None, **top
) -> netspec.Graph:
    """A spec from Python data (JSON is YAML), validated and lowered."""
    spec = {"netspec": 1, "name": "t", "inputs": inputs or {"x": {"shape": [8]}}}
    if params is not None:
        spec["params"] = params
    if blocks is not None:
        spec["blocks"] = blocks
    spec["layers"] = layers
    if outputs is not None:
        spec["outputs"] = outputs
    spec.update(top)
    return netspec.loads(json.dumps(spec), overrides)


def out_shape(shape, layer, dtype="float32"):
    g = loads([layer], inputs={"x": {"shape": shape, "dtype": dtype}})
    return g.nodes[-1].shape


def error(*args, **kw) -> str:
    with pytest.raises(SpecError) as e:
        loads(*args, **kw)
    return str(e.value)


# -- loader: YAML 1.2 core schema, positions, refusals -------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("null", None),
        ("~", None),
        ("", None),
        ("Null", None),
        ("1e-5", 1e-5),
        ("1E3", 1000.0),
        ("-2.5", -2.5),
        (".5", 0.5),
        ("1.", 1.0),
        ("+3", 3),
        ("0755", 755),
        ("007", 7),
        ("-0", 0),
        ("0o755", 493),
        ("0x1F", 31),
        ("0xff", 255),
        ("0b101", "0b101"),
        ("1_000", "1_000"),
        ("-0x10", "-0x10"),
        ("0o8", "0o8"),
        ("1e", "1e"),
        (".inf", math.inf),
        ("-.inf", -math.inf),
        ("12:30", "12:30"),
        ("2024-01-01", "2024-01-01"),
    ],
)
def test_core_scalars(text, value):
    assert yamlload.core_scalar(text) == value
    assert type(yamlload.core_scalar(text)) is type(value)
    doc = yamlload.parse(f"v: {text}\n")
    assert doc.data["v"] == value


def test_nan_and_quoted_scalars():
    assert math.isnan(yamlload.core_scalar(".nan"))
    d = yamlload.parse('a: "1"\nb: \'true\'\nc: |\n  1\nd: !!str 5\ne: !!int "7"\nf: !!float 2\n')
    assert d.data == {"a": "1", "b": "true", "c": "1\n", "d": "5", "e": 7, "f": 2}


def test_positions_of_values_and_keys():
    doc = yamlload.parse("netspec: 1\nlayers:\n  - {op: dense, units: 4}\n  - relu\n")
    assert doc.where(("layers", 0, "units")) == (3, 24)
    assert doc.where(("layers", 0, "units"), key=True) == (3, 17)
    assert doc.where(("layers", 1)) == (4, 5)
    assert doc.where(("layers", 1, "missing")) == (4, 5)  # the nearest ancestor
    assert doc.where(()) == (1, 1)


def test_bom_and_crlf():
    text = "\ufeffnetspec: 1\r\nname: m\r\ninputs: {x: {shape: [2]}}\r\nlayers: [relu]\r\n"
    assert netspec.loads(text).name == "m"
    assert netspec.loads(text.encode("utf-8")).name == "m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "duplicate key 'a' (first at line 1, column 1)"),
        ("a: !!python/name:os.system x\n", "YAML tag '!!python/name:os.system' is not allowed"),
        ("a: !custom 1\n", "YAML tag '!custom' is not allowed"),
        ("a: !!int abc\n", "'abc' is not a valid !!int"),
        ("a: !!bool 1\n", "'1' is not a valid !!bool"),
        ("? [1, 2]\n: x\n", "expected a plain name as a mapping key"),
        ("a: &x 1\nb: {<<: {c: 1}}\n", "merge keys ('<<') are not supported"),
        ("a: *nothing\n", "found undefined alias"),
        ("a: \ud800\n", "lone surrogate"),
        ("a: 99999999999999999999\n", "is out of range"),
        ("a: " + "9" * 5000 + "\n", "is out of range"),
    ],
)
def test_loader_refusals(text, message):
    with pytest.raises(SpecError) as e:
        yamlload.parse(text)
    assert message in str(e.value)
    assert e.value.line is not None or "surrogate" not in message


def test_leading_zero_note_and_yaml11_hint():
    text = (INVALID / "octal_kernel.yaml").read_text()
    with pytest.raises(SpecError) as e:
        netspec.loads(text)
    assert e.value.note and "0o755" in e.value.note
    with pytest.raises(SpecError) as e:
        loads([{"op": "dense", "units": 2, "bias": "off"}])
    assert "YAML 1.2" in e.value.hint and "write false" in e.value.hint


# -- expressions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("10 - 2 - 3", 5),
        ("100 / 10 / 5", 2.0),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("-7 % 3", 2),
        ("7 / 2", 3.5),
        ("- -3", 3),
        ("2 * -3", -6),
        ("-2 * 3", -6),
        ("-(2 + 3)", -5),
        ("+4", 4),
        ("2e3", 2000.0),
        ("1.5 * 2", 3.0),
        ("a * b + 1", 13),
        ("a // 5 * 5", 10),
        ("(a + b) % 5", 3),
        ("a / 4", 3.0),
        ("  a  ", 12),
        ("8 // 2 // 2", 2),
        ("8 % 5 % 2", 1),
    ],
)
def test_expression_values(text, value):
    got = expr.resolve("${" + text + "}", {"a": 12, "b": 1})
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${}", "empty expression"),
        ("${1 +}", "ends too early"),
        ("${(1 + 2}", "missing ')'"),
        ("${1 + 2)}", "unexpected ')'"),
        ("${1 / 0}", "division by zero"),
        ("${a // (a - 12)}", "division by zero"),
        ("${5 % 0}", "division by zero"),
        ("${hidden * 2}", "unknown param 'hidden'"),
        ("${abs(a)}", "calls are not allowed"),
        ("${a ** 2}", "unexpected '*'"),
        ("${a.real}", "unexpected '.'"),
        ("${'a'}", "unexpected"),
        ("${s + 1}", "param 's' is 'text', not a number"),
        ("${1 + 2", "unterminated expression"),
        ("$", "is not a param reference"),
        ("$a b", "is not a param reference"),
        ("${" + "1+" * 150 + "1}", "longer than 200 characters"),
        ("${9223372036854775807 + 1}", "beyond 64-bit integers"),
        ("${1e308 * 10}", "not a finite number"),
    ],
)
def test_expression_errors(text, message):
    with pytest.raises(expr.ExprError) as e:
        expr.resolve(text, {"a": 12, "s": "text"})
    assert message in e.value.message


def test_unknown_param_suggestion():
    with pytest.raises(expr.ExprError) as e:
        expr.resolve("$hiden", {"hidden": 1, "rate": 0.5})
    assert e.value.hint == "did you mean '$hidden'?"


def test_expressions_in_specs():
    g = loads(
        [
            {"op": "dense", "units": "${hidden * 2}"},
            {"op": "dense", "units": "$out"},
            {"op": "dropout", "rate": "${1 / 4}"},
        ],
        params={"hidden": 8, "out": "${hidden // 4}"},
    )
    assert [n.shape for n in g.nodes] == [(16,), (2,), (2,)]
    assert g.nodes[2].attrs["rate"] == 0.25
    assert g.params == {"hidden": 8, "out": 2}
    # a float that is integral is accepted where an integer is needed
    assert loads([{"op": "dense", "units": "${8 / 2}"}]).nodes[0].attrs["units"] == 4


# -- params and --set ---------------------------------------------------------------------------


def test_params_overrides_flow_into_dependent_params():
    layers = [{"op": "dense", "units": "$wide"}]
    g = loads(layers, params={"base": 4, "wide": "${base * 2}"})
    assert g.nodes[0].shape == (8,)
    g = loads(layers, params={"base": 4, "wide": "${base * 2}"}, overrides={"base": 5})
    assert g.nodes[0].shape == (10,) and g.params == {"base": 5, "wide": 10}
    g = loads(layers, params={"base": 4, "wide": "${base * 2}"}, overrides={"wide": 3})
    assert g.nodes[0].shape == (3,)


def test_set_on_the_command_line():
    spec = ROOT / "specs" / "student_score.yaml"
    rc, out, err = run_cli(["inspect", spec, "--json", "--set", "hidden=16"])
    assert rc == 0, err
    assert json.loads(out)["parameters"] == 2 * 16 + 16 + 16 + 1
    rc, out, err = run_cli(["inspect", spec, "--json", "--set", "hiden=16"])
    assert rc == 2 and "did you mean 'hidden'?" in err and "Traceback" not in err
    digits = ROOT / "specs" / "digit_recognition.yaml"
    rc, out, err = run_cli(["validate", digits, "--set", "rate=1e-1", "--set", "hidden=0x10"])
    assert rc == 0, err
    g = netspec.load(digits, {"rate": 0.1, "hidden": 16})
    assert any(n.op == "dropout" and n.attrs["rate"] == 0.1 for n in g.nodes)


def test_set_unknown_param_without_params_section():
    with pytest.raises(SpecError) as e:
        loads(["relu"], overrides={"x": 1})
    assert "the spec has no param 'x'" in str(e.value)
    assert e.value.hint == "the spec declares no params"


def test_set_value_out_of_range():
    with pytest.raises(SpecError, match="out of range"):
        loads(["relu"], params={"p": 1}, overrides={"p": 2**70})


# -- layers: default names, repeat, references ----------------------------------------------------


def names(g: netspec.Graph) -> list[str]:
    return [n.name for n in g.nodes]


def test_default_names_count_named_layers_too():
    g = loads(
        [
            {"op": "dense", "name": "a", "units": 4},
            {"op": "dense", "units": 4},
            "relu",
            {"op": "relu", "name": "r"},
            "relu",
        ]
    )
    assert names(g) == ["a", "dense_2", "relu_1", "r", "relu_3"]
    assert [n.inputs for n in g.nodes] == [["x"], ["a"], ["dense_2"], ["relu_1"], ["r"]]
    assert g.outputs == {"relu_3": "relu_3"}


def test_repeat_without_name():
    g = loads([{"op": "dense", "units": 4, "repeat": 3}, "relu"])
    assert names(g) == ["dense_1", "dense_2", "dense_3", "relu_1"]
    assert [n.inputs for n in g.nodes] == [["x"], ["dense_1"], ["dense_2"], ["dense_3"]]


def test_repeat_with_name_refers_to_last_copy():
    g = loads(
        [
            {"op": "dense", "name": "n", "units": 4, "repeat": 3},
            {"op": "add", "inputs": ["n", "n_1"]},
        ]
    )
    assert names(g) == ["n_1", "n_2", "n_3", "add_1"]
    assert g.nodes[-1].inputs == ["n_3", "n_1"]
    # repeat: 1 keeps the name as written
    assert names(loads([{"op": "relu", "name": "n", "repeat": 1}])) == ["n"]


def test_repeat_only_first_copy_takes_inputs():
    g = loads(
        [
            {"op": "dense", "name": "a", "units": 8},
            {"op": "dense", "name": "b", "units": 8},
            {"op": "dense", "units": 8, "inputs": ["a"], "repeat": 2},
            {"op": "add", "inputs": ["dense_4", "b"]},
        ]
    )
    assert g.node("dense_3").inputs == ["a"] and g.node("dense_4").inputs == ["dense_3"]


def test_repeat_name_that_is_taken():
    msg = error([{"op": "relu", "name": "n"}, {"op": "relu", "name": "n", "repeat": 2}])
    assert "duplicate name: 'n' (the last copy)" in msg


def test_repeat_from_param():
    g = loads([{"op": "relu", "repeat": "$depth"}], params={"depth": 4})
    assert len(g.nodes) == 4


def test_outputs_mapping_and_several_outputs():
    g = loads(
        [{"op": "dense", "name": "a", "units": 4}, {"op": "dense", "name": "b", "units": 2}],
        outputs={"first": "a", "second": "b"},
    )
    assert g.outputs == {"first": "a", "second": "b"}
    g = loads([{"op": "dense", "name": "a", "units": 4}], outputs="a")
    assert g.outputs == {"a": "a"}


def test_several_inputs_need_explicit_inputs():
    msg = error(["relu"], inputs={"a": {"shape": [2]}, "b": {"shape": [2]}})
    assert "several inputs" in msg
    g = loads(
        [{"op": "add", "inputs": ["a", "b"]}],
        inputs={"a": {"shape": ["seq", 2]}, "b": {"shape": ["seq", 1]}},
    )
    assert g.nodes[0].shape == ("seq", 2)


# -- blocks -----------------------------------------------------------------------------------

BASIC = {
    "params": {"width": None, "scale": 2},
    "inputs": ["x"],
    "layers": [
        {"op": "dense", "name": "fc1", "units": "${width * scale}"},
        {"op": "dense", "name": "fc2", "units": "$width"},
        {"op": "add", "name": "add", "inputs": ["fc2", "x"]},
    ],
}


def test_block_uses_are_scoped():
    g = loads(
        [
            {"block": "basic", "width": 8, "repeat": 2},
            {"block": "basic", "width": 8, "scale": 3, "name": "third"},
        ],
        blocks={"basic": BASIC},
    )
    assert names(g) == [
        "basic_1.fc1",
        "basic_1.fc2",
        "basic_1.add",
        "basic_2.fc1",
        "basic_2.fc2",
        "basic_2.add",
        "third.fc1",
        "third.fc2",
        "third.add",
    ]
    assert g.node("basic_2.fc1").inputs == ["basic_1.add"]
    assert g.node("basic_2.add").inputs == ["basic_2.fc2", "basic_1.add"]
    assert g.node("third.fc1").shape == (24,)
    use = g.uses["basic_1"]
    assert (use.block, use.params, use.inputs, use.input_names) == (
        "basic",
        {"width": 8, "scale": 2},
        ["x"],
        ["x"],
    )
    assert use.nodes == ["basic_1.fc1", "basic_1.fc2", "basic_1.add"]
    assert use.outputs == {"out": "basic_1.add"}
    assert set(g.weight_shapes()) >= {"basic_1.fc1.weight", "third.fc2.bias"}


def test_nested_blocks_and_spec_params_inside():
    blocks = {
        "inner": {"layers": [{"op": "dense", "units": "$hidden"}, "relu"]},
        "outer": {"params": {"n": 2}, "layers": [{"block": "inner", "repeat": "$n"}]},
    }
    g = loads([{"block": "outer"}, {"block": "outer", "n": 1}], params={"hidden": 4}, blocks=blocks)
    assert names(g) == [
        "outer_1.inner_1.dense_1",
        "outer_1.inner_1.relu_1",
        "outer_1.inner_2.dense_1",
        "outer_1.inner_2.relu_1",
        "outer_2.inner_1.dense_1",
        "outer_2.inner_1.relu_1",
    ]
    assert g.uses["outer_1"].uses == ["outer_1.inner_1", "outer_1.inner_2"]
    assert g.uses["outer_1.inner_2"].scope == ("outer_1",)
    assert g.node("outer_1.inner_1.dense_1").scope == ("outer_1", "inner_1")


def test_block_param_shadows_spec_param():
    blocks = {"b": {"params": {"hidden": 3}, "layers": [{"op": "dense", "units": "$hidden"}]}}
    g = loads([{"block": "b"}], params={"hidden": 5}, blocks=blocks)
    assert g.nodes[0].shape == (3,)


def test_block_with_several_inputs_and_outputs():
    blocks = {
        "pair": {
            "inputs": ["a", "b"],
            "layers": [
                {"op": "dense", "name": "left", "units": 3, "inputs": ["a"]},
                {"op": "dense", "name": "right", "units": 3, "inputs": ["b"]},
                {"op": "add", "name": "both", "inputs": ["left", "right"]},
            ],
            "outputs": ["both", "left"],
        }
    }
    g = loads(
        [
            {"block": "pair", "name": "p", "inputs": ["x", "y"]},
            {"op": "concat", "inputs": ["p.both", "p.left"]},
        ],
        inputs={"x": {"shape": [2]}, "y": {"shape": [5]}},
        blocks=blocks,
    )
    assert g.uses["p"].outputs == {"both": "p.both", "left": "p.left"}
    assert g.uses["p"].inputs == ["x", "y"] and g.uses["p"].input_names == ["a", "b"]
    assert g.nodes[-1].inputs == ["p.both", "p.left"] and g.nodes[-1].shape == (6,)
    assert g.node("p.left").params["weight"] == (3, 2)
    assert g.node("p.right").params["weight"] == (3, 5)


def test_inner_names_are_not_visible_outside():
    msg = error(
        [{"block": "b", "name": "u"}, {"op": "relu", "inputs": ["u.fc1"]}],
        blocks={"b": {"layers": [{"op": "dense", "name": "fc1", "units": 2}, "relu"]}},
    )
    assert "unknown layer or input 'u.fc1'" in msg and "only its block's outputs" in msg


# -- shape rules of every op ----------------------------------------------------------------------


def tf_same(size: int, k: int, s: int, d: int = 1) -> tuple[int, tuple[int, int]]:
    """The design page's `same`: output ceil(in / stride), TensorFlow's split of the padding."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return out, (total // 2, total - total // 2)


@pytest.mark.parametrize("size", [1, 5, 7, 8, 9, 224])
@pytest.mark.parametrize(
    ("k", "s", "d"),
    [(3, 1, 1), (3, 2, 1), (1, 2, 1), (5, 2, 1), (3, 1, 2), (4, 2, 1), (3, 3, 1), (7, 2, 1)],
)
def test_same_padding(size, k, s, d):
    out, pads = tf_same(size, k, s, d)
    g = loads(
        [
            {
                "op": "conv2d",
                "filters": 2,
                "kernel": k,
                "stride": s,
                "dilation": d,
                "padding": "same",
            }
        ],
        inputs={"x": {"shape": [1, size, size]}},
    )
    n = g.nodes[0]
    assert n.shape == (2, out, out)
    assert n.attrs["padding"] == (pads, pads) and n.attrs["padding_mode"] == "same"
    if d == 1:
        g = loads(
            [{"op": "max_pool1d", "size": k, "stride": s, "padding": "same"}],
            inputs={"x": {"shape": [1, size]}},
        )
        if max(pads) <= k // 2:
            assert g.nodes[0].shape == (1, out)


def test_same_padding_stride_two_odd_sizes_by_hand():
    # 7 -> 4: total pad (4 - 1) * 2 + 3 - 7 = 2, split 1 + 1; 8 -> 4: total 1, split 0 + 1
    g = loads(
        [{"op": "conv1d", "filters": 1, "kernel": 3, "stride": 2, "padding": "same"}],
        inputs={"x": {"shape": [1, 7]}},
    )
    assert g.nodes[0].shape == (1, 4) and g.nodes[0].attrs["padding"] == ((1, 1),)
    g = loads(
        [{"op": "conv1d", "filters": 1, "kernel": 3, "stride": 2, "padding": "same"}],
        inputs={"x": {"shape": [1, 8]}},
    )
    assert g.nodes[0].shape == (1, 4) and g.nodes[0].attrs["padding"] == ((0, 1),)


def test_same_padding_with_stride_one_on_a_dynamic_axis():
    g = loads(
        [{"op": "conv1d", "filters": 4, "kernel": 4, "padding": "same"}],
        inputs={"x": {"shape": [2, None]}},
    )
    n = g.nodes[0]
    assert n.attrs["padding"] == ((1, 2),) and n.shape[0] == 4 and n.shape[1] is None


def torch_out(module, shape):
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        return tuple(module(torch.zeros(1, *shape)).shape[1:])


CONV_CASES = [
    # (op, input shape, attrs, torch constructor args)
    ("conv2d", [3, 32, 32], {"filters": 8, "kernel": 3}, {}),
    ("conv2d", [3, 32, 31], {"filters": 8, "kernel": [3, 5], "stride": 2, "padding": 1}, {}),
    ("conv2d", [4, 17, 17], {"filters": 6, "kernel": 3, "dilation": 2, "groups": 2}, {}),
    ("conv2d", [6, 9, 9], {"filters": 6, "kernel": 3, "groups": 6, "bias": False}, {}),
    ("conv2d", [3, 10, 12], {"filters": 2, "kernel": 1, "stride": [2, 3], "padding": [0, 2]}, {}),
    ("conv1d", [5, 50], {"filters": 7, "kernel": 4, "stride": 3, "padding": 2, "dilation": 3}, {}),
    ("conv1d", [2, 5], {"filters": 3, "kernel": 5}, {}),
]


@pytest.mark.parametrize(("op", "shape", "attrs", "_"), CONV_CASES)
def test_conv_shapes_and_weights_match_torch(op, shape, attrs, _):
    nn = pytest.importorskip("torch.nn")
    node = loads([{"op": op, **attrs}], inputs={"x": {"shape": shape}}).nodes[0]
    cls = nn.Conv2d if op == "conv2d" else nn.Conv1d
    m = cls(
        shape[0],
        attrs["filters"],
        attrs["kernel"],
        stride=attrs.get("stride", 1),
        padding=attrs.get("padding", 0),
        dilation=attrs.get("dilation", 1),
        groups=attrs.get("groups", 1),
        bias=attrs.get("bias", True),
    )
    assert node.shape == torch_out(m, shape)
    assert node.params == {k: tuple(v.shape) for k, v in m.named_parameters()}


def test_explicit_before_after_padding():
    node = out_shape(
        [1, 10, 10], {"op": "conv2d", "filters": 1, "kernel": 3, "padding": [[0, 2], [1, 1]]}
    )
    assert node == (1, 10, 10)
    g = loads(
        [{"op": "conv2d", "filters": 1, "kernel": 3, "padding": [[0, 2], [1, 1]]}],
        inputs={"x": {"shape": [1, 10, 10]}},
    )
    assert g.nodes[0].attrs["padding"] == ((0, 2), (1, 1))
    assert g.nodes[0].attrs["padding_mode"] == "explicit"
    g = loads(
        [{"op": "conv2d", "filters": 1, "kernel": 3, "padding": "valid"}],
        inputs={"x": {"shape": [1, 10, 10]}},
    )
    assert g.nodes[0].attrs["padding"] == ((0, 0), (0, 0)) and g.nodes[0].shape == (1, 8, 8)


@pytest.mark.parametrize(
    ("shape", "attrs"),
    [
        ([8, 4, 4], {"filters": 3, "kernel": 4, "stride": 2, "padding": 1}),
        ([8, 4, 5], {"filters": 3, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1}),
        ([100, 1, 1], {"filters": 512, "kernel": 4, "bias": False}),
        ([2, 5, 5], {"filters": 2, "kernel": [2, 3], "stride": [3, 2], "output_padding": [2, 1]}),
    ],
)
def test_conv_transpose_matches_torch(shape, attrs):
    nn = pytest.importorskip("torch.nn")
    node = loads([{"op": "conv_transpose2d", **attrs}], inputs={"x": {"shape": shape}}).nodes[0]
    m = nn.ConvTranspose2d(
        shape[0],
        attrs["filters"],
        attrs["kernel"],
        stride=attrs.get("stride", 1),
        padding=attrs.get("padding", 0),
        output_padding=attrs.get("output_padding", 0),
        bias=attrs.get("bias", True),
    )
    assert node.shape == torch_out(m, shape)
    assert node.params == {k: tuple(v.shape) for k, v in m.named_parameters()}
    # the documented formula
    s = attrs.get("stride", 1)
    k = attrs["kernel"]
    for i in range(2):
        si = s[i] if isinstance(s, list) else s
        ki = k[i] if isinstance(k, list) else k
        op = attrs.get("output_padding", 0)
        opi = op[i] if isinstance(op, list) else op
        assert node.shape[1 + i] == (shape[1 + i] - 1) * si - 2 * attrs.get("padding", 0) + ki + opi


@pytest.mark.parametrize(
    ("op", "shape", "attrs"),
    [
        ("max_pool2d", [3, 7, 7], {"size": 2}),
        ("max_pool2d", [3, 112, 112], {"size": 3, "stride": 2, "padding": 1}),
        ("avg_pool2d", [3, 9, 8], {"size": [3, 2], "stride": [2, 1]}),
        ("avg_pool2d", [1, 5, 5], {"size": 5}),
        ("max_pool1d", [4, 11], {"size": 3, "stride": 1, "padding": 1}),
        ("avg_pool1d", [4, 11], {"size": 2}),
    ],
)
def test_pool_shapes_round_down_like_torch(op, shape, attrs):
    nn = pytest.importorskip("torch.nn")
    node = loads([{"op": op, **attrs}], inputs={"x": {"shape": shape}}).nodes[0]
    cls = {
        "max_pool2d": nn.MaxPool2d,
        "avg_pool2d": nn.AvgPool2d,
        "max_pool1d": nn.MaxPool1d,
        "avg_pool1d": nn.AvgPool1d,
    }[op]
    m = cls(attrs["size"], stride=attrs.get("stride"), padding=attrs.get("padding", 0))
    assert node.shape == torch_out(m, shape)
    assert node.params == {}
    if "stride" not in attrs:  # stride defaults to the window
        assert node.attrs["stride"] == node.attrs["size"]


def test_pool_floor_by_hand():
    assert out_shape([1, 7, 7], {"op": "max_pool2d", "size": 2}) == (1, 3, 3)
    assert out_shape([1, 7], {"op": "avg_pool1d", "size": 3, "stride": 2}) == (1, 3)


@pytest.mark.parametrize("op", ["global_avg_pool", "global_max_pool"])
@pytest.mark.parametrize("shape", [[5, 7], [5, 3, 4], [5, None, None]])
def test_global_pools(op, shape):
    assert out_shape(shape, op) == (5,)


def test_ceil_mode_rounds_like_torch():
    """ceil_mode's output size (and that no window starts after the input) on every small
    size, kernel, stride and symmetric padding, against PyTorch's pools."""
    nn = pytest.importorskip("torch.nn")
    for size in range(3, 12):
        for k in (2, 3, 4):
            for s in (1, 2, 3):
                for p in range(k // 2 + 1):
                    if size + 2 * p < k:
                        continue
                    layer = {"op": "max_pool1d", "size": k, "stride": s, "padding": p}
                    got = out_shape([1, size], {**layer, "ceil_mode": True})
                    want = torch_out(nn.MaxPool1d(k, s, p, ceil_mode=True), [1, size])
                    assert got == want, (size, k, s, p)


# (op, per-example input shape, attrs, the PyTorch module with the same output shape)
NEW_SHAPE_CASES = [
    ("adaptive_avg_pool", [3, 13, 9], {"output_size": [7, 4]}, "nn.AdaptiveAvgPool2d((7, 4))"),
    ("adaptive_max_pool", [3, 5], {"output_size": 8}, "nn.AdaptiveMaxPool1d(8)"),
    ("adaptive_avg_pool", [2, 4, 5, 6], {"output_size": 2}, "nn.AdaptiveAvgPool3d(2)"),
    ("upsample", [3, 4, 5], {"scale_factor": [2, 3]}, "nn.Upsample(scale_factor=(2, 3))"),
    (
        "upsample",
        [3, 5],
        {"scale_factor": 2, "mode": "linear"},
        "nn.Upsample(scale_factor=2, mode='linear')",
    ),
    ("pad", [2, 4, 5], {"padding": [[1, 2], [3, 0]]}, "nn.ZeroPad2d((3, 0, 1, 2))"),
    ("pad", [2, 6], {"padding": 2, "mode": "reflect"}, "nn.ReflectionPad1d(2)"),
    ("pad", [2, 2, 3, 4], {"padding": 1, "mode": "replicate"}, "nn.ReplicationPad3d(1)"),
    ("group_norm", [6, 4, 5], {"groups": 3}, "nn.GroupNorm(3, 6)"),
    (
        "conv_transpose1d",
        [3, 6],
        {"filters": 4, "kernel": 4, "stride": 2, "padding": 1, "output_padding": 1},
        "nn.ConvTranspose1d(3, 4, 4, stride=2, padding=1, output_padding=1)",
    ),
    (
        "conv3d",
        [2, 5, 6, 4],
        {"filters": 3, "kernel": 3, "stride": 2, "padding": 1},
        "nn.Conv3d(2, 3, 3, stride=2, padding=1)",
    ),
    ("max_pool3d", [2, 5, 6, 4], {"size": 2, "ceil_mode": True}, "nn.MaxPool3d(2, ceil_mode=True)"),
    ("avg_pool3d", [2, 5, 6, 4], {"size": 3, "stride": 2, "padding": 1}, "nn.AvgPool3d(3, 2, 1)"),
    ("instance_norm", [3, 4, 5], {"affine": True}, "nn.InstanceNorm2d(3, affine=True)"),
]


@pytest.mark.parametrize("op", ["drop_path", "spatial_dropout", "dropblock"])
def test_regularizers_keep_the_shape(op):
    assert out_shape([3, 5, 6], {"op": op, "rate": 0.2}) == (3, 5, 6)
    assert "larger than spatial axis" in error(
        [{"op": "dropblock", "block_size": 4}], inputs={"x": {"shape": [2, 3, 5]}}
    )


def test_norms_on_a_chosen_axis():
    g = loads([{"op": "batch_norm", "axis": -1}], inputs={"x": {"shape": [7, 3]}})
    assert g.nodes[0].attrs["axis"] == 2 and g.nodes[0].params["weight"] == (3,)
    g = loads([{"op": "layer_norm", "axis": 1}], inputs={"x": {"shape": [4, 5, 6]}})
    assert g.nodes[0].params == {"weight": (4,), "bias": (4,)}
    assert loads([{"op": "layer_norm"}]).nodes[0].attrs["axis"] == 1  # the last of [8]
    assert "out of range" in error([{"op": "batch_norm", "axis": 2}])
    assert "must divide" in error(
        [{"op": "group_norm", "groups": 4}], inputs={"x": {"shape": [6, 3]}}
    )


@pytest.mark.parametrize("op", ["reduce_mean", "reduce_max", "reduce_sum"])
def test_reduce_shapes(op):
    assert out_shape([3, 4, 5], {"op": op, "axes": [2, 3]}) == (3,)
    assert out_shape([3, 4, 5], {"op": op, "axes": [3, 1], "keepdims": True}) == (1, 4, 1)
    assert out_shape([None, 4], {"op": op, "axes": [1]}) == (4,)
    assert "would leave no axis" in error([{"op": op, "axes": [1]}])
    assert "out of range" in error([{"op": op, "axes": [2]}])


@pytest.mark.parametrize(("op", "shape", "attrs", "module"), NEW_SHAPE_CASES)
def test_new_op_shapes_match_torch(op, shape, attrs, module):
    pytest.importorskip("torch")
    node = loads([{"op": op, **attrs}], inputs={"x": {"shape": shape}}).nodes[0]
    m = _module(module)
    assert node.shape == torch_out(m, shape)
    assert node.params == {k: tuple(v.shape) for k, v in m.named_parameters()}


def _module(text: str):
    """`nn.Name(args)` -> the module (literal arguments only, read with ast)."""
    import ast

    from torch import nn

    call = ast.parse(text, mode="eval").body
    cls = getattr(nn, call.func.attr)
    args = [ast.literal_eval(a) for a in call.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    return cls(*args, **kwargs)


@pytest.mark.parametrize(
    ("op", "bi", "layers", "seq"),
    [
        ("rnn", False, 1, False),
        ("lstm", True, 2, True),
        ("gru", True, 1, False),
        ("gru", False, 3, True),
        ("lstm", False, 1, False),
        ("rnn", True, 2, True),
    ],
)
def test_recurrent_shapes_and_weights_match_torch(op, bi, layers, seq):
    nn = pytest.importorskip("torch.nn")
    g = loads(
        [
            {
                "op": op,
                "units": 6,
                "bidirectional": bi,
                "num_layers": layers,
                "return_sequences": seq,
            }
        ],
        inputs={"x": {"shape": [None, 5]}},
    )
    node = g.nodes[0]
    dirs = 2 if bi else 1
    assert node.shape == ((node.shape[0], 6 * dirs) if seq else (6 * dirs,))
    if seq:
        assert node.shape[0] == g.inputs["x"].shape[0]  # the same dynamic time axis
    m = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[op](
        5, 6, num_layers=layers, bidirectional=bi, batch_first=True
    )
    assert node.params == {k: tuple(v.shape) for k, v in m.named_parameters()}
    assert list(node.params) == [k for k, _ in m.named_parameters()]


def test_recurrent_fixed_time_axis():
    assert out_shape([12, 3], {"op": "lstm", "units": 4, "return_sequences": True}) == (12, 4)


def test_dense_batch_norm_layer_norm_embedding_prelu_weights_match_torch():
    nn = pytest.importorskip("torch.nn")

    def params(m):
        return {k: tuple(v.shape) for k, v in m.named_parameters()}

    def buffers(m):
        return {k: tuple(v.shape) for k, v in m.named_buffers() if "num_batches" not in k}

    n = loads([{"op": "dense", "units": 7}], inputs={"x": {"shape": [4, 3]}}).nodes[0]
    assert n.shape == (4, 7) and n.params == params(nn.Linear(3, 7))
    n = loads([{"op": "dense", "units": 7, "bias": False}]).nodes[0]
    assert n.params == params(nn.Linear(8, 7, bias=False))
    n = loads(["batch_norm"], inputs={"x": {"shape": [6, 5, 5]}}).nodes[0]
    bn = nn.BatchNorm2d(6)
    assert (n.shape, n.params, n.buffers) == ((6, 5, 5), params(bn), buffers(bn))
    assert n.attrs == {"eps": 1e-5, "momentum": 0.1, "axis": 1}
    n = loads(["batch_norm"]).nodes[0]
    assert n.params == params(nn.BatchNorm1d(8))
    n = loads(["layer_norm"], inputs={"x": {"shape": [3, 10]}}).nodes[0]
    assert n.shape == (3, 10) and n.params == params(nn.LayerNorm(10))
    g = loads(
        [{"op": "embedding", "vocab": 50, "dim": 9}],
        inputs={"t": {"shape": [None], "dtype": "int64"}},
    )
    assert g.nodes[0].shape[1] == 9 and g.nodes[0].params == params(nn.Embedding(50, 9))
    assert g.nodes[0].shape[0] == g.inputs["t"].shape[0]
    n = loads(["prelu"], inputs={"x": {"shape": [4, 6, 6]}}).nodes[0]
    assert n.params == params(nn.PReLU(4))


def test_flatten_reshape_permute():
    assert out_shape([3, 4, 5], "flatten") == (60,)
    assert out_shape([7], "flatten") == (7,)
    assert out_shape([3, None], "flatten") == (None,)
    g = loads([{"op": "reshape", "shape": [-1, 16]}], inputs={"x": {"shape": [4, 8, 2]}})
    assert g.nodes[0].shape == (4, 16) and g.nodes[0].attrs["shape"] == (4, 16)
    assert out_shape([12], {"op": "reshape", "shape": [3, 2, 2]}) == (3, 2, 2)
    g = loads([{"op": "permute", "dims": [2, 3, 1]}], inputs={"x": {"shape": [3, 8, 5]}})
    assert g.nodes[0].shape == (8, 5, 3) and g.nodes[0].attrs["dims"] == (2, 3, 1)
    assert out_shape([None, 4], {"op": "permute", "dims": [2, 1]})[0] == 4


@pytest.mark.parametrize(
    ("a", "b", "out"),
    [
        ([3, 1, 5], [3, 4, 1], (3, 4, 5)),
        ([4], [1], (4,)),
        ([1, 6], [2, 1], (2, 6)),
        ([2, 3], [2, 3], (2, 3)),
    ],
)
@pytest.mark.parametrize("op", ["add", "subtract", "multiply"])
def test_merges_broadcast(op, a, b, out):
    g = loads([{"op": op, "inputs": ["a", "b"]}], inputs={"a": {"shape": a}, "b": {"shape": b}})
    assert g.nodes[0].shape == out


def test_add_of_three_and_concat():
    g = loads(
        [{"op": "add", "inputs": ["a", "b", "c"]}],
        inputs={"a": {"shape": [2]}, "b": {"shape": [2]}, "c": {"shape": [1]}},
    )
    assert g.nodes[0].shape == (2,)
    ins = {"a": {"shape": [2, 4]}, "b": {"shape": [3, 4]}}
    g = loads([{"op": "concat", "inputs": ["a", "b"]}], inputs=ins)
    assert g.nodes[0].shape == (5, 4) and g.nodes[0].attrs["axis"] == 1
    ins = {"a": {"shape": [2, 4]}, "b": {"shape": [2, 3]}}
    g = loads([{"op": "concat", "axis": -1, "inputs": ["a", "b"]}], inputs=ins)
    assert g.nodes[0].shape == (2, 7) and g.nodes[0].attrs["axis"] == 2
    ins = {"a": {"shape": [None, 4]}, "b": {"shape": [None, 3]}}
    g = loads([{"op": "concat", "axis": 2, "inputs": ["a", "b"]}], inputs=ins)
    assert g.nodes[0].shape[1] == 7


@pytest.mark.parametrize("op", ACTIVATIONS)
def test_activations_keep_the_shape(op):
    assert out_shape([3, 5], op) == (3, 5)


def test_softmax_axis_normalized_and_activation_attrs():
    g = loads([{"op": "softmax"}], inputs={"x": {"shape": [3, 5]}})
    assert g.nodes[0].attrs["axis"] == 2
    g = loads([{"op": "dense", "units": 3, "activation": {"op": "softmax", "axis": -1}}])
    assert g.nodes[0].attrs["activation"] == {"op": "softmax", "axis": 1}
    g = loads([{"op": "dense", "units": 3, "activation": "leaky_relu"}])
    assert g.nodes[0].attrs["activation"] == {"op": "leaky_relu", "alpha": 0.01}
    g = loads(
        [{"op": "conv1d", "filters": 2, "kernel": 1, "activation": {"op": "elu", "alpha": "$a"}}],
        params={"a": 0.5},
        inputs={"x": {"shape": [2, 4]}},
    )
    assert g.nodes[0].attrs["activation"] == {"op": "elu", "alpha": 0.5}


def test_normalize_keeps_the_shape_with_one_statistic_per_entry_of_its_axis():
    g = loads([{"op": "normalize"}], inputs={"x": {"shape": [3, None, 5]}})
    n = g.nodes[0]
    assert n.shape == g.inputs["x"].shape and n.attrs["axis"] == 3
    assert n.buffers == {"mean": (5,), "variance": (5,)} and not n.params
    n = loads([{"op": "normalize", "axis": 1}], inputs={"x": {"shape": [3, 4, 5]}}).nodes[0]
    assert n.attrs["axis"] == 1 and n.buffers["mean"] == (3,)
    n = loads([{"op": "normalize", "axis": None}], inputs={"x": {"shape": [3, None]}}).nodes[0]
    assert n.attrs["axis"] is None and n.buffers["variance"] == (1,)
    assert "out of range" in error([{"op": "normalize", "axis": 3}])
    assert "needs a fixed size" in error(
        [{"op": "normalize", "axis": 1}], inputs={"x": {"shape": [None, 4]}}
    )
    assert "expected an integer axis or null" in error([{"op": "normalize", "axis": "last"}])


def test_tensor_and_indexing_shapes():
    x = {"x": {"shape": [5, 4]}}
    n = loads([{"op": "parameter", "shape": [1, 4]}], inputs=x).nodes[0]
    assert n.shape == (1, 4) and n.params == {"weight": (1, 4)} and n.attrs["init"] == "normal"
    assert "needs every size" in error([{"op": "parameter", "shape": [-1, 4]}], inputs=x)
    assert "rank 2 or more" in error([{"op": "parameter", "shape": [4], "init": "he_normal"}])
    n = loads([{"op": "constant", "shape": [3, 3], "triu": 1}], inputs=x).nodes[0]
    assert n.shape == (3, 3) and not n.params and n.attrs["tril"] is None
    assert "triu needs a shape of rank 2" in error([{"op": "constant", "shape": [3], "triu": 0}])
    n = loads([{"op": "slice", "start": -3, "step": 2}], inputs=x).nodes[0]
    assert n.shape == (2, 4) and (n.attrs["start"], n.attrs["end"]) == (2, 5)
    assert "is empty" in error([{"op": "slice", "start": 4, "end": 2}], inputs=x)
    assert "needs a fixed size" in error([{"op": "slice"}], inputs={"x": {"shape": [None, 4]}})
    assert out_shape([5, 4], {"op": "select", "index": 0}) == (4,)
    n = loads([{"op": "select", "axis": -1, "index": -1}], inputs=x).nodes[0]
    assert n.shape == (5,) and (n.attrs["axis"], n.attrs["index"]) == (2, 3)
    assert out_shape([None, 4], {"op": "select", "index": 0}) == (4,)
    assert "out of range" in error([{"op": "select", "index": 5}], inputs=x)
    assert "rank 2 to 8" in error([{"op": "select", "index": 0}])
    n = loads([{"op": "gather", "axis": 2, "indices": [3, -1, 0]}], inputs=x).nodes[0]
    assert n.shape == (5, 3) and n.attrs["indices"] == (3, 3, 0)
    assert "out of range" in error([{"op": "gather", "indices": [5]}], inputs=x)
    n = loads([{"op": "roll", "shifts": [-1, 6], "dims": [1, -1]}], inputs=x).nodes[0]
    assert n.shape == (5, 4) and n.attrs["shifts"] == (4, 2) and n.attrs["dims"] == (1, 2)
    assert "2 entries" in error([{"op": "roll", "shifts": [1, 2], "dims": [1]}], inputs=x)
    ins = {"a": {"shape": [2, None, 3]}, "b": {"shape": [1, 3, 6]}}
    n = loads([{"op": "matmul", "inputs": ["a", "b"]}], inputs=ins).nodes[0]
    assert n.shape[0] == 2 and n.shape[2] == 6 and not isinstance(n.shape[1], int)
    ins = {"a": {"shape": [2, 4]}, "b": {"shape": [3, 6]}}
    assert "4 != 3" in error([{"op": "matmul", "inputs": ["a", "b"]}], inputs=ins)
    assert "takes exactly 2 inputs" in error([{"op": "matmul"}])


def test_attention_shapes_and_weights():
    n = loads([{"op": "attention", "heads": 2}], inputs={"x": {"shape": [None, 8]}}).nodes[0]
    assert n.shape[1] == 8 and n.params["weight_q"] == (8, 8) and n.params["bias_out"] == (8,)
    ins = {"x": {"shape": [4, 8]}, "m": {"shape": [6, 5]}, "k": {"shape": [6]}}
    g = loads([{"op": "attention", "heads": 4, "bias": False, "inputs": ["x", "m", "k"]}], ins)
    n = g.nodes[0]
    assert n.shape == (4, 8) and n.params["weight_k"] == (8, 5) and "bias_q" not in n.params
    assert "must divide" in error([{"op": "attention", "heads": 3}], {"x": {"shape": [4, 8]}})
    assert "[length, features]" in error([{"op": "attention", "heads": 1}])
    bad = {"x": {"shape": [4, 8]}, "k": {"shape": [5]}}
    assert "the mask must have" in error(
        [{"op": "attention", "heads": 1, "inputs": ["x", "x", "k"]}], bad
    )


def test_every_op_has_a_shape_test():
    """Each op of the table appears in this file (a new op needs a shape test here)."""
    text = Path(__file__).read_text()
    missing = [op for op in OPS if f'"{op}"' not in text and op not in ACTIVATIONS]
    assert not missing


# -- parameter counts ---------------------------------------------------------------------------

# By hand: dense in -> out has in * out + out parameters.
HAND = {
    "mlp": (3 * 4 + 4) + (4 * 4 + 4) + (4 + 1),  # 41
    "xor": (2 * 2 + 2) + (2 + 1),  # 9
    "student_score": (2 * 8 + 8) + (8 + 1),  # 33
    "salary": 1 + 1,  # 2
    "digit_recognition": (784 * 128 + 128) + (128 * 10 + 10),  # 101,770
    "exam_score": 1 + 1,  # 2
    "exam_score_sleep": 2 + 1,  # 3
    "iris": (4 * 16 + 16) + (16 * 3 + 3),  # 131
    "digits_mlp": (64 * 128 + 128) + (128 * 10 + 10),  # 9,610
    # attention of width d: four d x d projections with biases; a pre/post-norm encoder block
    # of width 64: attention, two layer norms, dense 64 -> m -> 64
    "vit_tiny": (3 * 8 * 8 * 64 + 64)  # conv_proj: 81,226
    + 64
    + 17 * 64  # class_token, pos_embedding
    + 2 * (4 * (64 * 64 + 64) + 2 * 128 + (64 * 128 + 128) + (128 * 64 + 64))
    + 128
    + (64 * 10 + 10),
    "text_transformer": 1000 * 64  # embeddings: 137,540
    + 32 * 64
    + 128
    + 2 * (4 * (64 * 64 + 64) + 2 * 128 + (64 * 128 + 128) + (128 * 64 + 64))
    + (64 * 64 + 64)
    + (64 * 4 + 4),
    "gpt_decoder": 256 * 64  # wte: 236,928
    + 64 * 64
    + 4 * (4 * (64 * 64 + 64) + 2 * 128 + (64 * 256 + 256) + (256 * 64 + 64))
    + 128
    + 64 * 256,
}
UNET_LEVELS = [(1, 8), (8, 16), (16, 32), (48, 16), (24, 8)]  # (in, out) of each double_conv
# (parameters, buffers) by hand for specs with statistics: conv k x k without bias has
# k * k * in * out weights, batch norm 2 parameters and 2 statistics per channel, normalize a
# mean and a variance per feature.
HAND_BN = {
    "apartment_price": ((3 * 5 + 5) + (5 + 1), 2 * 3),  # 26, 6
    "digits_cnn": (
        (9 * 1 * 16) + 2 * 16 + (9 * 16 * 32) + 2 * 32 + (32 * 2 * 2 * 10 + 10),  # 6,138
        2 * 16 + 2 * 32,  # 96
    ),
    # double_conv(in, out): 9 in out + 9 out out weights, 4 out batch norm numbers
    "unet": (
        sum(9 * i * o + 9 * o * o + 2 * o + 2 * o for i, o in UNET_LEVELS) + (8 * 2 + 2),  # 29,786
        sum(2 * o + 2 * o for _, o in UNET_LEVELS),  # 320
    ),
    # stem 3x3 conv + bn; bneck(inp, exp, out): 1x1 expansion when exp != inp, 3x3 depthwise,
    # squeeze-excitation dense layers (b1: 16 -> 8 -> 16), 1x1 projection, each conv with a bn
    "mobilenetv3_blocks": (
        (9 * 3 * 16 + 2 * 16)
        + (9 * 16 + 2 * 16 + (16 * 8 + 8) + (8 * 16 + 16) + 16 * 16 + 2 * 16)
        + (16 * 72 + 2 * 72 + 9 * 72 + 2 * 72 + 72 * 24 + 2 * 24)
        + (24 * 88 + 2 * 88 + 9 * 88 + 2 * 88 + 88 * 24 + 2 * 24)
        + (24 * 10 + 10),  # 10,738
        2 * 16 + 2 * 16 + 2 * 16 + (2 * 72 * 2 + 2 * 24) + (2 * 88 * 2 + 2 * 24),  # 832
    ),
    # one encoder (3x3 conv without bias, bn, dense 8*8*8 -> 16) stored once for both images
    "siamese": ((9 * 8 + 2 * 8 + (8 * 8 * 8 * 16 + 16)) + (16 + 1), 2 * 8),  # 8,313, 16
}
# keras.applications' published counts (trainable; non-trainable = batch norm statistics)
KERAS_APPS = {"keras_resnet50": (25_583_592, 53_120), "keras_mobilenetv2": (3_504_872, 34_112)}


def test_parameter_counts_by_hand():
    assert HAND["mlp"] == 41
    for name, count in HAND.items():
        g = netspec.load(ROOT / "specs" / f"{name}.yaml")
        assert (g.param_count, g.buffer_count) == (count, 0), name
    for name, counts in HAND_BN.items():
        g = netspec.load(ROOT / "specs" / f"{name}.yaml")
        assert (g.param_count, g.buffer_count) == counts, name
    assert netspec.load(ROOT / "specs" / "resnet18.yaml").param_count == 11_689_512
    for name, (params, buffers) in KERAS_APPS.items():
        g = netspec.load(ROOT / "specs" / f"{name}.yaml")
        assert (g.param_count, g.buffer_count) == (params, buffers), name


def test_parameter_counts_match_reference_torch_models():
    pytest.importorskip("torch")
    from reference.torch_models import REFERENCES, buffer_count, param_count

    for name, ref in REFERENCES.items():
        g = netspec.load(ROOT / ref.spec)
        model = ref.build()
        assert g.param_count == param_count(model) == ref.params, name
        assert g.buffer_count == buffer_count(model) == ref.buffers, name
        out = [g.value(v).shape for v in g.outputs.values()][0]
        dims = tuple(d for d in out if isinstance(d, int))
        assert dims == tuple(ref.output_shape[-len(dims) :]), name


def test_every_spec_has_an_independent_count():
    pytest.importorskip("torch")
    from reference.torch_models import REFERENCES

    covered = set(HAND) | set(HAND_BN) | set(KERAS_APPS) | set(REFERENCES) | {"resnet18"}
    assert {p.stem for p in SPECS} <= covered


# -- schema and docs --------------------------------------------------------------------------


def test_committed_schema_is_generated():
    assert (ROOT / "schemas" / "netspec.schema.json").read_text() == schema_text()


def test_docs_op_table_is_up_to_date():
    text = DOC.read_text()
    assert render(text) == text, "run: python -m tools.docs"


@pytest.fixture(scope="module")
def validator():
    schema = build_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_specs_validate_against_the_schema(spec, validator):
    data = yamlload.parse(spec.read_bytes(), str(spec)).data
    errors = [e.message for e in validator.iter_errors(data)]
    assert not errors
    netspec.load(spec)


# -- frameworks stay unloaded -------------------------------------------------------------------

PROBE = """
import json, sys
from netspec.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in
               {"torch", "tensorflow", "keras", "jax", "tf_keras"})
sys.stderr.write("\\nPROBE " + json.dumps({"rc": rc, "heavy": heavy[:5]}) + "\\n")
"""


def probe(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, proc.stderr[-2000:]
    return json.loads(line[-1][6:])


@pytest.mark.parametrize(
    "args",
    [
        ["validate", *[str(p.relative_to(ROOT)) for p in SPECS]],
        ["inspect", "specs/resnet18.yaml"],
        ["inspect", "--json", "specs/char_lstm.yaml"],
        ["schema"],
        ["validate", "tests/invalid/unknown_op.yaml"],
    ],
    ids=["validate", "inspect", "inspect-json", "schema", "validate-error"],
)
def test_commands_never_import_a_framework(args):
    result = probe(*args)
    assert result["heavy"] == []
    assert result["rc"] == (2 if "invalid" in " ".join(args) else 0)


def test_onnx_build_never_imports_a_framework(tmp_path):
    if not (ROOT / "netspec" / "targets" / "onnx" / "__init__.py").exists():
        pytest.skip("the ONNX target does not exist yet")
    pytest.importorskip("onnx")
    result = probe("build", "specs/mlp.yaml", "--target", "onnx", "-o", str(tmp_path), "-q")
    assert result["heavy"] == []
    assert result["rc"] == 0


def test_huge_values_keep_errors_short():
    with pytest.raises(SpecError) as e:
        netspec.loads(
            "netspec: 1\nname: " + "x" * 100_000 + "-\ninputs: {x: {shape: [2]}}\nlayers: [relu]\n"
        )
    assert len(str(e.value)) < 1000


def test_source_line_follows_yaml_line_breaks():
    # libyaml counts a lone \r (and \x85, \u2028) as a line break; the shown line must agree
    text = "netspec: 1\rname: m\rinputs: {x: {shape: [2]}}\rlayers: [{op: dense, units: -1}]\r"
    with pytest.raises(SpecError) as e:
        netspec.loads(text)
    assert e.value.line == 4
    assert e.value.source_line == "layers: [{op: dense, units: -1}]"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"outputs": []}, "expected at least one output"),
        ({"blocks": []}, "expected blocks (a mapping), got a list"),
        ({"params": 0}, "expected params (a mapping), got the number 0"),
        ({"description": None}, "expected a string, got nothing (null)"),
    ],
)
def test_wrong_section_types(extra, message):
    assert message in error(["relu"], **extra)


def test_empty_params_section_is_null_not_empty():
    with pytest.raises(SpecError) as e:
        netspec.loads("netspec: 1\nname: m\nparams:\ninputs: {x: {shape: [2]}}\nlayers: [relu]\n")
    assert "expected params (a mapping), got nothing (null)" in str(e.value)
    assert e.value.hint == "fill in 'params:', or remove it"


# -- the repository's own code ------------------------------------------------------------------
@pytest.mark.parametrize(
    "paths, config",
    [(["netspec", "tests", "scripts", "tools"], None), (["benchmarks"], "benchmarks/ruff.toml")],
    ids=["package-tests-scripts", "benchmarks"],
)
def test_repository_code_is_ruff_clean(paths, config):
    # the generated sources are held to `ruff check` + `ruff format --check`; so is netspec's own
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed next to this Python")
    extra = ["--config", config] if config else []
    for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        r = subprocess.run(
            [str(ruff), *args, *extra, *paths], cwd=ROOT, capture_output=True, text=True
        )
        assert r.returncode == 0, f"ruff {args[0]}:\n{r.stdout}{r.stderr}"


# -- structure: the schema's failures in netspec's words --------------------------------------

HEAD = "netspec: 1\nname: m\ninputs: {x: {shape: [4]}}\n"


@pytest.mark.parametrize(
    ("body", "path", "message", "hint"),
    [
        (
            "blocks: {b: {layers: 3}}\nlayers: [{block: b}]",
            "blocks.b.layers",
            "non-empty list",
            "'- '",
        ),
        (
            "blocks: {b: {layers: [relu], inputs: [x, x]}}\nlayers: [{block: b}]",
            "blocks.b.inputs",
            "must be unique",
            None,
        ),
        (
            "blocks: {b: {layers: [relu], inputs: [x, 1a]}}\nlayers: [{block: b}]",
            "blocks.b.inputs[1]",
            "not an identifier",
            "x_1a",
        ),
        (
            "blocks: {b: {layers: [relu], params: {a b: 1}}}\nlayers: [{block: b}]",
            "blocks.b.params.a b",
            "not a valid param name",
            "[A-Za-z_]",
        ),
        (
            "blocks: {dense: {layers: [relu]}}\nlayers: [{block: dense}]",
            "blocks.dense",
            "is also an op",
            "block: NAME",
        ),
        ("layers: [relu]\noutputs: {}", "outputs", "at least one output", None),
        (
            "layers: [relu]\noutputs: [relu_1, 3]",
            "outputs[1]",
            "expected a layer name, got the number 3",
            None,
        ),
        (
            "layers: [{op: dense, units: 2, inputs: []}]",
            "layers[0].inputs",
            "at least one layer or input",
            "inputs: [x]",
        ),
        (
            "layers: [{op: dense, units: 2, inputs: [x, a b]}]",
            "layers[0].inputs[1]",
            "not a layer or input name",
            "identifiers",
        ),
        (
            "layers: [{op: dense, units: 2, activation: {op: leaky_relu, alpah: 1}}]",
            "layers[0].activation.alpah",
            "unknown key 'alpah' in a leaky_relu activation",
            "'alpha'",
        ),
        (
            "layers: [{op: dense, units: 2, activation: {alpha: 1}}]",
            "layers[0].activation",
            "mapping with 'op'",
            "leaky_relu",
        ),
        ("layers: [{op: reshape, shape: [-1, -1]}]", "layers[0].shape", "at most one -1", None),
        (
            "layers: [avg_pool1d]",
            "layers[0]",
            "missing required attribute 'size'",
            "{op: avg_pool1d, size: ...}",
        ),
        ("layers: [{op: dense, units: 2, block: b}]", "layers[0]", "either 'op' or 'block'", None),
        ("layers: [{units: 2}]", "layers[0]", "a layer needs 'op'", "{op: dense, units: 8}"),
        ("layers: [3]", "layers[0]", "an op name or a mapping, got the number 3", "- relu"),
        (
            "layers: [{op: dense, units: 2, name: 3}]",
            "layers[0].name",
            "expected a name, got the number 3",
            "YAML reads this value as a number",
        ),
        (
            "layers: [{op: dense, units: 2, repeat: -1}]",
            "layers[0].repeat",
            "expected a positive integer, got -1",
            None,
        ),
        ("inputs2: 1\nlayers: [relu]", "inputs2", "unknown key 'inputs2' in the spec", "'inputs'"),
        (
            "layers: [{op: dense, units: 2, init: glorot}]",
            "layers[0].init",
            "expected one of glorot_uniform",
            "did you mean 'glorot_uniform'?",
        ),
    ],
)
def test_structure_errors(body, path, message, hint):
    text = HEAD + body + "\n"
    with pytest.raises(SpecError) as e:
        netspec.loads(text)
    where = netspec.errors.path_str(e.value.path)
    assert where == path and message in e.value.message, str(e.value)
    assert (hint is None and e.value.hint is None) or (hint and hint in (e.value.hint or ""))


def test_values_from_params_are_checked_like_written_ones():
    params = "params: {a: {op: softmax}, u: 0, k: [3, 3, 3, 3]}\n"
    text = HEAD + params + "layers: [{op: conv1d, filters: 2, kernel: 1, activation: $a}]\n"
    with pytest.raises(SpecError, match="not allowed as a conv activation"):
        netspec.loads(text)
    with pytest.raises(SpecError, match="expected a positive integer, got 0"):
        netspec.loads(HEAD + params + "layers: [{op: dense, units: $u}]\n")
    # JSON has no integer type of its own: 2.0 is 2, as the schema says
    g = netspec.loads(HEAD + "layers: [{op: dense, units: 2.0, repeat: 2.0}]\n")
    assert [n.attrs["units"] for n in g.nodes] == [2, 2]
