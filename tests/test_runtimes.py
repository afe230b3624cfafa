"""Other runtimes for the same ONNX model: OpenVINO (`netspec run --runtime openvino`) agrees
with ONNX Runtime on every spec within the float32 parity bound, and refuses bad inputs with the
same messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.targets.onnx.run import RunError, run_model
from tests.conftest import SPECS, run_cli
from tools.testing import assert_close, random_inputs, random_weights

pytest.importorskip("onnxruntime")
ov = pytest.importorskip("openvino", reason="needs openvino (pip install 'netspec[deploy]')")
from netspec.deploy.openvino import Session  # noqa: E402 - after the skip

ROOT = Path(__file__).resolve().parent.parent
BIG = {"keras_resnet50", "resnet18", "keras_mobilenetv2", "dcgan_generator"}


def _params(stems):
    return [
        pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in BIG else [])
        for p in SPECS
        if stems is None or p.stem in stems
    ]


@pytest.mark.parametrize("spec", _params(None))
def test_openvino_agrees_with_onnxruntime(spec):
    graph = netspec.load(spec)
    model = netspec.compile(graph, "onnx", random_weights(graph))
    x = random_inputs(graph, batch=3)
    want, _ = run_model(model, x, "cpu")
    got = Session(model).run(x)
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype
        assert_close(got[name], want[name], f"{graph.name}.{name}")


def test_cli_run_openvino(tmp_path):
    spec = ROOT / "specs" / "char_lstm.yaml"
    rc, _, err = run_cli(["build", spec, "-t", "onnx", "-o", tmp_path, "-q"])
    assert rc == 0, err
    graph = netspec.load(spec)
    x = random_inputs(graph, batch=2)
    np.save(tmp_path / "tokens.npy", x["tokens"])
    model = tmp_path / "char_lstm.onnx"
    args = ["run", model, "-i", f"tokens={tmp_path / 'tokens.npy'}", "-o", tmp_path / "out"]
    rc, out, err = run_cli([*args, "--runtime", "openvino"])
    assert rc == 0, err
    assert "runtime: openvino" in out
    got = np.load(tmp_path / "out" / "logits.npy")
    want, _ = run_model(model, x, "cpu")
    assert_close(got, want["logits"], "logits")

    # the same checks as ONNX Runtime's
    np.save(tmp_path / "f.npy", x["tokens"].astype(np.float32))
    for runtime in ("onnxruntime", "openvino"):
        rc, _, err = run_cli(
            ["run", model, "-i", f"tokens={tmp_path / 'f.npy'}", "--runtime", runtime]
        )
        assert rc == 2 and "input 'tokens' must be int64, got float32" in err, err
    rc, _, err = run_cli([*args, "--runtime", "openvino", "--provider", "cuda"])
    assert rc == 2 and "OpenVINO runs on the CPU" in err
    rc, _, err = run_cli(
        ["run", tmp_path / "none.onnx", "-i", "tokens=x.npy", "--runtime", "openvino"]
    )
    assert rc == 2 and "Traceback" not in err


def test_openvino_refuses_a_broken_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(RunError, match="not a readable ONNX model"):
        Session(bad)


# -- execution providers: CUDA and TensorRT (with IO binding) ---------------------------------
def _runs(provider: str) -> bool:
    from netspec.targets.onnx.run import RuntimeUnavailable, make_session

    try:
        make_session(netspec.compile(netspec.load(ROOT / "specs" / "mlp.yaml"), "onnx"), provider)
    except RuntimeUnavailable:
        return False
    return True


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_an_unavailable_provider_is_a_clear_error(provider, tmp_path):
    if _runs(provider):
        pytest.skip(f"the {provider} provider runs here")
    spec = ROOT / "specs" / "mlp.yaml"
    rc, _, err = run_cli(["build", spec, "-t", "onnx", "-o", tmp_path, "-q"])
    assert rc == 0, err
    g = netspec.load(spec)
    np.save(tmp_path / "x.npy", random_inputs(g)["x"])
    model = tmp_path / f"{g.name}.onnx"
    rc, out, err = run_cli(["run", model, "-i", f"x={tmp_path / 'x.npy'}", "--provider", provider])
    assert rc == 2, (out, err)
    name = {"cuda": "CUDA", "tensorrt": "TensorRT"}[provider]
    assert f"--provider {provider}: the {name} execution provider cannot run here" in err
    assert "this onnxruntime build lists" in err and "CPU" in err
    assert "use --provider cpu" in err and len(err.strip().splitlines()) == 1
    assert "EP Error" not in out + err and "Traceback" not in err


@pytest.mark.gpu
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
@pytest.mark.parametrize("stem", ["digits_cnn", "char_lstm", "resnet18"])
def test_gpu_providers_agree_with_the_cpu(provider, stem):
    """On a GPU: CUDA (TF32 off) and TensorRT (fp16 off) through IO binding, within the float32
    bound of the CPU provider's outputs."""
    if not _runs(provider):
        pytest.skip(f"the {provider} execution provider cannot run here")
    from netspec.targets.onnx.run import make_session, run_session

    graph = netspec.load(ROOT / "specs" / f"{stem}.yaml")
    model = netspec.compile(graph, "onnx", random_weights(graph))
    x = random_inputs(graph, batch=4)
    sess, used, _ = make_session(model, provider)
    assert used.lower().startswith(provider[:4])
    got = run_session(sess, x)
    want, _ = run_model(model, x, "cpu")
    for k in want:
        assert_close(got[k], want[k], f"{stem}.{k} on {provider}")
