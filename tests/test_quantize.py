"""`netspec build --quantize int8|fp16 [--calibrate FILE]`: variants of the ONNX model beside the
float32 one; calibration data checked before anything is built; on the trained digits CNN int8
keeps the accuracy within 1 point of float32 (slow: trains it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.targets.onnx.run import run_model
from tests.conftest import run_cli
from tools.testing import random_inputs

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "specs" / "digits_cnn.yaml"


def build(tmp_path, *extra) -> tuple[int, str, str]:
    return run_cli(["build", DIGITS, "-t", "onnx", "-o", tmp_path / "out", *extra])


@pytest.mark.parametrize(
    "mode, calibrate, done, suffix",
    [
        ("int8", False, "int8 dynamic", "int8"),
        ("int8", True, "int8 static", "int8"),
        ("fp16", False, "fp16", "fp16"),
    ],
)
def test_variants_run_and_are_smaller(mode, calibrate, done, suffix, tmp_path):
    graph = netspec.load(DIGITS)
    x = random_inputs(graph, batch=64)
    extra = []
    if calibrate:
        np.save(tmp_path / "cal.npy", x["image"])
        extra = ["--calibrate", tmp_path / "cal.npy"]
    rc, out, err = build(tmp_path, "--quantize", mode, *extra)
    assert rc == 0, err
    assert f"{mode}: {done}," in err
    f32 = tmp_path / "out" / f"{graph.name}.onnx"
    variant = tmp_path / "out" / f"{graph.name}.{suffix}.onnx"
    assert str(variant) in out.split()
    assert variant.stat().st_size < 0.7 * f32.stat().st_size
    want, _ = run_model(f32, x, "cpu")
    got, _ = run_model(variant, x, "cpu")  # same float32 inputs and outputs
    for k in want:
        assert got[k].dtype == np.float32
        assert np.abs(got[k] - want[k]).max() < 0.1  # a quantized model, not a different one
    assert not list((tmp_path / "out").glob(".netspec-*"))


def test_calibration_from_csv_and_npz(tmp_path):
    graph = netspec.load(DIGITS)
    x = random_inputs(graph, batch=20)["image"]
    np.savetxt(tmp_path / "cal.csv", x.reshape(20, -1), delimiter=",")
    np.savez(tmp_path / "cal.npz", image=x)
    for f in ("cal.csv", "cal.npz"):
        rc, _, err = build(tmp_path, "--quantize", "int8", "--calibrate", tmp_path / f)
        assert rc == 0 and "int8 static" in err, err


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ["--quantize", "int8", "--calibrate", "{tmp}/none.npy"], "does not exist"),
        ("bad.txt", ["--quantize", "int8", "--calibrate", "{tmp}/bad.txt"], "must be .npz, .npy"),
        ("shape.npy", ["--quantize", "int8", "--calibrate", "{tmp}/shape.npy"], "[N, 1, 8, 8]"),
        ("names.npz", ["--quantize", "int8", "--calibrate", "{tmp}/names.npz"], "did you mean"),
        ("obj.npy", ["--quantize", "int8", "--calibrate", "{tmp}/obj.npy"], "cannot read"),
        ("nan.npy", ["--quantize", "int8", "--calibrate", "{tmp}/nan.npy"], "finite numbers"),
        ("rows.csv", ["--quantize", "int8", "--calibrate", "{tmp}/rows.csv"], "hold 64 numbers"),
        ("ok.npy", ["--quantize", "fp16", "--calibrate", "{tmp}/ok.npy"], "--calibrate goes"),
        ("ok.npy", ["--calibrate", "{tmp}/ok.npy"], "go with the onnx target"),
        (None, ["--quantize", "int4"], "invalid choice"),
    ],
)
def test_errors_exit_2_before_building(make, args, message, tmp_path):
    files = {
        "bad.txt": lambda p: p.write_text("1,2\n"),
        "shape.npy": lambda p: np.save(p, np.zeros((3, 8, 8), np.float32)),
        "names.npz": lambda p: np.savez(p, images=np.zeros((3, 1, 8, 8)), x=np.zeros(3)),
        "obj.npy": lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "nan.npy": lambda p: np.save(p, np.full((2, 1, 8, 8), np.nan, np.float32)),
        "rows.csv": lambda p: p.write_text("1,2,3\n"),
        "ok.npy": lambda p: np.save(p, np.zeros((2, 1, 8, 8), np.float32)),
    }
    if make:
        files[make](tmp_path / make)
    rc, out, err = build(tmp_path, *(str(a).replace("{tmp}", str(tmp_path)) for a in args))
    assert rc == 2, (out, err)
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_int8_accuracy_on_the_trained_digits_cnn(tmp_path):
    """Train the digits CNN (a few epochs), then compare float32, dynamic int8 and static int8
    (calibrated on 256 training examples) on the test split with `netspec evaluate` (ONNX
    Runtime, CPU)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from netspec.evaluate.run import evaluate
    from netspec.train.run import load_parts
    from netspec.weights import write_weights

    graph = netspec.load(DIGITS)
    run = netspec.train(graph, epochs=5)
    write_weights(run.weights, graph, tmp_path / "w.safetensors")
    dataset, rows, _, _ = load_parts(graph)
    x_cal, _ = dataset.take(rows.train[:256], np.float32)
    np.savez(tmp_path / "cal.npz", **x_cal)

    def accuracy(path) -> float:
        report = evaluate(graph, model=path, split="test", provider="cpu")
        return report["outputs"]["digit"]["accuracy"]

    out = tmp_path / "out"
    common = ["build", DIGITS, "-t", "onnx", "-o", out, "--weights", tmp_path / "w.safetensors"]
    rc, _, err = run_cli([*common, "--quantize", "int8"])
    assert rc == 0, err
    f32 = accuracy(out / f"{graph.name}.onnx")
    dynamic = accuracy(out / f"{graph.name}.int8.onnx")
    rc, _, err = run_cli([*common, "--quantize", "int8", "--calibrate", tmp_path / "cal.npz"])
    assert rc == 0, err
    static = accuracy(out / f"{graph.name}.int8.onnx")
    print(f"accuracy: float32 {f32:.4f}, int8 dynamic {dynamic:.4f}, int8 static {static:.4f}")
    assert f32 > 0.85  # it learned
    assert abs(dynamic - f32) <= 0.01
    assert abs(static - f32) <= 0.01


@pytest.mark.parametrize("stem", ["char_lstm", "bigru_classifier", "iris"])
@pytest.mark.parametrize("mode", ["int8", "fp16"])
def test_recurrent_and_dense_specs_quantize_and_run(stem, mode, tmp_path):
    """Recurrent specs too (fp16 keeps their recurrent layers float32: ONNX Runtime's CPU
    provider crashed on them otherwise)."""
    path = ROOT / "specs" / f"{stem}.yaml"
    graph = netspec.load(path)
    rc, _, err = run_cli(["build", path, "-t", "onnx", "-o", tmp_path, "--quantize", mode])
    assert rc == 0, err
    x = random_inputs(graph, batch=3)
    want, _ = run_model(tmp_path / f"{graph.name}.onnx", x, "cpu")
    got, _ = run_model(tmp_path / f"{graph.name}.{mode}.onnx", x, "cpu")
    for k in want:
        assert np.abs(got[k] - want[k]).max() < 0.05, k
