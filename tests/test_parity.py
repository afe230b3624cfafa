"""Parity on every example spec: the PyTorch target, ONNX Runtime on netspec's ONNX, and ONNX
Runtime on `torch.onnx.export` of the PyTorch module agree within the design page's bound
(|a - b| <= 1e-5 + 1e-4 |b|), with random weights (batch_norm statistics included) and inputs
at another batch size and sequence length than the export traced. Where `tests/reference/` has a
hand-written PyTorch model of the spec, netspec's ONNX is compared with it too.

The exporter is the TorchScript one (`dynamo=False`): it takes seconds on ResNet-18 where the
dynamo exporter takes much longer, and it exports every op netspec's PyTorch target emits.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import netspec
from netspec.targets import onnx as T
from tools.testing import assert_close, random_inputs, random_weights

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def ort_run(model_bytes: bytes, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def torch_module(graph, weights):
    try:
        return netspec.compile(graph, "torch", weights)
    except ModuleNotFoundError as e:
        if "netspec.targets.torch" in str(e):
            pytest.skip("the PyTorch target (netspec/targets/torch) is not there yet")
        raise


def torch_forward(module, graph, inputs) -> list[np.ndarray]:
    with torch.no_grad():
        ys = module(*(torch.from_numpy(inputs[k]) for k in graph.inputs))
    ys = ys if isinstance(ys, tuple | list) else (ys,)
    return [y.numpy() for y in ys]


def dynamic_axes(graph) -> dict[str, dict[int, str]]:
    axes = {}
    for name, v in graph.inputs.items():
        axes[name] = {
            0: "batch",
            **{i + 1: str(d) for i, d in enumerate(v.shape) if not isinstance(d, int)},
        }
    for oname, vname in graph.outputs.items():
        v = graph.value(vname)
        axes[oname] = {
            0: "batch",
            **{
                i + 1: str(d or f"{oname}_{i + 1}")
                for i, d in enumerate(v.shape)
                if not isinstance(d, int)
            },
        }
    return axes


def torch_export(module, graph, inputs) -> bytes:
    f = io.BytesIO()
    args = tuple(torch.from_numpy(inputs[k]) for k in graph.inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            f,
            input_names=list(graph.inputs),
            output_names=list(graph.outputs),
            dynamic_axes=dynamic_axes(graph),
            opset_version=T.DEFAULT_OPSET,
            dynamo=False,
        )
    return f.getvalue()


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_parity(path):
    graph = netspec.load(path)
    weights = random_weights(graph, seed=1)
    trace = random_inputs(graph, batch=2, seed=1, dynamic=5)
    inputs = random_inputs(graph, batch=3, seed=2, dynamic=7)

    ours = T.compile(graph, weights)
    onnx.checker.check_model(ours, full_check=True)
    y_ours = ort_run(ours.SerializeToString(), inputs)

    module = torch_module(graph, weights)
    y_torch = torch_forward(module, graph, inputs)
    y_export = ort_run(torch_export(module, graph, trace), inputs)

    for name, a, b, c in zip(graph.outputs, y_ours, y_torch, y_export, strict=True):
        assert_close(a, b, f"{path.stem}.{name}: ONNX Runtime on netspec's ONNX vs PyTorch")
        assert_close(c, b, f"{path.stem}.{name}: ONNX Runtime on torch.onnx.export vs PyTorch")


REFERENCED = [
    p
    for p in SPECS
    if p.stem in ("lenet5", "resnet18", "char_lstm", "bigru_classifier", "dcgan_generator")
]


@pytest.mark.parametrize("path", REFERENCED, ids=[p.stem for p in REFERENCED])
def test_onnx_matches_hand_written_reference(path):
    from tests.reference.torch_models import REFERENCES, load_canonical

    ref = REFERENCES[path.stem]
    graph = netspec.load(ROOT / ref.spec)
    weights = random_weights(graph, seed=4)
    model = load_canonical(ref.build(), weights)
    x = ref.example_input()
    with torch.no_grad():
        want = model(x).numpy()
    (name,) = graph.inputs
    (got,) = ort_run(T.compile(graph, weights).SerializeToString(), {name: x.numpy()})
    assert got.shape == ref.output_shape
    assert_close(got, want, f"{path.stem}: ONNX Runtime vs the hand-written PyTorch model")


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_onnx_matches_float64_reference(path):
    """netspec's ONNX against the float64 reference in tools/reference.py (the op records'
    numpy references, no target's code), on every spec cheap enough to run in float64 (under
    1 GMAC per example)."""
    from tools.reference import reference

    graph = netspec.load(path)
    if graph.macs > 1e9:
        pytest.skip(f"{graph.macs / 1e9:.1f} GMACs: covered by test_parity")
    weights = random_weights(graph, seed=6)
    inputs = random_inputs(graph, batch=2, seed=6)
    got = ort_run(T.compile(graph, weights).SerializeToString(), inputs)
    want = reference(graph, weights, inputs)
    for (name, w), g in zip(want.items(), got, strict=True):
        assert_close(g, w, f"{path.stem}.{name}: ONNX Runtime vs float64 reference")
