"""The Keras target's weight conversions: plain Python functions beside their emitters, copied
into generated modules.

Without a framework: for every weighted op, the conversions a generated module contains
(executed from the generated text alone, with nothing but numpy) take canonical arrays to
Keras' and back exactly; every registered conversion is exercised; a module contains only the
conversions and helpers its model uses, and its weights code is a small part of it. (Loading
into real Keras layers and exporting back is `test_keras_target.test_weights_round_trip`.)
"""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from conftest import ROOT, spec

import netspec
from netspec.targets.keras import codegen
from netspec.targets.keras.emitters import EMITTERS, conversions
from tools.testing import random_weights

# one small graph per weighted op (and per Keras layer an op may become)
WEIGHTED = {
    "dense": ("x: {shape: [5]}", "- {op: dense, units: 3}\n- {op: dense, units: 2, bias: false}"),
    "conv2d": (
        "x: {shape: [4, 6, 6]}",
        "- {op: conv2d, filters: 6, kernel: [3, 2], groups: 2}\n"
        "- {op: conv2d, filters: 3, kernel: 1, bias: false}",
    ),
    "conv2d_depthwise": (
        "x: {shape: [3, 6, 6]}",
        "- {op: conv2d, filters: 6, kernel: [3, 2], groups: 3}",
    ),
    "conv1d": (
        "x: {shape: [4, 9]}",
        "- {op: conv1d, filters: 8, kernel: 3, groups: 4}\n- {op: conv1d, filters: 3, kernel: 2}",
    ),
    "conv_transpose2d": (
        "x: {shape: [3, 4, 5]}",
        "- {op: conv_transpose2d, filters: 2, kernel: [3, 4], stride: 2}",
    ),
    "conv3d": ("x: {shape: [2, 4, 4, 3]}", "- {op: conv3d, filters: 4, kernel: [3, 2, 1]}"),
    "conv_transpose1d": ("x: {shape: [3, 5]}", "- {op: conv_transpose1d, filters: 2, kernel: 3}"),
    "batch_norm": ("x: {shape: [3, 4, 4]}", "- batch_norm"),
    "layer_norm": ("x: {shape: [4, 6]}", "- layer_norm"),
    "batch_norm_axis": ("x: {shape: [5, 3]}", "- {op: batch_norm, axis: 2}"),
    "layer_norm_axis": ("x: {shape: [3, 4, 4]}", "- {op: layer_norm, axis: 1}"),
    "group_norm": ("x: {shape: [4, 3, 3]}", "- {op: group_norm, groups: 2}"),
    "instance_norm": ("x: {shape: [3, 4, 4]}", "- {op: instance_norm, affine: true}"),
    "prelu": ("x: {shape: [3, 4, 4]}", "- prelu"),
    "normalize": ("x: {shape: [3, 4, 4]}", "- {op: normalize, axis: 1}\n- normalize"),
    "embedding": ("x: {shape: [5], dtype: int64}", "- {op: embedding, vocab: 7, dim: 3}"),
    "lstm": ("x: {shape: [4, 3]}", "- {op: lstm, units: 2, bidirectional: true, num_layers: 2}"),
    "gru": ("x: {shape: [4, 3]}", "- {op: gru, units: 2, bidirectional: true, num_layers: 2}"),
    "rnn": ("x: {shape: [4, 3]}", "- {op: rnn, units: 2, num_layers: 3}"),
    "parameter": ("x: {shape: [4, 3]}", "- {op: parameter, shape: [2, 3, 4]}"),
    "attention": (
        "x: {shape: [4, 6]}\nm: {shape: [5, 3]}",
        "- {op: attention, heads: 2, inputs: [x, m]}\n- {op: attention, heads: 3, bias: false}",
    ),
}


def generated(graph) -> tuple[str, list[codegen.Step]]:
    gen = codegen.Generator(graph, EMITTERS)
    src = gen.source()
    return src, [st for st in gen.all_steps(gen.top_body) if st.weights is not None]


