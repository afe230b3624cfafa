"""The PyTorch target against hand-written PyTorch models (`tests/reference/torch_models.py`):
for LeNet-5, ResNet-18, the char LSTM, the bidirectional GRU classifier and the DCGAN generator,
the module built from the spec has the reference's parameter and buffer counts, and, loaded with
the same canonical weights (random, batch_norm statistics included), computes the same outputs
within the design page's parity bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import netspec
from tools.testing import assert_close, random_weights

torch = pytest.importorskip("torch")
refs = pytest.importorskip("tests.reference.torch_models")

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["lenet5", "resnet18", "char_lstm", "bigru_classifier", "dcgan_generator"]


@pytest.mark.parametrize("name", NAMES)
def test_matches_hand_written_reference(name):
    ref = refs.REFERENCES[name]
    graph = netspec.load(ROOT / ref.spec)
    weights = random_weights(graph, seed=7)
    module = netspec.compile(graph, "torch", weights)
    model = refs.load_canonical(ref.build(), weights)

    assert refs.param_count(module) == refs.param_count(model) == ref.params == graph.param_count
    assert refs.buffer_count(module) == refs.buffer_count(model) == ref.buffers
    assert graph.buffer_count == ref.buffers

    x = ref.example_input()
    if name == "resnet18":  # one image is enough, and keeps the test fast
        x = x[:1]
    with torch.no_grad():
        got = module(x)
        want = model(x)
    assert tuple(got.shape) == (x.shape[0], *ref.output_shape[1:])
    assert_close(got.numpy(), want.numpy(), f"{name}: generated vs hand-written")


@pytest.mark.parametrize("name", NAMES)
def test_weights_come_back_in_the_references_layout(name):
    """Canonical weights exported from the generated module load into the reference model and
    give back the same state (the two agree on every layout)."""
    ref = refs.REFERENCES[name]
    graph = netspec.load(ROOT / ref.spec)
    weights = random_weights(graph, seed=8)
    module = netspec.compile(graph, "torch", weights)
    exported = netspec.api.export_weights(module, graph)
    model = refs.load_canonical(ref.build(), exported)
    back = refs.reference_to_canonical(name, model.state_dict())
    assert sorted(back) == sorted(weights)
    for k, v in weights.items():
        assert np.array_equal(back[k], v), k
