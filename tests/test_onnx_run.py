"""`netspec run` and `netspec.targets.onnx.run`: ONNX Runtime on CPU, the CUDA provider's
refusal where it cannot run, input checking, and (on a GPU machine) CUDA against CPU."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.cli import main
from netspec.targets import onnx as T
from netspec.targets.onnx.run import (
    CPU,
    CUDA,
    PROVIDERS,
    RunError,
    RuntimeUnavailable,
    cuda_failure_reason,
    make_session,
    run_model,
)
from tools.testing import assert_close, random_inputs, random_weights

ort = pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def cuda_runs() -> bool:
    try:
        make_session(T.compile(netspec.load(ROOT / "specs" / "mlp.yaml")), "cuda")
    except RuntimeUnavailable:
        return False
    return True


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """mlp and char_lstm built by the CLI, with inputs saved as .npy."""
    d = tmp_path_factory.mktemp("run")
    out = {}
    for name in ("mlp", "char_lstm"):
        rc, _, err = cli("build", ROOT / "specs" / f"{name}.yaml", "-t", "onnx", "-o", d, "-q")
        assert rc == 0, err
        g = netspec.load(ROOT / "specs" / f"{name}.yaml")
        x = random_inputs(g, batch=3)
        files = {}
        for k, v in x.items():
            files[k] = d / f"{name}_{k}.npy"
            np.save(files[k], v)
        out[name] = (d / f"{name}.onnx", g, x, files)
    return out


def test_cli_run_on_cpu_prints_and_saves(built, tmp_path):
    model, g, x, files = built["mlp"]
    rc, out, err = cli(
        "run", model, "--input", f"x={files['x']}", "--provider", "cpu", "-o", tmp_path / "o"
    )
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == f"provider: {CPU}"
    assert lines[1].startswith("out: shape [3, 1] float32 [")
    saved = np.load(tmp_path / "o" / "out.npy")
    w = netspec.init_weights(g, 0)
    h = np.maximum(x["x"] @ w["hidden1.weight"].T + w["hidden1.bias"], 0)
    h = np.maximum(h @ w["hidden2.weight"].T + w["hidden2.bias"], 0)
    assert_close(saved, h @ w["out.weight"].T + w["out.bias"], "netspec run vs numpy")


def test_cli_run_int64_inputs_and_auto(built):
    model, g, x, files = built["char_lstm"]
    rc, out, err = cli("run", model, "-i", f"tokens={files['tokens']}")
    assert rc == 0, err
    assert out.startswith("provider: ")
    assert "logits: shape [3, 5, 65] float32" in out
    if not cuda_runs():
        assert out.splitlines()[0] == f"provider: {CPU}"
        assert "CUDA not used: " in err


def test_cuda_provider_refuses_with_one_line(built):
    if cuda_runs():
        pytest.skip("the CUDA execution provider runs on this machine")
    model, g, x, files = built["mlp"]
    rc, out, err = cli("run", model, "--input", f"x={files['x']}", "--provider", "cuda")
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(
        "netspec run: error: --provider cuda: the CUDA execution provider cannot run here: "
    )
    assert "Traceback" not in err and "\x1b[" not in err
    with pytest.raises(RuntimeUnavailable):
        run_model(model, x, provider="cuda")


def test_cli_provider_choices_are_the_runners():
    from netspec.cli import make_parser

    sub = next(a for a in make_parser()._actions if a.dest == "command").choices["run"]
    provider = next(a for a in sub._actions if a.dest == "provider")
    assert tuple(provider.choices) == PROVIDERS


def test_cuda_failure_reason_reads_ort_log():
    log = (
        "\x1b[1;31m2026-01-01 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] "
        "... FAIL : Failed to load library /x/libonnxruntime_providers_cuda.so with error: "
        "libcublasLt.so.13: cannot open shared object file: No such file or directory\n\x1b[m\n"
        "\x1b[0;93m2026-01-01 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:1295 "
        "CreateExecutionProviderFactoryInstance] Failed to create CUDAExecutionProvider. Require "
        "cuDNN 9.* and CUDA 13.*. Please install all dependencies\x1b[m\n"
    )
    assert cuda_failure_reason(log) == (
        "libcublasLt.so.13: cannot open shared object file: No such file or directory; "
        "ONNX Runtime requires cuDNN 9.* and CUDA 13.*"
    )
    assert "no CUDA-capable device" in cuda_failure_reason(
        "CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=x"
    )


def test_run_model_api(built):
    model, g, x, files = built["char_lstm"]
    outs, used = run_model(model, x, provider="cpu")
    assert used == CPU and list(outs) == ["logits"]
    outs2, _ = run_model(T.compile(g), x, provider="cpu")  # a ModelProto works too
    np.testing.assert_array_equal(outs["logits"], outs2["logits"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "y={x}"], "the model has no input 'y'"),
        (["--input", "X={x}"], "did you mean 'x'?"),
        ([], "missing input(s): x"),
        (["--input", "x={f64}"], "input 'x' must be float32, got float64"),
        (["--input", "x={bad_shape}"], "input 'x' must have shape [batch, 3], got [3, 4]"),
        (["--input", "x={rank1}"], "input 'x' must have rank 2"),
        (["--input", "x=nope.npy"], "input file 'nope.npy' (for 'x') does not exist"),
        (["--input", "x={text}"], "is not a readable .npy array"),
        (["--input", "x"], "--input takes NAME=FILE.npy"),
        (["--input", "x={x}", "--input", "x={x}"], "input 'x' is given twice"),
    ],
)
def test_input_errors_exit_2(built, tmp_path, args, message):
    model, g, x, files = built["mlp"]
    paths = {
        "x": files["x"],
        "f64": tmp_path / "f64.npy",
        "bad_shape": tmp_path / "b.npy",
        "rank1": tmp_path / "r.npy",
        "text": tmp_path / "t.npy",
    }
    np.save(paths["f64"], x["x"].astype(np.float64))
    np.save(paths["bad_shape"], np.zeros((3, 4), np.float32))
    np.save(paths["rank1"], np.zeros((3,), np.float32))
    paths["text"].write_text("not numpy")
    rc, out, err = cli("run", model, *(a.format(**paths) for a in args), "--provider", "cpu")
    assert rc == 2, (out, err)
    assert message in err, err
    assert "Traceback" not in err


def test_missing_model_and_bad_model(tmp_path):
    rc, _, err = cli("run", tmp_path / "none.onnx", "--provider", "cpu")
    assert rc == 2 and "does not exist" in err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"definitely not protobuf")
    rc, _, err = cli("run", bad, "--provider", "cpu")
    assert rc == 2 and "cannot load the model" in err


def test_shared_symbol_sizes_must_agree(tmp_path):
    g = netspec.loads("""
