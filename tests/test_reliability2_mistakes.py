"""Reliability II, class 4: user mistakes are located exit-2 errors, never internal errors.
Exotic weight dtypes (BF16 read exactly whatever is imported; float8, bool and complex refused),
NaN weights refused, sizes that overflow int64, and an output folder that is a file, a dangling
link, read-only or full (real tmpfs mounts, where the tests run as root)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli

import netspec
from netspec.weights import WeightsError, load_weights

MLP = ROOT / "specs" / "mlp.yaml"
LSTM = ROOT / "specs" / "char_lstm.yaml"


def write_raw(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> Path:
    """A safetensors file from (dtype name, shape, raw bytes) per key."""
    header, off, blobs = {}, 0, []
    for k, (dtype, shape, raw) in tensors.items():
        header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))
    return path


def mlp_weights(dtype: str = "F32", key_dtype: dict | None = None):
    graph = netspec.load(MLP)
    w = netspec.init_weights(graph)
    out = {}
    for k, a in w.items():
        d = (key_dtype or {}).get(k, dtype)
        if d == "F32":
            raw = a.astype("<f4").tobytes()
        elif d == "BF16":
            raw = (a.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        elif d == "BOOL":
            raw = (a > 0).tobytes()
        elif d == "F8_E4M3":
            raw = bytes(a.size)
        else:
            raise AssertionError(d)
        out[k] = (d, list(a.shape), raw)
    return graph, w, out


def test_bf16_weights_are_widened_exactly(tmp_path):
    graph, w, raw = mlp_weights("BF16")
    back = load_weights(write_raw(tmp_path / "w.safetensors", raw), graph)
    for k, a in w.items():
        want = (a.view("<u4") & 0xFFFF0000).view("<f4")  # bf16 keeps the top 16 bits
        np.testing.assert_array_equal(back[k], want)


def test_bf16_weights_do_not_depend_on_what_was_imported(tmp_path):
    _, _, raw = mlp_weights("BF16")
    wf = write_raw(tmp_path / "w.safetensors", raw)
    code = (
        "import sys\nfrom netspec.cli import main\n"
        f"sys.exit(main(['build', {str(MLP)!r}, '-t', 'onnx', '-q', '-o', {str(tmp_path / 'o')!r},"
        f" '--weights', {str(wf)!r}]))"
    )
    r = subprocess.run(
        [os.sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    assert "ml_dtypes" not in r.stderr


@pytest.mark.parametrize("dtype, message", [("F8_E4M3", "float8"), ("BOOL", "is BOOL")])
def test_float8_and_bool_weights_are_refused(tmp_path, dtype, message):
    graph, _, raw = mlp_weights(key_dtype={"hidden1.weight": dtype})
    wf = write_raw(tmp_path / "w.safetensors", raw)
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", tmp_path / "o", "--weights", wf])
    assert rc == 2, err
    assert message in err and err.startswith(f"{wf}:")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bad", [np.complex64, np.bool_])
def test_complex_and_bool_arrays_are_refused(bad):
    graph = netspec.load(MLP)
    w = netspec.init_weights(graph)
    k = next(iter(w))
    w[k] = w[k].astype(bad)
    with pytest.raises(WeightsError, match="weights are real numbers"):
        load_weights(w, graph)


def test_nan_weights_are_refused(tmp_path):
    graph = netspec.load(MLP)
    w = netspec.init_weights(graph)
    k = next(iter(w))
    w[k][0, 0] = np.nan
    with pytest.raises(WeightsError, match="1 NaN or infinite"):
        load_weights(w, graph)
    from netspec.weights import write_weights

    write_weights(w, graph, tmp_path / "w.safetensors")
    rc, _, err = run_cli(
        ["build", MLP, "-t", "onnx", "-o", tmp_path / "o", "--weights", tmp_path / "w.safetensors"]
    )
    assert rc == 2 and "NaN" in err


def test_sizes_overflowing_int64_are_located(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text(
        "netspec: 1\nname: big\ninputs:\n  x: {shape: [3, 32, 32]}\nlayers:\n"
        "  - {op: conv2d, filters: 4, kernel: 3, padding: 4000000000000000000}\n"
        "  - {op: flatten}\n"
    )
    for cmd in (["validate"], ["build", "-t", "onnx", "-o", tmp_path / "o"]):
        rc, _, err = run_cli([*cmd, spec])
        assert rc == 2, err
        assert f"{spec}:6:" in err and "too large" in err


def test_output_that_is_a_file_or_a_dangling_link(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep")
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", f])
    assert rc == 2 and "is a file" in err and f.read_text() == "keep"
    link = tmp_path / "link"
    os.symlink(tmp_path / "nowhere", link)
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", link])
    assert rc == 2 and "does not exist" in err, err
    assert not (tmp_path / "nowhere").exists()


@pytest.fixture
def tmpfs(tmp_path):
    """A mount point: `mount(options)` mounts a small tmpfs there (skips unless root)."""
    point = tmp_path / "mnt"
    point.mkdir()
    mounted = []

    def mount(options: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)])
        if r.returncode:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(point)
        return point

    yield mount
    for p in mounted:
        subprocess.run(["umount", str(p)])


def test_read_only_output_folder(tmpfs):
    point = tmpfs("ro,size=64k")
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", point])
    assert rc == 2, err
    assert "not writable" in err and "internal error" not in err
    rc, _, err = run_cli(["graph", MLP, "-o", point / "g.svg"])
    assert rc == 2 and "not writable" in err, err


def test_full_output_folder_leaves_nothing(tmpfs):
    point = tmpfs("size=64k")
    (point / "keep.txt").write_text("mine")
    rc, _, err = run_cli(["build", LSTM, "-t", "onnx", "-o", point])  # ~1 MB of weights
    assert rc == 2, err
    assert "disk is full" in err and "internal error" not in err
    assert sorted(p.name for p in point.iterdir()) == ["keep.txt"]
