"""Reliability II, class 2: no data loss. An interrupted build removes only its own staging
folder (never a folder another build wrote into), the last step is all or nothing, SIGTERM is
handled like Ctrl-C, a killed build's staging folder is swept by the next one, and `view` removes
its temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli

import netspec
from netspec import outdir, targets
from netspec.build import build

MLP = ROOT / "specs" / "mlp.yaml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# A build whose ONNX step stops after writing its file, until a signal comes.
SLOW = textwrap.dedent(
    """
    import signal, sys, time
    from netspec import targets
    from netspec.cli import main
    # a shell starts background jobs with SIGINT ignored, and the child inherits that: the
    # test sends SIGINT whatever way the suite was started
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mod = targets.get("onnx")
    write = mod.write
    def slow(graph, w, outdir, **kw):
        files = write(graph, w, outdir, **kw)
        print("written", flush=True)
        time.sleep(120)
        return files
    mod.write = slow
    sys.exit(main(sys.argv[1:]))
    """
)


def staging_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".netspec-"))


def slow_build(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW, "build", str(MLP), "-t", "onnx", "-o", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stdout.readline().strip() == "written", proc.stderr.read()
    return proc


def test_interrupted_build_keeps_what_another_build_wrote(tmp_path, monkeypatch):
    out = tmp_path / "new"
    mod = targets.get("onnx")
    write = mod.write

    def concurrent_then_interrupted(graph, w, folder, **kw):
        write(graph, w, folder, **kw)
        (out / "other.onnx").write_text("another build finished this meanwhile")
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "write", concurrent_then_interrupted)
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", out, "-q"])
    assert rc == 130, err
    assert sorted(p.name for p in out.iterdir()) == ["other.onnx"]


def test_interrupted_build_removes_the_folder_it_created_when_empty(tmp_path, monkeypatch):
    out = tmp_path / "new" / "deep"
    mod = targets.get("onnx")

    def interrupted(graph, w, folder, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "write", interrupted)
    rc, _, _ = run_cli(["build", MLP, "-t", "onnx", "-o", out, "-q"])
    assert rc == 130
    assert not out.exists()


def test_commit_is_all_or_nothing(tmp_path, monkeypatch):
    out = tmp_path / "o"
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", out, "-q"])
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    graph = netspec.load(MLP)
    w = {k: np.full_like(v, 0.5) for k, v in netspec.init_weights(graph).items()}
    replace = os.replace
    calls = []

    def failing(src, dst):
        calls.append(dst)
        if str(dst).endswith(".safetensors") and len(calls) < 5:  # once, not in the rollback
            raise OSError(28, "No space left on device")
        return replace(src, dst)

    monkeypatch.setattr(outdir.os, "replace", failing)
    with pytest.raises(netspec.SpecError, match="No space left"):
        build(graph, ["onnx"], out, w)
    monkeypatch.setattr(outdir.os, "replace", replace)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # the old model beside the old weights, nothing new
    assert any(str(d).endswith(".onnx") for d in calls)  # the .onnx was moved, then put back


def test_commit_replaces_every_file_on_success(tmp_path):
    out = tmp_path / "o"
    graph = netspec.load(MLP)
    build(graph, ["onnx"], out)
    w = {k: np.full_like(v, 0.5) for k, v in netspec.init_weights(graph).items()}
    build(graph, ["onnx"], out, w)
    from safetensors.numpy import load_file

    back = load_file(str(out / "mlp.safetensors"))
    assert all((v == 0.5).all() for v in back.values())
    assert sorted(p.name for p in out.iterdir()) == ["mlp.onnx", "mlp.safetensors"]


def test_sigterm_cleans_the_staging_folder(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = slow_build(out)
    assert staging_dirs(out)  # the build is staging its files now
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    assert rc == 128 + signal.SIGTERM, proc.stderr.read()
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_a_killed_builds_staging_folder_is_swept_by_the_next(tmp_path):
    out = tmp_path / "o"
    proc = slow_build(out)
    proc.kill()
    proc.wait(timeout=60)
    left = staging_dirs(out)
    assert left  # SIGKILL cannot be handled
    live = out / f".netspec-build-{os.getpid()}-live"  # a running writer's: kept
    live.mkdir()
    rc, _, err = run_cli(["build", MLP, "-t", "onnx", "-o", out, "-q"])
    assert rc == 0, err
    assert staging_dirs(out) == [live.name]


def test_view_removes_its_temporary_folder_on_sigterm(tmp_path):
    pytest.importorskip("netron")
    pytest.importorskip("onnx")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netspec", "view", str(MLP), "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "TMPDIR": str(tmp_path)},
    )
    try:
        line = proc.stdout.readline()
        assert "Netron is showing" in line, proc.stderr.read()
        assert [p.name.startswith("netspec-view-") for p in tmp_path.iterdir()] == [True]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp_path.iterdir()) == []


def test_sigint_cleans_the_staging_folder(tmp_path):
    out = tmp_path / "o"
    proc = slow_build(out)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=60)
    assert rc == 130, proc.stderr.read()
    assert not out.exists()  # it created the folder, and nothing else is in it


def test_concurrent_builds_into_one_folder(tmp_path):
    out = tmp_path / "o"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "netspec", "build", str(MLP), "-t", "onnx", "-o", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["mlp.onnx", "mlp.safetensors"]