def standalone_conversions(src: str) -> dict[str, object]:
    """The generated module's conversion functions, run from its text alone with only numpy."""
    tree = ast.parse(src)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and "_keras" in n.name]
    namespace: dict[str, object] = {"np": np, "__builtins__": __builtins__}
    exec(compile(ast.Module(fns, []), "<conversions>", "exec"), namespace)  # noqa: S102
    return namespace


def parts(step: codegen.Step) -> list[str]:
    """The canonical param suffixes of a Keras layer's weights (how the loader splits them)."""
    if step.weights_key not in codegen.RECURRENT:
        return [""]
    i = step.suffix.partition("-l")[2] or "0"
    both = step.callee.endswith("Bidirectional")
    return [f"_l{i}", f"_l{i}_reverse"] if both else [f"_l{i}"]


@pytest.mark.parametrize("case", list(WEIGHTED))
def test_round_trip_is_exact(case):
    graph = spec(*WEIGHTED[case], name=case)
    src, steps = generated(graph)
    fns = standalone_conversions(src)
    w = random_weights(graph, seed=3)
    assert steps, "no layer with weights"
    for st in steps:
        node = graph.node(st.suffix.partition("-")[0])
        to_keras = fns[st.weights.to_keras.__name__]
        from_keras = fns[st.weights.from_keras.__name__]
        for suffix in parts(st):
            params = {
                p.removesuffix(suffix): w[f"{node.name}.{p}"]
                for p in [*node.params, *node.buffers]
                if p.endswith(suffix)
            }
            keras = to_keras(**params)
            assert all(isinstance(a, np.ndarray) for a in keras)
            back = from_keras(*keras)
            if st.weights_key in ("LSTM", "SimpleRNN"):  # Keras keeps one bias: their sum
                summed = params["bias_ih"] + params["bias_hh"]
                np.testing.assert_array_equal(back.pop("bias_ih"), summed)
                assert not back.pop("bias_hh").any()
                params = {k: v for k, v in params.items() if not k.startswith("bias")}
            assert set(back) == set(params), (case, st.suffix)
            for p, a in params.items():
                np.testing.assert_array_equal(back[p], a, err_msg=f"{case}: {node.name}.{p}")


def test_every_conversion_and_weighted_op_is_tested():
    used = set()
    ops = set()
    for inputs, layers in WEIGHTED.values():
        graph = spec(inputs, layers)
        used |= {st.weights for st in generated(graph)[1]}
        ops |= {n.op for n in graph.nodes if n.params or n.buffers}
    assert used == set(conversions())
    declared = {op for op, e in EMITTERS.items() if e.conversions}
    assert ops == declared
    for path in sorted((ROOT / "specs").glob("*.yaml")):  # and no weighted op lacks one
        weighted = {n.op for n in netspec.load(path).nodes if n.params or n.buffers}
        assert weighted <= declared, path.name


def test_the_module_holds_the_emitters_own_functions_and_nothing_dead():
    src, steps = generated(spec(*WEIGHTED["lstm"]))
    for c in {st.weights for st in steps}:
        assert inspect.getsource(c.to_keras) in src and inspect.getsource(c.from_keras) in src
    assert "def rnn_to_keras(" in src and "gru" not in src and "def _parts(" in src
    resnet = netspec.generate(netspec.load(ROOT / "specs" / "resnet18.yaml"), "keras")
    assert "_parts" not in resnet and "rnn_" not in resnet and "depthwise" not in resnet
    assert "\nclass " not in resnet  # no generated layer: Keras has each one exactly


def test_weights_code_is_a_small_part_of_the_module():
    """ResNet-18: the conversions, their table and the loader / exporter are under half the
    module and under 70 lines (the model itself is the rest)."""
    src = netspec.generate(netspec.load(ROOT / "specs" / "resnet18.yaml"), "keras")
    lines = src.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("def ") and "_to_keras(" in ln)
    end = lines.index('if __name__ == "__main__":')
    assert end - start <= 70 and end - start < len(lines) / 2
