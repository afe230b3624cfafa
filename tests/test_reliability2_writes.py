"""Reliability II, class 1: every command writes only inside the folder the user named, through
a temporary file renamed into place (never through a symlink at the destination), and refuses
two outputs that would land in one file before writing anything."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli

MLP = ROOT / "specs" / "mlp.yaml"


def test_graph_replaces_symlink_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("outside")
    link = tmp_path / "out.svg"
    os.symlink(victim, link)
    rc, _, err = run_cli(["graph", MLP, "-o", link])
    assert rc == 0, err
    assert victim.read_text() == "outside"
    assert not link.is_symlink() and "<svg" in link.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.svg", "victim.txt"]


def test_graph_to_a_folder_is_a_user_error(tmp_path):
    rc, _, err = run_cli(["graph", MLP, "-o", tmp_path, "-f", "svg"])
    assert rc == 2, err
    assert "internal error" not in err


onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", d, "-q"])
    assert rc == 0, err
    import netspec
    from tools.testing import random_inputs

    x = random_inputs(netspec.load(MLP), batch=2)
    inputs = []
    for k, v in x.items():
        np.save(d / f"{k}.npy", v)
        inputs += ["--input", f"{k}={d / f'{k}.npy'}"]
    return d / "mlp.onnx", inputs


def test_run_replaces_symlink_instead_of_writing_through_it(model, tmp_path):
    path, inputs = model
    victim = tmp_path / "victim.txt"
    victim.write_text("outside")
    out = tmp_path / "out"
    out.mkdir()
    import onnx as o

    name = o.load(str(path)).graph.output[0].name
    os.symlink(victim, out / f"{name}.npy")
    rc, _, err = run_cli(["run", path, *inputs, "-o", out])
    assert rc == 0, err
    assert victim.read_text() == "outside"
    assert not (out / f"{name}.npy").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.npy"]  # no temporary left


def _two_outputs(tmp_path: Path, a: str, b: str) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    ya = helper.make_tensor_value_info(a, TensorProto.FLOAT, [2])
    yb = helper.make_tensor_value_info(b, TensorProto.FLOAT, [2])
    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], [a]), helper.make_node("Neg", ["x"], [b])],
        "g",
        [x],
        [ya, yb],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / "two.onnx"
    p.write_bytes(m.SerializeToString())
    np.save(tmp_path / "x.npy", np.ones(2, np.float32))
    return p


def test_run_outputs_with_the_same_file_name_are_refused_before_writing(tmp_path):
    p = _two_outputs(tmp_path, "y:1", "y/1")
    out = tmp_path / "out"
    rc, stdout, err = run_cli(["run", p, "--input", f"x={tmp_path / 'x.npy'}", "-o", out])
    assert rc == 2, err
    assert "y_1.npy" in err and "internal error" not in err
    assert not out.exists()


def test_run_distinct_outputs_are_both_saved(tmp_path):
    p = _two_outputs(tmp_path, "a", "b")
    out = tmp_path / "out"
    rc, _, err = run_cli(["run", p, "--input", f"x={tmp_path / 'x.npy'}", "-o", out])
    assert rc == 0, err
    np.testing.assert_array_equal(np.load(out / "b.npy"), -np.ones(2, np.float32))
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "b.npy"]


def test_run_output_that_is_a_file_is_a_user_error(model, tmp_path):
    path, inputs = model
    f = tmp_path / "file"
    f.write_text("keep")
    rc, _, err = run_cli(["run", path, *inputs, "-o", f])
    assert rc == 2, err
    assert "is a file" in err and f.read_text() == "keep"
