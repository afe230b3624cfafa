"""Shared test helpers: the example specs, the CLI run in-process, specs written inline, ruff on
generated source, `netspec view` as a server, and the Keras fixture."""

from __future__ import annotations

import io
import os
import select
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
RUFF = Path(sys.executable).parent / "ruff"


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """`netspec ARGS...` in this process: (exit code, stdout, stderr)."""
    from netspec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse's --help and --version
            rc = e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    return rc, out.getvalue(), err.getvalue()


def spec(
    inputs: str,
    layers: str,
    outputs: str = "",
    blocks: str = "",
    name: str = "t",
    params: str = "",
    description: str = "",
):
    """A graph from a spec written inline: `inputs`, `blocks` and `layers` are the YAML bodies of
    those sections (dedented and indented here), `outputs`, `params` and `description` the values
    of those keys (a section or key left empty is left out)."""
    import netspec

    def section(body: str) -> str:
        return textwrap.indent(textwrap.dedent(body).strip(), "  ")

    text = f"netspec: 1\nname: {name}\n"
    if description:
        text += f"description: {description}\n"
    if params:
        text += f"params: {params}\n"
    text += f"inputs:\n{section(inputs)}\n"
    if blocks:
        text += f"blocks:\n{section(blocks)}\n"
    text += f"layers:\n{section(layers)}\n"
    if outputs:
        text += f"outputs: {outputs}\n"
    return netspec.loads(text, file=f"<{name}>")


def ruff_clean(source: str, label: str = "") -> None:
    """`ruff check` and `ruff format --check` pass on `source` (generated code) with the
    repository's configuration; skips the test when ruff is not installed next to this Python."""
    if not RUFF.exists():
        pytest.skip("ruff is not installed next to this Python")
    for args in (["check", "--no-cache"], ["format", "--check", "--diff", "--no-cache"]):
        r = subprocess.run(
            [str(RUFF), *args, "--stdin-filename", "generated.py", "-"],
            input=source,
            text=True,
            capture_output=True,
            cwd=ROOT,
        )
        assert r.returncode == 0, f"{label}: ruff {args[0]}:\n{r.stdout}\n{r.stderr}\n{source}"


def first_line(proc: subprocess.Popen, timeout: float = 120) -> str:
    """The first line the process prints, or a failure with its stderr if none comes in time."""
    if not select.select([proc.stdout], [], [], timeout)[0]:
        proc.kill()
        pytest.fail(f"no output in {timeout} s; stderr: {proc.communicate()[1]}")
    return proc.stdout.readline()


@contextmanager
def netspec_view(path: Path) -> Iterator[tuple[subprocess.Popen, int, str]]:
    """`netspec view PATH --no-browser` on a free local port, in a subprocess: yields (the
    process, the port, the first line it prints once its server listens); stopped on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "netspec", "view", str(path), "--no-browser", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, port, first_line(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def specs() -> list[Path]:
    """Every example spec under specs/."""
    return list(SPECS)


@pytest.fixture(name="run_cli")
def run_cli_fixture():
    """The `run_cli(args) -> (rc, stdout, stderr)` helper, as a fixture."""
    return run_cli


@pytest.fixture(scope="module")
def keras():
    """Keras (skips without it), float32, with TensorFloat-32 off so that parity bounds hold."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    assert keras.config.floatx() == "float32"
    return keras


@contextmanager
def netspec_serve(*args: object, timeout: float = 300) -> Iterator[tuple[subprocess.Popen, str]]:
    """`netspec serve ARGS... --port 0` in a subprocess: yields (the process, "127.0.0.1:PORT"
    read from the first line it prints once it listens); stopped on exit. Its stderr goes to a
    file (a pipe nobody reads could fill and stall the server), shown when it fails to start."""
    import re
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netspec", "serve", *map(str, args), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=ROOT,
        )
        try:
            ready = select.select([proc.stdout], [], [], timeout)[0]
            line = proc.stdout.readline() if ready else ""
            m = re.search(r"at http://(\S+) ", line)
            if not m:
                proc.kill()
                proc.wait()
                err.seek(0)
                pytest.fail(f"netspec serve did not start: {line!r}; stderr: {err.read()[-3000:]}")
            yield proc, m.group(1)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
