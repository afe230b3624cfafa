"""`shares:` on a layer or block use: it applies the weights of an earlier layer (or block use)
of the same op (or block) and attributes in its scope. The weights are stored once, under the
owner's key, and every target calls the owner's module (layer, initializers) again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.errors import SpecError
from tools import randspec
from tools.reference import reference
from tools.testing import assert_close, random_inputs, random_weights

ROOT = Path(__file__).resolve().parent.parent
SIAMESE = ROOT / "specs" / "siamese.yaml"

ENCODER = {
    "params": {"width": 4},
    "layers": [
        {"op": "conv2d", "name": "conv", "filters": "$width", "kernel": 3, "padding": 1},
        {"op": "batch_norm", "name": "bn"},
        "relu",
        "global_avg_pool",
    ],
}


def loads(layers, blocks=None, inputs=None) -> netspec.Graph:
    spec = {"netspec": 1, "name": "t", "inputs": inputs or {"x": {"shape": [3, 6, 6]}}}
    if blocks:
        spec["blocks"] = blocks
    spec["layers"] = layers
    return netspec.loads(json.dumps(spec))


def layer_share() -> netspec.Graph:
    """A layer-level share: one dense layer applied twice, to two inputs."""
    return loads(
        [
            {"op": "dense", "name": "proj", "units": 3, "inputs": ["a"]},
            {"op": "dense", "name": "proj_b", "units": 3, "inputs": ["b"], "shares": "proj"},
            {"op": "add", "inputs": ["proj", "proj_b"]},
        ],
        inputs={"a": {"shape": [5]}, "b": {"shape": [5]}},
    )


def block_share() -> netspec.Graph:
    """A block-level share, plus a layer inside a block sharing another one of its layers."""
    twice = {
        "layers": [
            {"op": "dense", "name": "first", "units": 4},
            {"op": "dense", "name": "again", "units": 4, "shares": "first"},
        ]
    }
    return loads(
        [
            {"block": "encoder", "name": "one"},
            {"block": "encoder", "name": "two", "inputs": ["x"], "shares": "one"},
            {"op": "subtract", "inputs": ["one", "two"]},
            {"block": "twice"},
        ],
        {"encoder": ENCODER, "twice": twice},
    )


def test_siamese_stores_the_encoder_once():
    g = netspec.load(SIAMESE)
    shared = [n for n in g.nodes if n.shares]
    assert {n.name for n in shared} == {"right_enc.conv", "right_enc.bn", "right_enc.embed"}
    assert all(n.shares == "left_" + n.name[len("right_") :] for n in shared)
    encoder = sum(n.param_count for n in g.nodes if n.name.startswith("left_enc."))
    unshared = sum(n.param_count for n in g.nodes)  # what two encoders would hold
    assert encoder == 9 * 8 + 2 * 8 + 8 * 8 * 8 * 16 + 16
    assert g.param_count == unshared - encoder == 8_313
    assert set(g.weight_shapes()) == set(netspec.init_weights(g))
    assert not any(k.startswith("right_enc.") for k in g.weight_shapes())


def test_weight_keys_and_counts():
    g = layer_share()
    assert set(g.weight_shapes()) == {"proj.weight", "proj.bias"}
    assert g.param_count == 5 * 3 + 3
    g = block_share()
    assert not any(k.startswith("two.") for k in g.weight_shapes())
    assert "twice_1.again.weight" not in g.weight_shapes()
    assert g.node("two.bn").shares == "one.bn"
    assert g.uses["two"].shares == "one"


@pytest.mark.parametrize("target", randspec.available_targets())
@pytest.mark.parametrize("make", [layer_share, block_share, lambda: netspec.load(SIAMESE)])
def test_targets_compute_the_reference(target, make):
    g = make()
    w = random_weights(g, seed=1)
    x = random_inputs(g, batch=2, seed=2)
    want = reference(g, w, x)
    got = randspec.run_target(target, g, w, x)
    for b, a in zip(want.values(), got, strict=True):
        assert_close(np.asarray(a), b, f"shares: {target}")


def test_reference_uses_the_owners_weights():
    """Two inputs equal: the two encodings are equal, so the squared difference is 0 and the
    score is the head's bias through the sigmoid; other weights for the sharer would not be."""
    g = netspec.load(SIAMESE)
    w = random_weights(g, seed=3)
    x = random_inputs(g, batch=2, seed=4)
    x["right"] = x["left"]
    got = reference(g, w, x)["same"]
    want = 1 / (1 + np.exp(-np.float64(w["score.bias"][0])))
    np.testing.assert_allclose(got, np.full((2, 1), want), rtol=1e-12)


def error(layers, blocks=None, inputs=None) -> SpecError:
    with pytest.raises(SpecError) as e:
        loads(layers, blocks, inputs)
    assert e.value.hint
    return e.value


