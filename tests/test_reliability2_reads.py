"""Reliability II, class 3: bounded reads. A spec is read up to its size limit only (a device or
a FIFO is refused before reading); `--weights` is checked from the safetensors header before any
tensor is read; an `.npy` header declaring more data than the file holds is refused before
anything is allocated. Memory-heavy cases run in a subprocess under a 2 GB address-space limit,
so that reading everything fails there instead of exhausting the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli

import netspec
from netspec.weights import write_weights

MLP = ROOT / "specs" / "mlp.yaml"
LIMITED = (
    "import resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
    "from netspec.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def limited_cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """`netspec ARGS` in a subprocess with at most 2 GB of address space."""
    return subprocess.run(
        [sys.executable, "-c", LIMITED, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"},
    )


def sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def test_spec_from_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    r = limited_cli("validate", fifo, timeout=60)  # nothing writes: reading would block
    assert r.returncode == 2, r.stderr
    assert "not a regular file" in r.stderr


def test_spec_from_a_device_is_refused():
    r = limited_cli("validate", "/dev/zero")  # reading it all would never end
    assert r.returncode == 2, r.stderr
    assert "not a regular file" in r.stderr


def test_a_huge_sparse_spec_is_refused_reading_only_the_limit(tmp_path):
    big = sparse(tmp_path / "big.yaml", 3 << 30, b"netspec: 1\n")
    r = limited_cli("validate", big)
    assert r.returncode == 2, r.stderr
    assert "specs are limited to" in r.stderr


def _header_file(path: Path, entries: dict, data_bytes: int) -> Path:
    text = json.dumps(entries).encode()
    text += b" " * (-len(text) % 8)
    head = len(text).to_bytes(8, "little") + text
    return sparse(path, len(head) + data_bytes, head)


def test_weights_checked_from_the_header_before_loading(tmp_path):
    graph = netspec.load(MLP)
    entries, off = {}, 0
    for k, shape in graph.weight_shapes().items():
        n = int(np.prod(shape)) * 4
        entries[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    huge = 3 << 30  # a 3 GB tensor nobody asked for, sparse on disk
    entries["zzz.weight"] = {
        "dtype": "F32",
        "shape": [huge // 4],
        "data_offsets": [off, off + huge],
    }
    wf = _header_file(tmp_path / "w.safetensors", entries, off + huge)
    r = limited_cli("build", MLP, "-t", "onnx", "-o", tmp_path / "o", "--weights", wf)
    assert r.returncode == 2, r.stderr
    assert "unexpected 1 key(s): zzz.weight" in r.stderr
    assert r.stderr.startswith(f"{wf}:")  # located at the weights file, not `<spec>`


def test_weights_header_with_offsets_outside_the_file(tmp_path):
    graph = netspec.load(MLP)
    entries = {
        k: {"dtype": "F32", "shape": list(s), "data_offsets": [0, 1 << 40]}
        for k, s in graph.weight_shapes().items()
    }
    wf = _header_file(tmp_path / "w.safetensors", entries, 64)
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", tmp_path / "o", "--weights", wf])
    assert rc == 2, err
    assert "not a readable safetensors file" in err


def test_weights_still_round_trip(tmp_path):
    graph = netspec.load(MLP)
    w = {
        k: np.random.default_rng(0).random(v.shape, np.float32)
        for k, v in netspec.init_weights(graph).items()
    }
    write_weights(w, graph, tmp_path / "w.safetensors")
    from netspec.weights import load_weights

    back = load_weights(tmp_path / "w.safetensors", graph)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])


def test_npy_header_declaring_terabytes_is_refused_before_allocating(tmp_path):
    pytest.importorskip("onnxruntime")
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", tmp_path, "-q"])
    assert rc == 0, err
    big = tmp_path / "x.npy"
    with open(big, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40, 3)}
        )
        f.write(b"\0" * 64)
    r = limited_cli("run", tmp_path / "mlp.onnx", "--input", f"x={big}")
    assert r.returncode == 2, r.stderr
    assert "declares" in r.stderr and "internal error" not in r.stderr


def test_spec_that_is_a_folder(tmp_path):
    rc, _, err = run_cli(["validate", tmp_path])
    assert rc == 2 and "a folder" in err, err
