"""`netspec build`: files, all-or-nothing, confinement to the output directory."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import netspec
from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "specs" / "mlp.yaml"


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_build_onnx_writes_model_and_weights(tmp_path):
    rc, out, err = cli("build", str(MLP), "--target", "onnx", "-o", str(tmp_path / "o"))
    assert rc == 0, err
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["mlp.onnx", "mlp.safetensors"]
    graph = netspec.load(MLP)
    w = load_file(str(tmp_path / "o" / "mlp.safetensors"))
    ref = netspec.init_weights(graph, seed=0)
    assert list(w) == sorted(ref) or set(w) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(w[k], ref[k])


def test_build_all_writes_every_target(tmp_path):
    rc, out, err = cli("build", str(MLP), "--target", "all", "-o", str(tmp_path))
    assert rc == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["mlp.onnx", "mlp.safetensors", "mlp_keras.py", "mlp_torch.py"]


def test_failed_build_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MLP.read_text().replace("units: 4", "units: -4", 1))
    out = tmp_path / "out"
    rc, _, err = cli("build", str(bad), "--target", "all", "-o", str(out))
    assert rc == 2 and "Traceback" not in err
    assert not out.exists()


def test_bad_weights_leave_existing_dir_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    wrong = tmp_path / "w.safetensors"
    from safetensors.numpy import save_file

    save_file({"nope.weight": np.zeros((2, 2), np.float32)}, str(wrong))
    rc, _, err = cli("build", str(MLP), "--target", "onnx", "-o", str(out), "--weights", str(wrong))
    assert rc == 2, err
    assert "do not match" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_build_replaces_symlink_instead_of_writing_through_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("outside the output directory")
    os.symlink(victim, out / "mlp.onnx")
    rc, _, err = cli("build", str(MLP), "--target", "onnx", "-o", str(out))
    assert rc == 0, err
    assert victim.read_text() == "outside the output directory"
    assert not (out / "mlp.onnx").is_symlink()


def test_weights_round_trip_through_build(tmp_path):
    graph = netspec.load(MLP)
    from netspec.weights import write_weights
    from tools.testing import random_weights

    w = random_weights(graph, seed=3)
    wf = tmp_path / "w.safetensors"
    write_weights(w, graph, wf)
    rc, _, err = cli(
        "build", str(MLP), "--target", "onnx", "-o", str(tmp_path / "o"), "--weights", str(wf)
    )
    assert rc == 0, err
    back = load_file(str(tmp_path / "o" / "mlp.safetensors"))
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])


def test_opset_below_13_is_a_usage_error(tmp_path):
    rc, _, err = cli(
        "build", str(MLP), "--target", "onnx", "--opset", "11", "-o", str(tmp_path / "o")
    )
    assert rc == 2 and "13" in err


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_build_is_deterministic(tmp_path, spec):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        rc, _, err = cli("build", str(spec), "--target", "onnx", "-o", str(d), "-q")
        assert rc == 0, err
    for f in a.iterdir():
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name


@pytest.mark.parametrize("spec", ["char_lstm", "resnet18"])
def test_weights_file_is_what_the_safetensors_package_reads_and_writes(spec, tmp_path):
    # netspec writes safetensors itself (no copy of the weights); the package must read it back
    # exactly, with the metadata, and the package's own writer must give the same tensors
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from netspec.weights import write_weights
    from tools.testing import random_weights

    graph = netspec.load(ROOT / "specs" / f"{spec}.yaml")
    w = random_weights(graph, seed=5)
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    write_weights(w, graph, ours)
    save_file({k: np.ascontiguousarray(v) for k, v in w.items()}, str(theirs))
    with safe_open(str(ours), "numpy") as f:
        assert set(f.keys()) == set(w)
        assert f.metadata() == {
            "netspec": json.dumps(
                {"model": graph.name, "params": graph.params, "version": netspec.__version__},
                sort_keys=True,
            )
        }
    a, b = load_file(str(ours)), load_file(str(theirs))
    assert set(a) == set(b) == set(w)
    for k in w:
        assert a[k].dtype == np.float32 and a[k].shape == w[k].shape
        np.testing.assert_array_equal(a[k], b[k])
    torch_st = pytest.importorskip("safetensors.torch")
    t = torch_st.load_file(str(ours))
    for k in w:
        np.testing.assert_array_equal(t[k].numpy(), w[k])


def test_weights_file_of_a_spec_without_weights(tmp_path):
    from safetensors import safe_open

    from netspec.weights import write_weights

    graph = netspec.loads(
        "netspec: 1\nname: noweights\ninputs: {x: {shape: [4]}}\n"
        "layers:\n  - {name: r, op: relu}\noutputs: [r]\n"
    )
    assert graph.weight_shapes() == {}
    write_weights({}, graph, tmp_path / "w.safetensors")
    with safe_open(str(tmp_path / "w.safetensors"), "numpy") as f:
        assert list(f.keys()) == [] and "netspec" in f.metadata()