def test_errors():
    two = {"a": {"shape": [5]}, "b": {"shape": [5]}}
    e = error([{"op": "dense", "units": 3, "inputs": ["a"], "shares": "nope"}], inputs=two)
    assert "nope" in e.message and e.path[-1] == "shares"
    e = error(
        [
            {"op": "dense", "units": 3, "inputs": ["a"], "shares": "later"},
            {"op": "dense", "name": "later", "units": 3, "inputs": ["b"]},
        ],
        inputs=two,
    )
    assert "below" in e.message
    e = error(
        [
            {"op": "dense", "name": "p", "units": 3, "inputs": ["a"]},
            {"op": "dense", "units": 4, "inputs": ["b"], "shares": "p"},
        ],
        inputs=two,
    )
    assert "'units' differs" in e.message
    e = error(
        [
            {"op": "dense", "name": "p", "units": 3, "inputs": ["a"]},
            {"op": "dense", "units": 3, "inputs": ["p"], "shares": "p"},
        ],
        inputs=two,
    )
    assert "shapes differ" in e.message
    e = error(
        [
            {"op": "dense", "name": "p", "units": 3, "inputs": ["a"]},
            {"op": "layer_norm", "inputs": ["b"], "shares": "p"},
        ],
        inputs=two,
    )
    assert "dense layer" in e.message
    e = error([{"op": "relu", "inputs": ["a"], "shares": "a"}], inputs=two)
    assert "not a layer" in e.message
    e = error(
        [{"block": "encoder", "name": "one"}, {"op": "dense", "units": 4, "shares": "one"}],
        {"encoder": ENCODER},
    )
    assert "block use" in e.message
    e = error(
        [
            {"block": "encoder", "name": "one"},
            {"block": "encoder", "inputs": ["x"], "width": 5, "shares": "one"},
        ],
        {"encoder": ENCODER},
    )
    assert "block params differ" in e.message
    e = error(
        [
            {"op": "conv2d", "name": "c", "filters": 3, "kernel": 1},
            {"block": "encoder", "shares": "c"},
        ],
        {"encoder": ENCODER},
    )
    assert "is a layer" in e.message


def test_located_exit_2(tmp_path):
    import subprocess
    import sys

    spec = SIAMESE.read_text().replace("shares: left_enc", "shares: left_encoder")
    (tmp_path / "s.yaml").write_text(spec)
    r = subprocess.run(
        [sys.executable, "-m", "netspec", "validate", str(tmp_path / "s.yaml")],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "s.yaml:" in r.stderr and "left_encoder" in r.stderr and "did you mean" in r.stderr


@pytest.mark.parametrize("target", randspec.available_targets())
def test_targets_hold_the_weights_once(target):
    """Each target holds one copy: PyTorch's parameters, ONNX's initializers, Keras' weights."""
    g = netspec.load(SIAMESE)
    w = netspec.init_weights(g, seed=0)
    model = netspec.compile(g, target, w)
    if target == "torch":
        count = sum(p.numel() for p in model.parameters())
        keys = set(model.state_dict()) - {"left_enc.bn.num_batches_tracked"}
    elif target == "onnx":
        from onnx import numpy_helper

        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        keys = {k for k in inits if not k.startswith("const/")}
        count = sum(inits[k].size for k in keys if not k.startswith("left_enc.bn.running"))
    else:
        count = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        keys = {f"{layer.name}.*" for layer in model.layers if layer.weights}
        assert keys == {"left_enc.conv.*", "left_enc.bn.*", "left_enc.embed.*", "score.*"}
        keys = set(g.weight_shapes())
    assert count == g.param_count == 8_313
    assert keys == set(g.weight_shapes())


def nested_share() -> netspec.Graph:
    """A shared use whose block uses another block, a chain (three shares two shares one), and
    a use of the same block that shares nothing."""
    outer = {"layers": [{"block": "encoder"}, {"op": "dense", "name": "head", "units": 2}]}
    return loads(
        [
            {"block": "outer", "name": "one"},
            {"block": "outer", "name": "two", "inputs": ["x"], "shares": "one"},
            {"block": "outer", "name": "three", "inputs": ["x"], "shares": "two"},
            {"block": "outer", "name": "own", "inputs": ["x"]},
            {"op": "concat", "inputs": ["one", "two", "three", "own"]},
        ],
        {"encoder": ENCODER, "outer": outer},
    )


def test_nested_and_chained_shares():
    g = nested_share()
    assert g.uses["three"].shares == "one" and g.uses["own"].shares is None
    assert g.node("three.encoder_1.conv").shares == "one.encoder_1.conv"
    prefixes = {k.split(".", 1)[0] for k in g.weight_shapes()}
    assert prefixes == {"one", "own"}


@pytest.mark.parametrize("target", randspec.available_targets())
def test_nested_shares_compute_the_reference(target):
    g = nested_share()
    w = random_weights(g, seed=5)
    x = random_inputs(g, batch=2, seed=6)
    want = reference(g, w, x)
    got = randspec.run_target(target, g, w, x)
    for b, a in zip(want.values(), got, strict=True):
        assert_close(np.asarray(a), b, f"nested shares: {target}")


def test_training_updates_the_one_copy(tmp_path):
    """PyTorch training of a spec whose hidden layer is applied twice: the weights file holds
    the owner's keys only, the training moved them, and the loss went down."""
    pytest.importorskip("torch")
    spec = (ROOT / "specs" / "xor.yaml").read_text()
    spec = spec.replace(
        "  - {op: dense, name: out,",
        "  - {op: dense, name: again, units: 2, activation: sigmoid, shares: hidden}\n"
        "  - {op: dense, name: out,",
    ).replace("epochs: 500", "epochs: 30")
    path = tmp_path / "xor_shared.yaml"
    path.write_text(spec.replace("../data/xor.csv", str(ROOT / "data" / "xor.csv")))
    g = netspec.load(path)
    start = netspec.init_weights(g, seed=0)
    h = netspec.train(g, target="torch", weights=start)
    assert set(h.weights) == {"hidden.weight", "hidden.bias", "out.weight", "out.bias"}
    assert not np.allclose(np.asarray(h.weights["hidden.weight"]), start["hidden.weight"])
    assert h.history["loss"][-1] < h.history["loss"][0]
