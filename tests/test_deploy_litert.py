"""LiteRT: `netspec deploy SPEC --litert DIR` converts the Keras target to a `.tflite` flatbuffer;
run with the LiteRT interpreter it agrees with ONNX Runtime within the float32 parity bound.
Recurrent specs do not convert with a dynamic batch size: that is a clear error, tested here;
with `--litert-batch 1` they convert and agree too."""

from __future__ import annotations

from pathlib import Path

import pytest

import netspec
from netspec.deploy.source import DeployError, Source
from netspec.targets.onnx.run import run_model
from tests.conftest import SPECS, run_cli
from tools.testing import assert_close, random_inputs, random_weights

pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (pip install 'netspec[deploy]')")
from netspec.deploy import litert  # noqa: E402 - after the skip

ROOT = Path(__file__).resolve().parent.parent
# recurrent layers with a dynamic batch size: LiteRT's builtins lack what they need
RECURRENT = {"char_lstm", "bigru_classifier"}
BIG = {"keras_resnet50", "resnet18", "keras_mobilenetv2", "dcgan_generator", "lenet5"}


def agree(graph, batch: int = 3, fixed: bool = False) -> None:
    w = random_weights(graph)
    sess = litert.Session(litert.convert(graph, w, batch if fixed else None))
    x = random_inputs(graph, batch=batch)
    want, _ = run_model(netspec.compile(graph, "onnx", w), x, "cpu")
    got = sess.run(x)
    assert sorted(got) == sorted(want)
    for name in want:
        assert_close(got[name], want[name], f"{graph.name}.{name}")


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in BIG else [])
        for p in SPECS
        if p.stem not in RECURRENT
    ],
)
def test_litert_agrees_with_onnxruntime(path, keras):
    agree(netspec.load(path))


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(RECURRENT))
def test_recurrent_specs_need_a_fixed_batch(stem, keras, tmp_path):
    path = ROOT / "specs" / f"{stem}.yaml"
    rc, out, err = run_cli(["deploy", path, "--litert", tmp_path / "o", "--triton", tmp_path / "t"])
    assert rc == 2, (out, err)
    assert not (tmp_path / "t").exists()  # converted first: nothing written
    assert f"{stem}.yaml: error: LiteRT cannot convert" in err
    assert (
        "need a fixed batch size" in err and "hint: fix the batch size with --litert-batch 1" in err
    )
    assert "Traceback" not in err and "loc(" not in err
    assert not (tmp_path / "o").exists()
    # with the batch fixed they convert, over a sequence of dynamic length, and agree
    agree(netspec.load(path), batch=1, fixed=True)
    rc, out, err = run_cli(["deploy", path, "--litert", tmp_path / "o", "--litert-batch", "1"])
    assert rc == 0, err


def test_cli_writes_tflite_and_refuses_onnx(keras, tmp_path):
    rc, out, err = run_cli(["deploy", ROOT / "specs" / "xor.yaml", "--litert", tmp_path / "o"])
    assert rc == 0, err
    name = netspec.load(ROOT / "specs" / "xor.yaml").name
    path = tmp_path / "o" / f"{name}.tflite"
    assert out.strip().endswith(str(path))
    g = netspec.load(ROOT / "specs" / "xor.yaml")
    x = random_inputs(g)
    want, _ = run_model(netspec.compile(g, "onnx"), x, "cpu")
    got = litert.Session(path).run(x)
    for k in want:
        assert_close(got[k], want[k], k)

    rc, _, err = run_cli(["build", ROOT / "specs" / "xor.yaml", "-t", "onnx", "-o", tmp_path, "-q"])
    assert rc == 0, err
    rc, _, err = run_cli(["deploy", tmp_path / f"{name}.onnx", "--litert", tmp_path / "p"])
    assert rc == 2 and "needs the spec, not an .onnx file" in err
    assert not (tmp_path / "p").exists()
    rc, _, err = run_cli(
        ["deploy", ROOT / "specs" / "xor.yaml", "--litert", tmp_path, "--name", "../x"]
    )
    assert rc == 2 and "cannot name a deployed model" in err
    assert not (tmp_path.parent / "x.tflite").exists()
    with pytest.raises(DeployError, match="needs the spec"):
        litert.write(Source(name="x", path=tmp_path / f"{name}.onnx"), tmp_path)