netspec: 1
name: two
inputs:
  a: {shape: [seq, 2]}
  b: {shape: [seq, 2]}
layers:
  - {op: add, inputs: [a, b]}
""")
    m = T.compile(g)
    a = np.zeros((1, 3, 2), np.float32)
    with pytest.raises(RunError, match="axis 'seq' has size 3 in input 'a' but 4"):
        run_model(m, {"a": a, "b": np.zeros((1, 4, 2), np.float32)}, provider="cpu")
    with pytest.raises(RunError, match="axis 'batch'"):
        run_model(m, {"a": a, "b": np.zeros((2, 3, 2), np.float32)}, provider="cpu")


def test_runtime_failure_is_a_run_error(built):
    model, g, x, files = built["char_lstm"]
    with pytest.raises(RunError, match="ONNX Runtime failed on these inputs"):
        run_model(model, {"tokens": np.full((1, 4), 1000, np.int64)}, provider="cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("spec", ["resnet18", "char_lstm", "bigru_classifier", "dcgan_generator"])
def test_cuda_matches_cpu(spec):
    if not cuda_runs():
        pytest.skip("the CUDA execution provider cannot run here (no GPU or no CUDA 13 / cuDNN 9)")
    g = netspec.load(ROOT / "specs" / f"{spec}.yaml")
    m = T.compile(g, random_weights(g))
    x = random_inputs(g, batch=2)
    gpu, used = run_model(m, x, provider="cuda")
    assert used == CUDA
    auto, used_auto = run_model(m, x, provider="auto")
    assert used_auto == CUDA
    cpu, _ = run_model(m, x, provider="cpu")
    for k in cpu:
        assert_close(gpu[k], cpu[k], f"{spec}: CUDA vs CPU, {k}")
        np.testing.assert_array_equal(auto[k], gpu[k])


def test_ort_message_drops_code_and_source_location():
    from netspec.targets.onnx.run import ort_message

    e = RuntimeError(
        "[ONNXRuntimeError] : 1 : FAIL : Load model from m.onnx failed:/onnxruntime_src/onnxruntime"
        "/core/graph/model_load_utils.h:46 void onnxruntime::f(const std::map<a, b>&, int) "
        "ONNX Runtime only *guarantees* support for released opsets.\n"
    )
    assert ort_message(e) == (
        "Load model from m.onnx failed:ONNX Runtime only *guarantees* support for released opsets."
    )
    assert ort_message(RuntimeError("x" * 1000)).endswith("...")
