"""A netspec model repository served by a real Triton Inference Server, checked against ONNX
Runtime through the real `tritonclient` HTTP client.

Runs only where a `tritonserver` binary with the onnxruntime backend is installed (the NGC
container `nvcr.io/nvidia/tritonserver:<ver>-py3`, for one); skips cleanly elsewhere. The
server that pip's `nvidia-pytriton` bundles has no onnxruntime backend (only the Python one) and
needs numpy<2, so it cannot serve these models from this environment.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

import netspec
from netspec.deploy.source import from_graph
from netspec.deploy.triton import write_repository
from netspec.targets.onnx.run import run_model
from tools.testing import assert_close, random_inputs, random_weights

ROOT = Path(__file__).resolve().parent.parent
SERVER = shutil.which("tritonserver")
BACKENDS = Path(os.environ.get("TRITON_BACKEND_DIR", "/opt/tritonserver/backends"))
SPECS = ["digits_cnn", "char_lstm", "resnet18"]

if SERVER is None:
    pytest.skip("no tritonserver binary on PATH", allow_module_level=True)
if not (BACKENDS / "onnxruntime").is_dir():
    pytest.skip(
        f"tritonserver has no onnxruntime backend ({BACKENDS / 'onnxruntime'} is missing; "
        "set TRITON_BACKEND_DIR)",
        allow_module_level=True,
    )
httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The repository of SPECS (random weights), served by tritonserver on loopback ports."""
    repo = tmp_path_factory.mktemp("repo")
    models = {}
    for stem in SPECS:
        graph = netspec.load(ROOT / "specs" / f"{stem}.yaml")
        w = random_weights(graph)
        write_repository(from_graph(graph, w), repo)
        models[graph.name] = (graph, netspec.compile(graph, "onnx", w))
    http = free_port()
    cmd = [
        SERVER,
        f"--model-repository={repo}",
        f"--backend-directory={BACKENDS}",
        f"--http-port={http}",
        f"--grpc-port={free_port()}",
        f"--metrics-port={free_port()}",
        "--http-address=127.0.0.1",
    ]
    log = repo.parent / "tritonserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{http}")
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"tritonserver exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if client.is_server_ready() and all(client.is_model_ready(m) for m in models):
                    break
            except Exception:  # not listening yet
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tritonserver not ready in 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield client, models
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("stem", SPECS)
def test_triton_serves_the_repository_like_onnxruntime(served, stem):
    client, models = served
    name = netspec.load(ROOT / "specs" / f"{stem}.yaml").name
    graph, model = models[name]
    meta = client.get_model_metadata(name)
    assert [i["name"] for i in meta["inputs"]] == list(graph.inputs)
    x = random_inputs(graph, batch=3)
    inputs = []
    for k, a in x.items():
        t = httpclient.InferInput(k, list(a.shape), "INT64" if a.dtype.kind == "i" else "FP32")
        t.set_data_from_numpy(a, binary_data=True)
        inputs.append(t)
    outputs = [httpclient.InferRequestedOutput(o, binary_data=True) for o in graph.outputs]
    result = client.infer(name, inputs, outputs=outputs)
    want, _ = run_model(model, x, "cpu")
    for k in want:
        assert_close(result.as_numpy(k), want[k], f"{name}.{k} through Triton")
