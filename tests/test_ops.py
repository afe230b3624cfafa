"""Every op's record, checked on every target.

Each op's examples (`OpDef.examples`, in netspec/ops/) run on every installed target through
`netspec.compile` (ONNX on ONNX Runtime's CPU provider) and are compared, in float32, with the
op's float64 numpy reference (`OpDef.reference`, through tools/reference.py) within the spec
language's parity bound `|a - b| <= 1e-5 + 1e-4 |b|`. The reference's output shapes must be the
IR's. Every activation op also runs as the `activation:` of a dense layer (and of a convolution,
where the language allows it). Adding an op adds its cases here: no table in this file names an
op.

A record is complete when it has a reference, examples, a sampler for the random-spec generator,
and an emitter on every target (each target module's `EMITTERS`). Every example's generated
PyTorch and Keras source passes `ruff check` and `ruff format --check`.
"""

from __future__ import annotations

import importlib
import json
import subprocess

import numpy as np
import pytest
from conftest import ROOT, RUFF

import netspec
from netspec.ops import ACTIVATIONS, OPS, Example
from netspec.schema import NO_CONV_ACT
from netspec.targets import TARGETS
from tools import randspec
from tools.reference import reference
from tools.testing import assert_close, example_graph, example_inputs, examples, random_weights

RUN = randspec.available_targets()
EXAMPLES = examples()
DYN = 5  # the size random_inputs gives dynamic axes


def activation_cases() -> dict[str, tuple[dict, Example]]:
    """Each activation op as the `activation:` of a dense layer and of a conv1d."""
    out = {}
    for act in ACTIVATIONS:
        hosts = [("dense", {"units": 3}, [2, 4])]
        if act not in NO_CONV_ACT:  # not allowed on a convolution
            hosts.append(("conv1d", {"filters": 2, "kernel": 2}, [2, 5]))
        for host, attrs, shape in hosts:
            e = Example(f"as_{host}_activation", {"x": shape}, scale=3.0)
            out[f"{act}.{e.name}"] = ({"op": host, **attrs, "activation": act}, e)
    return out


ACTIVATION_CASES = activation_cases()


def activation_graph(key: str) -> netspec.Graph:
    layer, e = ACTIVATION_CASES[key]
    spec = {
        "netspec": 1,
        "name": key.replace(".", "_"),
        "inputs": {k: {"shape": v} for k, v in e.inputs.items()},
        "layers": [layer],
    }
    return netspec.loads(json.dumps(spec), file=f"<{key}>")


def check(target: str, graph: netspec.Graph, e: Example, label: str) -> None:
    w = random_weights(graph, seed=3)
    x = example_inputs(graph, e, batch=2, seed=4)
    want = reference(graph, w, x)
    for (name, v), b in zip(graph.outputs.items(), want.values(), strict=True):
        ir = tuple(d if isinstance(d, int) else DYN for d in graph.value(v).shape)
        assert b.shape == (2, *ir), f"{label}.{name}: the reference's shape is not the IR's"
    got = randspec.run_target(target, graph, w, x)
    assert len(got) == len(want), label
    for (name, b), a in zip(want.items(), got, strict=True):
        a = np.asarray(a)
        assert a.dtype == np.float32, f"{label}.{name}: {a.dtype}"
        assert_close(a, b, f"{label}.{name}: {target} vs the float64 reference")


@pytest.fixture
def target_ready(request):
    """Keras' one TensorFlow import per session (the `keras` fixture) before a Keras case."""

    def ready(target: str) -> None:
        if target == "keras":
            request.getfixturevalue("keras")

    return ready


@pytest.mark.skipif(not RUN, reason="no target installed")
@pytest.mark.parametrize("target", RUN)
@pytest.mark.parametrize("key", list(EXAMPLES))
def test_example_against_reference(key, target, target_ready):
    target_ready(target)
    op, e = EXAMPLES[key]
    check(target, example_graph(op, e), e, key)


@pytest.mark.skipif(not RUN, reason="no target installed")
@pytest.mark.parametrize("target", RUN)
@pytest.mark.parametrize("key", list(ACTIVATION_CASES))
def test_activation_attribute_against_reference(key, target, target_ready):
    target_ready(target)
    check(target, activation_graph(key), ACTIVATION_CASES[key][1], key)


@pytest.mark.parametrize("name", list(OPS))
def test_record_is_complete(name):
    """Reference, examples (each a valid spec whose last layer is this op) and a sampler."""
    d = OPS[name]
    assert d.reference is not None, f"{name}: no numpy reference"
    assert d.sample is not None, f"{name}: no sampler for the random-spec generator"
    assert d.examples, f"{name}: no examples"
    names = [e.name for e in d.examples]
    assert len(set(names)) == len(names), f"{name}: two examples share a name"
    for e in d.examples:
        assert example_graph(name, e).nodes[-1].op == name


@pytest.mark.parametrize("target", ["torch", "keras"])
def test_example_sources_are_ruff_clean(target, tmp_path):
    """Every example's generated source, with the repository's ruff configuration (one ruff run
    over all of them)."""
    if not RUFF.exists():
        pytest.skip("ruff is not installed next to this Python")
    for key, (op, e) in EXAMPLES.items():
        source = netspec.generate(example_graph(op, e), target)
        (tmp_path / f"{key.replace('.', '__')}.py").write_text(source, encoding="utf-8")
    config = str(ROOT / "pyproject.toml")
    for args in (["check"], ["format", "--check", "--diff"]):
        r = subprocess.run(
            [str(RUFF), *args, "--no-cache", "--config", config, str(tmp_path)],
            text=True,
            capture_output=True,
        )
        assert r.returncode == 0, f"ruff {args[0]} on {target} sources:\n{r.stdout}\n{r.stderr}"


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_op_has_an_emitter(target):
    """Each target has exactly one emitter per op of the table."""
    try:
        mod = importlib.import_module(TARGETS[target])
    except ImportError as e:  # pragma: no cover - the test extras install every target
        pytest.skip(f"{target}: {e}")
    missing = sorted(set(OPS) - set(mod.EMITTERS))
    extra = sorted(set(mod.EMITTERS) - set(OPS))
    assert not missing, f"ops without a {target} emitter: {missing}"
    assert not extra, f"{target} emitters for no op: {extra}"


def test_starting_weights_come_from_the_records():
    """init_weights: each record's `start` values, zero biases, and drawn weights elsewhere."""
    graph = example_graph("batch_norm", OPS["batch_norm"].examples[0])
    w = netspec.init_weights(graph, seed=0)
    node = graph.nodes[-1]
    for k, v in OPS["batch_norm"].start.items():
        np.testing.assert_array_equal(w[f"{node.name}.{k}"], v)
    graph = example_graph("prelu", OPS["prelu"].examples[0])
    w = netspec.init_weights(graph, seed=0)
    np.testing.assert_array_equal(w[f"{graph.nodes[-1].name}.weight"], 0.25)
    graph = example_graph("conv2d", OPS["conv2d"].examples[0])
    w = netspec.init_weights(graph, seed=0)
    name = graph.nodes[-1].name
    assert not w[f"{name}.bias"].any()
    assert w[f"{name}.weight"].std() > 0 and w[f"{name}.weight"].dtype == np.float32
