"""`when:` on a layer or block use: the layer is there only when its condition holds; when it
does not, the layer passes its one input on. Conditions are `${...}` comparisons of params (or
a boolean param, or a literal)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import netspec
from netspec.errors import SpecError
from tools import randspec
from tools.reference import reference
from tools.testing import assert_close, random_inputs, random_weights

UNIT = {
    "params": {"filters": 4, "stride": 1},
    "inputs": ["x"],
    "layers": [
        {
            "op": "conv2d",
            "name": "main",
            "filters": "$filters",
            "kernel": 3,
            "stride": "$stride",
            "padding": 1,
            "activation": "relu",
        },
        {
            "op": "conv2d",
            "name": "short",
            "inputs": ["x"],
            "filters": "$filters",
            "kernel": 1,
            "stride": "$stride",
            "when": "${stride > 1}",
        },
        {"op": "add", "inputs": ["main", "short"]},
    ],
}


def loads(layers, blocks=None, params=None, shape=(4, 8, 8)) -> netspec.Graph:
    spec = {"netspec": 1, "name": "t", "inputs": {"x": {"shape": list(shape)}}}
    if params:
        spec["params"] = params
    if blocks:
        spec["blocks"] = blocks
    spec["layers"] = layers
    return netspec.loads(json.dumps(spec))


def resnet_units() -> netspec.Graph:
    return loads(
        [{"block": "unit"}, {"block": "unit", "stride": 2}, {"op": "global_avg_pool"}],
        {"unit": UNIT},
    )


def test_a_layer_is_left_out_when_its_condition_is_false():
    g = resnet_units()
    names = [n.name for n in g.nodes]
    assert names == [
        "unit_1.main",
        "unit_1.add_1",
        "unit_2.main",
        "unit_2.short",
        "unit_2.add_1",
        "global_avg_pool_1",
    ]
    assert g.node("unit_1.add_1").inputs == ["unit_1.main", "x"]  # `short` named its input
    assert set(g.weight_shapes()) == {
        "unit_1.main.weight",
        "unit_1.main.bias",
        "unit_2.main.weight",
        "unit_2.main.bias",
        "unit_2.short.weight",
        "unit_2.short.bias",
    }


@pytest.mark.parametrize("target", randspec.available_targets())
def test_targets_compute_the_reference(target):
    g = resnet_units()
    w = random_weights(g, seed=1)
    x = random_inputs(g, batch=2, seed=2)
    want = reference(g, w, x)
    got = randspec.run_target(target, g, w, x)
    for b, a in zip(want.values(), got, strict=True):
        assert_close(np.asarray(a), b, f"when: {target}")


def test_boolean_params_literals_and_default_names():
    layers = [
        {"op": "relu", "when": "$act"},
        {"op": "conv2d", "filters": 2, "kernel": 1, "when": False},
        {"op": "conv2d", "filters": 3, "kernel": 1},
    ]
    g = loads(layers, params={"act": True})
    # the left-out conv2d_1 still counts: the next one keeps its name
    assert [n.name for n in g.nodes] == ["relu_1", "conv2d_2"]
    g = loads(layers, params={"act": False})
    assert [n.name for n in g.nodes] == ["conv2d_2"] and g.nodes[0].inputs == ["x"]
    g = netspec.loads(
        json.dumps(
            {
                "netspec": 1,
                "name": "t",
                "params": {"act": False},
                "inputs": {"x": {"shape": [4]}},
                "layers": [{"op": "relu", "when": "$act"}, {"op": "dense", "units": 2}],
            }
        ),
        {"act": True},
    )
    assert [n.op for n in g.nodes] == ["relu", "dense"]


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"op": "relu", "when": "${2 + 1}"}, "expected true or false, got 3"),
        ({"op": "relu", "when": "${nope > 1}"}, "unknown param 'nope'"),
        ({"op": "relu", "when": 3}, "expected true, false or a ${condition}, got 3"),
    ],
)
def test_when_errors(layer, message):
    with pytest.raises(SpecError) as e:
        loads([layer])
    assert message in str(e.value)


def test_a_left_out_merge_passes_its_first_input_on():
    layers = [
        {"op": "relu", "name": "main"},
        {"op": "add", "name": "res", "inputs": ["main", "x"], "when": "$residual"},
        {"op": "dense", "units": 2},
    ]
    g = loads(layers, params={"residual": False}, shape=[4])
    assert [n.op for n in g.nodes] == ["relu", "dense"] and g.nodes[1].inputs == ["main"]
    g = loads(layers, params={"residual": True}, shape=[4])
    assert [n.op for n in g.nodes] == ["relu", "add", "dense"]


def test_alternatives_share_a_name():
    layers = [
        {"op": "relu", "name": "act", "when": "${hs == 0}"},
        {"op": "hard_swish", "name": "act", "when": "${hs == 1}"},
        {"op": "add", "inputs": ["act", "x"]},
    ]
    for hs, op in ((0, "relu"), (1, "hard_swish")):
        g = loads(layers, params={"hs": hs}, shape=[4])
        assert [n.op for n in g.nodes] == [op, "add"] and g.nodes[1].inputs == ["act", "x"]
    g = loads(layers, params={"hs": 2}, shape=[4])
    assert [n.op for n in g.nodes] == ["add"] and g.nodes[0].inputs == ["x", "x"]
    with pytest.raises(SpecError, match="duplicate name"):
        loads([{"op": "relu", "name": "a"}, {"op": "relu", "name": "a", "when": True}], shape=[4])


def test_comparisons_in_expressions():
    from netspec import expr

    for text, want in [
        ("${s > 1}", True),
        ("${s * 2 == 4}", True),
        ("${s - 2 != 0}", False),
        ("${s <= 1}", False),
        ("${s >= 2}", True),
        ("${s < 3}", True),
    ]:
        e = expr.parse(text)
        assert e.evaluate({"s": 2}) is want, text
        assert e.render() == text[2:-1]
    with pytest.raises(expr.ExprError):
        expr.parse("${1 < 2 < 3}")
